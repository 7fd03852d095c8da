"""``nutlite driver -a <ups> …``: the command line of every driver, and the registry of driver names.

NUT's driver flags: ``-a <ups>`` (settings from ups.conf), ``-s <ups>`` (settings only from ``-x``),
``-x key=value`` (repeatable, wins over ups.conf), ``-k`` (killpower), ``-F`` (foreground), ``-B``
(background even with -D), ``-D`` (debug, implies -F), ``-u user``, ``-g group``, ``-i interval``,
``-d count`` (print the data after ``count`` polls and exit), ``-L`` (list the settings), ``-V``,
``-q``, ``-r dir`` (accepted; nutlite does not chroot), and nutlite's ``-c reload|stop``.

When started under a driver's own name (``dummy-ups -a ups``), :mod:`nutlite.cli` passes
``--driver-name dummy-ups``; otherwise the driver comes from the section's ``driver`` setting.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys

from nutlite import __version__
from nutlite.config import ConfigError, confpath, load_ups_conf, statepath
from nutlite.daemon import add_common_flags, is_foreground, setup_logging, signal_running
from nutlite.drivers.core import (
    Driver,
    DriverConfig,
    DriverError,
    apply_extra,
    dump_and_exit,
    killpower,
    load_config,
    run_foreground_or_background,
    validate_options,
)

log = logging.getLogger("nutlite.driver")

# NUT driver program name -> "module:Class" (imported only when that driver runs).
DRIVERS: dict[str, str] = {
    "dummy-ups": "nutlite.drivers.dummy_ups:DummyUps",
    "clone": "nutlite.drivers.clone:Clone",
    "clone-outlet": "nutlite.drivers.clone:CloneOutlet",
    "usbhid-ups": "nutlite.drivers.usbhid_ups:UsbHidUps",
    "nutdrv_qx": "nutlite.drivers.nutdrv_qx:NutdrvQx",
    "blazer_ser": "nutlite.drivers.blazer_ser:BlazerSer",
    "blazer_usb": "nutlite.drivers.blazer_usb:BlazerUsb",
    "apcsmart": "nutlite.drivers.apcsmart:ApcSmart",
    "genericups": "nutlite.drivers.genericups:GenericUps",
    "snmp-ups": "nutlite.drivers.snmp_ups:SnmpUps",
}


def driver_class(name: str) -> type[Driver]:
    """The class of driver ``name``; DriverError if nutlite does not have it."""
    target = DRIVERS.get(name)
    if target is None:
        raise DriverError(f"nutlite has no driver named '{name}' (it has: {', '.join(sorted(DRIVERS))})")
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise DriverError(f"the {name} driver is not available in this nutlite build") from None
        raise DriverError(f"the {name} driver needs the Python module '{exc.name}', which is not installed") from None
    return getattr(module, cls_name)


def build_parser(prog: str = "nutlite driver") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, add_help=False,
                                description="Run one UPS driver (NUT's driver command line).")
    p.add_argument("-h", dest="help", action="store_true", help="show this help and the driver's settings")
    p.add_argument("-a", dest="ups", metavar="UPS", help="take the settings from the ups.conf section UPS")
    p.add_argument("-s", dest="standalone", metavar="UPS",
                   help="configure only from the command line (-x port=... and others)")
    p.add_argument("-x", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="set a driver setting (wins over ups.conf); -x flag sets a flag")
    p.add_argument("-k", dest="killpower", action="store_true",
                   help="killpower: tell the UPS to power off (after a delay) and come back")
    p.add_argument("-i", dest="interval", type=int, metavar="SECONDS", help="poll interval")
    p.add_argument("-g", dest="group", metavar="GROUP", help="group of the socket file")
    p.add_argument("-r", dest="chroot", metavar="DIR", help="accepted for NUT compatibility (no chroot)")
    p.add_argument("-d", dest="dump", type=int, metavar="COUNT",
                   help="print the data after COUNT polls and exit")
    p.add_argument("-L", dest="list_vars", action="store_true", help="list the driver's settings and exit")
    p.add_argument("-V", dest="version", action="store_true", help="show the version and exit")
    p.add_argument("-q", dest="quiet", action="count", default=0, help="log less")
    p.add_argument("--driver-name", dest="driver_name", help=argparse.SUPPRESS)
    add_common_flags(p)
    return p


def driver_help(cls: type[Driver] | None) -> str:
    if cls is None:
        return ""
    lines = ["", f"Settings of the {cls.name} driver (ups.conf or -x):"]
    if not cls.options:
        lines.append("  (none besides the common ones)")
    for o in cls.options:
        lines.append(f"  {'-x ' + o.name if o.flag else '-x ' + o.name + '=<value>':<28} {o.help}")
    lines.append("Common settings: port, pollinterval, synchronous, user, group, desc, sdorder, "
                 "default.<var>, override.<var>; flags: nolock, ignorelb, allow_killpower")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    name = args.driver_name
    prog = name or "nutlite driver"
    cls: type[Driver] | None = None
    if name:
        try:
            cls = driver_class(name)
        except DriverError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
    if args.version:
        desc = f" - {cls.description} {cls.version}" if cls else ""
        print(f"nutlite {__version__} {prog}{desc}")
        return 0
    if args.help:
        parser.prog = name or "nutlite driver"
        print(parser.format_help() + driver_help(cls))
        return 0
    if args.list_vars:
        if cls is None:
            print(f"{prog}: -L needs the driver name (run it as '<driver> -L')", file=sys.stderr)
            return 1
        for o in cls.options:
            print(f'{"FLAG" if o.flag else "VALUE"} {o.name} "{o.help}"')
        return 0
    upsname = args.ups or args.standalone
    if not upsname:
        print(f"{prog}: -a <ups> is required (or -s <ups> with -x settings)\n", file=sys.stderr)
        print(parser.format_usage(), file=sys.stderr)
        return 1

    foreground = is_foreground(args) or args.dump is not None or args.killpower
    setup_logging(name or "nutlite-driver", args.debug, foreground=True)
    if args.quiet and not args.debug:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        if args.standalone:
            if not name:
                raise DriverError("-s needs the driver name (run it as '<driver> -s <ups> -x port=...')")
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
    except (ConfigError, DriverError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1

    prog_name = cfg.driver
    log.info("nutlite %s %s driver %s for [%s]", __version__, cls.name, cls.version, cfg.upsname)
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
