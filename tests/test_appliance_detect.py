"""``nutlite appliance setup`` without a ups.conf on the boot partition: the attached UPSes are found
(USB-serial ports probed as a Megatec Q1 and an APC Smart-UPS, against nutlite's simulators on ptys;
USB UPSes through usbsim), the systemd step starts the drivers of the ones attached, and the
installed result runs: nutlite's driver and upsd started from it, upsmon's login accepted."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import REPO_ROOT, STAY_ROOT, free_port
from nutwire import NutConnection
from test_appliance import Tree, tree  # noqa: F401 - the fixture
from test_usb_transport import usbsim_lib  # noqa: F401 - usbsim's session fixture (built once)

from nutlite.config import load_ups_conf, load_upsmon_conf
from nutlite.sim.apc import PtyApc
from nutlite.sim.q1 import PtyQ1

APC_ID = "usb-APC_Smart-UPS_1500-if00-port0"
Q1_ID = "usb-FTDI_FT232R_USB_UART_A10KZ3QX-if00-port0"


@contextlib.contextmanager
def simulators(where: Tree) -> Iterator[tuple[PtyApc, PtyQ1]]:
    by_id = where.dev / "serial" / "by-id"
    by_id.mkdir(parents=True)
    with PtyApc(link=by_id / APC_ID) as apc, PtyQ1(link=by_id / Q1_ID) as q1:
        yield apc, q1


def test_serial_ups_found_on_usb_serial_ports(tree: Tree) -> None:  # noqa: F811
    silent_master, silent = os.openpty()  # a ttyUSB port with nothing that answers
    try:
        (tree.dev / "ttyUSB3").symlink_to(os.ttyname(silent))
        with simulators(tree):
            start = time.monotonic()
            r = tree.setup()
            took = time.monotonic() - start
    finally:
        os.close(silent)
        os.close(silent_master)
    assert r.returncode == 0, r.stderr
    conf = load_ups_conf(tree.nut / "ups.conf")
    by_id = tree.dev / "serial" / "by-id"
    assert {name: (s.driver, s.port) for name, s in conf.ups.items()} == {
        "ups": ("apcsmart", str(by_id / APC_ID)), "ups2": ("nutdrv_qx", str(by_id / Q1_ID))}
    assert "ttyUSB3: no answer as a Megatec Q1 UPS or an APC Smart-UPS" in r.stderr
    assert "found APC Smart-UPS" in r.stderr and "configured as [ups2] (driver nutdrv_qx)" in r.stderr
    assert took < 3 * 2 + 5, f"probing three ports took {took:.1f} s"
    assert tree.status()["ups.conf"] == {"ok": True, "source": "detected"}
    assert not (tree.data / "config-good" / "ups.conf").exists(), "a detected ups.conf is not a user's good copy"
    monitors = load_upsmon_conf(tree.nut / "upsmon.conf").monitors
    assert [m.system for m in monitors] == ["ups@localhost", "ups2@localhost"]


def test_no_ups_found_gives_an_empty_ups_conf_and_says_how(tree: Tree) -> None:  # noqa: F811
    r = tree.setup()
    assert r.returncode == 0
    assert load_ups_conf(tree.nut / "ups.conf").ups == {}
    line = [ln for ln in r.stderr.splitlines() if "no UPS found" in ln]
    assert len(line) == 1 and "ups.conf into the nutlite/ folder" in line[0]
    first = (tree.nut / "ups.conf").read_bytes()
    tree.setup()
    assert (tree.nut / "ups.conf").read_bytes() == first, "the same UPSes must give the same ups.conf (no reload)"


def test_usb_ups_found_through_nutlite_scan(tree: Tree, usbsim_lib: Path) -> None:  # noqa: F811
    from test_usbhid_side_by_side import device_files

    r = tree.setup(env={"LD_LIBRARY_PATH": str(usbsim_lib), "USBSIM_DEVICE": device_files("APC__Back-UPS_CS_500__051d-0002")})
    assert r.returncode == 0, r.stderr
    sec = load_ups_conf(tree.nut / "ups.conf").ups["ups"]
    assert (sec.driver, sec.port, sec.get("vendorid"), sec.get("productid")) == ("usbhid-ups", "auto", "051D", "0002")
    assert sec.get("serial") and "bus" not in sec.values


# ------------------------------------------------------------------------------------------------
# The systemd step


def fake_commands(folder: Path, log: Path) -> dict[str, str]:
    folder.mkdir()
    for name in ("systemctl", "udevadm"):
        script = folder / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        script.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def test_systemd_step_starts_the_drivers_and_defers_the_reload_only_when_ups_conf_changed(tree: Tree) -> None:  # noqa: F811
    log = tree.base.parent / "calls"
    env = fake_commands(tree.base.parent / "bin", log)
    with simulators(tree):
        tree.put("ups.conf", f"[here]\n\tdriver = nutdrv_qx\n\tport = /dev/serial/by-id/{Q1_ID}\n"
                             "[gone]\n\tdriver = nutdrv_qx\n\tport = /dev/ttyUSB7\n"
                             "[usb]\n\tdriver = usbhid-ups\n\tport = auto\n\tvendorid = 051d\n"
                             "[fixed]\n\tdriver = dummy-ups\n\tport = fixed.dev\n")
        r = tree.setup("--systemd", env=env)
        assert r.returncode == 0, r.stderr
        calls = log.read_text().splitlines()
        # no daemon-reload in the middle of the boot: [fixed] (what nut-driver.target starts) and
        # [here] (its port is in --dev; ttyUSB7 and a USB 051d device are not) start from the
        # template now, and the reload waits in its own unit
        assert calls == ["udevadm control --reload",
                         "systemctl start --no-block nut-driver@fixed.service",
                         "systemctl start --no-block nut-driver@here.service",
                         "systemctl start --no-block nutlite-appliance-reload.service"]
        # udev has the generator's hot-plug rules at once: one per hot-plugged section
        rules = (tree.udev / "90-nutlite-hotplug.rules").read_text()
        for unit in ("nut-driver@here.service", "nut-driver@gone.service", "nut-driver@usb.service"):
            assert f'ENV{{SYSTEMD_WANTS}}+="{unit}"' in rules
        assert "nut-driver@fixed.service" not in rules
        log.unlink()
        r = tree.setup("--systemd", env=env)
        assert not log.exists(), "ups.conf did not change: nothing to reload"
    usb = tree.sys / "bus" / "usb" / "devices" / "1-1"
    usb.mkdir(parents=True)
    (usb / "idVendor").write_text("051d\n")
    (usb / "idProduct").write_text("0002\n")
    tree.put("ups.conf", "[usb]\n\tdriver = usbhid-ups\n\tport = auto\n\tvendorid = 051D\n")
    tree.setup("--systemd", env={**env, "PATH": f"{tree.base.parent / 'bin'}:/nonexistent"})
    assert log.read_text().splitlines()[-3:] == [f"udevadm trigger --action=add {usb}",
                                                 "systemctl start --no-block nut-driver@usb.service",
                                                 "systemctl start --no-block nutlite-appliance-reload.service"]
    assert "nut-driver@here.service" not in (tree.udev / "90-nutlite-hotplug.rules").read_text()


def test_systemd_commands_that_fail_are_one_line_each(tree: Tree) -> None:  # noqa: F811
    folder = tree.base.parent / "bin"
    folder.mkdir()
    (folder / "systemctl").write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n")
    (folder / "systemctl").chmod(0o755)
    tree.put("ups.conf", "[u]\n\tdriver = dummy-ups\n\tport = x.dev\n")
    r = tree.setup("--systemd", env={"PATH": f"{folder}:/nonexistent"})
    assert r.returncode == 0
    assert "'systemctl start --no-block nut-driver@u.service' failed (exit 1): Failed to connect to bus" in r.stderr
    assert "udevadm is not installed" in r.stderr


# ------------------------------------------------------------------------------------------------
# The installed files work


def test_installed_configuration_runs_the_stack(tree: Tree, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    tree.put("upsd.conf", f"LISTEN 127.0.0.1 {port}\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o770)
    env = {**os.environ, "NUT_CONFPATH": str(tree.nut), "NUT_STATEPATH": str(state), "NUT_ALTPIDPATH": str(state),
           "PYTHONPATH": str(REPO_ROOT), "NUTLITE_LOCKDIR": ""}
    procs: list[subprocess.Popen[bytes]] = []
    with simulators(tree):
        (tree.dev / "serial" / "by-id" / APC_ID).unlink()  # only the Q1 UPS
        assert tree.setup().returncode == 0
        try:
            for argv in (["driver", "-a", "ups", "-F"], ["upsd", "-F"]):
                procs.append(subprocess.Popen([sys.executable, "-m", "nutlite", *argv, *STAY_ROOT], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True))
            status = _wait_status(port)
            assert status.startswith("OL"), status
            with NutConnection(port) as conn:
                for line, want in (("USERNAME nutlite-upsmon", "OK"), (f"PASSWORD {tree.password}", "OK"),
                                   ("LOGIN ups", "OK")):
                    conn.send(line)
                    assert conn.read_line() == want, line
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 9)
                p.wait(10)


def _wait_status(port: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with NutConnection(port, timeout=2) as conn:
                conn.send("GET VAR ups ups.status")
                last = conn.read_line()
                if last.startswith("VAR "):
                    return last.split('"')[1]
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"upsd on port {port} never had the status of [ups] (last reply {last!r})")
