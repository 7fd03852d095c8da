"""The driver framework's core: what every nutlite driver shares (NUT-FACTS §2, §3.2, §6.2).

* :class:`DriverState`: the device state, with NUT's immutable ``override.*`` variables and ``ignorelb``;
* :class:`Driver`, the base class a driver subclasses: ``initups``, ``initinfo``, ``updateinfo``,
  ``instcmd``, ``setvar``, ``shutdown`` (each may be a plain or an ``async`` method);
* :func:`prepare`, which brings a driver up (initups, the core variables, initinfo, one update).

The other parts are :mod:`nutlite.drivers.framework.drvconfig` (the settings: ups.conf section and ``-x``),
:mod:`nutlite.drivers.framework.sockproto` (the driver socket protocol, sans-IO, and a small blocking client of
it) and :mod:`nutlite.drivers.framework.runner` (the asyncio shell: socket server, poll loop, signals, pid file,
reload, killpower and the process entry points).

The behaviour follows Debian's NUT 2.8.0 drivers as observed on their socket (same variables, same
DUMPALL order), plus the helper commands of newer NUT releases (GETPID, LOGOUT, (NO)BROADCAST,
DUMPVALUE/DUMPSTATUS, ``driver.killpower``/``driver.reload``/``driver.exit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nutlite import __version__
from nutlite.parseconf import quote
from nutlite.state import KNOWN_FLAGS, DeviceState, Var

if TYPE_CHECKING:
    from nutlite.drivers.framework.drvconfig import DriverConfig, Option
    from nutlite.drivers.framework.runner import DriverRunner

log = logging.getLogger("nutlite.driver")


class Status(enum.IntEnum):
    """Result of an instant command or SET, as sent in ``TRACKING <id> <n>`` (NUT-FACTS §1.3)."""

    HANDLED = 0
    UNKNOWN = 1
    INVALID = 2
    FAILED = 3
    CONVERSION_FAILED = 4


class DriverError(Exception):
    """A problem that stops the driver; the message says what to check."""


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "yes", "on", "true", "enabled", "ok")


# --------------------------------------------------------------------------------------------------
# Device state with NUT's driver-side rules


class DriverState(DeviceState):
    """:class:`DeviceState` plus what a driver core adds on top of it.

    * ``override.<var>`` values are *immutable*: the driver cannot change their value or flags, and
      their DUMPALL block carries an empty ``SETFLAGS`` line, as NUT's does;
    * with ``ignorelb`` the published ``ups.status`` gets its LB token from the battery charge/runtime
      thresholds instead of from the device.
    """

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        super().__init__(on_change)
        self.immutable: set[str] = set()
        self.ignorelb = False
        self._raw_status: str | None = None

    # -- immutability
    def make_immutable(self, name: str) -> None:
        self.immutable.add(name.lower())

    def is_immutable(self, name: str) -> bool:
        return name.lower() in self.immutable

    def setinfo(self, name: str, value: str, force: bool = False) -> bool:
        key = name.lower()
        if key in self.immutable and not force:
            log.debug("not changing %s: it is set by override.%s", name, name)
            return False
        if key == "ups.status" and self.ignorelb:
            self._raw_status = value
            value = self._lb_status(value)
        return super().setinfo(name, value)

    def delinfo(self, name: str, force: bool = False) -> bool:
        if name.lower() in self.immutable and not force:
            return False
        return super().delinfo(name)

    def setflags(self, name: str, flags: list[str] | set[str], force: bool = False) -> bool:
        if name.lower() in self.immutable and not force:
            log.debug("not changing the flags of %s: it is set by override.%s", name, name)
            return False
        return super().setflags(name, flags)

    def setaux(self, name: str, aux: int, force: bool = False) -> bool:
        if name.lower() in self.immutable and not force:
            return False
        return super().setaux(name, aux)

    # -- ignorelb
    def _low(self, value: str, threshold: str) -> bool | None:
        v, t = self.value(value), self.value(threshold)
        if v is None or t is None:
            return None
        try:
            return float(v) < float(t)
        except ValueError:
            return None

    def lb_possible(self) -> bool:
        """Whether charge/runtime and their thresholds are all there for ``ignorelb`` to work."""
        return (self.get("battery.charge") is not None and self.get("battery.charge.low") is not None) or (
            self.get("battery.runtime") is not None and self.get("battery.runtime.low") is not None
        )

    def _lb_status(self, raw: str) -> str:
        words = [w for w in raw.split() if w != "LB"]
        if self._low("battery.charge", "battery.charge.low") or self._low("battery.runtime", "battery.runtime.low"):
            words.append("LB")
        return " ".join(words)

    def refresh_status(self) -> None:
        """Re-derive LB after the battery values changed (ignorelb only)."""
        if self.ignorelb and self._raw_status is not None and "ups.status" not in self.immutable:
            DeviceState.setinfo(self, "ups.status", self._lb_status(self._raw_status))

    # -- output
    def var_lines(self, v: Var) -> list[str]:
        """One variable's DUMPALL block: SETINFO, ADDENUMs, ADDRANGEs, SETAUX, SETFLAGS."""
        out = [f"SETINFO {v.name} {quote(v.value)}"]
        out.extend(f"ADDENUM {v.name} {quote(e)}" for e in v.enums)
        out.extend(f"ADDRANGE {v.name} {lo} {hi}" for lo, hi in v.ranges)
        if v.aux:
            out.append(f"SETAUX {v.name} {v.aux}")
        if v.flags or v.name.lower() in self.immutable:
            out.append(" ".join(["SETFLAGS", v.name, *(f for f in KNOWN_FLAGS if f in v.flags)]))
        return out

    def dump_lines(self) -> list[str]:
        out = ["DATASTALE"] if self.stale else []
        for v in self.sorted_vars():
            out.extend(self.var_lines(v))
        out.extend(f"ADDCMD {c}" for c in self.cmds.values())
        if not self.stale:
            out.append("DATAOK")
        out.append("DUMPDONE")
        return out


# --------------------------------------------------------------------------------------------------
# The driver base class


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hook that may be a plain function or a coroutine function."""
    result = fn(*args)
    if isinstance(result, Awaitable):
        result = await result
    return result


class Driver:
    """Base of every driver. Subclasses set the class attributes and override the hooks.

    Hooks (plain or ``async``): :meth:`initups` opens the device (after root was dropped),
    :meth:`initinfo` publishes what is known at start, :meth:`updateinfo` polls (every
    ``pollinterval`` seconds), :meth:`instcmd`/:meth:`setvar` return a :class:`Status`,
    :meth:`shutdown` tells the UPS to cut power and come back (killpower), :meth:`cleanup` closes.
    Blocking libraries go through :meth:`run_blocking`.
    """

    name: ClassVar[str] = "generic"  # NUT's driver program name
    description: ClassVar[str] = "UPS driver"
    version: ClassVar[str] = "0.1"  # driver.version.internal
    options: ClassVar[tuple[Option, ...]] = ()  # what -x / ups.conf may set besides the core settings

    @classmethod
    def help_sections(cls) -> str:
        """More plain text for ``-h`` after the driver's settings (e.g. genericups' cable types)."""
        return ""

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else DriverState()
        self.upsname = config.upsname
        self.log = logging.getLogger(f"nutlite.driver.{self.name}")
        self._status: list[str] = []
        self._alarm: list[str] = []
        self.runner: DriverRunner | None = None

    # ---- settings
    @property
    def port(self) -> str:
        return self.config.port

    @property
    def pollinterval(self) -> int:
        return self.config.pollinterval

    def getval(self, key: str) -> str | None:
        """A ``-x``/ups.conf value of this section (globals are not driver parameters); like NUT, the
        name is matched without regard to case."""
        values = self.config.values
        if key in values:
            return values[key]
        low = key.lower()
        return next((v for k, v in values.items() if k.lower() == low), None)

    def testvar(self, key: str) -> bool:
        low = key.lower()
        return self.getval(key) is not None or any(f.lower() == low for f in self.config.flags)

    def confpath_file(self, name: str) -> Path:
        """``name`` as an absolute path; a relative one is taken from the configuration folder."""
        p = Path(name)
        return p if p.is_absolute() else self.config.confpath / p

    # ---- hooks
    def initups(self) -> Any:
        """Open the device. Raise :class:`DriverError` with a helpful message if it is not there."""

    def initinfo(self) -> Any:
        """Publish the static variables and commands."""

    def updateinfo(self) -> Any:
        """Poll the device; call :meth:`dataok` or :meth:`datastale`."""

    def instcmd(self, cmd: str, param: str | None) -> Any:
        self.log.info("instant command %s not supported", cmd)
        return Status.UNKNOWN

    def setvar(self, name: str, value: str) -> Any:
        self.log.info("setting %s not supported", name)
        return Status.UNKNOWN

    def shutdown(self) -> Any:
        """Killpower: return True once the UPS was told to power off (and to come back)."""
        self.log.error("shutdown not supported by the %s driver", self.name)
        return False

    def reload(self, changed: dict[str, str | None]) -> bool:
        """Apply changed settings at runtime; return False if a restart is needed for them."""
        return not changed

    def cleanup(self) -> Any:
        """Close the device."""

    # ---- helpers for drivers
    def batch(self) -> AbstractContextManager[None]:
        """The state changes made inside reach the socket clients (upsd) in one write. Every poll
        (:meth:`updateinfo`) and command already runs in one; a driver that publishes at other times (on
        an alert from the device) uses this for the same effect."""
        if self.runner is None:
            return contextlib.nullcontext()
        return self.runner.proto.batch()

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking call (pyusb, a serial library…) in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def setinfo(self, name: str, value: str) -> bool:
        return self.state.setinfo(name, str(value))

    def getinfo(self, name: str) -> str | None:
        return self.state.value(name)

    def delinfo(self, name: str) -> bool:
        return self.state.delinfo(name)

    def setflags(self, name: str, *flags: str) -> bool:
        return self.state.setflags(name, list(flags))

    def setaux(self, name: str, aux: int) -> bool:
        return self.state.setaux(name, aux)

    def addenum(self, name: str, value: str) -> bool:
        return self.state.addenum(name, value)

    def addrange(self, name: str, lo: int, hi: int) -> bool:
        return self.state.addrange(name, lo, hi)

    def addcmd(self, name: str) -> bool:
        return self.state.addcmd(name)

    def delcmd(self, name: str) -> bool:
        return self.state.delcmd(name)

    def dataok(self) -> None:
        self.state.set_stale(False)

    def datastale(self) -> None:
        self.state.set_stale(True)

    def status_init(self) -> None:
        self._status = []

    def status_set(self, token: str) -> None:
        for t in token.split():
            if t not in self._status:
                self._status.append(t)

    def status_commit(self) -> None:
        words = list(self._status)
        if self._alarm and "ALARM" not in words:
            words.insert(0, "ALARM")
        self.setinfo("ups.status", " ".join(words))

    def alarm_init(self) -> None:
        self._alarm = []

    def alarm_set(self, text: str) -> None:
        if text not in self._alarm:
            self._alarm.append(text)

    def alarm_commit(self) -> None:
        if self._alarm:
            self.setinfo("ups.alarm", " ".join(self._alarm))
        else:
            self.delinfo("ups.alarm")


# --------------------------------------------------------------------------------------------------
# Publishing the core variables and bringing a driver up


def publish_core(driver: Driver) -> None:
    """default.*, driver.*, device.type and override.* -- before initinfo and in NUT's order (a default
    cannot replace driver.* or device.type; an override replaces anything and stays)."""
    cfg, st = driver.config, driver.state
    for key, value in cfg.values.items():
        if key.startswith("default."):
            st.setinfo(key[len("default."):], value)
    st.setinfo("driver.name", driver.name)
    st.setinfo("driver.version", __version__)
    st.setinfo("driver.version.internal", driver.version)
    st.setinfo("driver.parameter.port", cfg.port)
    st.setinfo("driver.parameter.pollinterval", str(cfg.pollinterval))
    st.setinfo("driver.parameter.synchronous", cfg.get("synchronous") or "auto")
    option_names = {o.name.lower() for o in driver.options if not o.flag}
    for key, value in cfg.values.items():
        if key.lower() in option_names:
            st.setinfo(f"driver.parameter.{key}", value)
    for flag in cfg.flags:
        st.setinfo(f"driver.flag.{flag}", "enabled")
    allow = cfg.values.get("allow_killpower")
    if allow is not None:
        st.setinfo("driver.flag.allow_killpower", "1" if truthy(allow) else "0")
    st.setinfo("device.type", "ups")
    apply_overrides(driver)


def apply_overrides(driver: Driver) -> None:
    st = driver.state
    for key, value in driver.config.values.items():
        if key.startswith("override."):
            name = key[len("override."):]
            st.setinfo(name, value, force=True)
            st.make_immutable(name)


def mirror_device_info(state: DriverState) -> None:
    """Copy ups.mfr/model/serial into device.* once after start, as NUT does for old drivers."""
    for part in ("mfr", "model", "serial"):
        v = state.value(f"ups.{part}")
        if v is not None:
            state.setinfo(f"device.{part}", v)


async def prepare(driver: Driver, update: Callable[[], Awaitable[Any]] | None = None) -> None:
    """Bring a driver up to where its socket can be served: initups, the core variables, initinfo, one
    update, the device.* mirror and the ignorelb check (also used in-process by tests)."""
    state = driver.state
    state.ignorelb = driver.config.has_flag("ignorelb")
    await call(driver.initups)
    publish_core(driver)
    await call(driver.initinfo)
    if update is not None:
        await update()
    else:
        await call(driver.updateinfo)
    mirror_device_info(state)
    if state.ignorelb and not state.lb_possible():
        raise DriverError(
            "the 'ignorelb' flag is set, but the battery charge cannot be judged: it needs "
            "battery.charge and battery.charge.low, or battery.runtime and battery.runtime.low")
    state.refresh_status()
