"""The image's own NUT files: what ``nutlite appliance setup`` installs for a file the boot partition's
``nutlite/`` folder does not have (see docs/appliance.md)."""

from __future__ import annotations

from collections.abc import Iterable

#: the upsd.users section of the local upsmon; its password is generated at first boot
UPSMON_USER = "nutlite-upsmon"
#: the placeholder a user's upsmon.conf may give as the password of UPSMON_USER
GENERATED = "@GENERATED@"
POWERDOWNFLAG = "/run/nut/killpower"
HEADER = "# Written by nutlite appliance setup at boot: {why}.\n"
CHANGE = ("# To change it, put your own {name} into the nutlite/ folder of the boot partition\n"
          "# (see docs/appliance.md); this copy is rewritten at every boot.\n")


def header(name: str, why: str) -> str:
    return HEADER.format(why=why) + CHANGE.format(name=name)


def nut_conf() -> str:
    return header("nut.conf", "the image's default") + "MODE=netserver\n"


def upsd_conf() -> str:
    return (header("upsd.conf", "the image's default") +
            "# upsd answers on every address, IPv4 and IPv6, port 3493; it also runs while ups.conf\n"
            "# has no UPS (none was found), so that the exporter and upsc can say so.\n"
            "LISTEN 0.0.0.0 3493\nLISTEN :: 3493\nALLOW_NO_DEVICE true\n")


def upsmon_section(password: str) -> str:
    """The upsd.users section of the local upsmon; nothing else may log in by default."""
    return (f"# The local upsmon (its password was generated at first boot). No other user is defined:\n"
            f"# nobody can control the UPS or force a shutdown from the network until you add one.\n"
            f"[{UPSMON_USER}]\n\tpassword = {password}\n\tupsmon primary\n")


def upsd_users(password: str) -> str:
    return header("upsd.users", "the image's default") + upsmon_section(password)


def monitor_lines(upses: Iterable[str], password: str) -> str:
    return "".join(f"MONITOR {ups}@localhost 1 {UPSMON_USER} {password} primary\n" for ups in upses)


def upsmon_conf(upses: list[str], password: str) -> str:
    monitors = monitor_lines(upses, password) or "# (no UPS is configured in ups.conf, so none is monitored)\n"
    return (header("upsmon.conf", "the image's default") +
            "RUN_AS_USER nut\n" + monitors +
            "MINSUPPLIES 1\n"
            'SHUTDOWNCMD "/sbin/shutdown -h +0"\n'
            f"POWERDOWNFLAG {POWERDOWNFLAG}\n"
            "POLLFREQ 5\nPOLLFREQALERT 5\nHOSTSYNC 15\nDEADTIME 15\n"
            "RBWARNTIME 43200\nNOCOMMWARNTIME 300\nFINALDELAY 5\n")


def detected_header() -> str:
    return header("ups.conf", "the UPSes found attached at boot")


NO_UPS = ("# No UPS was found attached (USB, or a USB-serial adapter) at boot.\n")
