"""NUT's configuration files, read into typed objects.

``ups.conf``, ``upsd.conf``, ``upsd.users``, ``upsmon.conf``, ``upssched.conf`` and ``nut.conf`` from
``$NUT_CONFPATH`` (default ``/etc/nut``), with NUT's tokenizer (:mod:`nutlite.parseconf`).

A line NUT's tokenizer rejects, or a directive NUT would ignore, becomes a *warning* that names file
and line (NUT logs and carries on, and so do we). A value that cannot work (``MAXAGE abc``, a section
without ``driver``) is a :class:`ConfigError` naming file, line and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nutlite.daemon import account_name, own_group, path_error
from nutlite.parseconf import Line, parse_text

DEFAULT_CONFPATH = "/etc/nut"
DEFAULT_STATEPATH = "/run/nut"
DEFAULT_PORT = 3493


class ConfigError(Exception):
    """A configuration problem; the message names the file, the line and what was expected."""

    def __init__(self, path: str | os.PathLike[str], lineno: int | None, message: str, *,
                 names_path: bool = False) -> None:
        """``names_path``: ``message`` already names the file (as :func:`nutlite.daemon.path_error`
        does), so it is not prefixed with it."""
        self.path = str(path)
        self.lineno = lineno
        self.message = message
        where = f"{self.path}:{lineno}" if lineno else self.path
        super().__init__(message if names_path else f"{where}: {message}")


def confpath() -> Path:
    """The configuration folder: ``$NUT_CONFPATH`` or ``/etc/nut``."""
    return Path(os.environ.get("NUT_CONFPATH") or DEFAULT_CONFPATH)


def conffile(name: str) -> Path:
    return confpath() / name


def statepath(ups_conf: UpsConf | None = None, upsd_conf: UpsdConf | None = None) -> Path:
    """STATEPATH with NUT's precedence: env, ups.conf ``statepath``, upsd.conf ``STATEPATH``, default."""
    env = os.environ.get("NUT_STATEPATH")
    if env:
        return Path(env)
    if ups_conf is not None and ups_conf.globals.get("statepath"):
        return Path(ups_conf.globals["statepath"])
    if upsd_conf is not None and upsd_conf.statepath:
        return Path(upsd_conf.statepath)
    return Path(DEFAULT_STATEPATH)


# What to put in a file that is missing, for the files NUT's daemons refuse to start without.
MISSING_HINTS = {
    "ups.conf": "create it with a section per UPS, e.g. the lines '[myups]', 'driver = nutdrv_qx', "
                "'port = /dev/ttyS0'",
    "upsd.conf": "create it, e.g. with the line 'LISTEN 127.0.0.1 3493' (an empty file listens on "
                 "localhost port 3493)",
    "upsd.users": "create it with the users that may log in, e.g. the lines '[monuser]', "
                  "'password = secret', 'upsmon primary' (an empty file lets nobody log in); "
                  "owner root, group nut, mode 0640",
}


def unreadable_advice(path: str | os.PathLike[str]) -> str:
    """What to change when this program may not read the configuration file ``path``."""
    who = account_name(os.geteuid())
    return (f"Make {path} (and its folder) readable by {who}, e.g. chgrp {own_group()} {path}; chmod 0640 "
            f"{path}, or start the program as root: the daemons read their configuration before they switch "
            "to the nut user.")


def _read(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        hint = MISSING_HINTS.get(os.path.basename(path))
        raise ConfigError(path, None, "file not found" + (f"; {hint}" if hint else "")) from None
    except PermissionError as exc:
        raise ConfigError(path, None, path_error(path, exc, unreadable_advice(path), what="cannot read"),
                          names_path=True) from None
    except IsADirectoryError:
        raise ConfigError(path, None, "is a directory, expected a file") from None
    # The tokenizer drops anything outside printable ASCII; latin-1 keeps every byte visible to it.
    return data.decode("latin-1")


class _Reader:
    """Iterates the logical lines of a file, collecting tokenizer rejections as warnings."""

    def __init__(self, path: str | os.PathLike[str], text: str | None = None) -> None:
        self.path = str(path)
        self.text = _read(path) if text is None else text
        self.warnings: list[str] = []

    def lines(self) -> list[Line]:
        out = []
        for ln in parse_text(self.text):
            if ln.error:
                self.warn(ln.lineno, f"line ignored: {ln.error}")
                continue
            out.append(ln)
        return out

    def warn(self, lineno: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{lineno}: {message}")

    def error(self, lineno: int | None, message: str) -> ConfigError:
        return ConfigError(self.path, lineno, message)

    def integer(self, lineno: int, key: str, value: str, minimum: int | None = None) -> int:
        try:
            n = int(value, 10)
        except ValueError:
            raise self.error(lineno, f"{key}: expected a whole number, got '{value}'") from None
        if minimum is not None and n < minimum:
            raise self.error(lineno, f"{key}: expected a number >= {minimum}, got {n}")
        return n

    def number(self, lineno: int, key: str, value: str) -> float:
        try:
            return float(value)
        except ValueError:
            raise self.error(lineno, f"{key}: expected a number, got '{value}'") from None

    def boolean(self, lineno: int, key: str, value: str) -> bool:
        v = value.lower()
        if v in ("1", "yes", "true", "on", "ok"):
            return True
        if v in ("0", "no", "false", "off"):
            return False
        raise self.error(lineno, f"{key}: expected yes/no, true/false, on/off or 1/0, got '{value}'")


def _section_name(ln: Line) -> str | None:
    """``[name]`` as one word (the tokenizer keeps brackets): return ``name``."""
    if len(ln.words) == 1 and ln.words[0].startswith("[") and ln.words[0].endswith("]"):
        return ln.words[0][1:-1]
    return None


# --------------------------------------------------------------------------------------------- ups.conf

# Keys upsdrvctl/driver core interpret themselves; everything else is a driver parameter.
UPS_GLOBAL_ONLY = {"chroot", "driverpath", "statepath", "nowait"}


@dataclass
class UpsSection:
    """One ``[name]`` section of ups.conf."""

    name: str
    lineno: int
    values: dict[str, str] = field(default_factory=dict)  # every key = value, in file order
    flags: list[str] = field(default_factory=list)  # one-word lines (nolock, ignorelb, …)
    lines: dict[str, int] = field(default_factory=dict)  # key -> line it was set on
    globals: dict[str, str] = field(default_factory=dict)  # ups.conf globals, for fallbacks

    @property
    def driver(self) -> str:
        return self.values["driver"]

    @property
    def port(self) -> str:
        return self.values["port"]

    @property
    def desc(self) -> str | None:
        return self.values.get("desc")

    def get(self, key: str, default: str | None = None) -> str | None:
        """A section value, else the global of the same name, else ``default``."""
        if key in self.values:
            return self.values[key]
        return self.globals.get(key, default)

    def get_int(self, key: str, default: int) -> int:
        v = self.get(key)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            return default

    @property
    def sdorder(self) -> int:
        return self.get_int("sdorder", 0)

    @property
    def maxretry(self) -> int:
        return self.get_int("maxretry", 1)

    @property
    def retrydelay(self) -> int:
        return self.get_int("retrydelay", 5)

    @property
    def maxstartdelay(self) -> int:
        return self.get_int("maxstartdelay", 75)

    @property
    def pollinterval(self) -> int:
        return self.get_int("pollinterval", 2)

    def has_flag(self, name: str) -> bool:
        return name in self.flags


@dataclass
class UpsConf:
    """ups.conf: the global settings and the sections, in file order."""

    path: str
    globals: dict[str, str] = field(default_factory=dict)
    global_flags: list[str] = field(default_factory=list)
    ups: dict[str, UpsSection] = field(default_factory=dict)
    incomplete: dict[str, tuple[int, str]] = field(default_factory=dict)  # section -> (line, why left out)
    warnings: list[str] = field(default_factory=list)

    def require(self, name: str) -> UpsSection:
        """The section a driver was asked to run, or a ConfigError saying why there is none."""
        sec = self.find(name)
        if sec is not None:
            return sec
        if name in self.incomplete:
            lineno, why = self.incomplete[name]
            raise ConfigError(self.path, lineno, why)
        known = ", ".join(self.ups) or "none"
        raise ConfigError(self.path, None, f"no section [{name}] (sections defined: {known})")

    def find(self, name: str) -> UpsSection | None:
        """A section by name; NUT looks UPS names up case-insensitively."""
        if name in self.ups:
            return self.ups[name]
        low = name.lower()
        for key, sec in self.ups.items():
            if key.lower() == low:
                return sec
        return None


def load_ups_conf(path: str | os.PathLike[str] | None = None, text: str | None = None) -> UpsConf:
    path = path or conffile("ups.conf")
    r = _Reader(path, text)
    conf = UpsConf(str(path))
    current: UpsSection | None = None
    for ln in r.lines():
        name = _section_name(ln)
        if name is not None:
            if not name:
                raise r.error(ln.lineno, "empty section name '[]', expected [upsname]")
            if name == "default":
                raise r.error(ln.lineno, "section name 'default' is reserved by NUT, choose another")
            if name in conf.ups:
                raise r.error(ln.lineno, f"section [{name}] defined twice (first at line {conf.ups[name].lineno})")
            current = UpsSection(name, ln.lineno, globals=conf.globals)
            conf.ups[name] = current
            continue
        w = ln.words
        if len(w) == 1:
            (current.flags if current else conf.global_flags).append(w[0])
            continue
        if len(w) < 3 or w[1] != "=":
            r.warn(ln.lineno, f"line ignored: expected 'key = value' or a one-word flag, got {' '.join(w)!r}")
            continue
        if len(w) > 3:
            r.warn(ln.lineno, f"{w[0]}: extra words after the value ignored (quote values that contain '=' or spaces)")
        key, value = w[0], w[2]
        if current is None:
            conf.globals[key] = value
        else:
            if key in UPS_GLOBAL_ONLY:
                r.warn(ln.lineno, f"'{key}' is a global setting; in section [{current.name}] it is passed to the driver only")
            current.values[key] = value
            current.lines[key] = ln.lineno
    for sec in list(conf.ups.values()):
        missing = [req for req in ("driver", "port") if req not in sec.values]
        if missing:
            # NUT leaves an incomplete section out and carries on; so do we, loudly.
            why = f"section [{sec.name}] has no '{missing[0]}' (expected '{missing[0]} = ...'); it is ignored"
            r.warn(sec.lineno, why)
            conf.incomplete[sec.name] = (sec.lineno, why)
            del conf.ups[sec.name]
            continue
        for key in ("sdorder", "maxretry", "retrydelay", "maxstartdelay", "pollinterval"):
            if key in sec.values:
                try:
                    int(sec.values[key])
                except ValueError:
                    raise r.error(sec.lines[key], f"[{sec.name}] {key}: expected a whole number, got '{sec.values[key]}'") from None
    conf.warnings = r.warnings
    return conf


# --------------------------------------------------------------------------------------------- upsd.conf


@dataclass
class UpsdConf:
    """upsd.conf."""

    path: str
    listen: list[tuple[str, int]] = field(default_factory=list)
    maxage: int = 15
    statepath: str | None = None
    maxconn: int | None = None
    trackingdelay: int = 3600
    allow_no_device: bool = False
    allow_not_all_listeners: bool = False
    certfile: str | None = None
    certpath: str | None = None
    certident: tuple[str, str] | None = None
    certrequest: int = 0
    disable_weak_ssl: bool = False
    debug_min: int = 0
    warnings: list[str] = field(default_factory=list)

    def listen_addresses(self) -> list[tuple[str, int]]:
        """LISTEN lines, or NUT's default: loopback on IPv4 and IPv6."""
        return self.listen or [("127.0.0.1", DEFAULT_PORT), ("::1", DEFAULT_PORT)]


def load_upsd_conf(path: str | os.PathLike[str] | None = None, text: str | None = None,
                   missing_ok: bool = True) -> UpsdConf:
    path = path or conffile("upsd.conf")
    if text is None and missing_ok and not os.path.exists(path):
        return UpsdConf(str(path))
    r = _Reader(path, text)
    conf = UpsdConf(str(path))
    for ln in r.lines():
        w = ln.words
        key = w[0].upper()
        args = w[1:]
        if key == "LISTEN":
            if not 1 <= len(args) <= 2:
                raise r.error(ln.lineno, "LISTEN: expected 'LISTEN <address> [<port>]'")
            port = r.integer(ln.lineno, "LISTEN port", args[1], 1) if len(args) == 2 else DEFAULT_PORT
            if port > 65535:
                raise r.error(ln.lineno, f"LISTEN: port {port} is out of range 1-65535")
            conf.listen.append((args[0], port))
            continue
        if key in ("ACL", "ACCEPT", "REJECT"):
            r.warn(ln.lineno, f"{key} is obsolete and ignored (use a firewall, or LISTEN on chosen addresses)")
            continue
        if len(args) < 1 and key not in ():
            r.warn(ln.lineno, f"{w[0]}: no value given, line ignored")
            continue
        v = args[0]
        if key == "MAXAGE":
            conf.maxage = r.integer(ln.lineno, key, v, 1)
        elif key == "STATEPATH":
            conf.statepath = v
        elif key == "MAXCONN":
            conf.maxconn = r.integer(ln.lineno, key, v, 1)
        elif key == "TRACKINGDELAY":
            conf.trackingdelay = r.integer(ln.lineno, key, v, 0)
        elif key == "ALLOW_NO_DEVICE":
            conf.allow_no_device = r.boolean(ln.lineno, key, v)
        elif key == "ALLOW_NOT_ALL_LISTENERS":
            conf.allow_not_all_listeners = r.boolean(ln.lineno, key, v)
        elif key == "CERTFILE":
            conf.certfile = v
        elif key == "CERTPATH":
            conf.certpath = v
        elif key == "CERTIDENT":
            if len(args) != 2:
                raise r.error(ln.lineno, "CERTIDENT: expected 'CERTIDENT <name> <password>'")
            conf.certident = (args[0], args[1])
        elif key == "CERTREQUEST":
            conf.certrequest = r.integer(ln.lineno, key, v, 0)
        elif key == "DISABLE_WEAK_SSL":
            conf.disable_weak_ssl = r.boolean(ln.lineno, key, v)
        elif key == "DEBUG_MIN":
            conf.debug_min = r.integer(ln.lineno, key, v, 0)
        elif key == "DATAPATH":
            pass
        else:
            r.warn(ln.lineno, f"unknown directive '{w[0]}' ignored")
    conf.warnings = r.warnings
    return conf


# --------------------------------------------------------------------------------------------- upsd.users

ROLE_ACTIONS = {"primary": {"LOGIN", "MASTER", "PRIMARY", "FSD"}, "secondary": {"LOGIN"}}
ROLE_ALIASES = {"primary": "primary", "master": "primary", "secondary": "secondary", "slave": "secondary"}


@dataclass
class User:
    """One ``[name]`` section of upsd.users."""

    name: str
    lineno: int
    password: str | None = None
    actions: set[str] = field(default_factory=set)  # upper case
    instcmds: set[str] = field(default_factory=set)  # lower case; "all" grants every command
    upsmon: str | None = None  # "primary" / "secondary"

    def can(self, action: str) -> bool:
        return action.upper() in self.actions

    def can_instcmd(self, cmd: str) -> bool:
        return "all" in self.instcmds or cmd.lower() in self.instcmds


@dataclass
class UsersConf:
    """upsd.users: the users, and what was wrong with the file."""

    path: str
    users: dict[str, User] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load_upsd_users(path: str | os.PathLike[str] | None = None, text: str | None = None,
                    missing_ok: bool = True) -> UsersConf:
    path = path or conffile("upsd.users")
    if text is None and missing_ok and not os.path.exists(path):
        return UsersConf(str(path))
    r = _Reader(path, text)
    conf = UsersConf(str(path))
    cur: User | None = None
    for ln in r.lines():
        name = _section_name(ln)
        if name is not None:
            if not name:
                raise r.error(ln.lineno, "empty user name '[]', expected [username]")
            cur = conf.users.get(name) or User(name, ln.lineno)
            conf.users[name] = cur
            continue
        w = ln.words
        if cur is None:
            r.warn(ln.lineno, f"'{w[0]}' outside a [user] section ignored")
            continue
        key = w[0].lower()
        args = w[2:] if len(w) > 1 and w[1] == "=" else w[1:]
        if not args:
            raise r.error(ln.lineno, f"{w[0]}: expected a value ('{w[0]} = ...')")
        if key == "password":
            cur.password = args[0]
        elif key == "actions":
            cur.actions.update(a.upper() for a in args)
        elif key == "instcmds":
            cur.instcmds.update(a.lower() for a in args)
        elif key == "upsmon":
            role = ROLE_ALIASES.get(args[0].lower())
            if role is None:
                raise r.error(ln.lineno, f"upsmon: expected primary or secondary (or master/slave), got '{args[0]}'")
            cur.upsmon = role
            cur.actions.update(ROLE_ACTIONS[role])
        elif key == "allowfrom":
            r.warn(ln.lineno, "allowfrom is obsolete and ignored (use a firewall)")
        else:
            r.warn(ln.lineno, f"unknown user setting '{w[0]}' ignored")
    conf.warnings = r.warnings
    return conf


# --------------------------------------------------------------------------------------------- upsmon.conf

NOTIFY_TYPES = (
    "ONLINE", "ONBATT", "LOWBATT", "FSD", "COMMOK", "COMMBAD", "SHUTDOWN", "REPLBATT", "NOCOMM",
    "NOPARENT", "CAL", "NOTCAL", "OFF", "NOTOFF", "BYPASS", "NOTBYPASS", "ECO", "NOTECO", "ALARM",
    "NOTALARM", "OVER", "NOTOVER", "TRIM", "NOTTRIM", "BOOST", "NOTBOOST", "OTHER", "NOTOTHER",
    "SUSPEND_STARTING", "SUSPEND_FINISHED", "SHUTDOWN_HOSTSYNC",
)
NOTIFY_FLAGS = ("SYSLOG", "WALL", "EXEC", "IGNORE")


@dataclass
class Monitor:
    """One MONITOR line of upsmon.conf."""

    system: str  # ups[@host[:port]] as written
    upsname: str
    host: str
    port: int
    powervalue: int
    user: str
    password: str
    role: str  # primary / secondary
    lineno: int


def split_system(system: str) -> tuple[str, str, int]:
    """``ups[@host[:port]]`` -> (ups, host, port); ``[v6addr]:port`` accepted."""
    ups, _, hostpart = system.partition("@")
    host, port = "localhost", DEFAULT_PORT
    if hostpart:
        if hostpart.startswith("["):
            addr, _, rest = hostpart[1:].partition("]")
            host = addr
            if rest.startswith(":") and rest[1:]:
                port = int(rest[1:])
        elif hostpart.count(":") == 1:
            host, p = hostpart.split(":")
            port = int(p)
        else:
            host = hostpart
    return ups, host, port


@dataclass
class UpsmonConf:
    """upsmon.conf."""

    path: str
    monitors: list[Monitor] = field(default_factory=list)
    minsupplies: int = 1
    shutdowncmd: str | None = None
    notifycmd: str | None = None
    pollfreq: int = 5
    pollfreqalert: int = 5
    hostsync: int = 15
    deadtime: int = 15
    powerdownflag: str | None = None
    notifymsg: dict[str, str] = field(default_factory=dict)
    notifyflag: dict[str, set[str]] = field(default_factory=dict)
    rbwarntime: int = 43200
    nocommwarntime: int = 300
    finaldelay: int = 5
    run_as_user: str | None = None
    offduration: int = 30
    shutdownexit: str = "yes"
    overduration: int = -1
    oblbduration: int = 0
    alarmcritical: bool = True
    certpath: str | None = None
    certident: tuple[str, str] | None = None
    certhost: list[tuple[str, ...]] = field(default_factory=list)
    certverify: bool = False
    forcessl: bool = False
    debug_min: int = 0
    pollfail_log_throttle_max: int = -1
    warnings: list[str] = field(default_factory=list)


_UPSMON_INTS = {
    "MINSUPPLIES": ("minsupplies", 0), "POLLFREQ": ("pollfreq", 1), "POLLFREQALERT": ("pollfreqalert", 1),
    "HOSTSYNC": ("hostsync", 0), "DEADTIME": ("deadtime", 0), "RBWARNTIME": ("rbwarntime", 0),
    "NOCOMMWARNTIME": ("nocommwarntime", 0), "FINALDELAY": ("finaldelay", 0),
    "OFFDURATION": ("offduration", None), "OVERDURATION": ("overduration", None),
    "OBLBDURATION": ("oblbduration", None), "DEBUG_MIN": ("debug_min", 0),
    "POLLFAIL_LOG_THROTTLE_MAX": ("pollfail_log_throttle_max", None),
}


def load_upsmon_conf(path: str | os.PathLike[str] | None = None, text: str | None = None) -> UpsmonConf:
    path = path or conffile("upsmon.conf")
    r = _Reader(path, text)
    conf = UpsmonConf(str(path))
    for ln in r.lines():
        w = ln.words
        key = w[0].upper()
        args = w[1:]
        if key == "MONITOR":
            if len(args) != 5:
                raise r.error(ln.lineno, "MONITOR: expected 'MONITOR <ups>[@<host>[:<port>]] <powervalue> <user> <password> primary|secondary'")
            role = ROLE_ALIASES.get(args[4].lower())
            if role is None:
                raise r.error(ln.lineno, f"MONITOR: expected primary or secondary (or master/slave), got '{args[4]}'")
            try:
                ups, host, port = split_system(args[0])
            except ValueError:
                raise r.error(ln.lineno, f"MONITOR: bad port in '{args[0]}'") from None
            power = r.integer(ln.lineno, "MONITOR power value", args[1], 0)
            conf.monitors.append(Monitor(args[0], ups, host, port, power, args[2], args[3], role, ln.lineno))
            continue
        if not args:
            raise r.error(ln.lineno, f"{w[0]}: expected a value")
        if key in _UPSMON_INTS:
            attr, minimum = _UPSMON_INTS[key]
            setattr(conf, attr, r.integer(ln.lineno, key, args[0], minimum))
        elif key == "SHUTDOWNCMD":
            conf.shutdowncmd = " ".join(args) if len(args) > 1 else args[0]
        elif key == "NOTIFYCMD":
            conf.notifycmd = " ".join(args) if len(args) > 1 else args[0]
        elif key == "POWERDOWNFLAG":
            conf.powerdownflag = args[0]
        elif key == "RUN_AS_USER":
            conf.run_as_user = args[0]
        elif key == "SHUTDOWNEXIT":
            conf.shutdownexit = args[0]
        elif key == "ALARMCRITICAL":
            conf.alarmcritical = r.boolean(ln.lineno, key, args[0])
        elif key == "NOTIFYMSG":
            if len(args) != 2:
                raise r.error(ln.lineno, 'NOTIFYMSG: expected \'NOTIFYMSG <TYPE> "<message>"\'')
            t = args[0].upper()
            if t not in NOTIFY_TYPES:
                r.warn(ln.lineno, f"NOTIFYMSG: unknown notify type '{args[0]}' ignored")
                continue
            conf.notifymsg[t] = args[1]
        elif key == "NOTIFYFLAG":
            if len(args) != 2:
                raise r.error(ln.lineno, "NOTIFYFLAG: expected 'NOTIFYFLAG <TYPE> SYSLOG[+WALL][+EXEC]|IGNORE'")
            t = args[0].upper()
            if t not in NOTIFY_TYPES:
                r.warn(ln.lineno, f"NOTIFYFLAG: unknown notify type '{args[0]}' ignored")
                continue
            flags = {f.upper() for f in args[1].split("+") if f}
            bad = flags - set(NOTIFY_FLAGS)
            if bad:
                raise r.error(ln.lineno, f"NOTIFYFLAG: unknown flag(s) {', '.join(sorted(bad))}; expected SYSLOG, WALL, EXEC or IGNORE")
            conf.notifyflag[t] = set() if "IGNORE" in flags else flags
        elif key == "CERTPATH":
            conf.certpath = args[0]
        elif key == "CERTIDENT":
            if len(args) != 2:
                raise r.error(ln.lineno, "CERTIDENT: expected 'CERTIDENT <name> <password>'")
            conf.certident = (args[0], args[1])
        elif key == "CERTHOST":
            conf.certhost.append(tuple(args))
        elif key == "CERTVERIFY":
            conf.certverify = r.boolean(ln.lineno, key, args[0])
        elif key == "FORCESSL":
            conf.forcessl = r.boolean(ln.lineno, key, args[0])
        else:
            r.warn(ln.lineno, f"unknown directive '{w[0]}' ignored")
    conf.warnings = r.warnings
    return conf


# --------------------------------------------------------------------------------------------- upssched.conf


@dataclass
class SchedAt:
    """One AT line of upssched.conf."""

    notifytype: str
    upsname: str  # '*' = any
    command: str  # START-TIMER / CANCEL-TIMER / EXECUTE
    args: list[str]
    lineno: int


@dataclass
class UpsschedConf:
    """upssched.conf."""

    path: str
    cmdscript: str | None = None
    pipefn: str | None = None
    lockfn: str | None = None
    at: list[SchedAt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_upssched_conf(path: str | os.PathLike[str] | None = None, text: str | None = None) -> UpsschedConf:
    path = path or conffile("upssched.conf")
    r = _Reader(path, text)
    conf = UpsschedConf(str(path))
    for ln in r.lines():
        w = ln.words
        key = w[0].upper()
        if key in ("CMDSCRIPT", "PIPEFN", "LOCKFN"):
            if len(w) != 2:
                raise r.error(ln.lineno, f"{key}: expected '{key} <path>'")
            setattr(conf, key.lower(), w[1])
        elif key == "AT":
            if len(w) < 4:
                raise r.error(ln.lineno, "AT: expected 'AT <notifytype> <upsname> <command> [args]'")
            cmd = w[3].upper()
            if cmd not in ("START-TIMER", "CANCEL-TIMER", "EXECUTE"):
                raise r.error(ln.lineno, f"AT: expected START-TIMER, CANCEL-TIMER or EXECUTE, got '{w[3]}'")
            conf.at.append(SchedAt(w[1].upper(), w[2], cmd, w[4:], ln.lineno))
        else:
            r.warn(ln.lineno, f"unknown directive '{w[0]}' ignored")
    conf.warnings = r.warnings
    return conf


# --------------------------------------------------------------------------------------------- nut.conf

NUT_MODES = ("none", "standalone", "netserver", "netclient")


@dataclass
class NutConf:
    """nut.conf: its settings, and what was wrong with the file."""

    path: str
    values: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.values.get("MODE", "none").lower()

    @property
    def poweroff_wait(self) -> str | None:
        return self.values.get("POWEROFF_WAIT") or None


def load_nut_conf(path: str | os.PathLike[str] | None = None, text: str | None = None,
                  missing_ok: bool = True) -> NutConf:
    """nut.conf is a shell fragment of ``KEY=value`` lines; read it without running a shell."""
    path = path or conffile("nut.conf")
    if text is None and missing_ok and not os.path.exists(path):
        return NutConf(str(path))
    r = _Reader(path, text)
    conf = NutConf(str(path))
    for ln in r.lines():
        w = ln.words
        if len(w) >= 3 and w[1] == "=":
            value = "=".join(w[2:]) if len(w) > 3 else w[2]
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            conf.values[w[0]] = value
        elif len(w) == 2 and w[1] == "=":
            conf.values[w[0]] = ""
        else:
            r.warn(ln.lineno, f"expected 'KEY=value', got {' '.join(w)!r}; line ignored")
    mode = conf.values.get("MODE")
    if mode is not None and mode.lower() not in NUT_MODES:
        lineno = next((ln.lineno for ln in parse_text(r.text) if ln.words and ln.words[0] == "MODE"), None)
        raise r.error(lineno, f"MODE: expected one of {', '.join(NUT_MODES)}, got '{mode}'")
    conf.warnings = r.warnings
    return conf
