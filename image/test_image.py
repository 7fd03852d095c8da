"""``make image-test``: the built SD-card image, booted in QEMU, through a whole power cut.

The image (build/nutlite-<version>-arm64.img.xz, checked against its .sha256) is unpacked once and
booted several times in ``qemu-system-aarch64 -M virt`` (TCG) with the kernel, initrd and
``cmdline.txt`` from its own boot partition. The UPS is outside the VM: nutlite's Megatec Q1
simulator runs on a host pty, wired to the VM as a QEMU USB serial adapter (an FTDI chip to the
guest), so the guest's driver reads a real ``/dev/ttyUSB0``. The tests run in order, one VM life each
step, and print what they check as it passes:

1. first boot: the services are up; Debian's ``upsc`` on the host reads the UPS through the forwarded
   port; the exporter's metrics show it; mDNS advertises ``_nut._tcp``; SSH works only because the
   boot partition has an ``authorized_keys``; the generated upsmon password is the only login;
2. hot-plug: the adapter removed through QEMU's monitor stops the driver and upsd says the data is
   stale; added again, the driver starts and fresh data is back;
3. a whole power cut: a Debian ``upsmon`` on the host is a secondary of the VM's upsd; the UPS loses
   mains and the battery runs low; the secondary shuts down first, the VM's upsmon sets the flag and
   powers the VM off, the late hook sends killpower, and the simulator records the shutdown command
   with the configured delays; when the UPS's off delay runs out the power is cut (QEMU stops);
4. mains back: the VM is switched on again; what was written to /etc is gone, what the data partition
   keeps (SSH host key, machine-id) is the same, and the boot guard found the power-fail marker;
5. the power race: mains fails again and comes back while the VM shuts down, the UPS ignores the
   shutdown command (many do once mains is back); the VM reboots by itself after POWEROFF_WAIT
   instead of staying halted, and the boot guard sees the marker;
6. nothing written: after every boot and cut the root partition's SHA-256 is what it was.

Figures (boot to upsd answering, the stack's proportional set size) go to
build/nutlite-<version>-arm64.test-figures for ``make bench``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vm import Disk, Ssh, Vm, free_port  # noqa: E402

from build import image_name  # noqa: E402
from nutlite.sim.q1 import PtyQ1, Q1Ups  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
UPSC = "/bin/upsc"
UPSMON = "/lib/nut/upsmon"  # (/sbin/upsmon is a wrapper that reads /etc/nut/nut.conf)
SERIAL = "UPS1234"
BY_ID = f"/dev/serial/by-id/usb-QEMU_QEMU_USB_SERIAL_{SERIAL}-if00-port0"
OFFDELAY = 30
ONDELAY = 120
POWEROFF_WAIT = 45
RAW_IMAGE_ENV = "NUTLITE_IMAGE_TEST_RAW"
BOOT_TIMEOUT = 300  # a first boot under TCG (SSH host keys made, python started cold)

UPS_CONF = f"""\
# the UPS on the host, through QEMU's USB serial adapter
[ups]
    driver = nutdrv_qx
    port = {BY_ID}
    desc = "Megatec Q1 UPS simulated on the host"
    offdelay = {OFFDELAY}
    ondelay = {ONDELAY}
    pollinterval = 2
"""
UPSD_USERS = """\
# the NAS (here: Debian's upsmon on the host) as a secondary
[nas]
    password = nas-secret
    upsmon secondary
"""
NUT_CONF = f"""\
MODE=netserver
POWEROFF_WAIT={POWEROFF_WAIT}
BOOTGUARD_MIN_CHARGE=30
BOOTGUARD_TIMEOUT=120
"""


def passed(what: str, t0: float | None = None) -> None:
    took = f" ({time.monotonic() - t0:.0f} s)" if t0 is not None else ""
    print(f"image-test: ok: {what}{took}", flush=True)


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 1.0) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep trying until the deadline, report the last
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")
        time.sleep(interval)


@dataclass
class Rig:
    work: Path
    disk: Disk
    sim: PtyQ1
    ups: Q1Ups
    ports: dict[str, int]
    ssh: Ssh
    root_sha: str
    figures: dict[str, float] = field(default_factory=dict)
    vm: Vm | None = None
    facts: dict[str, str] = field(default_factory=dict)

    def boot(self, usb_serial: bool = True) -> Vm:
        if self.vm is not None:
            self.vm.stop()
        self.vm = Vm(self.disk, self.work, self.sim.path, self.ports, usb_serial=usb_serial,
                     serial_number=SERIAL).start()
        return self.vm

    def upsc(self, var: str = "") -> subprocess.CompletedProcess[str]:
        argv = [UPSC, f"ups@127.0.0.1:{self.ports['upsd']}"] + ([var] if var else [])
        return subprocess.run(argv, capture_output=True, text=True, timeout=20)

    def status(self) -> str:
        res = self.upsc("ups.status")
        if res.returncode == 0:
            return res.stdout.strip()
        # (the last line: Debian's upsc first says "Init SSL without certificate database")
        lines = res.stderr.strip().splitlines()
        return lines[-1] if lines else f"status {res.returncode}"

    def wait_upsd(self, timeout: float = BOOT_TIMEOUT) -> float:
        assert self.vm is not None
        vm = self.vm
        t0 = vm.started

        def answering() -> bool:
            if not vm.running():
                raise AssertionError("QEMU exited during the boot; console:\n" + vm.console_text()[-3000:])
            return self.status() == "OL"

        wait_for("upsd answering with the UPS on line", answering, timeout, 2)
        return time.monotonic() - t0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    for tool, pkg in (("qemu-system-aarch64", "qemu-system-arm"), ("mcopy", "mtools"), (UPSC, "nut-client"),
                      (UPSMON, "nut-client"), ("ssh", "openssh-client"), ("xz", "xz-utils")):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing (apt-get install {pkg}; make image-test installs it as root)")
    name = image_name()
    xz = BUILD / f"{name}.img.xz"
    if not xz.exists() and not os.environ.get(RAW_IMAGE_ENV):
        pytest.fail(f"{xz} is missing: run make image first")
    work = tmp_path_factory.mktemp("image-test")
    t0 = time.monotonic()
    img = work / "nutlite.img"
    raw = os.environ.get(RAW_IMAGE_ENV)
    if raw:  # a developer's shortcut: an uncompressed image (image/build.py --keep --no-compress)
        shutil.copyfile(raw, img)
        passed(f"testing {raw} ({RAW_IMAGE_ENV}), not {xz.name}")
    else:
        digest = subprocess.run(["sha256sum", str(xz)], capture_output=True, text=True, check=True).stdout.split()[0]
        recorded = (BUILD / f"{name}.img.xz.sha256").read_text().split()[0]
        assert digest == recorded, f"{xz} does not match its .sha256"
        with open(img, "wb") as out:
            subprocess.run(["xz", "-dc", "-T2", str(xz)], stdout=out, check=True)
        passed(f"{xz.name} matches its sha256 and unpacks ({img.stat().st_size >> 20} MiB)", t0)
    disk = Disk(img)
    assert len(disk.parts) == 3, disk.parts
    root_sha = disk.sha256(1)
    ports = {"upsd": free_port(), "exporter": free_port(), "ssh": free_port()}
    ssh = Ssh(work, ports["ssh"])
    disk.write_boot("nutlite/ups.conf", UPS_CONF.replace("\n", "\r\n"))  # as a Windows editor saves it
    disk.write_boot("nutlite/upsd.users", UPSD_USERS)
    disk.write_boot("nutlite/nut.conf", NUT_CONF)
    disk.write_boot("nutlite/hostname", "nutlite-test\n")
    disk.write_boot("nutlite/authorized_keys", ssh.public_key())
    ups = Q1Ups(battery_voltage=13.5)
    sim = PtyQ1(ups, link=work / "ttyUPS").start()
    r = Rig(work, disk, sim, ups, ports, ssh, root_sha)
    yield r
    if r.vm is not None:
        r.vm.stop()
    sim.stop()
    figures = BUILD / f"{name}.test-figures"
    figures.write_text("".join(f"{k}={v:.1f}\n" for k, v in sorted(r.figures.items())))


def test_first_boot(rig: Rig) -> None:
    vm = rig.boot()
    took = rig.wait_upsd()
    rig.figures["boot_to_upsd_s"] = took
    passed(f"first boot: Debian's upsc reads the UPS through the VM's upsd after {took:.0f} s")
    res = rig.upsc()
    assert res.returncode == 0, res.stderr
    values = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert values["driver.name"] == "nutdrv_qx"
    assert values["device.mfr"].strip() == "NUTLITE" or values.get("ups.mfr", "").strip() == "NUTLITE", values
    assert float(values["input.voltage"]) == pytest.approx(230, abs=1)
    passed(f"upsc lists {len(values)} variables of the simulated UPS (driver nutdrv_qx, input 230 V)")

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{rig.ports['exporter']}/metrics", timeout=20) as resp:
            body = resp.read().decode()
        return body if 'network_ups_tools_ups_status{flag="OL",ups="ups"} 1' in body else ""

    body = str(wait_for("the exporter's metrics show the UPS", metrics, 120, 3))
    assert re.search(r'nutlite_config_file_ok\{file="ups.conf",source="boot"\} 1', body), \
        "the exporter does not report the boot partition's ups.conf as good"
    passed("the exporter on 9199 shows the UPS on line and the boot partition's config as good")

    # SSH works with the key from the boot partition; inside, the appliance's state.
    wait_for("SSH with the boot partition's key", lambda: rig.ssh.run("true", check=False).returncode == 0, 120, 3)
    state = rig.ssh.run("systemctl is-system-running --wait; hostname; findmnt -no FSTYPE /; "
                        "cat /etc/machine-id; systemctl show -p RuntimeWatchdogUSec --value; "
                        "systemctl is-active nut-server nut-monitor nut-driver@ups avahi-daemon; "
                        "systemctl is-enabled nutlite-exporter",
                        timeout=180, check=False).stdout.split()
    assert state[0] in ("running", "degraded"), state
    failed = rig.ssh.run("systemctl --failed --no-legend --plain", check=False).stdout.strip()
    assert state[0] == "running", f"failed units: {failed}"
    assert state[1] == "nutlite-test" and state[2] == "overlay", state
    rig.facts["machine-id"] = state[3]
    assert state[4] in ("15s", "15000000"), f"RuntimeWatchdogUSec={state[4]}"
    assert state[5:] == ["active"] * 4 + ["masked"], state
    passed("SSH with the boot partition's key: system running, host name nutlite-test, root is an overlay, "
           "hardware watchdog 15 s, driver/upsd (with the exporter)/upsmon/avahi active")
    users = rig.ssh.run("cat /etc/nut/upsd.users").stdout
    sections = re.findall(r"^\s*\[([^\]]+)\]", users, re.M)
    assert sections == ["nas", "nutlite-upsmon"], sections
    pw = re.search(r"\[nutlite-upsmon\][^\[]*password\s*=\s*(\S+)", users)
    assert pw and len(pw.group(1)) >= 24
    rig.facts["password"] = pw.group(1)
    kept = rig.ssh.run("cat /var/lib/nutlite/credentials/upsmon.password").stdout.strip()
    assert kept == pw.group(1)
    passed("upsd.users: the NAS's user and the generated upsmon password (kept on the data partition), "
           "no default login")
    def browse() -> str:  # (avahi may still be announcing right after the boot)
        out = rig.ssh.run("avahi-browse -rtp _nut._tcp", timeout=60).stdout
        return out if re.search(r"^=;.*;_nut\._tcp;.*;3493;", out, re.M) else ""

    wait_for("avahi-browse finds _nut._tcp on port 3493", browse, 90, 5)
    passed("mDNS advertises _nut._tcp on port 3493 (avahi-browse in the VM)")

    pss = rig.ssh.run(
        "for p in $(pgrep -f '^(/usr/bin/python3 -I /usr/bin/nutlite|/bin/sh /usr/lib/python3/dist-packages/nutlite/upsmon/parent.sh) '); do "
        "printf '%s %s\\n' \"$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)\" \"$(tr '\\0' ' ' </proc/$p/cmdline)\"; done"
    ).stdout
    rows = [line.split(maxsplit=1) for line in pss.splitlines() if line.split() and line.split()[0].isdigit()]
    total = sum(int(kib) for kib, _ in rows)
    rig.figures["stack_pss_mib"] = total / 1024
    for kib, cmd in rows:  # per daemon (upsmon's two processes together)
        role = "upsmon" if " upsmon" in cmd or "/upsmon/parent.sh" in cmd else cmd.split("/usr/bin/nutlite ", 1)[-1].split()[0]
        key = f"pss_{role}_mib"
        rig.figures[key] = rig.figures.get(key, 0.0) + int(kib) / 1024
    passed(f"the stack's proportional set size: {total / 1024:.1f} MiB\n{pss}")
    rig.ssh.run("echo written >/etc/nutlite-image-test")
    host_key = rig.ssh.known_hosts.read_text()
    rig.facts["host_key"] = host_key
    assert vm.running()


def test_hotplug(rig: Rig) -> None:
    assert rig.vm is not None
    t0 = time.monotonic()
    rig.vm.unplug_ups()
    # The driver is stopped (BindsTo= its device): upsd says what NUT's says then, "Driver not
    # connected" (DATA-STALE while the driver is still connected but has lost its UPS).
    gone = str(wait_for("upsd reports the UPS's data gone after the adapter is removed",
                        lambda: next((s for s in [rig.status()] if "stale" in s.lower() or "not connected" in s.lower()),
                                     None), 60, 1))
    wait_for("the driver stops", lambda: rig.ssh.run("systemctl is-active nut-driver@ups", check=False)
             .stdout.strip() in ("inactive", "failed"), 60, 2)
    passed(f"adapter removed through QMP: the driver stopped and upsc says {gone!r}", t0)
    t0 = time.monotonic()
    rig.vm.plug_ups()
    wait_for("the driver starts again and the UPS is on line", lambda: rig.status() == "OL", 120, 2)
    passed("adapter added again: the driver started by itself and fresh data is back", t0)


def start_secondary(rig: Rig) -> tuple[subprocess.Popen[bytes], Path]:
    conf = rig.work / "secondary"
    conf.mkdir(exist_ok=True)
    marker = rig.work / "secondary-shutdown"
    (conf / "upsmon.conf").write_text(
        "RUN_AS_USER root\n"
        f"MONITOR ups@127.0.0.1:{rig.ports['upsd']} 1 nas nas-secret secondary\n"
        "MINSUPPLIES 1\n"
        f"SHUTDOWNCMD \"/bin/sh -c 'date +%s.%N > {marker}'\"\n"
        f"POWERDOWNFLAG {conf}/killpower\n"
        "POLLFREQ 2\nPOLLFREQALERT 2\nDEADTIME 15\nFINALDELAY 0\n")
    (conf / "upsmon.conf").chmod(0o600)
    (conf / "nut.conf").write_text("MODE=netclient\n")
    env = {"NUT_CONFPATH": str(conf), "NUT_STATEPATH": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    log = open(rig.work / "secondary.log", "wb")
    proc = subprocess.Popen([UPSMON, "-D", "-p"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, marker


def test_power_cut(rig: Rig) -> None:
    vm = rig.vm
    assert vm is not None and vm.running()
    secondary, marker = start_secondary(rig)
    try:
        # upsd lists the logged-in upsmons: its own (127.0.0.1) and the host's (QEMU's gateway, 10.0.2.2)
        def clients() -> str:
            res = subprocess.run([UPSC, "-c", f"ups@127.0.0.1:{rig.ports['upsd']}"], capture_output=True,
                                 text=True, timeout=20)
            return res.stdout if "10.0.2.2" in res.stdout else ""

        logged = str(wait_for("the host's upsmon logs in as a secondary", clients, 60, 1))
        passed(f"the host's Debian upsmon is logged in as a secondary (upsc -c: {' '.join(logged.split())})")
        t0 = time.monotonic()
        rig.ups.run_script(["mains off", "drain 0.02"])
        wait_for("upsd reports the UPS on battery", lambda: rig.status().startswith("OB"), 60, 1)
        passed("mains lost: upsd reports OB", t0)
        rig.ups.run_script(["lowbatt on"])
        t_sec = float(str(wait_for("the secondary runs its SHUTDOWNCMD",
                                   lambda: marker.exists() and marker.read_text().strip(), 120, 1)))
        passed("battery low: the host's secondary upsmon shut down first", t0)

        def killpower() -> object:
            return rig.ups.shutdowns[-1] if rig.ups.shutdowns else None

        wait_for("the UPS receives the shutdown command", killpower, 240, 1)
        t_kill = time.time()
        shutdown = rig.ups.shutdowns[-1]
        assert t_sec < t_kill
        assert shutdown.off_seconds == pytest.approx(OFFDELAY, abs=1), shutdown
        assert shutdown.restore_minutes == ONDELAY // 60, shutdown
        passed(f"the VM's late hook sent killpower {shutdown.command!r}: off after {shutdown.off_seconds:.0f} s, "
               f"back {shutdown.restore_minutes} min after mains returns", t0)
        console = vm.console_text()
        assert "nutshutdown: power-fail shutdown" in console, console[-3000:]
        # The UPS cuts its output when the off delay has run out: the VM loses power (if it has not
        # powered itself off by then).
        time.sleep(max(0.0, OFFDELAY - (time.time() - t_kill)))
        vm.pull_the_plug()
        # The UPS has carried out the shutdown: it no longer reports it as pending.
        rig.ups.run_script(["fsd off"])
        passed("the UPS cut the power at the end of its off delay: QEMU stopped", t0)
        assert "FSD" not in rig.status()  # nothing answers any more
    finally:
        secondary.terminate()
        secondary.wait(10)


def test_power_returns(rig: Rig) -> None:
    rig.ups.run_script(["mains on", "lowbatt off", "battery 13.5"])
    rig.ups.shutdowns.clear()
    rig.boot()
    took = rig.wait_upsd()
    passed(f"mains back: the VM booted and upsd answers after {took:.0f} s")
    wait_for("SSH", lambda: rig.ssh.run("true", check=False).returncode == 0, 120, 3)
    # StrictHostKeyChecking against the first boot's key: the host key came from the data partition.
    assert rig.ssh.known_hosts.read_text() == rig.facts["host_key"]
    out = rig.ssh.run("cat /etc/machine-id; test -e /etc/nutlite-image-test && echo still-there || echo gone; "
                      "journalctl -b -u nutlite-boot-guard --no-pager -o cat").stdout
    lines = out.splitlines()
    assert lines[0] == rig.facts["machine-id"]
    assert lines[1] == "gone"
    assert "power-fail marker" in out, out
    passed("the file written to /etc is gone; SSH host key and machine-id are the first boot's; "
           "the boot guard found the power-fail marker")


def test_power_race(rig: Rig) -> None:
    vm = rig.vm
    assert vm is not None and vm.running()
    t0 = time.monotonic()
    before = vm.console_text().count("Linux version")

    def ignore_shutdowns() -> None:
        # Mains comes back as soon as the shutdown command arrives, and this UPS then ignores it.
        while not rig.ups.shutdowns:
            time.sleep(0.2)
        rig.ups.run_script(["mains on", "lowbatt off", "fsd off"])

    watcher = threading.Thread(target=ignore_shutdowns, daemon=True)
    watcher.start()
    rig.ups.run_script(["mains off", "lowbatt on"])
    wait_for("the shutdown command", lambda: rig.ups.shutdowns, 240, 1)
    passed("mains failed again and came back just after the killpower; the UPS keeps the power on", t0)
    wait_for("the VM reboots by itself after POWEROFF_WAIT",
             lambda: vm.console_text().count("Linux version") > before, POWEROFF_WAIT + 120, 2)
    assert vm.running()
    console = vm.console_text()
    assert "mains came back before the UPS cut the power; rebooting" in console
    passed(f"the hook waited POWEROFF_WAIT={POWEROFF_WAIT} s and rebooted the VM instead of leaving it halted", t0)
    rig.wait_upsd()
    wait_for("SSH", lambda: rig.ssh.run("true", check=False).returncode == 0, 120, 3)
    guard = rig.ssh.run("journalctl -b -u nutlite-boot-guard --no-pager -o cat").stdout
    assert "power-fail marker" in guard, guard
    passed("after the reboot the boot guard found the power-fail marker", t0)
    rig.ssh.run("systemctl poweroff", check=False)
    assert vm.wait_exit(180) is not None, "the VM did not power off"
    passed("an ordinary poweroff (no power failure) ends QEMU", t0)


def test_nothing_written(rig: Rig) -> None:
    t0 = time.monotonic()
    assert rig.vm is None or not rig.vm.running()
    after = rig.disk.sha256(1)
    assert after == rig.root_sha, "the root partition changed"
    passed(f"the root partition's SHA-256 is what it was before the boots and power cuts ({after[:16]}...)", t0)
