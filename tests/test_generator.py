"""The systemd generator (nutlite/systemd_generator.py, installed as nutlite-driver-generator).

It is run as systemd runs it: a process with the three output folders as arguments (here tmp folders)
and NUT_CONFPATH pointing at a sample ups.conf. Instance names are compared with systemd's own
``systemd-escape``; ``systemd-analyze verify`` loads the generated links and drop-ins next to the
shipped units.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_systemd_units import assert_verified, verifiable_copies

from nutlite.systemd_generator import DROPIN, TEMPLATE, UDEV_DIR_ENV, UDEV_RULES, UNIT_DIR, systemd_escape

REPO = Path(__file__).resolve().parent.parent
SYSTEMD_DIR = REPO / "systemd"
WANTS = "nut-driver.target.wants"


def run_generator(tmp: Path, ups_conf: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    conf = tmp / "conf"
    conf.mkdir(exist_ok=True)
    if ups_conf is not None:
        (conf / "ups.conf").write_text(ups_conf)
    out = tmp / "generator"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "NUT_CONFPATH": str(conf), "PYTHONPATH": str(REPO), UDEV_DIR_ENV: str(tmp / "udev")}
    proc = subprocess.run([sys.executable, "-m", "nutlite.systemd_generator", str(out), str(tmp / "early"),
                           str(tmp / "late")], capture_output=True, text=True, timeout=30, env=env)
    return proc, out


def section(name: str, driver: str = "dummy-ups", port: str = "ups.dev") -> str:
    return f"[{name}]\n  driver = {driver}\n  port = {port}\n"


def escape(text: str) -> str:
    return subprocess.run(["systemd-escape", "--", text], capture_output=True, text=True, check=True).stdout.strip()


def test_one_instance_per_section(tmp_path: Path) -> None:
    proc, out = run_generator(tmp_path, section("ups1") + section("ups2", "nutdrv_qx", "/dev/ttyS0"))
    assert proc.returncode == 0 and proc.stderr == ""
    links = sorted((out / WANTS).iterdir())
    assert [p.name for p in links] == ["nut-driver@ups1.service", "nut-driver@ups2.service"]
    for link in links:
        assert link.is_symlink() and os.readlink(link) == f"{UNIT_DIR}/{TEMPLATE}"
        dropin = (out / f"{link.name}.d" / DROPIN).read_text()
        assert f"SourcePath={tmp_path / 'conf' / 'ups.conf'}" in dropin.splitlines()
    # Only the normal folder is written; nothing anywhere else.
    assert not (tmp_path / "early").exists() and not (tmp_path / "late").exists()
    assert sorted(p.name for p in out.iterdir()) == [WANTS, "nut-driver@ups1.service.d", "nut-driver@ups2.service.d"]


def test_rerun_after_edit_replaces_the_links(tmp_path: Path) -> None:
    """systemd gives a generator fresh folders, but a second run into the same one must not fail."""
    run_generator(tmp_path, section("ups1"))
    proc, out = run_generator(tmp_path, section("ups1") + section("ups3"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / WANTS).iterdir()) == ["nut-driver@ups1.service", "nut-driver@ups3.service"]


NAMES = ["my-ups", "a.b", ".hidden", "UPS_2", "rack:1", "my ups", "a/b", "a\\b", "x-y-z", "-lead", "ü", "%i"]


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
@pytest.mark.parametrize("name", NAMES)
def test_escape_matches_systemd_escape(name: str) -> None:
    assert systemd_escape(name) == escape(name)


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
def test_escaped_section_names_come_back_as_percent_i(tmp_path: Path) -> None:
    """Names with characters a unit name cannot hold: the link is systemd-escape's, and unescaping its
    instance (what %I gives the driver) is the section name again."""
    names = ["my-ups", "a.b", ".hidden", "UPS_2", "rack:1", "my\\ ups", "%i"]
    conf = "".join(section(n) for n in names)
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0 and proc.stderr == ""
    sections = [n.replace("\\ ", " ") for n in names]  # NUT's parser: a backslash keeps the blank
    links = sorted(p.name for p in (out / WANTS).iterdir())
    assert links == sorted(f"nut-driver@{escape(s)}.service" for s in sections)
    for link in links:
        instance = link.removeprefix("nut-driver@").removesuffix(".service")
        back = subprocess.run(["systemd-escape", "--unescape", "--", instance], capture_output=True, text=True,
                              check=True).stdout.rstrip("\n")
        assert back in sections
    # A '%' in a path written into a unit file is doubled (else systemd reads a specifier).
    pct = tmp_path / "p%t"
    pct.mkdir()
    proc, out = run_generator(pct, section("ups1"))
    assert f"SourcePath={pct}/conf/ups.conf".replace("%", "%%") in (
        out / "nut-driver@ups1.service.d" / DROPIN).read_text()


def test_no_ups_conf_generates_nothing_quietly(tmp_path: Path) -> None:
    proc, out = run_generator(tmp_path, None)
    assert proc.returncode == 0 and proc.stderr == "" and list(out.iterdir()) == []


def test_no_arguments_is_not_a_failure(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "nutlite.systemd_generator"], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "usage: nutlite-driver-generator" in proc.stderr


@pytest.mark.parametrize("broken, where", [
    (section("ups1") + section("ups1"), "ups.conf:4"),  # a section twice
    (section("ups1") + "[]\n", "ups.conf:4"),  # an empty section name
    (section("ups1") + "  sdorder = soon\n", "ups.conf:4"),  # not a number
])
def test_broken_ups_conf_never_fails_the_boot(tmp_path: Path, broken: str, where: str) -> None:
    """A file the drivers would reject: exit 0, one line on stderr naming the file and line, no units."""
    proc, out = run_generator(tmp_path, broken)
    assert proc.returncode == 0
    assert where in proc.stderr and "no driver units generated" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert list(out.iterdir()) == []


def test_incomplete_or_unnameable_sections_are_left_out(tmp_path: Path) -> None:
    long = "u" * 260
    conf = section("ups1") + "[nodriver]\n  port = x\n" + section(long) + usb("v" * 260, vendorid="051d")
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0
    assert "[nodriver] has no 'driver'" in proc.stderr
    assert f"[{long}]" in proc.stderr and "longer than 255" in proc.stderr
    assert f"[{'v' * 260}]" in proc.stderr  # a hot-plug section too, and no rule wants its unit
    assert [p.name for p in (out / WANTS).iterdir()] == ["nut-driver@ups1.service"]
    assert not (tmp_path / "udev" / UDEV_RULES).exists()


def test_unwritable_output_folder_never_fails(tmp_path: Path) -> None:
    (tmp_path / "generator").write_text("not a folder")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ups.conf").write_text(section("ups1"))
    proc = subprocess.run([sys.executable, "-m", "nutlite.systemd_generator", str(tmp_path / "generator")],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NUT_CONFPATH": str(conf), "PYTHONPATH": str(REPO),
                               UDEV_DIR_ENV: str(tmp_path / "udev")})
    assert proc.returncode == 0
    assert "cannot generate the driver units" in proc.stderr and "Traceback" not in proc.stderr


def test_installed_script_calls_the_module() -> None:
    script = (REPO / "packaging" / "nutlite-driver-generator").read_text().splitlines()
    assert script[0] == "#!/usr/bin/python3 -I" and len(script) == 3
    assert "from nutlite.systemd_generator import main" in script


def test_fast(tmp_path: Path) -> None:
    """Boot-time budget: 20 sections in well under a second on a slow machine (figure printed)."""
    conf = "".join(section(f"ups{i}") for i in range(20))
    started = time.monotonic()
    proc, out = run_generator(tmp_path, conf)
    took = time.monotonic() - started
    print(f"generator, 20 sections: {took * 1000:.0f} ms")
    assert proc.returncode == 0 and len(list((out / WANTS).iterdir())) == 20


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_generated_units(tmp_path: Path) -> None:
    """The shipped units plus what the generator made, loaded the way systemd loads them (the generator
    folder first in the unit path): no warning at all."""
    units = verifiable_copies(tmp_path, [*SYSTEMD_DIR.glob("*.service"), *SYSTEMD_DIR.glob("*.target")])
    proc, out = run_generator(tmp_path, section("ups1") + section("my-ups") + section("rack:2"))
    assert proc.returncode == 0
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{out}:{units}:"}
    assert_verified([units / "nut-driver.target", units / "nut.target"], tmp_path, env)


# ---- hot-plug: udev rules that want a section's driver, drop-ins that bind it to its device

def usb(name: str, driver: str = "usbhid-ups", **ids: str) -> str:
    return f"[{name}]\n  driver = {driver}\n  port = auto\n" + "".join(f"  {k} = {v}\n" for k, v in ids.items())


def escape_path(path: str) -> str:
    return subprocess.run(["systemd-escape", "--path", "--suffix=device", "--", path], capture_output=True,
                          text=True, check=True).stdout.strip()


def hot_rules(tmp: Path) -> dict[str, str]:
    """The hot-plug rules file's rules, by the unit each one wants."""
    text = (tmp / "udev" / UDEV_RULES).read_text()
    rules = {}
    for line in text.splitlines():
        m = re.search(r'ENV\{SYSTEMD_WANTS\}\+="([^"]+)"', line)
        if m:
            assert 'TAG+="systemd"' in line and not line.startswith("#")
            rules[m.group(1)] = line
    lines = text.splitlines()
    assert lines[lines.index(next(ln for ln in lines if not ln.startswith("#") and ln))] == \
        'ACTION=="remove", GOTO="nutlite_hotplug_end"' and lines[-1] == 'LABEL="nutlite_hotplug_end"'
    return rules


def dropin(out: Path, unit: str) -> list[str]:
    return (out / f"{unit}.d" / DROPIN).read_text().splitlines()


def wanted(out: Path) -> list[str]:
    return sorted(p.name for p in (out / WANTS).iterdir()) if (out / WANTS).exists() else []


def test_usb_section_by_ids_is_hot_plugged(tmp_path: Path) -> None:
    """A USB UPS described by its ids: a udev rule on the usb_device gives it to group nut, links
    /dev/nutlite/<section> and wants the driver; the driver is bound to that link's device unit and is
    no longer wanted by nut-driver.target (which would start it with no UPS there)."""
    conf = usb("apc", vendorid="051D", productid="0x0002") + section("dummy")
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert wanted(out) == ["nut-driver@dummy.service"]  # the dummy-ups section starts as before
    rule = hot_rules(tmp_path)["nut-driver@apc.service"]
    assert rule == ('SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="051d", '
                    'ATTR{idProduct}=="0002", MODE="0664", GROUP="nut", SYMLINK+="nutlite/apc", '
                    'TAG+="systemd", ENV{SYSTEMD_WANTS}+="nut-driver@apc.service"')
    lines = dropin(out, "nut-driver@apc.service")
    assert "BindsTo=dev-nutlite-apc.device" in lines and "After=dev-nutlite-apc.device" in lines
    assert not [ln for ln in dropin(out, "nut-driver@dummy.service") if ln.startswith(("BindsTo", "After"))]


def test_usb_section_with_a_serial_number(tmp_path: Path) -> None:
    """Two UPSes of one model told apart by serial: one rule each, matching the serial attribute."""
    conf = usb("left", vendorid="0764", productid="0501", serial="CTHGQ2000123") + \
        usb("right", vendorid="0764", productid="0501", serial='"CTHGQ2000456"')
    proc, _out = run_generator(tmp_path, conf)
    assert proc.returncode == 0 and proc.stderr == ""
    rules = hot_rules(tmp_path)
    assert 'ATTR{idProduct}=="0501", ATTR{serial}=="CTHGQ2000123", MODE=' in rules["nut-driver@left.service"]
    assert 'ATTR{serial}=="CTHGQ2000456"' in rules["nut-driver@right.service"]
    # vendorid alone: every product of the vendor (as the driver matches it).
    proc, _out = run_generator(tmp_path, usb("any", "nutdrv_qx", vendorid="0665"))
    rule = hot_rules(tmp_path)["nut-driver@any.service"]
    assert 'ATTR{idVendor}=="0665", MODE=' in rule and "idProduct" not in rule


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
@pytest.mark.parametrize("port, match", [
    ("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KZ3QX-if00-port0",
     'SYMLINK=="serial/by-id/usb-FTDI_FT232R_USB_UART_A10KZ3QX-if00-port0"'),
    ("/dev/serial/by-path/platform-3f980000.usb-usb-0:1.2:1.0-port0",
     'SYMLINK=="serial/by-path/platform-3f980000.usb-usb-0:1.2:1.0-port0"'),
    ("/dev/ttyUSB0", 'KERNEL=="ttyUSB0"'),
    ("/dev/ttyACM1", 'KERNEL=="ttyACM1"'),
])
def test_usb_serial_port_is_hot_plugged(tmp_path: Path, port: str, match: str) -> None:
    """A Q1 or APC smart UPS behind a USB-serial bridge: the tty device wants the driver, which is
    bound to the device unit systemd names after the port (systemd-escape --path)."""
    proc, out = run_generator(tmp_path, section("q1", "nutdrv_qx", port) + section("ser", "apcsmart", "/dev/ttyS0"))
    assert proc.returncode == 0 and proc.stderr == ""
    rules = hot_rules(tmp_path)
    assert rules == {"nut-driver@q1.service":
                     f'SUBSYSTEM=="tty", {match}, TAG+="systemd", ENV{{SYSTEMD_WANTS}}+="nut-driver@q1.service"'}
    device = escape_path(port)
    assert f"BindsTo={device}" in dropin(out, "nut-driver@q1.service")
    assert f"After={device}" in dropin(out, "nut-driver@q1.service")
    # A built-in serial port never goes away: started by nut-driver.target as before.
    assert wanted(out) == ["nut-driver@ser.service"]


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
def test_odd_section_names_in_rules_and_dropins(tmp_path: Path) -> None:
    """The unit a rule wants is systemd-escape's name; the /dev/nutlite link has no blank or backslash
    (udev splits SYMLINK at blanks) and the drop-in binds to that link's device unit."""
    names = {"my\\ ups": "my ups", "rack:1-a": "rack:1-a", ".hid": ".hid", "50%$x": "50%$x"}
    conf = "".join(usb(raw, vendorid="051d", productid="0002") for raw in names)
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rules = hot_rules(tmp_path)
    links = set()
    for name in names.values():
        unit = f"nut-driver@{escape(name)}.service"
        rule = rules[unit]
        link = re.search(r'SYMLINK\+="([^"]+)"', rule).group(1)
        assert re.fullmatch(r"nutlite/[A-Za-z0-9_.:-]+", link) and not link.startswith("nutlite/.")
        assert "%" not in rule and "$" not in rule  # udev would substitute them
        links.add(link)
        assert f"BindsTo={escape_path('/dev/' + link)}" in dropin(out, unit)
    assert len(links) == len(names)
    assert rules["nut-driver@rack:1\\x2da.service"].count('SYMLINK+="nutlite/rack:1-a"') == 1


def test_patterns_a_udev_rule_cannot_match_keep_the_target(tmp_path: Path) -> None:
    """NUT's ids and serial are regular expressions; one that is not a plain value cannot become a
    udev match: one line says so and the driver starts with nut-driver.target as before."""
    conf = usb("re", vendorid="05.d") + usb("star", vendorid="051d", serial="AB*") + usb("plain")
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    said = proc.stderr.splitlines()
    assert len(said) == 2 and "[re]: vendorid is a pattern" in said[0] and "[star]: serial" in said[1]
    assert all("without hot-plug" in s for s in said)
    # No id at all (port = auto, any UPS of the driver): nothing to recognise it by, no warning.
    assert wanted(out) == ["nut-driver@plain.service", "nut-driver@re.service", "nut-driver@star.service"]
    assert not (tmp_path / "udev" / UDEV_RULES).exists()


def test_stale_hotplug_rules_are_removed(tmp_path: Path) -> None:
    """Editing the hot-plug section out of ups.conf (or removing ups.conf) removes its rule file at
    the next daemon-reload, so the UPS no longer starts a driver that has no section."""
    run_generator(tmp_path, usb("apc", vendorid="051d"))
    assert (tmp_path / "udev" / UDEV_RULES).exists()
    run_generator(tmp_path, section("dummy"))
    assert not (tmp_path / "udev" / UDEV_RULES).exists()
    run_generator(tmp_path, usb("apc", vendorid="051d"))
    (tmp_path / "conf" / "ups.conf").unlink()
    proc, _out = run_generator(tmp_path, None)
    assert proc.returncode == 0 and not (tmp_path / "udev" / UDEV_RULES).exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_hotplug_dropins(tmp_path: Path) -> None:
    """The template with the hot-plug drop-ins (BindsTo= a device unit) loads without a warning."""
    units = verifiable_copies(tmp_path, [*SYSTEMD_DIR.glob("*.service"), *SYSTEMD_DIR.glob("*.target")])
    conf = (usb("apc", vendorid="051d", productid="0002", serial="X1") + usb("my\\ ups", vendorid="0764")
            + section("q1", "nutdrv_qx", "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0")
            + section("t", "blazer_ser", "/dev/ttyUSB0") + section("dummy"))
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0 and proc.stderr == ""
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{out}:{units}:"}
    instances = [units.parent / "inst" / u for u in ("nut-driver@apc.service", "nut-driver@my\\x20ups.service",
                                                     "nut-driver@q1.service", "nut-driver@t.service")]
    instances[0].parent.mkdir()
    for inst in instances:
        inst.symlink_to(units / TEMPLATE)
    assert_verified([units / "nut-driver.target", *instances], tmp_path, env)
