"""The driver framework: what every nutlite driver shares (NUT-FACTS §2, §3.2, §6.2).

Three layers:

* sans-IO: :class:`DriverState` (the device state, with NUT's immutable ``override.*`` variables and
  ``ignorelb``) and :class:`SockProtocol`, the driver side of the driver<->upsd socket protocol. Lines
  go in as bytes, answers and broadcasts come out through each :class:`SockClient`'s ``write``, and
  instant commands / SET requests come back as :class:`Request` objects for the shell to execute;
* :class:`Driver`, the base class a driver subclasses: ``initups``, ``initinfo``, ``updateinfo``,
  ``instcmd``, ``setvar``, ``shutdown`` (each may be a plain or an ``async`` method);
* :class:`DriverRunner`, the asyncio shell: the socket server at ``<STATEPATH>/<driver>-<ups>``, the poll
  loop, signals, the pid file, reload, killpower; and :func:`run_driver`, the whole process life.

The behaviour follows Debian's NUT 2.8.0 drivers as observed on their socket (same variables, same
DUMPALL order), plus the helper commands of newer NUT releases (GETPID, LOGOUT, (NO)BROADCAST,
DUMPVALUE/DUMPSTATUS, ``driver.killpower``/``driver.reload``/``driver.exit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import grp
import inspect
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nutlite import __version__, daemon
from nutlite.config import ConfigError, UpsConf, confpath, load_ups_conf, statepath
from nutlite.daemon import (
    Notifier,
    account_name,
    drop_privileges,
    own_group,
    path_error,
    remove_pidfile,
    setup_logging,
    write_pidfile,
)
from nutlite.parseconf import Tokenizer, quote
from nutlite.state import KNOWN_FLAGS, DeviceState, Var

log = logging.getLogger("nutlite.driver")

DEFAULT_GROUP = "nut"  # the group the socket file is given to when started as root (as Debian's drivers)
MAX_CLIENT_BACKLOG = 4 * 1024 * 1024  # bytes queued for a socket client that does not read


class Status(enum.IntEnum):
    """Result of an instant command or SET, as sent in ``TRACKING <id> <n>`` (NUT-FACTS §1.3)."""

    HANDLED = 0
    UNKNOWN = 1
    INVALID = 2
    FAILED = 3
    CONVERSION_FAILED = 4


class DriverError(Exception):
    """A problem that stops the driver; the message says what to check."""


# Core commands: accepted on the socket (for upsdrvctl and friends) but, like Debian 2.8.0, not
# advertised with ADDCMD.
CORE_COMMANDS = ("driver.killpower", "driver.reload", "driver.reload-or-error", "driver.reload-or-exit", "driver.exit")


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
# The socket protocol, sans-IO


class SockClient:
    """One connection to the driver socket (upsd, upsdrvctl, a test…).

    ``write`` takes bytes to send; ``close`` (optional) is called after LOGOUT.
    """

    _ids = 0

    def __init__(self, write: Callable[[bytes], None], close: Callable[[], None] | None = None,
                 name: str | None = None) -> None:
        SockClient._ids += 1
        self.write = write
        self.close = close
        self.name = name or f"client {SockClient._ids}"
        self.tokenizer = Tokenizer()
        self.broadcast = True  # receives every state change unless it said NOBROADCAST
        self.closing = False

    def send_lines(self, lines: Iterable[str]) -> None:
        data = "".join(line + "\n" for line in lines)
        if data:
            self.write(data.encode("ascii", "replace"))

    def send(self, line: str) -> None:
        self.write((line + "\n").encode("ascii", "replace"))


@dataclass
class Request:
    """An INSTCMD or SET from a socket client, to be executed by the driver."""

    client: SockClient
    kind: str  # "INSTCMD" or "SET"
    name: str  # command or variable
    value: str | None = None  # SET value, or the INSTCMD parameter
    tracking: str | None = None


class SockProtocol:
    """The driver side of the driver socket protocol over a :class:`DriverState`.

    Every change of the state is broadcast to the clients that did not ask for NOBROADCAST. Requests
    that need the driver come back from :meth:`feed`; once executed, :meth:`finish` sends the
    ``TRACKING`` answer when the client asked for one. Bad input is logged and skipped.
    """

    def __init__(self, state: DriverState, pid: int | None = None) -> None:
        self.state = state
        self.pid = os.getpid() if pid is None else pid
        self.clients: list[SockClient] = []
        state.on_change = self.broadcast

    def add_client(self, client: SockClient) -> None:
        self.clients.append(client)

    def remove_client(self, client: SockClient) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)

    def broadcast(self, line: str) -> None:
        data = (line + "\n").encode("ascii", "replace")
        for c in list(self.clients):
            if c.broadcast and not c.closing:
                try:
                    c.write(data)
                except Exception as exc:  # a broken client must not stop the others
                    log.debug("dropping %s: %s", c.name, exc)
                    self.remove_client(c)

    def feed(self, client: SockClient, data: bytes) -> list[Request]:
        """Take bytes from ``client``; answer what can be answered; return the driver's work."""
        out: list[Request] = []
        for line in client.tokenizer.feed(data.decode("latin-1")):
            if client.closing:
                break
            if line.error:
                log.warning("%s: line rejected (%s)", client.name, line.error)
                continue
            if not line.words:
                continue
            req = self.handle(client, line.words)
            if req is not None:
                out.append(req)
        return out

    def handle(self, client: SockClient, words: list[str]) -> Request | None:
        """One request line, already split into words."""
        cmd = words[0].upper()
        n = len(words)
        if cmd == "DUMPALL":
            client.send_lines(self.state.dump_lines())
        elif cmd == "PING":
            client.send("PONG")
        elif cmd == "INSTCMD":
            if n == 2:
                return Request(client, "INSTCMD", words[1])
            if n == 3:
                return Request(client, "INSTCMD", words[1], words[2])
            if n == 4 and words[2].upper() == "TRACKING":
                return Request(client, "INSTCMD", words[1], None, words[3])
            if n == 5 and words[3].upper() == "TRACKING":
                return Request(client, "INSTCMD", words[1], words[2], words[4])
            self._malformed(client, words, "INSTCMD <command> [<parameter>] [TRACKING <id>]")
        elif cmd == "SET":
            if n == 3:
                return Request(client, "SET", words[1], words[2])
            if n == 5 and words[3].upper() == "TRACKING":
                return Request(client, "SET", words[1], words[2], words[4])
            self._malformed(client, words, 'SET <variable> "<value>" [TRACKING <id>]')
        elif cmd == "NOBROADCAST" and n == 1:
            client.broadcast = False
        elif cmd == "BROADCAST" and n <= 2:
            try:
                client.broadcast = int(words[1]) > 0 if n == 2 else True
            except ValueError:
                self._malformed(client, words, "BROADCAST [<n>]")
        elif cmd == "GETPID" and n == 1:
            client.send(f"PID {self.pid}")
        elif cmd == "LOGOUT" and n == 1:
            client.send("OK Goodbye")
            client.closing = True
            if client.close is not None:
                client.close()
        elif cmd in ("DUMPVALUE", "DUMPSTATUS"):
            name = "ups.status" if cmd == "DUMPSTATUS" else (words[1] if n == 2 else None)
            if name is None or (cmd == "DUMPSTATUS" and n != 1):
                self._malformed(client, words, "DUMPVALUE <variable> or DUMPSTATUS")
                return None
            v = self.state.get(name)
            lines = ["DATASTALE"] if self.state.stale else []
            if v is not None:
                lines.extend(self.state.var_lines(v))
            if not self.state.stale:
                lines.append("DATAOK")
            lines.append("DUMPDONE")
            client.send_lines(lines)
        else:
            log.warning("%s: unknown command on the socket: %s", client.name, " ".join(words)[:200])
        return None

    def _malformed(self, client: SockClient, words: list[str], expected: str) -> None:
        log.warning("%s: malformed request %r (expected %s)", client.name, " ".join(words)[:200], expected)

    def finish(self, req: Request, result: int) -> None:
        """Report the result of an executed request to the client that asked (if it asked)."""
        if req.tracking is not None and not req.client.closing and req.client in self.clients:
            try:
                req.client.send(f"TRACKING {req.tracking} {int(result)}")
            except Exception as exc:
                log.debug("cannot answer %s: %s", req.client.name, exc)


# --------------------------------------------------------------------------------------------------
# Driver configuration


@dataclass
class Option:
    name: str
    help: str
    flag: bool = False


# Settings the driver core interprets itself; accepted for every driver and not published as
# driver.parameter.* (port/pollinterval/synchronous are published with their defaults).
CORE_SILENT = {
    "driver", "desc", "sdorder", "user", "group", "debug_min", "maxretry", "retrydelay", "maxstartdelay",
    "chroot", "driverpath", "statepath", "nowait", "libusb_debug", "sdcommands", "allow_killpower",
}
CORE_PUBLISHED = ("port", "pollinterval", "synchronous")
CORE_FLAGS = ("nolock", "ignorelb", "allow_killpower")


@dataclass
class DriverConfig:
    """A driver's settings: its ups.conf section (plus globals) with ``-x`` values on top."""

    upsname: str
    driver: str
    values: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)
    confpath: Path = field(default_factory=confpath)
    statepath: Path = field(default_factory=lambda: Path("/run/nut"))
    user: str | None = None  # -u, else the setting
    group: str | None = None  # -g, else the setting
    debug: int = 0
    pollinterval_arg: int | None = None  # -i

    def get(self, key: str, default: str | None = None) -> str | None:
        if key in self.values:
            return self.values[key]
        return self.globals.get(key, default)

    @property
    def port(self) -> str:
        return self.values.get("port", "")

    @property
    def pollinterval(self) -> int:
        if self.pollinterval_arg is not None:
            return self.pollinterval_arg
        v = self.get("pollinterval", "2")
        try:
            n = int(v or "2")
        except ValueError:
            raise DriverError(f"pollinterval: expected a whole number of seconds, got '{v}'") from None
        if n < 1:
            raise DriverError(f"pollinterval: expected at least 1 second, got {n}")
        return n

    @property
    def run_as_user(self) -> str | None:
        return self.user or self.get("user")

    @property
    def run_as_group(self) -> str | None:
        return self.group or self.get("group")

    @property
    def sockname(self) -> str:
        return f"{self.driver}-{self.upsname}"

    @property
    def sockpath(self) -> Path:
        return self.statepath / self.sockname

    @property
    def pidpath(self) -> Path:
        return pid_dir(self.statepath) / f"{self.sockname}.pid"

    def has_flag(self, name: str) -> bool:
        return name in self.flags


def pid_dir(state: Path) -> Path:
    """Where driver pid files go: ``$NUT_ALTPIDPATH`` (as NUT) or STATEPATH."""
    alt = os.environ.get("NUT_ALTPIDPATH")
    return Path(alt) if alt else Path(state)


def load_config(upsname: str, driver_name: str | None = None, extra: Iterable[str] = (),
                ups_conf: UpsConf | None = None) -> DriverConfig:
    """The settings for ``-a <upsname>``: ups.conf section + ``-x key=value`` words.

    Raises :class:`ConfigError` (bad ups.conf) or :class:`DriverError` (no such section, wrong driver).
    """
    conf = ups_conf if ups_conf is not None else load_ups_conf()
    for w in conf.warnings:
        log.warning("%s", w)
    sec = conf.find(upsname)
    if sec is None:
        raise DriverError(f"section [{upsname}] not found in {conf.path}")
    if driver_name and sec.driver != driver_name:
        raise DriverError(f"UPS [{sec.name}] is configured for driver {sec.driver} in {conf.path}, not {driver_name}")
    cfg = DriverConfig(sec.name, sec.driver, dict(sec.values), list(sec.flags), dict(conf.globals),
                       confpath(), statepath(conf))
    apply_extra(cfg, extra)
    return cfg


def apply_extra(cfg: DriverConfig, extra: Iterable[str]) -> None:
    """``-x key=value`` sets a value, ``-x flag`` a flag (after ups.conf, so they win)."""
    for item in extra:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not key:
            raise DriverError(f"-x {item}: expected key=value or a flag name")
        if sep:
            cfg.values[key] = value
        elif key not in cfg.flags:
            cfg.flags.append(key)


# --------------------------------------------------------------------------------------------------
# The driver base class


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hook that may be a plain function or a coroutine function."""
    result = fn(*args)
    if inspect.isawaitable(result):
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
# Building a driver and publishing the core variables


def validate_options(cls: type[Driver], cfg: DriverConfig) -> None:
    """Refuse settings neither the core nor the driver knows, as NUT does."""
    known_values = {o.name.lower() for o in cls.options if not o.flag} | CORE_SILENT | set(CORE_PUBLISHED)
    known_flags = {o.name.lower() for o in cls.options if o.flag} | set(CORE_FLAGS)
    for key in cfg.values:
        low = key.lower()
        if low in known_values or low.startswith(("default.", "override.")):
            continue
        raise DriverError(
            f"'{key}' is not a setting of the {cls.name} driver "
            f"(see 'nutlite {cls.name} -h' for the ones it takes)")
    for flag in cfg.flags:
        if flag.lower() not in known_flags:
            raise DriverError(f"'{flag}' is not a flag of the {cls.name} driver "
                              f"(see 'nutlite {cls.name} -h' for the ones it takes)")


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


# --------------------------------------------------------------------------------------------------
# A small synchronous client of a driver socket (upsdrvctl, driver -k)


class SocketSession:
    """Blocking line client of a driver socket."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(os.fspath(path))
        except OSError:
            self.sock.close()
            raise
        self._buf = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("ascii", "replace") + b"\n")

    def read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the driver")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the driver closed the connection")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("latin-1")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if predicate(line):
                return line

    def ping(self, timeout: float = 3.0) -> bool:
        try:
            self.send("PING")
            self.wait_for(lambda s: s == "PONG", timeout)
            return True
        except (OSError, TimeoutError, ConnectionError):
            return False

    def tracked(self, line: str, timeout: float) -> int:
        """Send ``line`` with a TRACKING id and return the driver's result code."""
        tid = f"nutlite-{os.getpid()}-{time.monotonic_ns()}"
        self.send(f"{line} TRACKING {tid}")
        reply = self.wait_for(lambda s: s.startswith(f"TRACKING {tid} "), timeout)
        return int(reply.split()[-1])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> SocketSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ping_socket(path: str | os.PathLike[str], timeout: float = 3.0) -> bool:
    """True if a driver answers PING on ``path``."""
    try:
        with SocketSession(path, timeout) as s:
            s.send("NOBROADCAST")
            return s.ping(timeout)
    except OSError:
        return False


def killpower_via_socket(path: str | os.PathLike[str], timeout: float = 30.0) -> int | None:
    """Ask the running driver to run its shutdown routine; its result code, or None if unreachable."""
    try:
        with SocketSession(path, 3.0) as s:
            s.send("NOBROADCAST")
            if not s.ping(3.0):
                return None
            s.tracked('SET driver.flag.allow_killpower "1"', 5.0)
            return s.tracked("INSTCMD driver.killpower", timeout)
    except (OSError, TimeoutError, ConnectionError, ValueError):
        return None


# --------------------------------------------------------------------------------------------------
# Privileges, socket file, background


def become_driver_user(cfg: DriverConfig) -> None:
    """Drop root as every nutlite daemon does (:func:`nutlite.daemon.resolve_user`): to ``-u``, else the
    ups.conf ``user`` setting (of the section, else the global one), else NUT's ``nut`` account."""
    try:
        drop_privileges(daemon.resolve_user(cfg.run_as_user))
    except SystemExit as exc:
        raise DriverError(str(exc.code)) from None


def state_dir_advice(folder: Path) -> str:
    who = account_name(os.geteuid())
    return (f"Make {folder} writable by {who} (e.g. chown root:{own_group()} {folder}; chmod 0770 {folder}), "
            "point NUT_STATEPATH or the 'statepath' setting of ups.conf at a folder it may write, or run the driver "
            "as a user who may write there (-u, or 'user = ...' in ups.conf).")


def check_state_dir(cfg: DriverConfig) -> None:
    """Fail early, before the device is opened, when the socket cannot be created in the state folder."""
    folder = cfg.statepath
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise DriverError(path_error(
            folder, exc, f"Create it (e.g. mkdir -p {folder}; chown root:{own_group()} {folder}; "
            f"chmod 0770 {folder}) or point NUT_STATEPATH or the 'statepath' setting of ups.conf at the folder for the driver sockets.",
            what="cannot use the state folder")) from None
    if not stat.S_ISDIR(st.st_mode):
        raise DriverError(path_error(folder, "not a folder", "Point NUT_STATEPATH or the 'statepath' setting of "
                                     "ups.conf at the folder for the driver sockets.",
                                     what="cannot use the state folder"))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DriverError(path_error(folder, "no permission to create the driver socket there",
                                     state_dir_advice(folder), what="cannot use the state folder"))


def socket_group(cfg: DriverConfig) -> str | None:
    group = cfg.run_as_group
    if group:
        return group
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            grp.getgrnam(DEFAULT_GROUP)
            return DEFAULT_GROUP
    return None


def create_socket(path: Path, group: str | None) -> socket.socket:
    """Bind the driver socket: stale file removed, mode 0660, given group."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DriverError(path_error(path, exc, state_dir_advice(path.parent),
                                     what="cannot look at the old driver socket")) from None
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise DriverError(path_error(path, "exists and is not a socket", f"Remove {path} (or move it away).",
                                         what="cannot create the driver socket"))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DriverError(path_error(
                path, exc, "It is left from an earlier start, perhaps as another user: remove it. "
                + state_dir_advice(path.parent),
                what="cannot replace the old driver socket")) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
    except OSError as exc:
        sock.close()
        raise DriverError(path_error(path, exc, state_dir_advice(path.parent),
                                     what="cannot create the driver socket")) from None
    os.chmod(path, 0o660)
    if group:
        try:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        except (KeyError, OSError) as exc:
            log.warning("cannot give the socket %s to group %s: %s", path, group, exc)
    sock.listen(16)
    sock.setblocking(False)
    return sock


class Background:
    """Go to the background early but let the parent exit only when the driver is ready.

    The parent waits on a pipe: one byte means ready (exit 0); the pipe closing without it means the
    driver failed at start (exit 1), so ``upsdrvctl`` sees the outcome.
    """

    def __init__(self) -> None:
        self._w: int | None = None

    def fork(self) -> None:
        r, w = os.pipe()
        if os.fork() > 0:
            os.close(w)
            data = os.read(r, 1)
            os._exit(0 if data == b"1" else 1)
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        self._w = w

    def ready(self) -> None:
        if self._w is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._w, b"1")
            os.close(self._w)
        self._w = None
        fd = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        if fd > 2:
            os.close(fd)


# --------------------------------------------------------------------------------------------------
# The asyncio shell


class DriverRunner:
    """Runs one driver: socket server, poll loop, signals, reload, killpower."""

    def __init__(self, driver: Driver, *, background: Background | None = None, prog: str | None = None,
                 reload_config: Callable[[], DriverConfig] | None = None) -> None:
        self.driver = driver
        driver.runner = self
        self.config = driver.config
        self.state = driver.state
        self.proto = SockProtocol(self.state)
        self.background = background
        self.prog = prog or driver.name
        self.reload_config = reload_config
        self.lock = asyncio.Lock()
        self.notifier = Notifier()
        self.allow_killpower = truthy(self.config.values.get("allow_killpower")) or self.config.has_flag("allow_killpower")
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sock_ino: tuple[int, int] | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pidfile: Path | None = None
        self.exit_code = 0
        self._update_failures = 0

    # -- life
    async def start(self) -> None:
        """Everything up to the socket being served (errors propagate)."""
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        await prepare(self.driver, self.update)
        await self.serve()

    async def serve(self) -> None:
        path = self.config.sockpath
        self._check_other_instance(path)
        sock = create_socket(path, socket_group(self.config))
        st = os.stat(path)
        self._sock_ino = (st.st_dev, st.st_ino)
        self._server = await asyncio.start_unix_server(self._client, sock=sock)
        self._pidfile = self.config.pidpath
        write_pidfile(self._pidfile)
        log.info("serving %s on %s", self.config.upsname, path)

    def _check_other_instance(self, path: Path) -> None:
        """Another driver for this UPS answering on the socket is stopped, as NUT does."""
        if not path.exists() or not ping_socket(path, 1.0):
            return
        pidpath = self.config.pidpath
        try:
            pid = int(pidpath.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            raise DriverError(f"another driver is serving {path} and has no pid file {pidpath}") from None
        log.warning("another driver for %s is running (pid %d): stopping it", self.config.upsname, pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        except PermissionError:
            raise DriverError(f"another driver (pid {pid}) serves {path} and cannot be stopped") from None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise DriverError(f"the other driver (pid {pid}) did not stop")

    async def run(self) -> int:
        """Start, then poll until stopped; return the exit code."""
        loop = asyncio.get_running_loop()
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        if self.background is not None:
            self.background.ready()
            setup_logging(self.prog, self.config.debug, foreground=False)
        self.notifier.ready(f"serving {self.config.upsname}")
        try:
            await self.poll_loop()
        finally:
            self.notifier.stopping()
            await self.close()
        return self.exit_code

    def stop(self, code: int | None = None) -> None:
        if code is not None:
            self.exit_code = code
        if self._stop is not None:
            self._stop.set()
        if self._wake is not None:
            self._wake.set()

    async def poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop is not None and self._wake is not None
        next_poll = loop.time()  # like NUT, the loop polls once as soon as the socket is up
        wd = self.notifier.watchdog_interval
        next_wd = loop.time() + wd if wd else None
        while not self._stop.is_set():
            now = loop.time()
            deadline = next_poll if next_wd is None else min(next_poll, next_wd)
            if deadline > now:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), deadline - now)
                if self._stop.is_set():
                    break
            now = loop.time()
            if next_wd is not None and now >= next_wd:
                self.notifier.watchdog()
                next_wd = now + (wd or 1)
            if now >= next_poll:
                start = now
                await self.update()
                next_poll = start + self.config.pollinterval
                if next_poll < loop.time():
                    next_poll = loop.time()

    async def update(self) -> None:
        try:
            async with self.lock:
                await call(self.driver.updateinfo)
            self._update_failures = 0
        except DriverError as exc:
            self._update_failed(str(exc))
        except Exception as exc:
            log.debug("updateinfo failed", exc_info=True)
            self._update_failed(f"{type(exc).__name__}: {exc}")
        self.state.refresh_status()

    def _update_failed(self, text: str) -> None:
        self._update_failures += 1
        if self._update_failures == 1 or self._update_failures % 100 == 0:
            log.error("poll failed (%d in a row): %s", self._update_failures, text)
        self.state.set_stale(True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            self._server = None
        path = self.config.sockpath
        if self._sock_ino is not None:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == self._sock_ino:
                    os.unlink(path)
            self._sock_ino = None
        if self._pidfile is not None:
            remove_pidfile(self._pidfile)
            self._pidfile = None
        try:
            await call(self.driver.cleanup)
        except Exception as exc:
            log.warning("cleanup: %s", exc)

    # -- socket clients
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

        def write(data: bytes) -> None:
            if writer.is_closing():
                return
            transport = writer.transport
            if transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
                log.warning("%s does not read its data: disconnecting it", client.name)
                self.proto.remove_client(client)
                writer.close()
                return
            writer.write(data)

        client = SockClient(write, writer.close)
        self.proto.add_client(client)
        log.debug("%s connected", client.name)
        try:
            while not client.closing:
                data = await reader.read(65536)
                if not data:
                    break
                for req in self.proto.feed(client, data):
                    result = await self.execute(req)
                    self.proto.finish(req, result)
        except (ConnectionError, OSError) as exc:
            log.debug("%s: %s", client.name, exc)
        finally:
            self.proto.remove_client(client)
            self._writers.discard(writer)
            writer.close()
            log.debug("%s disconnected", client.name)

    async def execute(self, req: Request) -> int:
        """Run an INSTCMD/SET request; return its :class:`Status`."""
        try:
            if req.kind == "INSTCMD":
                log.info("instant command: %s%s", req.name, f" {req.value}" if req.value is not None else "")
                if req.name.lower() in CORE_COMMANDS:
                    return int(await self.core_command(req.name.lower()))
                async with self.lock:
                    result = await call(self.driver.instcmd, req.name, req.value)
            else:
                log.info("set variable: %s = %s", req.name, req.value)
                if req.name.lower().startswith("driver."):
                    return int(self.core_setvar(req.name, req.value or ""))
                async with self.lock:
                    result = await call(self.driver.setvar, req.name, req.value or "")
            return int(Status.HANDLED if result is None else result)
        except Exception as exc:
            log.error("%s %s failed: %s", req.kind, req.name, exc)
            log.debug("traceback", exc_info=True)
            return int(Status.FAILED)

    def core_setvar(self, name: str, value: str) -> Status:
        if name.lower() == "driver.flag.allow_killpower":
            self.allow_killpower = truthy(value)
            self.state.setinfo("driver.flag.allow_killpower", "1" if self.allow_killpower else "0")
            return Status.HANDLED
        return Status.UNKNOWN

    async def core_command(self, cmd: str) -> Status:
        if cmd == "driver.killpower":
            if not self.allow_killpower:
                log.warning("driver.killpower refused: set allow_killpower first (ups.conf or "
                            "SET driver.flag.allow_killpower 1 on the socket)")
                return Status.INVALID
            log.warning("killpower requested: running the %s shutdown routine", self.driver.name)
            async with self.lock:
                ok = await call(self.driver.shutdown)
            return Status.HANDLED if ok is not False else Status.FAILED
        if cmd == "driver.exit":
            asyncio.get_running_loop().call_soon(self.stop)
            return Status.HANDLED
        outcome = await self.reload(strict=cmd != "driver.reload")
        if outcome is None:
            return Status.FAILED
        if outcome is False and cmd != "driver.reload":  # plain reload: what needs a restart is logged
            if cmd == "driver.reload-or-exit":
                log.warning("settings changed that need a restart: exiting")
                asyncio.get_running_loop().call_soon(self.stop)
                return Status.HANDLED
            return Status.FAILED
        return Status.HANDLED

    async def reload(self, strict: bool = False) -> bool | None:
        """Re-read ups.conf and apply what can change at runtime.

        Returns False if some changes need a restart (with ``strict``, nothing is applied then), None if
        the new configuration is unusable (nothing applied).
        """
        if self.reload_config is None:
            return True
        self.notifier.reloading()
        try:
            new = self.reload_config()
        except (ConfigError, DriverError) as exc:
            log.error("reload: %s; keeping the current settings", exc)
            self.notifier.ready()
            return None
        old = self.config
        new.user, new.group, new.debug, new.pollinterval_arg = old.user, old.group, old.debug, old.pollinterval_arg
        try:
            new.pollinterval  # noqa: B018 - validate
        except DriverError as exc:
            log.error("reload: %s; keeping the current settings", exc)
            self.notifier.ready()
            return None
        runtime = {"pollinterval", "synchronous", "desc", "sdorder", "maxretry", "retrydelay", "maxstartdelay",
                   "allow_killpower", "debug_min"}
        changed: dict[str, str | None] = {}
        for key in set(old.values) | set(new.values):
            if old.values.get(key) != new.values.get(key) and key not in runtime and not key.startswith(("default.", "override.")):
                changed[key] = new.values.get(key)
        needs_restart = bool(changed) and not self.driver.reload(dict(changed))
        if needs_restart:
            log.warning("reload: changed settings need a driver restart: %s", ", ".join(sorted(changed)))
            if strict:
                self.notifier.ready()
                return False
            for key in changed:  # keep running with what the driver uses now
                if key in old.values:
                    new.values[key] = old.values[key]
                else:
                    new.values.pop(key, None)
        self.config = new
        self.driver.config = new
        self.state.setinfo("driver.parameter.pollinterval", str(new.pollinterval))
        self.state.setinfo("driver.parameter.synchronous", new.get("synchronous") or "auto")
        if "allow_killpower" in new.values:
            self.allow_killpower = truthy(new.values["allow_killpower"])
            self.state.setinfo("driver.flag.allow_killpower", "1" if self.allow_killpower else "0")
        for key, value in new.values.items():
            if key.startswith("override."):
                name = key[len("override."):]
                self.state.setinfo(name, value, force=True)
                self.state.make_immutable(name)
        for key in old.values:
            if key.startswith("override.") and key not in new.values:
                self.state.immutable.discard(key[len("override."):].lower())
        log.info("reloaded the configuration")
        self.notifier.ready()
        return not needs_restart


# --------------------------------------------------------------------------------------------------
# Process entry points (used by nutlite.drivers.main)


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


async def run_killpower_direct(driver: Driver) -> bool:
    """``-k`` without a running driver: open the device, learn it, tell it to shut down."""
    try:
        await call(driver.initups)
        publish_core(driver)
        await call(driver.initinfo)
        ok = await call(driver.shutdown)
        return ok is not False
    finally:
        with contextlib.suppress(Exception):
            await call(driver.cleanup)


def killpower(driver: Driver) -> int:
    """The ``-k`` entry point: the running driver first (NUT 2.8.1+), else the device directly."""
    cfg = driver.config
    if cfg.sockpath.exists():
        result = killpower_via_socket(cfg.sockpath)
        if result == Status.HANDLED:
            log.warning("the running %s driver ran its shutdown routine", driver.name)
            return 0
        if result is not None:
            log.error("the running driver refused or failed killpower (result %d); trying directly", result)
    try:
        become_driver_user(cfg)
        log.warning("initiating UPS shutdown")
        ok = asyncio.run(run_killpower_direct(driver))
    except DriverError as exc:
        log.error("%s", exc)
        return 1
    return 0 if ok else 1


def run_foreground_or_background(driver: Driver, *, background: bool, prog: str,
                                 reload_config: Callable[[], DriverConfig] | None = None) -> int:
    bg = Background() if background else None
    if bg is not None:
        bg.fork()
    runner = DriverRunner(driver, background=bg, prog=prog, reload_config=reload_config)
    try:
        become_driver_user(driver.config)
        check_state_dir(driver.config)
        return asyncio.run(runner.run())
    except DriverError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0


async def dump_and_exit(driver: Driver, count: int, out: Any = None) -> None:
    """``-d <count>``: start, poll ``count`` times in all, print the variables as ``upsc`` does, exit."""
    out = out or sys.stdout
    await prepare(driver)
    for _ in range(max(1, count) - 1):
        await asyncio.sleep(driver.pollinterval)
        await call(driver.updateinfo)
        driver.state.refresh_status()
    for v in driver.state.sorted_vars():
        print(f"{v.name}: {v.value}", file=out)
    await call(driver.cleanup)
