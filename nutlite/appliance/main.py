"""``nutlite appliance setup``: the command line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nutlite.appliance.files import Context, Fatal, Paths
from nutlite.tools.common import help_parser

DESCRIPTION = """\
The boot-time configuration step of the nutlite SD-card image. It installs the NUT files of the
boot partition's nutlite/ folder into ETC/nut (checked first; for a broken one the last good copy
is kept), writes the image's defaults for the missing ones and a ups.conf for the UPSes it finds
attached when there is none, generates the local upsmon's password once, and sets the host name
and SSH access. A bad file is reported and never stops it."""

EPILOG = """\
Files:
  BOOT/nutlite/            ups.conf, upsd.conf, upsd.users, upsmon.conf, nut.conf, upssched.conf,
                           hostname, authorized_keys
  DATA/credentials/upsmon.password
                           the local upsmon's password (user nutlite-upsmon)
  DATA/config-good/        the last good copy of each file
  RUN/config-status.json   what happened to each file (the exporter publishes it)

See docs/appliance.md."""


def build_parser() -> argparse.ArgumentParser:
    p = help_parser("appliance", DESCRIPTION, prog="nutlite appliance", epilog=EPILOG,
                    usage="nutlite appliance setup [--boot DIR] [--etc DIR] [--data DIR] [--run DIR]\n"
                          "       [--root-home DIR] [--dev DIR] [--sys DIR] [--no-systemd | --systemd]")
    p.add_argument("action", choices=["setup"], metavar="setup", help="the one action: set the system up from the boot partition")
    p.add_argument("--boot", default="/boot/firmware", metavar="DIR",
                   help="the boot partition, whose nutlite/ folder holds the user's files (/boot/firmware)")
    p.add_argument("--etc", default="/etc", metavar="DIR", help="the system's configuration folder (/etc)")
    p.add_argument("--data", default="/var/lib/nutlite", metavar="DIR",
                   help="the persistent data partition (/var/lib/nutlite)")
    p.add_argument("--run", default="/run/nutlite", metavar="DIR", help="the run-time state folder (/run/nutlite)")
    p.add_argument("--root-home", default="/root", metavar="DIR", help="root's home folder (/root)")
    p.add_argument("--dev", default="/dev", metavar="DIR", help="the device folder: serial ports are looked for there, and so are the "
                        "hot-plugged UPSes' /dev ports (/dev)")
    p.add_argument("--sys", default="/sys", metavar="DIR", help="sysfs, where attached USB devices are seen (/sys)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--no-systemd", action="store_true",
                       help="do not run systemctl and udevadm (implied when systemd does not run)")
    group.add_argument("--systemd", action="store_true",
                       help="run systemctl and udevadm even when /run/systemd/system is missing")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths(Path(args.boot), Path(args.etc), Path(args.data), Path(args.run), Path(args.root_home),
                  Path(args.dev), Path(args.sys))
    systemd = args.systemd or (not args.no_systemd and os.path.isdir("/run/systemd/system"))
    ctx = Context(paths, systemd=systemd)
    from nutlite.appliance.setup import setup

    try:
        return setup(ctx)
    except Fatal as exc:
        ctx.say(f"{exc}; nothing more done")
        return 1
