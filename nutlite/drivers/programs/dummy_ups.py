"""dummy-ups: a UPS simulated from a definition file, or a repeater of a UPS served by another upsd
(NUT-FACTS §8.1, NUT FAQ #36-#38).

Modes (``mode`` setting, else guessed from ``port``):

* ``dummy-once`` (``*.dev``): the file is played once (``TIMER <s>`` lines pause), then re-read only
  when its modification time changes; values set with upsrw stay until then;
* ``dummy-loop`` (``*.seq``, and ``dummy``/other names): played again and again, with a 1 s pause at
  the end of the file;
* ``repeater`` (``port = ups@host[:port]``): a NUT network client republishing the remote UPS --
  values, RW/STRING flags, ENUM and RANGE lists, instant commands -- and forwarding SET/INSTCMD to it
  (with the ``username``/``password`` settings when the remote upsd wants a login). While the remote
  cannot be reached the data is marked stale, and the driver reconnects.

The definition files are read the way Debian's dummy-ups 2.8.0 reads them (observed on its socket):
NUT's tokenizer; ``name: value`` where the name ends at the first ``:`` of the first word and the value
is the other words joined by one space (at most 127 characters); lines whose name starts with
``driver.`` are skipped; ``TIMER`` is case-sensitive; a name without a value re-uses the previous
line's value (2.8.0 does that, e.g. ``ups.serial:`` after ``ups.load: 0``); an unescaped ``#`` inside
quotes drops what came before it on that line. Every variable is read-write, with the string length
or numeric type that 2.8.0's table gives known names (:data:`KNOWN_VARS`). SET works on any
variable (an empty value deletes it); instant commands are not carried out in the simulation modes
(2.8.0 answers "unknown" even for the ``load.off`` it lists), only forwarded in repeater mode.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nutlite.daemon import account_name, own_group, path_error
from nutlite.drivers.framework.core import Driver, DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option
from nutlite.parseconf import parse_text

log = logging.getLogger("nutlite.driver.dummy-ups")

MAX_VALUE = 127  # longer values are cut, as 2.8.0 does (see join_value)
MAX_STATUS = 254  # ups.status is built separately, with a longer limit
END_PAUSE = 1.0  # seconds between the end of the file and the next pass
SLACK = 0.25  # a poll this early still counts as on time for a TIMER

# Variables dummy-ups 2.8.0 knows: (flags, string length). Any other name is "RW STRING", length 32.
_NUMERIC = (
    "ambient.humidity", "ambient.humidity.alarm", "ambient.humidity.high", "ambient.humidity.low",
    "ambient.temperature", "ambient.temperature.alarm", "ambient.temperature.high", "ambient.temperature.low",
    "battery.charge", "battery.charge.low", "battery.charge.restart", "battery.current", "battery.runtime",
    "battery.runtime.low", "battery.temperature", "battery.voltage", "battery.voltage.nominal",
    "input.frequency", "input.transfer.boost.high", "input.transfer.boost.low", "input.transfer.high",
    "input.transfer.low", "input.transfer.trim.high", "input.transfer.trim.low", "input.voltage",
    "input.voltage.maximum", "input.voltage.minimum", "input.voltage.nominal", "output.current",
    "output.frequency", "output.voltage", "ups.delay.reboot", "ups.delay.shutdown", "ups.delay.start",
    "ups.load", "ups.temperature", "ups.test.interval",
)
_STRINGS = {
    "input.quality": 6, "input.sensitivity": 1, "input.transfer.reason": 1, "ups.date": 16,
    "ups.firmware": 16, "ups.firmware.aux": 16, "ups.id": 16, "ups.mfr.date": 16, "ups.test.result": 16,
    "ups.time": 16,
}
KNOWN_VARS: dict[str, tuple[tuple[str, ...], int]] = {
    **{name: (("RW",), 0) for name in _NUMERIC},
    **{name: (("RW", "STRING"), n) for name, n in _STRINGS.items()},
}
DEFAULT_VAR = (("RW", "STRING"), 32)

MODE_ONCE = "dummy-once"
MODE_LOOP = "dummy-loop"
MODE_REPEATER = "repeater"


def var_flags(name: str) -> tuple[tuple[str, ...], int]:
    return KNOWN_VARS.get(name.lower(), DEFAULT_VAR)


# ----------------------------------------------------------------------------------------------
# Definition files, sans-IO

def split_definition(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, words) for each non-empty logical line of a definition file, by NUT's tokenizer.

    A line the tokenizer rejects (an unescaped ``#`` inside quotes) is skipped, as dummy-ups does.
    """
    for ln in parse_text(text):
        if ln.error:
            log.debug("line %d: %s", ln.lineno, ln.error)
            continue
        yield ln.lineno, ln.words


def _atoi(text: str) -> int:
    """C's atoi: optional spaces and sign, then digits; 0 if none."""
    s = text.lstrip()
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for ch in s:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def join_value(words: list[str]) -> str:
    """The value of a ``name: w1 w2 ...`` line: the words joined by one space, cut as 2.8.0 cuts them
    (the first word at 127 characters, the joined text at 126)."""
    value = words[0][:MAX_VALUE]
    for w in words[1:]:
        if len(value) >= MAX_VALUE - 1:
            break
        value = (value + " " + w)[: MAX_VALUE - 1]
    return value


def join_status(words: list[str]) -> str:
    """The value of a ``ups.status`` line: tokens joined by one space (an empty first token adds
    nothing), at most 254 characters; no value gives an empty status."""
    value = ""
    for w in words:
        value = f"{value} {w}" if value else w
    return value[:MAX_STATUS]


@dataclass(frozen=True)
class Entry:
    """One line of a definition file: a variable (``value`` None = no value given), the status
    (``status`` True) or a TIMER."""

    lineno: int
    name: str = ""
    value: str | None = None
    timer: int | None = None
    status: bool = False


def parse_definition(text: str) -> list[Entry]:
    """The entries of a ``.dev``/``.seq`` file, in order."""
    out: list[Entry] = []
    last_arg = ""  # NUT's argument list is reused: a bare TIMER reads the previous line's 2nd word
    for lineno, words in split_definition(text):
        arg1 = words[1] if len(words) > 1 else last_arg
        if len(words) > 1:
            last_arg = words[1]
        if words[0].startswith("TIMER"):
            out.append(Entry(lineno, timer=_atoi(arg1)))
            continue
        name = words[0].split(":", 1)[0]
        if name.startswith("driver."):
            continue
        if name.startswith("ups.status"):  # 2.8.0 builds the status from the tokens (any such name)
            out.append(Entry(lineno, "ups.status", join_status(words[1:]), status=True))
            continue
        out.append(Entry(lineno, name, join_value(words[1:]) if len(words) > 1 else None))
    return out


class DefinitionPlayer:
    """Plays definition entries against a clock: up to the next TIMER per step, as 2.8.0 does."""

    def __init__(self, entries: list[Entry] | None = None) -> None:
        self.entries = list(entries or [])
        self.pos = 0
        self.next_update = -math.inf
        self.last_value = ""
        self.passes = 0  # completed passes through the file

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.entries)

    def paused(self, now: float) -> bool:
        return now + SLACK < self.next_update

    def restart(self, entries: list[Entry]) -> None:
        self.entries = list(entries)
        self.pos = 0

    def run(self, now: float, setvar: Callable[[str, str], object],
            setstatus: Callable[[str], object] | None = None) -> None:
        """Apply entries until a TIMER (pause) or the end of the file (1 s pause)."""
        while self.pos < len(self.entries):
            e = self.entries[self.pos]
            self.pos += 1
            if e.timer is not None:
                self.next_update = now + e.timer
                return
            if e.status:
                if setstatus is not None:
                    setstatus(e.value or "")
                else:
                    setvar(e.name, e.value or "")
                continue
            value = self.last_value if e.value is None else e.value
            self.last_value = value
            setvar(e.name, value)
        self.passes += 1
        self.next_update = now + END_PAUSE


def guess_mode(port: str, requested: str | None) -> str:
    """The mode to run in and the value published as driver.parameter.mode."""
    if requested in ("dummy-loop", "dummy"):
        return MODE_LOOP
    if requested in (MODE_ONCE, MODE_REPEATER):
        return requested
    if requested is not None:
        log.warning("unsupported mode '%s' (expected dummy-once, dummy-loop or repeater): "
                    "guessing from the port name", requested)
    if "@" in port:
        return MODE_REPEATER
    if port.endswith(".seq"):
        return MODE_LOOP
    if port.endswith(".dev"):
        return MODE_ONCE
    return "dummy"  # looping, published under its legacy name


# ----------------------------------------------------------------------------------------------
# The driver


class DummyUps(Driver):
    name = "dummy-ups"
    description = "Device simulation and repeater driver"
    version = "0.15"
    options = (
        Option("mode", "dummy-once, dummy-loop (or dummy) or repeater; guessed from port if not given"),
        Option("username", "repeater: user name for the remote upsd (to forward SET and INSTCMD)"),
        Option("password", "repeater: password for the remote upsd"),
        Option("repeater_disable_strict_start", "repeater: start even if the remote upsd is unreachable", flag=True),
    )

    def __init__(self, config: DriverConfig, state: DriverState | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config, state)
        self.clock = clock
        self.mode = guess_mode(self.port, self.getval("mode"))
        self.player = DefinitionPlayer()
        self.path: Path | None = None
        self.mtime: int | None = None
        self.repeater: Repeater | None = None
        self._file_error: str | None = None

    @property
    def looping(self) -> bool:
        return self.mode not in (MODE_ONCE, MODE_REPEATER)

    # -- dummy modes
    def _read(self, explain: bool = False) -> list[Entry]:
        """The definition file's entries; DriverError if it cannot be read (at start, ``explain``: with
        who runs the driver, the file's owner and mode and what to change, as NUT FAQ #4 does)."""
        assert self.path is not None
        try:
            st = os.stat(self.path)
            data = self.path.read_bytes()
        except OSError as exc:
            what = "cannot open the dummy-ups definition file"
            if not explain:
                raise DriverError(f"{what} {self.path}: {exc.strerror or exc}") from None
            raise DriverError(path_error(self.path, exc, self._file_advice(exc), what=what)) from None
        self.mtime = st.st_mtime_ns
        return parse_definition(data.decode("latin-1"))

    def _file_advice(self, exc: OSError) -> str:
        where = (f"Check the 'port' setting of [{self.upsname}] in ups.conf (a name without a folder is taken "
                 f"from the configuration folder {self.config.confpath}).")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (f"Make {self.path} readable by {account_name(os.geteuid())} "
                    f"(e.g. chgrp {own_group()} {self.path}; chmod 0640 {self.path}), or run the driver as a user who may read it (-u, or 'user = ...' "
                    "in ups.conf).")
        if exc.errno == errno.ENOENT:
            return f"{where} Or create the file."
        return where

    def _mtime(self) -> int | None:
        assert self.path is not None
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def setvar_local(self, name: str, value: str, keep_empty: bool = False) -> Status:
        """Set (or, for an empty value, delete) a variable with dummy-ups' flags for it."""
        st = self.state
        if not value and not keep_empty:
            st.delinfo(name)
            return Status.HANDLED
        st.setinfo(name, value)
        flags, aux = var_flags(name)
        st.setflags(name, list(flags))
        if "STRING" in flags:
            st.setaux(name, aux)
        return Status.HANDLED

    def setstatus(self, value: str) -> None:
        """A ups.status line of the definition file (may be empty)."""
        self.setvar_local("ups.status", value, keep_empty=True)

    # -- hooks
    async def initups(self) -> None:
        if self.mode == MODE_REPEATER:
            self.repeater = Repeater(self)
            await self.repeater.start(strict=not self.testvar("repeater_disable_strict_start"))
            return
        self.path = self.confpath_file(self.port)
        self._read(explain=True)  # fail early with a clear message

    async def initinfo(self) -> None:
        if self.mode == MODE_REPEATER:
            assert self.repeater is not None
            await self.repeater.update()
            self.state.setinfo("driver.parameter.mode", self.mode)
            return
        for name, value in (("ups.mfr", "Dummy Manufacturer"), ("ups.model", "Dummy UPS"), ("ups.status", "OL")):
            self.setvar_local(name, value)
        self.state.setinfo("driver.parameter.mode", self.mode)
        self.addcmd("load.off")
        self.player.restart(self._read())
        self.player.run(self.clock(), self.setvar_local, self.setstatus)
        self.dataok()

    async def updateinfo(self) -> None:
        if self.mode == MODE_REPEATER:
            assert self.repeater is not None
            await self.repeater.update()
            return
        self.step(self.clock())

    def step(self, now: float) -> None:
        """One poll of the dummy modes at time ``now``."""
        if self.player.paused(now):
            return
        if self.player.at_end:
            if not self.looping:
                mtime = self._mtime()
                if mtime is None:
                    self._file_trouble(f"cannot read {self.path}")
                    return
                if mtime == self.mtime:
                    if self._file_error:
                        self._file_ok()
                    return
                log.info("%s changed: reading it again", self.path)
            try:
                entries = self._read()
            except DriverError as exc:
                self._file_trouble(str(exc))
                return
            self.player.restart(entries)
        self.player.run(now, self.setvar_local, self.setstatus)
        self._file_ok()

    def _file_trouble(self, text: str) -> None:
        if self._file_error != text:
            log.error("%s; data marked stale until it is back", text)
        self._file_error = text
        self.datastale()

    def _file_ok(self) -> None:
        if self._file_error:
            log.info("definition file %s readable again", self.path)
        self._file_error = None
        self.dataok()

    async def instcmd(self, cmd: str, param: str | None) -> Status:
        if self.repeater is not None:
            return await self.repeater.instcmd(cmd, param)
        # Like Debian's 2.8.0 dummy-ups, no command is carried out in the simulation modes, not even
        # the load.off it lists: upsd accepts it, the TRACKING result is 1 (unknown).
        log.info("instant command %s%s: not supported in %s mode", cmd, f" {param}" if param else "", self.mode)
        return Status.UNKNOWN

    async def setvar(self, name: str, value: str) -> Status:
        if self.repeater is not None:
            return await self.repeater.setvar(name, value)
        return self.setvar_local(name, value)

    async def shutdown(self) -> bool:
        if self.repeater is not None:
            return await self.repeater.shutdown()
        log.warning("simulated UPS shutdown: a real UPS would now power off and come back with the mains")
        return True

    async def cleanup(self) -> None:
        if self.repeater is not None:
            await self.repeater.close()


# ----------------------------------------------------------------------------------------------
# Repeater mode

_TRACKING_STATUS = {"SUCCESS": Status.HANDLED, "UNKNOWN": Status.UNKNOWN, "INVALID-ARGUMENT": Status.INVALID,
                    "FAILED": Status.FAILED}
_ERR_STATUS = {
    "CMD-NOT-SUPPORTED": Status.UNKNOWN, "VAR-NOT-SUPPORTED": Status.UNKNOWN, "READONLY": Status.INVALID,
    "INVALID-VALUE": Status.INVALID, "TOO-LONG": Status.INVALID, "INVALID-ARGUMENT": Status.INVALID,
}
SHUTDOWN_COMMANDS = ("shutdown.return", "shutdown.stayoff", "load.off.delay", "load.off")


class Repeater:
    """The network side of repeater mode (uses :class:`nutlite.client.AsyncNutClient`)."""

    def __init__(self, driver: DummyUps) -> None:
        from nutlite.client import AddressError, parse_upsname

        self.driver = driver
        self.state = driver.state
        try:
            addr = parse_upsname(driver.port)
        except AddressError as exc:
            raise DriverError(f"port '{driver.port}': {exc.message}; expected upsname@hostname[:port]") from None
        if not addr.upsname:
            raise DriverError(f"port '{driver.port}': no UPS name; expected upsname@hostname[:port]")
        self.ups = addr.upsname
        self.host, self.portnum = addr.host, addr.port
        self.where = f"{self.ups}@{addr.hostport}"
        self.username = driver.getval("username")
        self.password = driver.getval("password")
        self.mon = None  # AsyncNutClient for polling
        self.ctl = None  # AsyncNutClient for SET/INSTCMD (logged in)
        self.tracking = False
        self.known: set[str] = set()  # remote variables whose type has been read (lower case)
        self.failing: str | None = None

    def _client(self):  # noqa: ANN202 - lazily imported type
        from nutlite.client import AsyncNutClient

        return AsyncNutClient(self.host, self.portnum, timeout=5.0)

    async def start(self, strict: bool) -> None:
        from nutlite.client import NutClientError

        self.mon = self._client()
        try:
            await self.mon.connect()
            await self.mon.list_var(self.ups)
            log.info("connected to %s", self.where)
        except NutClientError as exc:
            if strict:
                raise DriverError(f"cannot read {self.where}: {exc.message} (check that upsd runs there and "
                                  "serves that UPS; the flag repeater_disable_strict_start starts anyway)") from None
            log.warning("cannot read %s yet: %s", self.where, exc.message)

    async def close(self) -> None:
        for c in (self.mon, self.ctl):
            if c is not None:
                await c.close()

    def _trouble(self, text: str) -> None:
        if self.failing != text:
            log.error("%s: %s; data marked stale, retrying every poll", self.where, text)
        self.failing = text
        self.state.set_stale(True)

    async def update(self) -> None:
        from nutlite.client import NutConnectionError, NutError, NutProtocolError

        assert self.mon is not None
        full = not self.mon.connected
        try:
            values = await self.mon.list_var(self.ups)
            cmds = await self.mon.list_cmd(self.ups)
            if full:
                self.known.clear()
            await self._apply(values, cmds)
        except NutError as exc:
            self._trouble(f"{exc.code} ({exc.message})")
            return
        except (NutConnectionError, NutProtocolError) as exc:
            await self.mon.close(logout=False)
            self._trouble(str(exc.message if isinstance(exc, NutConnectionError) else exc))
            return
        if self.failing:
            log.info("%s: data is back", self.where)
        self.failing = None
        self.state.set_stale(False)

    async def _apply(self, values: dict[str, str], cmds: list[str]) -> None:
        assert self.mon is not None
        st = self.state
        remote = {k: v for k, v in values.items() if not k.startswith("driver.")}
        lower = {k.lower() for k in remote}
        for name, value in remote.items():
            st.setinfo(name, value)
            if name.lower() not in self.known:
                await self._learn(name)
                self.known.add(name.lower())
        for key in list(self.known - lower):
            var = st.get(key)
            if var is not None:
                st.delinfo(var.name)
            self.known.discard(key)
        wanted = {c.lower() for c in cmds}
        for c in st.cmd_list():
            if c.lower() not in wanted:
                st.delcmd(c)
        for c in cmds:
            st.addcmd(c)

    async def _learn(self, name: str) -> None:
        """Read a variable's type, enums and ranges from the remote upsd."""
        from nutlite.client import NutError

        assert self.mon is not None
        try:
            vtype = await self.mon.get_type(self.ups, name)
        except NutError:
            return
        flags = (["RW"] if vtype.rw else []) + (["STRING"] if vtype.string else [])
        self.state.setflags(name, flags)
        if vtype.string and vtype.maxlen:
            self.state.setaux(name, vtype.maxlen)
        if vtype.enum:
            try:
                for e in await self.mon.list_enum(self.ups, name):
                    self.state.addenum(name, e)
            except NutError:
                pass
        if vtype.range:
            try:
                for lo, hi in await self.mon.list_range(self.ups, name):
                    self.state.addrange(name, int(lo), int(hi))
            except (NutError, ValueError):
                pass

    async def _control(self):  # noqa: ANN202
        from nutlite.client import NutError

        if self.ctl is not None and self.ctl.connected:
            return self.ctl
        c = self._client()
        await c.connect()
        if self.username:
            await c.username(self.username)
            await c.password(self.password or "")
        try:
            await c.set_tracking(True)
            self.tracking = True
        except NutError:
            self.tracking = False
        self.ctl = c
        return c

    async def _forward(self, what: str, run: Callable[[object], object]) -> Status:
        from nutlite.client import NutClientError, NutError

        try:
            c = await self._control()
            tid = await run(c)  # type: ignore[misc]
            if tid is None or not self.tracking:
                return Status.HANDLED
            result = await c.wait_tracking(tid, timeout=15.0, interval=0.1)
        except NutError as exc:
            if exc.code in ("USERNAME-REQUIRED", "PASSWORD-REQUIRED", "ACCESS-DENIED"):
                log.error("%s on %s refused (%s): set username and password for this repeater", what,
                          self.where, exc.code)
                return Status.FAILED
            log.warning("%s on %s: %s", what, self.where, exc.code)
            return _ERR_STATUS.get(exc.code, Status.FAILED)
        except NutClientError as exc:
            log.error("%s on %s failed: %s", what, self.where, exc.message)
            if self.ctl is not None:
                await self.ctl.close(logout=False)
            return Status.FAILED
        if result == "PENDING":
            log.warning("%s on %s: no result from the remote driver yet; assuming it was done", what, self.where)
            return Status.HANDLED
        return _TRACKING_STATUS.get(result, Status.FAILED)

    async def instcmd(self, cmd: str, param: str | None) -> Status:
        return await self._forward(f"instant command {cmd}", lambda c: c.instcmd(self.ups, cmd, param))

    async def setvar(self, name: str, value: str) -> Status:
        result = await self._forward(f"SET {name}", lambda c: c.set_var(self.ups, name, value))
        if result == Status.HANDLED:
            try:
                assert self.mon is not None
                self.state.setinfo(name, await self.mon.get_var(self.ups, name))
            except Exception:  # the next poll refreshes it anyway
                pass
        return result

    async def shutdown(self) -> bool:
        for cmd in SHUTDOWN_COMMANDS:
            if self.state.has_cmd(cmd):
                log.warning("shutdown: sending %s to %s", cmd, self.where)
                return await self.instcmd(cmd, None) == Status.HANDLED
        log.error("shutdown: %s offers none of %s", self.where, ", ".join(SHUTDOWN_COMMANDS))
        return False
