"""Sans-IO core of the ``clone`` and ``clone-outlet`` drivers (NUT-FACTS §8.2, NUT FAQ #38).

A clone reads another driver's socket (its "parent": the driver of the real device) and republishes
what it says as a UPS of its own. Lines from the parent go in (:meth:`CloneCore.feed`), so do the
poll ticks (:meth:`CloneCore.tick`), instant commands and SETs; what must be sent to the parent comes
out as a list of lines. The state published is a :class:`~nutlite.drivers.framework.core.DriverState`.

Behaviour of Debian's NUT 2.8.0 ``/lib/nut/clone`` and ``clone-outlet`` as observed on their sockets:

* every parent variable is relayed except ``driver.*``, without its flags, enums or ranges; the
  parent's commands are not relayed; ``DELINFO`` is;
* ``clone`` adds ``battery.charge.low`` (``mincharge``, default 0) and ``battery.runtime.low``
  (``minruntime``, default 0), both writable, ``ups.delay.shutdown``/``ups.delay.start`` (``offdelay``
  120 / ``ondelay`` 30), the timers ``ups.timer.shutdown``/``ups.timer.start`` (-1 when idle) and the
  commands ``shutdown.return`` and ``shutdown.stayoff``;
* on battery with charge/runtime under the minimum, ``clone`` puts FSD in front of its ``ups.status``
  and starts both timers (nutlite also does so on the parent's LB, the "shutdown condition (OB LB)" of
  NUT's man page, which 2.8.0 only passes on); each poll takes ``pollinterval`` off the shutdown timer
  and when it runs out sends the ``load.off`` command to the parent; then, once the parent is no longer
  on battery, the start timer runs down and ``load.on`` is sent (FSD goes away with it, or at the
  first parent status without OB after the shutdown timer ran out);
* ``clone-outlet`` publishes the parent's status with OFF added while ``<prefix>.status`` is "off";
* a parent that says DATASTALE is asked for a fresh dump at the next poll (``ups.status`` is WAIT
  until it comes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from nutlite.drivers.framework.core import DriverError, DriverState, Status
from nutlite.parseconf import quote

log = logging.getLogger("nutlite.driver.clone")

DEFAULT_OFFDELAY = 120
DEFAULT_ONDELAY = 30
CLONE_COMMANDS = ("shutdown.return", "shutdown.stayoff")
# what clone publishes itself; the parent's values of these are not relayed
OWN_VARS = ("battery.charge.low", "battery.runtime.low", "ups.delay.shutdown", "ups.delay.start",
            "ups.timer.shutdown", "ups.timer.start", "ups.status")


def _whole(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        n = int(value.strip())
    except ValueError:
        raise DriverError(f"{name}: expected a whole number of seconds, got '{value}'") from None
    if n < 0:
        raise DriverError(f"{name}: expected 0 or more seconds, got {n}")
    return n


def _number(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise DriverError(f"{name}: expected a number, got '{value}'") from None


@dataclass
class CloneSettings:
    """The clone's own settings (ups.conf / ``-x``)."""

    offdelay: int = DEFAULT_OFFDELAY
    ondelay: int = DEFAULT_ONDELAY
    mincharge: str | None = None
    minruntime: str | None = None
    load_off: str | None = None
    load_on: str | None = None
    load_status: str | None = None

    @classmethod
    def parse(cls, get: Callable[[str], str | None]) -> CloneSettings:
        """From a ``getval``-like callable; a bad value raises :class:`DriverError` naming the setting."""
        s = cls(offdelay=_whole("offdelay", get("offdelay"), DEFAULT_OFFDELAY),
                ondelay=_whole("ondelay", get("ondelay"), DEFAULT_ONDELAY),
                mincharge=get("mincharge"), minruntime=get("minruntime"),
                load_off=get("load.off"), load_on=get("load.on"), load_status=get("load.status"))
        _number("mincharge", s.mincharge)
        _number("minruntime", s.minruntime)
        return s


class ParentReader:
    """Splits the parent's byte stream into word lists (NUT's quoting rules)."""

    def __init__(self) -> None:
        from nutlite.parseconf import Tokenizer

        self.tokenizer = Tokenizer()

    def feed(self, data: bytes) -> list[list[str]]:
        out = []
        for line in self.tokenizer.feed(data.decode("latin-1")):
            if line.error:
                log.warning("parent driver: line rejected (%s)", line.error)
            elif line.words:
                out.append(line.words)
        return out


class CloneOutletCore:
    """clone-outlet: relay the parent, with OFF in ``ups.status`` while ``<prefix>.status`` is off."""

    def __init__(self, state: DriverState, prefix: str) -> None:
        self.state = state
        self.prefix = prefix
        self.parent: dict[str, str] = {}  # the parent's variables as it last said them (lower-case keys)
        self.relayed: set[str] = set()
        self.connected = False
        self.dumped = False  # the parent's DUMPDONE arrived on this connection
        self.parent_stale = False
        self.redump_due = False
        self.seen: set[str] = set()  # what the parent's dump on this connection had

    # -- connection
    def on_connect(self) -> list[str]:
        """The parent socket was (re)opened: ask for everything it has."""
        self.connected = True
        self.dumped = False
        self.redump_due = False
        self.seen = set()
        if self.parent:
            self.state.setinfo("ups.status", "WAIT")
        return ["DUMPALL"]

    def on_lost(self) -> None:
        """The parent socket closed or failed: what we publish is no longer known to be true."""
        if self.connected:
            log.error("lost the parent driver's socket: data marked stale until it is back")
        self.connected = False
        self.state.set_stale(True)

    # -- lines from the parent
    def feed(self, words: list[str]) -> list[str]:
        """One line from the parent; returns lines to send to it."""
        cmd = words[0].upper()
        if cmd == "SETINFO" and len(words) >= 3:
            self.setinfo(words[1], words[2])
        elif cmd == "DELINFO" and len(words) >= 2:
            self.delinfo(words[1])
        elif cmd == "DATASTALE":
            self.parent_stale = True
            self.redump_due = True
            self.state.set_stale(True)
        elif cmd == "DATAOK":
            self.parent_stale = False
            self.redump_due = False
            if self.dumped:
                self.state.set_stale(False)
        elif cmd == "DUMPDONE":
            if not self.dumped:
                for low in sorted(set(self.parent) - self.seen):  # gone while we were not connected
                    self.delinfo(low)
            self.dumped = True
            if not self.parent_stale:
                self.state.set_stale(False)
            self.after_status()
        return []

    def own(self, name: str) -> bool:
        low = name.lower()
        return low.startswith("driver.") or low == "ups.status"

    def setinfo(self, name: str, value: str) -> None:
        low = name.lower()
        self.parent[low] = value
        self.seen.add(low)
        if low == "ups.status":
            self.after_status()
            return
        if self.own(name):
            return
        self.state.setinfo(name, value)
        self.relayed.add(low)
        if self.watches(low):
            self.after_status()

    def delinfo(self, name: str) -> None:
        low = name.lower()
        self.parent.pop(low, None)
        if low in self.relayed:
            var = self.state.get(low)
            if var is not None:
                self.state.delinfo(var.name)
            self.relayed.discard(low)
        if self.watches(low) or low == "ups.status":
            self.after_status()

    def watches(self, low: str) -> bool:
        return low == f"{self.prefix.lower()}.status"

    def after_status(self) -> None:
        status = self.parent.get("ups.status")
        if status is None:
            return
        words = status.split()
        if self.parent.get(f"{self.prefix.lower()}.status", "").lower() == "off" and "OFF" not in words:
            words.append("OFF")
        self.state.setinfo("ups.status", " ".join(words))

    # -- the clone's own work
    def tick(self, elapsed: int) -> list[str]:
        return []

    def wants_redump(self) -> bool:
        return self.connected and self.redump_due

    def instcmd(self, cmd: str, param: str | None) -> tuple[Status, list[str]]:
        return Status.UNKNOWN, []

    def setvar(self, name: str, value: str) -> Status:
        return Status.UNKNOWN


class CloneCore(CloneOutletCore):
    """clone: relay the parent and manage one outlet as a UPS with its own FSD and timers."""

    def __init__(self, state: DriverState, settings: CloneSettings) -> None:
        super().__init__(state, prefix="")
        self.s = settings
        self.fsd = False  # the clone's own shutdown is under way
        self.timer_shutdown = -1
        self.timer_start = -1
        self.outlet_on = True  # tracked from our own commands when there is no load.status variable

    def publish_own(self) -> None:
        """The clone's variables and commands (at start)."""
        st = self.state
        for name, value, aux in (("battery.charge.low", self.s.mincharge or "0", 3),
                                 ("battery.runtime.low", self.s.minruntime or "0", 4)):
            st.setinfo(name, value)
            st.setflags(name, ["RW", "STRING"])
            st.setaux(name, aux)
        st.setinfo("ups.delay.shutdown", str(self.s.offdelay))
        st.setinfo("ups.delay.start", str(self.s.ondelay))
        self.publish_timers()
        for c in CLONE_COMMANDS:
            st.addcmd(c)

    def publish_timers(self) -> None:
        self.state.setinfo("ups.timer.shutdown", str(self.timer_shutdown))
        self.state.setinfo("ups.timer.start", str(self.timer_start))

    def own(self, name: str) -> bool:
        low = name.lower()
        return low.startswith("driver.") or low in OWN_VARS

    def watches(self, low: str) -> bool:
        if low in ("battery.charge", "battery.runtime"):
            return True
        return self.s.load_status is not None and low == self.s.load_status.lower()

    # -- what the parent says
    def on_battery(self) -> bool:
        return "OB" in self.parent.get("ups.status", "").split()

    def outlet_is_on(self) -> bool:
        if self.s.load_status is not None:
            value = self.parent.get(self.s.load_status.lower())
            if value is not None:
                return value.strip().lower() != "off"
        return self.outlet_on

    def battery_low(self) -> str | None:
        """Why the battery counts as low for this outlet, or None."""
        if "LB" in self.parent.get("ups.status", "").split():
            return "the parent UPS says low battery"
        for var, own, what in (("battery.charge", "battery.charge.low", "Battery charge low"),
                               ("battery.runtime", "battery.runtime.low", "Battery runtime low")):
            try:
                if float(self.parent[var]) < float(self.state.value(own) or "0"):
                    return what
            except (KeyError, ValueError):
                continue
        return None

    def compose(self) -> str:
        words = self.parent.get("ups.status", "").split()
        if self.fsd and "FSD" not in words:
            words.insert(0, "FSD")
        return " ".join(words)

    def after_status(self) -> None:
        if "ups.status" not in self.parent:
            return
        if self.fsd and self.timer_shutdown < 0 and not self.on_battery():
            self.fsd = False  # the outlet's shutdown is over and the power is back
        self.state.setinfo("ups.status", self.compose())
        if not self.fsd and self.on_battery():
            why = self.battery_low()
            if why is not None:
                log.warning("%s: shutting the outlet down in %d s", why, self.s.offdelay)
                self.start_shutdown(self.s.ondelay)
                self.publish_timers()
                self.state.setinfo("ups.status", self.compose())

    def start_shutdown(self, ondelay: int) -> None:
        self.fsd = True
        self.timer_shutdown = self.s.offdelay
        self.timer_start = ondelay

    # -- poll ticks
    def tick(self, elapsed: int) -> list[str]:
        out: list[str] = []
        if self.timer_shutdown >= 0:
            self.timer_shutdown -= elapsed
            if self.timer_shutdown < 0 and not self.connected:
                self.timer_shutdown = 0  # sent as soon as the parent is back
                log.error("load.off is due but the parent driver is not connected; waiting for it")
            elif self.timer_shutdown < 0:
                self.timer_shutdown = -1
                out.extend(self.outlet_command("load.off", self.s.load_off))
                self.outlet_on = False
        elif self.timer_start >= 0 and not self.on_battery():
            self.timer_start -= elapsed
            if self.timer_start < 0 and not self.connected:
                self.timer_start = 0
                log.error("load.on is due but the parent driver is not connected; waiting for it")
            elif self.timer_start < 0:
                self.timer_start = -1
                out.extend(self.outlet_command("load.on", self.s.load_on))
                self.outlet_on = True
                self.fsd = False
                if "ups.status" in self.parent:
                    self.state.setinfo("ups.status", self.compose())
        self.publish_timers()
        return out

    def outlet_command(self, what: str, cmd: str | None) -> list[str]:
        if cmd is None:
            log.warning("%s is due but no '%s' setting names the parent's command for it", what, what)
            return []
        log.warning("%s: sending '%s' to the parent driver", what, cmd)
        return [f"INSTCMD {quote(cmd)}" if " " in cmd else f"INSTCMD {cmd}"]

    # -- requests to the clone
    def instcmd(self, cmd: str, param: str | None) -> tuple[Status, list[str]]:
        low = cmd.lower()
        if low not in CLONE_COMMANDS:
            return Status.UNKNOWN, []
        if not self.outlet_is_on():
            log.info("%s: the outlet is already off", low)
            return Status.HANDLED, []
        self.start_shutdown(self.s.ondelay if low == "shutdown.return" else -1)
        if "ups.status" in self.parent:
            self.state.setinfo("ups.status", self.compose())
        log.warning("%s: the outlet goes off in %d s", low, self.s.offdelay)
        return Status.HANDLED, []

    def setvar(self, name: str, value: str) -> Status:
        low = name.lower()
        if low not in ("battery.charge.low", "battery.runtime.low"):
            return Status.UNKNOWN
        try:
            float(value)
        except ValueError:
            log.warning("SET %s: '%s' is not a number", low, value)
            return Status.INVALID
        self.state.setinfo(low, value)
        if "ups.status" in self.parent:
            self.after_status()
        return Status.HANDLED
