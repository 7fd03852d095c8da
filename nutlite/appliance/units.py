"""Step 8 of ``nutlite appliance setup``: when ups.conf changed, have systemd and udev take the new
one (the driver generator makes the units and the hot-plug rules), and start the driver of every
hot-plugged UPS that is already there."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nutlite.appliance.files import Context

TIMEOUT = 60


def run(ctx: Context, argv: list[str]) -> bool:
    """Run one command (at most TIMEOUT seconds); a failure is one line, never fatal."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        ctx.say(f"{argv[0]} is not installed: '{' '.join(argv)}' not run")
        return False
    except subprocess.TimeoutExpired:
        ctx.say(f"'{' '.join(argv)}' did not finish within {TIMEOUT} s")
        return False
    except OSError as exc:
        ctx.say(f"cannot run '{' '.join(argv)}': {exc.strerror or exc}")
        return False
    if r.returncode != 0:
        detail = " ".join((r.stderr or r.stdout).split())[-300:]
        ctx.say(f"'{' '.join(argv)}' failed (exit {r.returncode}){': ' + detail if detail else ''}")
        return False
    return True


def _sysfs(path: Path, name: str) -> str | None:
    try:
        return (path / name).read_text().strip()
    except OSError:
        return None


def usb_present(sysfs: Path, vendor: str, product: str | None, serial: str | None) -> Path | None:
    """The sysfs folder of an attached USB device with these ids (and serial number), or None."""
    devices = sysfs / "bus" / "usb" / "devices"
    if not devices.is_dir():
        return None
    for dev in sorted(devices.iterdir()):
        if (_sysfs(dev, "idVendor") or "").lower() != vendor:
            continue
        if product is not None and (_sysfs(dev, "idProduct") or "").lower() != product:
            continue
        if serial is not None and _sysfs(dev, "serial") != serial:
            continue
        return dev
    return None


def present_sections(ctx: Context, ups_conf: Path) -> list[tuple[str, Path | None]]:
    """The hot-plugged sections of ``ups_conf`` whose device is attached now: their unit names, and for
    a USB UPS its sysfs folder."""
    from nutlite.config import ConfigError, load_ups_conf
    from nutlite.systemd_generator import _usb_id, hotplug_plan

    plan = hotplug_plan(ups_conf, ctx.say)
    if plan is None:
        return []
    try:
        conf = load_ups_conf(ups_conf)
    except ConfigError:
        return []
    units = []
    for entry in plan.entries:
        sec = conf.ups[entry.section]
        port = sec.port
        if port.startswith("/dev/"):  # looked for under --dev
            if (ctx.paths.dev / port.removeprefix("/dev/")).exists():
                units.append((entry.unit, None))
            continue
        vendor = _usb_id(sec.get("vendorid"))
        found = None if vendor is None else usb_present(ctx.paths.sys, vendor, _usb_id(sec.get("productid")),
                                                        sec.get("serial"))
        if found is not None:
            units.append((entry.unit, found))
    return units


def reload_and_start(ctx: Context, ups_changed: bool) -> None:
    if not ups_changed:
        return
    run(ctx, ["systemctl", "daemon-reload"])
    run(ctx, ["udevadm", "control", "--reload"])
    # The boot's start job of nut-driver.target was queued with the links of the old ups.conf: ask for
    # it again, so that the drivers the new links name (sections that are not hot-plugged) start too.
    run(ctx, ["systemctl", "start", "--no-block", "nut-driver.target"])
    ups_conf = ctx.paths.nut_dir / "ups.conf"
    for unit, usb in present_sections(ctx, ups_conf):
        if usb is not None:
            # udev's coldplug saw this UPS before the new rule existed: replay its "add" so that the
            # rule makes /dev/nutlite/<section>, the device the driver is bound to
            run(ctx, ["udevadm", "trigger", "--action=add", str(usb)])
        if run(ctx, ["systemctl", "start", "--no-block", unit]):
            ctx.say(f"started {unit}: its UPS is attached")
