"""The systemd generator that makes one driver unit per ups.conf section.

Installed as ``/lib/systemd/system-generators/nutlite-driver-generator`` (a three-line script that calls
:func:`main`). systemd runs it early at boot and at every ``systemctl daemon-reload`` with three output
folders (normal, early, late; normally ``/run/systemd/generator*``); it writes only into the first:

* ``nut-driver.target.wants/nut-driver@<name>.service``, a link to the template
  ``nut-driver@.service``: the section's driver starts with ``nut-driver.target``;
* ``nut-driver@<name>.service.d/50-nutlite-generator.conf``: ``SourcePath=`` the ups.conf it came from,
  so ``systemctl status`` says where the unit was made from.

A section that describes its device (a USB UPS by ``vendorid``, optionally ``productid`` and
``serial``; a serial port under ``/dev/serial/`` or a USB-serial bridge's ``/dev/ttyUSBn`` /
``/dev/ttyACMn``) is **hot-plugged** instead of being wanted by ``nut-driver.target``: the generator
writes one udev rule per such section into ``/run/udev/rules.d/90-nutlite-hotplug.rules``
(``TAG+="systemd"``, ``ENV{SYSTEMD_WANTS}+="nut-driver@<name>.service"``; a USB rule also makes the
symlink ``/dev/nutlite/<name>``), and the drop-in binds the driver to the device unit
(``BindsTo=``/``After=`` ``dev-….device``): plugging the UPS in starts the driver, unplugging it stops
it, and udev's coldplug at boot does the same for a UPS already there. ``NUTLITE_UDEV_RULES_DIR``
moves the rules file elsewhere (tests). See docs/hotplug.md.

``<name>`` is the section name escaped as ``systemd-escape`` escapes a string, so that ``%I`` in the
template gives the section name back. Nothing is written to ``/etc``: editing ups.conf and running
``systemctl daemon-reload`` is all it takes to add or remove a driver.

A generator must be fast and must never hold up the boot: any problem (no ups.conf, a file nutlite's
drivers would reject, a name too long for a unit) is one line on stderr, which systemd puts in the
journal, and the generator still exits 0, generating nothing for what it could not use.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROG = "nutlite-driver-generator"
TEMPLATE = "nut-driver@.service"
TARGET_WANTS = "nut-driver.target.wants"
DROPIN = "50-nutlite-generator.conf"
# systemd's UNIT_NAME_MAX: a unit name is at most 255 characters.
UNIT_NAME_MAX = 255
# Where the package installs the template (the link target; systemd also accepts a bare name).
UNIT_DIR = "/lib/systemd/system"
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")
UDEV_RULES_DIR = "/run/udev/rules.d"
UDEV_RULES = "90-nutlite-hotplug.rules"
UDEV_DIR_ENV = "NUTLITE_UDEV_RULES_DIR"
HOTPLUG_END = "nutlite_hotplug_end"
#: drivers that reach their UPS over USB (nutdrv_qx also serial: a /dev/ port makes it serial)
USB_DRIVERS = frozenset({"usbhid-ups", "nutdrv_qx", "blazer_usb", "tripplite_usb", "bcmxcp_usb", "richcomm_usb",
                         "riello_usb", "apc_modbus"})
#: serial ports that come and go: USB-serial bridges (FTDI 0403, CH340 1a86, PL2303 067b, CP210x 10c4
#: are ttyUSBn; CDC-ACM ones ttyACMn) and the stable names udev gives them
_HOTPLUG_TTY = re.compile(r"/dev/(tty(USB|ACM)[0-9]+|serial/by-(id|path)/[^/]+)")
_HEX_ID = re.compile(r"(0x)?[0-9a-fA-F]{1,4}")
# Characters that are glob patterns in a udev match, or end a udev string: such a value cannot be
# matched literally.
_NOT_LITERAL = re.compile(r'[*?\[\]|"\\]|[\x00-\x1f]')
_REGEX_CHARS = re.compile(r"[.^$*+?()\[\]{}|\\]")
_SYMLINK_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


def systemd_escape(text: str) -> str:
    """``text`` escaped as ``systemd-escape TEXT`` does: ``/`` becomes ``-``; ASCII letters, digits,
    ``:``, ``_`` and ``.`` (but not a leading ``.``) stay; every other byte of the UTF-8 text becomes
    ``\\xNN``."""
    out: list[str] = []
    for i, byte in enumerate(text.encode("utf-8")):
        if byte == ord("/"):
            out.append("-")
        elif byte in _PLAIN and not (i == 0 and byte == ord(".")):
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def systemd_escape_path(path: str) -> str:
    """``path`` escaped as ``systemd-escape --path PATH`` does (the name of a device unit without
    ``.device``): leading, trailing and repeated slashes dropped, then escaped; ``/`` alone is ``-``."""
    parts = [p for p in path.split("/") if p]
    return systemd_escape("/".join(parts)) if parts else "-"


def device_unit(path: str) -> str:
    """The device unit systemd makes for the node or symlink ``path``: ``dev-ttyUSB0.device``."""
    return f"{systemd_escape_path(path)}.device"


def symlink_name(section: str) -> str:
    """The name under /dev/nutlite/ of the USB UPS of ``section``: the section name where it is made
    of letters, digits and ``_.:-``, every other byte as ``_xNN`` (a udev SYMLINK value splits at blanks)."""
    out = []
    for ch in section:
        if ch in _SYMLINK_SAFE:
            out.append(ch)
        else:
            out.extend(f"_x{b:02x}" for b in ch.encode("utf-8"))
    name = "".join(out)
    return "_x2e" + name[1:] if name.startswith(".") else name


def instance_unit(section: str) -> str:
    """The unit name of the driver of ``section``: ``nut-driver@<escaped>.service``."""
    return f"nut-driver@{systemd_escape(section)}.service"


def _say(message: str) -> None:
    try:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)
    except OSError:  # stderr closed: nothing more to do
        pass


def _conf(ups_conf: Path, say: Callable[[str], None]) -> object | None:
    from nutlite.config import ConfigError, load_ups_conf

    try:
        conf = load_ups_conf(ups_conf)
    except ConfigError as exc:
        say(f"{exc}; no driver units generated (fix it, then run 'systemctl daemon-reload')")
        return None
    for warning in conf.warnings:
        say(warning)
    return conf


def sections(ups_conf: Path) -> list[str] | None:
    """The sections of ``ups_conf`` that have a driver and a port (the ones nutlite's drivers and
    upsdrvctl accept), or None (after saying why on stderr) when the file cannot be used at all."""
    conf = _conf(ups_conf, _say)
    return None if conf is None else list(conf.ups)  # type: ignore[attr-defined]


@dataclass
class Hotplug:
    """How one section's UPS is recognised: the udev rule that wants its driver, and the device unit
    the driver is bound to."""

    section: str
    unit: str
    rule: str
    device: str  # the device unit (BindsTo=/After=)
    what: str  # for the comment above the rule


@dataclass
class HotplugPlan:
    """What the generator makes of one ups.conf: the sections and their hot-plug rules."""

    source: Path
    sections: list[str] = field(default_factory=list)  # every usable section, hot-plugged or not
    entries: list[Hotplug] = field(default_factory=list)
    conf: object = None  # the parsed ups.conf (nutlite.config.UpsConf)

    def rules_text(self) -> str:
        lines = [f"# Generated by {PROG} from {self.source}; do not edit: edit ups.conf and run",
                 "# 'systemctl daemon-reload', then 'udevadm control --reload' (see docs/hotplug.md).",
                 "# Each rule starts the driver of one ups.conf section when its UPS appears (and at boot",
                 "# through udev's coldplug); the driver unit is bound to the device, so it stops when the",
                 "# UPS goes away.", "", f'ACTION=="remove", GOTO="{HOTPLUG_END}"', ""]
        for e in self.entries:
            lines += [f"# [{e.section}]: {e.what}", e.rule]
        lines += ["", f'LABEL="{HOTPLUG_END}"', ""]
        return "\n".join(lines)


def _usb_id(value: str | None) -> str | None:
    if value is None or not _HEX_ID.fullmatch(value):
        return None
    return f"{int(value, 16):04x}"


def _hotplug(name: str, sec: object, unit: str, ups_conf: Path, say: Callable[[str], None]) -> Hotplug | None:
    """The hot-plug rule of a section, or None when its driver starts with nut-driver.target as before
    (no device description, or one a udev rule cannot match, said on stderr)."""
    driver, port = sec.driver, sec.port  # type: ignore[attr-defined]
    get = sec.get  # type: ignore[attr-defined]
    wants = f'TAG+="systemd", ENV{{SYSTEMD_WANTS}}+="{unit}"'
    where = f"{ups_conf}: section [{name}]"
    fallback = "its driver starts with nut-driver.target, without hot-plug"
    if driver in USB_DRIVERS and not port.startswith("/dev/"):
        raw = {k: get(k) for k in ("vendorid", "productid", "serial")}
        if raw["vendorid"] is None:
            return None  # any UPS of the driver: nothing to recognise it by
        vendor, product = _usb_id(raw["vendorid"]), _usb_id(raw["productid"])
        serial = raw["serial"]
        bad = [k for k, v, ok in (("vendorid", raw["vendorid"], vendor), ("productid", raw["productid"], product))
               if v is not None and ok is None]
        if serial is not None and (_NOT_LITERAL.search(serial) or re.search(r"[\^$+(){}]", serial)):
            bad.append("serial")
        if bad:
            say(f"{where}: {' and '.join(bad)} is a pattern a udev rule cannot match (hot-plug needs the plain "
                f"value: 4 hex digits for an id); {fallback}")
            return None
        match = f'SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", ATTR{{idVendor}}=="{vendor}"'
        what = f"USB {vendor}:{product or '*'}"
        if product is not None:
            match += f', ATTR{{idProduct}}=="{product}"'
        if serial is not None:
            match += f', ATTR{{serial}}=="{serial}"'
            what += f" serial {serial}"
        link = f"nutlite/{symlink_name(name)}"
        rule = f'{match}, MODE="0664", GROUP="nut", SYMLINK+="{link}", {wants}'
        return Hotplug(name, unit, rule, device_unit(f"/dev/{link}"), f"{what} ({driver})")
    if port.startswith("/dev/") and _HOTPLUG_TTY.fullmatch(port):
        if _NOT_LITERAL.search(port):
            say(f"{where}: port {port} has characters a udev rule cannot match; {fallback}")
            return None
        rest = port.removeprefix("/dev/")
        match = f'KERNEL=="{rest}"' if "/" not in rest else f'SYMLINK=="{rest}"'
        rule = f'SUBSYSTEM=="tty", {match}, {wants}'
        return Hotplug(name, unit, rule, device_unit(port), f"serial port {port} ({driver})")
    return None


def hotplug_plan(ups_conf: Path, say: Callable[[str], None] = _say) -> HotplugPlan | None:
    """The hot-plug rules of the sections of ``ups_conf`` (None when the file cannot be used)."""
    conf = _conf(ups_conf, say)
    if conf is None:
        return None
    plan = HotplugPlan(ups_conf, list(conf.ups), conf=conf)  # type: ignore[attr-defined]
    for name, sec in conf.ups.items():  # type: ignore[attr-defined]
        if len(instance_unit(name)) > UNIT_NAME_MAX:
            continue  # generate() says so; no unit, so no rule either
        entry = _hotplug(name, sec, instance_unit(name), ups_conf, say)
        if entry is not None:
            plan.entries.append(entry)
    return plan


def rules_dir() -> Path:
    """Where the hot-plug rules go: ``NUTLITE_UDEV_RULES_DIR`` (tests), else /run/udev/rules.d."""
    return Path(os.environ.get(UDEV_DIR_ENV) or UDEV_RULES_DIR)


def write_rules(plan: HotplugPlan | None, rules_dir: Path) -> None:
    """Write the hot-plug rules file (atomically), or remove a stale one when no section hot-plugs."""
    path = rules_dir / UDEV_RULES
    if plan is None or not plan.entries:
        if path.is_file():
            path.unlink()
        return
    rules_dir.mkdir(parents=True, exist_ok=True)
    tmp = rules_dir / f".{UDEV_RULES}.tmp"
    tmp.write_text(plan.rules_text())
    tmp.replace(path)


def instances(plan: HotplugPlan, say: Callable[[str], None] = _say) -> list[tuple[str, str, Hotplug | None]]:
    """Each section's driver unit, once: (section, unit name, its hot-plug rule or None when
    nut-driver.target starts it). A name too long for a unit is said and left out."""
    hot = {e.section: e for e in plan.entries}
    found: list[tuple[str, str, Hotplug | None]] = []
    seen: set[str] = set()
    for section in plan.sections:
        unit = instance_unit(section)
        if len(unit) > UNIT_NAME_MAX:
            say(f"{plan.source}: section [{section}]: its unit name would be longer than {UNIT_NAME_MAX} "
                "characters; no driver unit generated for it (choose a shorter name)")
            continue
        if unit not in seen:
            seen.add(unit)
            found.append((section, unit, hot.get(section)))
    return found


def _dropin(ups_conf: Path, section: str, hot: Hotplug | None) -> str:
    # ups.conf's path goes into a unit file: escape what systemd would read as a specifier.
    source = str(ups_conf).replace("%", "%%")
    text = (f"# Generated by {PROG} from section [{section}] of {ups_conf}; do not edit:\n"
            f"# edit ups.conf and run 'systemctl daemon-reload'.\n[Unit]\nSourcePath={source}\n")
    if hot is not None:
        text += (f"# Hot-plugged: started by udev when {hot.what} appears, stopped when it goes away.\n"
                 f"BindsTo={hot.device}\nAfter={hot.device}\n")
    return text


def generate(ups_conf: Path, outdir: Path, rules_dir: Path | None = None) -> list[str]:
    """Write the driver instances of ``ups_conf`` into ``outdir`` and the hot-plug rules into
    ``rules_dir`` (None: leave udev's rules alone); return the unit names written."""
    plan = hotplug_plan(ups_conf)
    if rules_dir is not None:
        write_rules(plan, rules_dir)
    if plan is None:
        return []
    written: list[str] = []
    for section, unit, entry in instances(plan):
        if entry is None:  # no device to wait for: started with nut-driver.target, as always
            wants = outdir / TARGET_WANTS
            wants.mkdir(parents=True, exist_ok=True)
            link = wants / unit
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(f"{UNIT_DIR}/{TEMPLATE}")
        dropin = outdir / f"{unit}.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / DROPIN).write_text(_dropin(ups_conf, section, entry))
        written.append(unit)
    return written


def main(argv: list[str] | None = None) -> int:
    """``nutlite-driver-generator NORMAL_DIR [EARLY_DIR LATE_DIR]``; always exits 0."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        _say("usage: nutlite-driver-generator NORMAL_DIR [EARLY_DIR LATE_DIR] (systemd runs it at boot)")
        return 0
    confdir = Path(os.environ.get("NUT_CONFPATH") or "/etc/nut")
    ups_conf = confdir / "ups.conf"
    try:
        rules = rules_dir()
        if not ups_conf.exists():
            write_rules(None, rules)  # no UPS configured here: nothing to start
            return 0
        generate(ups_conf, Path(args[0]), rules)
    except Exception as exc:  # noqa: BLE001 - a generator must never fail the boot
        _say(f"cannot generate the driver units from {ups_conf}: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
