"""Step 8 of ``nutlite appliance setup``: when ups.conf changed, start its drivers now and have
systemd take the new file once the stack is up.

The driver generator ran at the start of the boot, on the image's ups.conf. A ``systemctl
daemon-reload`` would run it again on the new one, but under QEMU it stops the service manager for
5-12 s in the middle of the boot. So this step does without it at first: it writes the generator's
hot-plug rules itself (udev then starts a hot-plugged driver when its UPS appears) and starts the
driver instances of the template directly. nutlite-appliance-reload.service does the reload after
the NUT services have started; from then on the generator's units (nut-driver.target's links, the
hot-plugged drivers' BindsTo= on their device) are in place, as after any boot."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from nutlite.appliance.files import Context, describe_error

if TYPE_CHECKING:
    from nutlite.systemd_generator import HotplugPlan

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


RELOAD_UNIT = "nutlite-appliance-reload.service"


def present_sections(ctx: Context, plan: HotplugPlan) -> list[tuple[str, Path | None]]:
    """The hot-plugged sections of ``plan`` whose device is attached now: their unit names, and for a
    USB UPS its sysfs folder."""
    from nutlite.systemd_generator import _usb_id

    units = []
    for entry in plan.entries:
        sec = plan.conf.ups[entry.section]  # type: ignore[attr-defined]
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
    from nutlite.systemd_generator import hotplug_plan, instances, rules_dir, write_rules

    ups_conf = ctx.paths.nut_dir / "ups.conf"
    plan = hotplug_plan(ups_conf, ctx.say)
    rules = rules_dir()
    try:
        write_rules(plan, rules)
    except OSError as exc:
        ctx.say(f"cannot write the hot-plug rules into {rules}: {describe_error(exc)}")
    run(ctx, ["udevadm", "control", "--reload"])
    if plan is not None:
        for _section, unit, hot in instances(plan, lambda _text: None):  # the generator says it again
            if hot is None:  # what nut-driver.target would have started
                run(ctx, ["systemctl", "start", "--no-block", unit])
        for unit, usb in present_sections(ctx, plan):
            if usb is not None:
                # udev's coldplug saw this UPS before the rule existed: replay its "add" so that the
                # rule makes /dev/nutlite/<section> and wants the driver
                run(ctx, ["udevadm", "trigger", "--action=add", str(usb)])
            if run(ctx, ["systemctl", "start", "--no-block", unit]):
                ctx.say(f"started {unit}: its UPS is attached")
    run(ctx, ["systemctl", "start", "--no-block", RELOAD_UNIT])
