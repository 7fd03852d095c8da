"""``nutlite driver -a <ups> …`` and ``nutlite <driver> …``: the command line of every driver, its help,
and the registry of driver names.

The flags are those of NUT's drivers (``/lib/nut/dummy-ups -h`` and the others list the same ones):
``-a``, ``-s``, ``-x``, ``-k``, ``-d``, ``-i``, ``-u``, ``-g``, ``-r``, ``-F``, ``-B``, ``-D``, ``-q``,
``-L``, ``-V``, ``-h``, plus nutlite's ``-c reload|stop``. ``-r`` is accepted but nutlite does not chroot
(a warning says so).

When started under a driver's own name (``dummy-ups -a ups``, or ``nutlite dummy-ups -a ups``),
:mod:`nutlite.cli` passes ``--driver-name dummy-ups``; otherwise the driver is the one the ups.conf section
names with ``driver =``, also for ``-h`` and ``-L`` (``nutlite driver -a myups -h``).

:data:`DRIVERS` names every driver nutlite has or plans; whether one is in this build is whether its
module is there (:func:`available_drivers`, :func:`planned_drivers`).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import importlib.util
import logging
import os
import sys
import textwrap

from nutlite import __version__
from nutlite.config import ConfigError, confpath, load_ups_conf, statepath
from nutlite.daemon import (
    add_common_flags,
    is_foreground,
    path_error,
    setup_logging,
    signal_running,
)
from nutlite.drivers.framework.core import Driver, DriverError
from nutlite.drivers.framework.drvconfig import DriverConfig, apply_extra, load_config, validate_options
from nutlite.drivers.framework.runner import dump_and_exit, killpower, run_foreground_or_background
from nutlite.tools.common import help_parser

log = logging.getLogger("nutlite.driver")

# NUT driver program name -> "module:Class" (imported only when that driver runs). A driver whose
# module is not in this build is planned.
DRIVERS: dict[str, str] = {
    "dummy-ups": "nutlite.drivers.programs.dummy_ups:DummyUps",
    "nutdrv_qx": "nutlite.drivers.programs.nutdrv_qx:NutdrvQx",
    "blazer_ser": "nutlite.drivers.programs.blazer_ser:BlazerSer",
    "apcsmart": "nutlite.drivers.programs.apcsmart:ApcSmart",
    "genericups": "nutlite.drivers.programs.genericups:GenericUps",
    "usbhid-ups": "nutlite.drivers.programs.usbhid_ups:UsbHidUps",
    "blazer_usb": "nutlite.drivers.programs.blazer_usb:BlazerUsb",
    "snmp-ups": "nutlite.drivers.programs.snmp_ups:SnmpUps",
    "clone": "nutlite.drivers.programs.clone:Clone",
    "clone-outlet": "nutlite.drivers.programs.clone:CloneOutlet",
}

# The settings the driver core reads for every driver, for -h.
COMMON_SETTINGS: tuple[tuple[str, str], ...] = (
    ("port=<value>", "the device: a serial port, a definition file, ups@host for the repeater…"),
    ("pollinterval=<int>", "seconds between two polls of the device (default 2)"),
    ("synchronous=<value>", "accepted as in NUT (auto, yes, no) and published as driver.parameter.synchronous"),
    ("user=<user>", "switch to <user> when started as root (-u wins; default nut)"),
    ("group=<group>", "give the socket file to <group> when started as root (-g wins; default nut)"),
    ("default.<var>=<value>", "publish <var> with <value> as long as the device gives none"),
    ("override.<var>=<value>", "publish <var> with <value> whatever the device says"),
    ("desc, sdorder, maxstartdelay, maxretry, retrydelay", "read by upsdrvctl and upsd, not by the driver"),
    ("nolock", "do not lock the serial port"),
    ("ignorelb", "set LB from battery.charge.low or battery.runtime.low, not from the device"),
    ("allow_killpower", "allow the driver.killpower command on the driver socket"),
)


def _module_of(name: str) -> str:
    return DRIVERS[name].partition(":")[0]


def is_available(name: str) -> bool:
    """Whether driver ``name`` is in this build (its module is installed)."""
    try:
        return importlib.util.find_spec(_module_of(name)) is not None
    except (ImportError, ValueError):
        return False


def available_drivers() -> list[str]:
    """The drivers this build has, sorted."""
    return sorted(n for n in DRIVERS if is_available(n))


def planned_drivers() -> list[str]:
    """The drivers nutlite plans but this build does not have yet."""
    return [n for n in DRIVERS if not is_available(n)]


def drivers_summary() -> str:
    """``available: apcsmart, …; planned: usbhid-ups, …``."""
    text = f"available: {', '.join(available_drivers())}"
    planned = planned_drivers()
    return text + (f"; planned: {', '.join(planned)}" if planned else "")


def driver_class(name: str) -> type[Driver]:
    """The class of driver ``name``; DriverError if nutlite does not have it (yet)."""
    if name not in DRIVERS:
        raise DriverError(f"nutlite has no driver named '{name}'; {drivers_summary()}")
    if not is_available(name):
        raise DriverError(f"the {name} driver is planned but not yet in this build; {drivers_summary()}")
    module_name, _, cls_name = DRIVERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise DriverError(f"the {name} driver needs the Python module '{exc.name}', which is not "
                          "installed") from None
    cls: type[Driver] = getattr(module, cls_name)
    return cls


# --------------------------------------------------------------------------------------------------
# The command line and its help


def build_parser(prog: str = "nutlite driver") -> argparse.ArgumentParser:
    p = help_parser("driver", prog=prog, help_flag="switch",
                    help_text="show this help (with -a <id>: also the settings of that UPS's driver) and exit")
    p.add_argument("-a", dest="ups", metavar="<id>",
                   help="take the settings from the ups.conf section <id> (-x after -a overrides them)")
    p.add_argument("-s", dest="standalone", metavar="<id>",
                   help="configure from the command line only: every setting with -x, at least -x port=...")
    p.add_argument("-x", dest="extra", action="append", default=[], metavar="<var>=<val>",
                   help="set the driver setting <var> to <val> (-x <flag> sets a flag); repeatable")
    p.add_argument("-k", dest="killpower", action="store_true",
                   help="force shutdown: tell the UPS to power off after its delay and to come back")
    p.add_argument("-d", dest="dump", type=int, metavar="<count>",
                   help="print the data after <count> polls and exit")
    p.add_argument("-i", dest="interval", type=int, metavar="<int>",
                   help="poll interval in seconds (instead of the pollinterval setting)")
    p.add_argument("-g", dest="group", metavar="<group>",
                   help="give the socket file to <group> when started as root")
    p.add_argument("-r", dest="chroot", metavar="<dir>",
                   help="chroot to <dir>: accepted for NUT's command line, but nutlite does not chroot")
    p.add_argument("-L", dest="list_vars", action="store_true",
                   help="print the driver's settings in NUT's parseable form and exit")
    p.add_argument("-V", dest="version", action="store_true", help="print the version and exit")
    p.add_argument("-q", dest="quiet", action="count", default=0,
                   help="raise the log level threshold (log warnings and errors only)")
    p.add_argument("--driver-name", dest="driver_name", help=argparse.SUPPRESS)
    add_common_flags(p)
    for action in p._actions:  # the shared daemon flags, in the words of NUT's drivers
        if action.dest == "user":
            action.metavar = "<user>"
            action.help = "switch to <user> when started as root (default: the user setting, else nut)"
        elif action.dest == "command":
            action.metavar = "<cmd>"
            action.help = "send reload or stop to the running driver of -a <id>, found by its pid file"
        elif action.dest == "foreground":
            action.help = "stay in the foreground even without -D"
        elif action.dest == "debug":
            action.help = "raise the debug level (repeatable); stays in the foreground unless -B"
    return p


def _entries(pairs: list[tuple[str, str]]) -> list[str]:
    width = min(30, max(len(k) for k, _ in pairs) + 2)
    out = []
    for key, meaning in pairs:
        if len(key) + 2 > width:
            out.extend([f"  {key}", f"  {'':<{width}}{meaning}"])
        else:
            out.append(f"  {key:<{width}}{meaning}")
    return out


def driver_help(cls: type[Driver]) -> str:
    """The settings of driver ``cls`` with their meaning (NUT's ``Acceptable values for -x or ups.conf``)."""
    lines = ["", f"Settings of the {cls.name} driver (ups.conf or -x):"]
    if cls.options:
        lines.extend(_entries([(o.name if o.flag else f"{o.name}=<value>", o.help) for o in cls.options]))
    else:
        lines.append("  none besides the common settings below")
    extra = cls.help_sections()
    if extra:
        lines.extend(["", extra.rstrip("\n")])
    return "\n".join(lines)


def common_help() -> str:
    lines = ["", "Common settings of every driver (ups.conf or -x):", *_entries(list(COMMON_SETTINGS))]
    return "\n".join(lines)


def format_help(parser: argparse.ArgumentParser, prog: str, cls: type[Driver] | None) -> str:
    name = cls.name if cls else "<driver>"
    parser.prog = prog
    parser.usage = (f"{prog} (-a <id> | -s <id>) [options]\n"
                    f"       {prog} -a <id> -c reload|stop\n"
                    f"       {prog} -h | -L | -V")
    if cls is not None:
        parser.description = (
            f"Run the {cls.name} driver ({cls.description} {cls.version}) for one UPS: it reads the UPS's "
            f"settings from its ups.conf section and -x, talks to the device and serves the data to upsd on the "
            f"socket {name}-<id> in the state folder.")
    else:
        parser.description = (
            "Run one UPS driver: the one the ups.conf section given with -a names in its driver setting. It "
            "talks to the device and serves the data to upsd on the socket <driver>-<id> in the state "
            "folder. Without -a, name the driver: nutlite <driver> [options].")
    parser.description = textwrap.fill(parser.description, 78)
    sections = [parser.format_help().rstrip("\n")]
    if cls is not None:
        sections.append(driver_help(cls))
    else:
        sections.append(f"\nDrivers: {drivers_summary()}\n'nutlite <driver> -h' lists a driver's settings, "
                        "e.g. 'nutlite dummy-ups -h'.")
    sections.append(common_help())
    example = prog if cls else "nutlite driver"
    sections.append("\n".join([
        "", "Files:", *_entries([
            ("ups.conf", "the UPS sections, in the configuration folder (default /etc/nut)"),
            (f"{name}-<id>", "the socket upsd reads, in the state folder (default /run/nut)"),
            (f"{name}-<id>.pid", "the pid file -c uses, in the state folder")]),
        "", "Environment:", *_entries([
            ("NUT_CONFPATH", "the configuration folder"),
            ("NUT_STATEPATH", "the state folder (else the statepath setting of ups.conf)"),
            ("NUT_ALTPIDPATH", "the folder of the pid file, if not the state folder"),
            ("NUTLITE_DEBUG=1", "print the full traceback of an internal error")]),
        "", "Examples:", f"  {example} -a myups -F", f"  {example} -a myups -c reload"]))
    return "\n".join(sections) + "\n"


def explain_config_error(exc: ConfigError) -> str:
    """A ConfigError as the user should see it: a file that cannot be read gets NUT FAQ #4's facts."""
    if exc.lineno is not None:
        return str(exc)
    try:
        with open(exc.path, "rb"):
            pass
    except OSError as err:
        path = exc.path
        if err.errno in (errno.EACCES, errno.EPERM):
            return str(exc)  # nutlite.config already gives NUT FAQ #4's facts for these
        if err.errno == errno.ENOENT:
            what = exc.message.partition("; ")[2] or f"create {path}"  # config.py may say what to put in it
            advice = (f"{what[0].upper()}{what[1:]}; or point NUT_CONFPATH at the folder that holds "
                      f"{os.path.basename(path)} (now {confpath()}).")
        else:
            advice = f"Check {path}; NUT_CONFPATH names the configuration folder (now {confpath()})."
        return path_error(path, err, advice, what="cannot read")
    return str(exc)


def section_driver(upsname: str) -> tuple[type[Driver] | None, str | None]:
    """The class of the driver the ups.conf section ``upsname`` names, or why there is none."""
    try:
        conf = load_ups_conf()
    except ConfigError as exc:
        return None, explain_config_error(exc)
    sec = conf.find(upsname)
    if sec is None:
        return None, f"section [{upsname}] not found in {conf.path}"
    try:
        return driver_class(sec.driver), None
    except DriverError as exc:
        return None, f"[{sec.name}]: {exc}"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    name = args.driver_name
    prog = prog or (f"nutlite {name}" if name else "nutlite driver")
    cls: type[Driver] | None = None
    if name:
        try:
            cls = driver_class(name)
        except DriverError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
    elif (args.help or args.list_vars or args.version) and (args.ups or args.standalone):
        cls, why = section_driver(args.ups or args.standalone)
        if why:
            print(f"{prog}: {why}", file=sys.stderr)
            if not args.help:
                return 1
    if args.help:
        print(format_help(parser, prog, cls), end="")
        return 0
    if args.version:
        desc = f" - {cls.description} {cls.version}" if cls else ""
        print(f"nutlite {__version__} {cls.name if cls else 'driver'}{desc}")
        return 0
    if args.list_vars:
        if cls is None:
            print(f"{prog}: -L needs the driver: give -a <id> (its ups.conf section names the driver) or run "
                  "'nutlite <driver> -L', e.g. 'nutlite dummy-ups -L'", file=sys.stderr)
            return 1
        for o in cls.options:
            print(f'{"FLAG" if o.flag else "VALUE"} {o.name} "{o.help}"')
        return 0
    upsname = args.ups or args.standalone
    if not upsname:
        print(f"{prog}: -a <id> is required (or -s <id> with -x settings); see '{prog} -h'", file=sys.stderr)
        return 1

    foreground = is_foreground(args) or args.dump is not None or args.killpower
    setup_logging(name or "nutlite-driver", args.debug, foreground=True)
    if args.quiet and not args.debug:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        if args.standalone:
            if not name:
                raise DriverError("-s needs the driver's name: nutlite <driver> -s <id> -x port=... "
                                  "('nutlite driver -h' lists the drivers)")
            cfg = DriverConfig(args.standalone, name, confpath=confpath())
            conf = None
            try:
                conf = load_ups_conf()
            except ConfigError:
                pass
            cfg.statepath = statepath(conf)
            apply_extra(cfg, args.extra)
        else:
            cfg = load_config(args.ups, name, args.extra)
        cfg.user = args.user
        cfg.group = args.group
        cfg.debug = args.debug
        if args.interval is not None:
            if args.interval < 1:
                raise DriverError(f"-i: expected at least 1 second, got {args.interval}")
            cfg.pollinterval_arg = args.interval
        if args.command:
            return signal_running(cfg.pidpath, args.command, cfg.driver)
        if cls is None:
            cls = driver_class(cfg.driver)
        validate_options(cls, cfg)
        if "port" not in cfg.values:
            raise DriverError(f"no port given for [{cfg.upsname}] (set 'port = ...' in ups.conf or -x port=...)")
        cfg.pollinterval  # noqa: B018 - validate early
        driver = cls(cfg)
    except ConfigError as exc:
        print(f"{prog}: {explain_config_error(exc)}", file=sys.stderr)
        return 1
    except DriverError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1

    prog_name = cfg.driver
    log.info("nutlite %s %s driver %s for [%s]", __version__, cls.name, cls.version, cfg.upsname)
    if args.chroot:
        log.warning("-r %s: nutlite does not chroot; the driver runs without it", args.chroot)
    if args.killpower:
        return killpower(driver)
    if args.dump is not None:
        try:
            asyncio.run(dump_and_exit(driver, args.dump))
        except DriverError as exc:
            log.error("%s", exc)
            return 1
        return 0

    def reload_config() -> DriverConfig:
        new = load_config(cfg.upsname, name, args.extra) if not args.standalone else cfg
        return new

    return run_foreground_or_background(driver, background=not foreground, prog=prog_name,
                                        reload_config=reload_config)
