"""The generated udev rules (nutlite/udev.py, ``nutlite udev-rules``; udev/62-nutlite-usbups.rules).

The committed file must be what the command prints for the drivers' USB tables of this checkout, every
id of those tables must have its rule, and the rules must be in udev's syntax: checked by a key/operator
check of our own and, where this machine allows it, by udev's own parser (``udevadm test`` in a private
mount namespace, with a throw-away /dev and /run/udev, so nothing of the host's udev state changes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nutlite.drivers.tables.hidups import all_subdrivers
from nutlite.udev import RULES_NAME, usb_ids

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "udev" / RULES_NAME
REGENERATE = f"nutlite udev-rules --output udev/{RULES_NAME}"

# udev(7): match keys (== !=) and assignment keys (= += -= :=); {attr} where the key takes one.
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER",
              "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST", "PROGRAM", "RESULT"}
ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG", "RUN",
               "LABEL", "GOTO", "IMPORT", "OPTIONS"}
PAIR = re.compile(r'(?P<key>[A-Z_]+)(\{(?P<attr>[^{}"]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"')


def nutlite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from nutlite.cli import main; raise SystemExit(main())", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def check_syntax(text: str) -> list[tuple[str, ...]]:
    """Every rule line of ``text`` as its (key, attr, op, value) pairs; fails on a line udev would reject
    or a GOTO without its LABEL."""
    rules = []
    labels, gotos = set(), set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = [p.strip() for p in line.split(", ")]
        parsed = []
        for pair in pairs:
            m = PAIR.fullmatch(pair)
            assert m, f"line {n}: {pair!r} is not KEY[{{attr}}]OP\"value\""
            key, op = m["key"], m["op"]
            keys = MATCH_KEYS if op in ("==", "!=") else ASSIGN_KEYS
            assert key in keys, f"line {n}: {key} cannot take {op}"
            assert (m["attr"] is not None) == (key in {"ATTR", "ATTRS", "ENV", "SYSCTL"}), f"line {n}: {pair}"
            if key == "LABEL":
                labels.add(m["value"])
            if key == "GOTO":
                gotos.add(m["value"])
            parsed.append((key, m["attr"] or "", op, m["value"]))
        rules.append(tuple(parsed))
    assert gotos <= labels, f"GOTO without LABEL: {gotos - labels}"
    return rules


def test_committed_rules_are_what_the_command_generates() -> None:
    proc = nutlite("udev-rules")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert COMMITTED.exists(), f"udev/{RULES_NAME} is missing: run '{REGENERATE}'"
    assert COMMITTED.read_text() == proc.stdout, (
        f"udev/{RULES_NAME} is out of date with the drivers' USB tables: run '{REGENERATE}' and commit it")


def test_output_option_writes_the_same_file(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    proc = nutlite("udev-rules", "--output", str(out))
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    assert out.read_text() == COMMITTED.read_text()
    proc = nutlite("udev-rules", "--output", str(tmp_path / "no" / "such" / "dir"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot write {tmp_path}/no/such/dir" in proc.stderr


def _table_ids() -> set[tuple[int, int | None]]:
    ids: set[tuple[int, int | None]] = set()
    for sub in all_subdrivers():
        for vendor in sub.vendor_ids:
            products = sub.products.get(vendor)
            ids.update({(vendor, None)} if products is None else {(vendor, p) for p in products})
    try:
        from nutlite.drivers.transports import q1usb
    except ModuleNotFoundError:
        return ids
    ids.update((v, p) for v, p, _d, _c in q1usb.usb_ids())
    return ids


def test_every_id_of_the_drivers_tables_has_its_rule() -> None:
    rules = check_syntax(COMMITTED.read_text())
    granted = set()
    for rule in rules:
        d = {(k, a): v for k, a, _op, v in rule}
        if ("ATTR", "idVendor") in d:
            assert ("GROUP", "") in d and d[("GROUP", "")] == "nut" and d[("MODE", "")] == "0664", rule
            assert d[("SUBSYSTEM", "")] == "usb"
            product = d.get(("ATTR", "idProduct"))
            granted.add((int(d[("ATTR", "idVendor")], 16), None if product is None else int(product, 16)))
    ids = _table_ids()
    assert len(ids) > 50  # the HID subdrivers alone list more
    assert ids == granted, f"missing: {sorted(ids - granted)}, extra: {sorted(granted - ids)}"
    # Known ones, as a user would look them up: APC Back-UPS, CyberPower, Eaton.
    text = COMMITTED.read_text()
    for vid, pid in (("051d", "0002"), ("0764", "0501"), ("0463", "ffff")):
        assert f'ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}"' in text


def test_rules_are_sorted_commented_and_skip_removals() -> None:
    text = COMMITTED.read_text()
    lines = text.splitlines()
    ids = [tuple(re.findall(r'id(?:Vendor|Product)}=="([0-9a-f]{4})"', ln)) for ln in lines if "idVendor" in ln]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    for i, line in enumerate(lines):
        if "idVendor" in line:  # every rule is under a comment naming its vendor and driver(s)
            above = next(ln for ln in reversed(lines[:i]) if not ln.startswith("SUBSYSTEM"))
            assert above.startswith("# ") and re.search(r" - [a-z_-]+", above), above
    assert lines.index('ACTION=="remove", GOTO="nutlite_usbups_end"') < lines.index(
        'ENV{DEVTYPE}!="usb_device", GOTO="nutlite_usbups_end"') < next(
        i for i, ln in enumerate(lines) if "idVendor" in ln)
    assert lines[-1] == 'LABEL="nutlite_usbups_end"'
    assert "usbhid-ups" in text and len(usb_ids()) >= len(ids)


def test_hotplug_option_prints_the_generators_rules(tmp_path: Path) -> None:
    conf = tmp_path / "ups.conf"
    conf.write_text("[apc]\n  driver = usbhid-ups\n  port = auto\n  vendorid = 051d\n  productid = 0002\n"
                    "[d]\n  driver = dummy-ups\n  port = d.dev\n")
    proc = nutlite("udev-rules", "--hotplug", "--config", str(conf))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rules = check_syntax(proc.stdout)
    assert [r for r in rules if ("ENV", "SYSTEMD_WANTS", "+=", "nut-driver@apc.service") in r]
    assert "nut-driver@d.service" not in proc.stdout
    proc = nutlite("udev-rules", "--hotplug", env={"NUT_CONFPATH": str(tmp_path / "none")})
    assert proc.returncode == 1 and f"{tmp_path}/none/ups.conf: no such file" in proc.stderr
    conf.write_text("[a]\n  driver = x\n  port = y\n[a]\n")
    proc = nutlite("udev-rules", "--hotplug", "--config", str(conf))
    assert proc.returncode == 1 and "ups.conf:4" in proc.stderr and "Traceback" not in proc.stderr


def udev_parse(tmp_path: Path, files: dict[str, str]) -> str:
    """Run udev's own rules parser on ``files`` (name -> text) through ``udevadm test`` on /dev/null's
    device, in a mount namespace where /etc/udev/rules.d holds only these files and /dev and /run/udev
    are empty tmpfs (udevadm test would otherwise write links and its database on the host)."""
    rules = tmp_path / "rules.d"
    rules.mkdir()
    for name, text in files.items():
        (rules / name).write_text(text)
    script = ("set -e; mount --make-rprivate /; mount -t tmpfs none /run; mkdir -p /run/udev;"
              f" mount --bind {rules} /etc/udev/rules.d; mount -t tmpfs none /dev;"
              " udevadm test --action=add /sys/class/mem/null")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


def _can_namespace() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("udevadm"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_namespace(), reason="needs root, unshare and udevadm")
def test_udev_itself_parses_the_rules(tmp_path: Path) -> None:
    conf = tmp_path / "ups.conf"
    conf.write_text("[apc]\n  driver = usbhid-ups\n  port = auto\n  vendorid = 051d\n  serial = AS1234\n"
                    "[my\\ q1]\n  driver = nutdrv_qx\n  port = /dev/serial/by-id/usb-FTDI_FT232R-if00-port0\n"
                    "[t]\n  driver = blazer_ser\n  port = /dev/ttyUSB0\n")
    hot = nutlite("udev-rules", "--hotplug", "--config", str(conf)).stdout
    out = udev_parse(tmp_path, {RULES_NAME: COMMITTED.read_text(), "90-nutlite-hotplug.rules": hot,
                                "91-broken.rules": 'SUBSYSTEM=="usb", ATTRX{x}=="1"\n'})
    assert "Reading rules file: /etc/udev/rules.d/62-nutlite-usbups.rules" in out, out
    assert "Reading rules file: /etc/udev/rules.d/90-nutlite-hotplug.rules" in out, out
    # The check is real: udev complains about the broken file, and about nothing of ours.
    assert "91-broken.rules:1" in out, out
    complaints = [ln for ln in out.splitlines() if "nutlite" in ln and re.search(r"\.rules:\d+", ln)]
    assert complaints == [], complaints
