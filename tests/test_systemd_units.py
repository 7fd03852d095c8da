"""The appliance's systemd units, tmpfiles/sysusers snippets and the late-shutdown hook (systemd/).

Every ``nutlite …`` command line in the units (and in the hook) must name a real tool and flags that
tool's own argument parser accepts; ``systemd-analyze verify`` checks the units where it exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import pytest

from nutlite.cli import TOOLS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nutenv import NutEnv, free_port, readable_install  # noqa: E402

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNITS = [
    "nut.target",
    "nut-driver.target",
    "nut-driver@.service",
    "nut-server.service",
    "nut-monitor.service",
    "nutlite-boot-guard.service",
    "nutlite-powerfail-marker.service",
    "nutlite-exporter.service",
]
NUTLITE = "/usr/bin/nutlite"
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload",
             "ExecCondition")


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]} (systemd allows repeated keys; order kept)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}: '{line}' outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: expected key=value, got '{line}'"
        current.append((key.strip(), value.strip()))
    return sections


def get(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    values = get(unit, section, key)
    assert len(values) == 1, f"[{section}] {key}: expected one value, got {values}"
    return values[0]


def words(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> set[str]:
    return {w for v in get(unit, section, key) for w in v.split()}


@pytest.fixture(scope="module")
def units() -> dict[str, dict[str, list[tuple[str, str]]]]:
    return {name: parse_unit(SYSTEMD_DIR / name) for name in UNITS}


def exporter_defaults() -> dict[str, str]:
    """The shipped /etc/default/nutlite-exporter, as systemd's EnvironmentFile= reads it."""
    out = {}
    for line in (SYSTEMD_DIR / "nutlite-exporter.default").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return out


def expand(cmdline: str, environ: dict[str, str]) -> list[str]:
    """An Exec line's words with systemd's ``$VAR`` (split into words) and ``${VAR}`` expanded."""
    out: list[str] = []
    for word in shlex.split(cmdline.lstrip("-@:+!")):
        if word.startswith("$") and not word.startswith("${"):
            out.extend(environ.get(word[1:], "").split())
        else:
            out.append(re.sub(r"\$\{(\w+)\}", lambda m: environ.get(m.group(1), ""), word))
    return out


def check_nutlite_command(cmdline: str, where: str) -> None:
    """``/usr/bin/nutlite <tool> args…``: a known tool, and flags its parser accepts."""
    argv = expand(cmdline, exporter_defaults())
    assert argv[0] == NUTLITE, f"{where}: expected {NUTLITE}, got {argv[0]}"
    tool, args = argv[1], [a.replace("%I", "ups1").replace("%i", "ups1") for a in argv[2:]]
    assert tool in TOOLS, f"{where}: '{tool}' is not a nutlite tool ({', '.join(TOOLS)})"
    module = importlib.import_module(TOOLS[tool][0])
    parser = module.build_parser()
    try:
        parser.parse_args(args)
    except SystemExit as exc:  # argparse rejects: exit status 2
        pytest.fail(f"{where}: 'nutlite {tool}' does not accept {args} (exit {exc.code})")


# --------------------------------------------------------------------------------------------- units


def test_every_unit_exists_and_parses(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    for name, unit in units.items():
        assert "Unit" in unit, name
        assert one(unit, "Unit", "Description"), name
        assert get(unit, "Install", "WantedBy"), f"{name}: no [Install] WantedBy="


def test_exec_lines_name_real_tools_and_flags(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    seen: list[str] = []
    for name, unit in units.items():
        for key in EXEC_KEYS:
            for value in get(unit, "Service", key):
                if NUTLITE in value:
                    check_nutlite_command(value, f"{name} {key}")
                    seen.append(f"{name} {key}")
    assert "nut-driver@.service ExecStart" in seen
    assert "nut-monitor.service ExecReload" in seen
    assert "nutlite-powerfail-marker.service ExecStop" in seen
    assert "nutlite-exporter.service ExecStart" in seen


def test_driver_template(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nut-driver@.service"]
    assert shlex.split(one(u, "Service", "ExecStart")) == [NUTLITE, "driver", "-a", "%I", "-F"]
    assert one(u, "Service", "Type") == "notify"
    assert one(u, "Service", "Restart") == "always"
    assert one(u, "Unit", "StartLimitIntervalSec") == "0"
    assert one(u, "Service", "WatchdogSec")
    assert "nut-driver.target" in words(u, "Unit", "PartOf")
    assert get(u, "Install", "WantedBy") == ["nut-driver.target"]


def test_server_unit(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nut-server.service"]
    assert shlex.split(one(u, "Service", "ExecStart")) == [NUTLITE, "upsd", "-F"]
    assert one(u, "Service", "User") == "nut"  # as NUT's upsd, never root
    assert one(u, "Service", "Group") == "nut"
    assert one(u, "Service", "Type") == "notify"
    assert one(u, "Service", "WatchdogSec").rstrip("s").isdigit()
    assert "nut-driver.target" in words(u, "Unit", "After")
    assert "nut-driver.target" in words(u, "Unit", "Wants")
    assert "nut-monitor.service" in words(u, "Unit", "Before")
    assert "nut.target" in words(u, "Unit", "PartOf")


def test_monitor_unit(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nut-monitor.service"]
    assert shlex.split(one(u, "Service", "ExecStart")) == [NUTLITE, "upsmon", "-F"]
    # The monitoring child (not the main process) reports readiness.
    assert one(u, "Service", "Type") == "notify"
    assert one(u, "Service", "NotifyAccess") == "all"
    assert not get(u, "Service", "WatchdogSec")
    assert "nut-server.service" in words(u, "Unit", "After")
    assert "nut-server.service" not in words(u, "Unit", "Requires")  # upsd may be remote


def test_targets(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    top = units["nut.target"]
    for dep in ("nut-driver.target", "nut-server.service", "nut-monitor.service"):
        assert dep in words(top, "Unit", "Wants")
        assert dep in words(top, "Unit", "After")
    assert get(top, "Install", "WantedBy") == ["multi-user.target"]
    assert "nut.target" in words(units["nut-driver.target"], "Unit", "PartOf")


def test_boot_guard_unit(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nutlite-boot-guard.service"]
    assert shlex.split(one(u, "Service", "ExecStart")) == [NUTLITE, "bootguard"]
    assert one(u, "Service", "Type") == "oneshot"
    assert one(u, "Service", "RemainAfterExit") == "yes"
    # It must read the local upsd, and hold back the rest of the boot.
    assert "nut-server.service" in words(u, "Unit", "After")
    assert "multi-user.target" in words(u, "Unit", "Before")
    # systemd's 90 s start timeout must not cut the (self-bounded) wait short.
    assert one(u, "Service", "TimeoutStartSec") == "infinity"
    assert "/var/lib/nutlite" in words(u, "Unit", "RequiresMountsFor")


def test_powerfail_marker_unit(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nutlite-powerfail-marker.service"]
    assert shlex.split(one(u, "Service", "ExecStop")) == [NUTLITE, "bootguard", "mark", "--if-powerdownflag"]
    assert one(u, "Service", "RemainAfterExit") == "yes"  # so that it is stopped (ExecStop) at shutdown
    # Stopped before the marker's filesystem is unmounted.
    assert "/var/lib/nutlite" in words(u, "Unit", "RequiresMountsFor")


def test_exporter_unit(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nutlite-exporter.service"]
    assert one(u, "Service", "Type") == "notify"
    assert one(u, "Service", "User") == "nut"
    assert one(u, "Service", "EnvironmentFile") == "-/etc/default/nutlite-exporter"
    argv = expand(one(u, "Service", "ExecStart"), exporter_defaults())
    assert argv == [NUTLITE, "exporter", "--listen", ":9199", "--server", "127.0.0.1:3493"]
    assert "nut-server.service" in words(u, "Unit", "After")
    assert "nut-server.service" not in words(u, "Unit", "Requires")  # it may scrape remote servers only
    assert get(u, "Install", "WantedBy") == ["multi-user.target"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_exporter_unit_runs_as_its_user(nutlite_env: NutEnv) -> None:
    """Started as the unit starts it (user nut, the shipped default options but a free port, systemd's
    notify socket), the exporter says READY=1 and serves the local upsd's UPS."""
    u = parse_unit(SYSTEMD_DIR / "nutlite-exporter.service")
    user = one(u, "Service", "User")
    try:
        pwd.getpwnam(user)
    except KeyError:
        pytest.skip(f"no user {user} on this machine")
    port = free_port()
    environ = exporter_defaults()
    environ["NUTLITE_EXPORTER_ARGS"] = environ["NUTLITE_EXPORTER_ARGS"].replace(
        ":9199", f"127.0.0.1:{port}").replace("127.0.0.1:3493", f"127.0.0.1:{nutlite_env.port}")
    argv = expand(one(u, "Service", "ExecStart"), environ)
    # As on the image, the code lives where the user can read it: a copy of the package and of the
    # libraries the exporter imports, in a world-readable folder (the checkout and its venv may be in a
    # root-only one), with an interpreter the user may run.
    install = readable_install(("nutlite", "prometheus_client", "sdnotify"), user=user)
    notify_path = install.folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    os.chmod(notify_path, 0o777)
    sock.settimeout(20)
    env = install.env(NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="1000000")
    proc = subprocess.Popen(install.argv(*argv[1:], user=user, clear_groups=True), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=install.folder)
    try:
        try:
            assert b"READY=1" in sock.recv(4096)
            assert b"WATCHDOG=1" in sock.recv(4096)  # WATCHDOG_USEC=1 s: a ping every half second
        except TimeoutError:
            proc.kill()
            pytest.fail(f"no READY=1 from the exporter as {user}:\n{proc.communicate()[0]}")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'network_ups_tools_battery_charge{ups="dummy"}' in body
        assert 'network_ups_tools_ups_status{flag="OL",ups="dummy"} 1.0' in body
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{pwd.getpwnam(user).pw_uid}\b", status, re.M), status
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        sock.close()
        install.remove()
    assert proc.returncode in (0, -15), out


def test_tmpfiles() -> None:
    lines = [ln.split() for ln in (SYSTEMD_DIR / "nutlite-tmpfiles.conf").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert ["d", "/run/nut", "0770", "root", "nut", "-", "-"] in lines


SYSUSERS = SYSTEMD_DIR / "nutlite-sysusers.conf"


def test_sysusers_nut_in_dialout() -> None:
    """The nut account, and nut in group dialout: the drivers open serial ports as nut."""
    lines = [shlex.split(ln) for ln in SYSUSERS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert [ln[:3] for ln in lines if ln[0] == "u"] == [["u", "nut", "-"]]
    assert ["m", "nut", "dialout"] in lines
    assert {ln[0] for ln in lines} == {"u", "m"}


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_applies(tmp_path: Path) -> None:
    """systemd-sysusers itself reads the file: on an empty root it creates nut, and dialout with nut."""
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "nutlite.conf"
    conf.write_text(SYSUSERS.read_text())
    dry = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", "--dry-run", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "Creating user 'nut'" in dry.stderr, dry.stderr
    real = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert real.returncode == 0, real.stderr
    groups = {f[0]: f for f in (ln.split(":") for ln in (tmp_path / "etc/group").read_text().splitlines())}
    users = {f[0]: f for f in (ln.split(":") for ln in (tmp_path / "etc/passwd").read_text().splitlines())}
    assert "nut" in users and "nut" in groups
    assert users["nut"][3] == groups["nut"][2]  # its primary group is nut
    assert "nut" in groups["dialout"][3].split(",")


# Units whose process must start as root, and why (each says so in a comment in its [Service]).
ROOT_UNITS = {
    "nut-monitor.service": "shut",  # upsmon's parent shuts the system down
    "nut-driver@.service": "user",  # a driver switches to ups.conf's user itself
    "nutlite-boot-guard.service": "root",
    "nutlite-powerfail-marker.service": "root",
}


def service_comments(path: Path) -> str:
    """The comment lines of a unit's [Service] section, joined."""
    text = path.read_text().split("[Service]", 1)[1].split("\n[", 1)[0]
    return " ".join(ln.lstrip("# ") for ln in text.splitlines() if ln.startswith("#"))


def test_who_the_units_run_as(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    """upsmon and the drivers start as root on purpose (no User=), and their unit says why; the
    monitor's child and the drivers then become nut by themselves (see test_upsmon, test_driver)."""
    for name, word in ROOT_UNITS.items():
        assert not get(units[name], "Service", "User"), f"{name} must start as root"
        comments = service_comments(SYSTEMD_DIR / name)
        assert "root" in comments and word in comments, f"{name}: say in [Service] why it runs as root"
    assert "POWERDOWNFLAG" in service_comments(SYSTEMD_DIR / "nut-monitor.service")


def verifiable_copies(folder: Path, units: Iterable[Path]) -> Path:
    """Copies of ``units`` in ``folder``/units whose nutlite path is a stub that runs this checkout's
    nutlite (``systemd-analyze verify`` insists that every Exec program exists); returns that folder."""
    stub = folder / "bin" / "nutlite"
    stub.parent.mkdir()
    stub.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m nutlite \"$@\"\n")
    stub.chmod(0o755)
    unitdir = folder / "units"
    unitdir.mkdir()
    for path in units:
        (unitdir / path.name).write_text(path.read_text().replace(NUTLITE, str(stub)))
    return unitdir


def assert_verified(units: Iterable[Path], cwd: Path, env: dict[str, str] | None = None) -> None:
    """``systemd-analyze verify`` of ``units`` says nothing at all and succeeds."""
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                          capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
    assert proc.returncode == 0 and not proc.stderr.strip() and not proc.stdout.strip(), (
        f"systemd-analyze verify (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on copies whose nutlite path points at this checkout's nutlite."""
    unitdir = verifiable_copies(tmp_path, [SYSTEMD_DIR / name for name in UNITS])
    (unitdir / "nut-driver@ups1.service").write_text((unitdir / "nut-driver@.service").read_text())
    assert_verified(sorted(unitdir.iterdir()), unitdir)


# --------------------------------------------------------------------------------------------- hardening

CAPS_ALLOWED = {
    "nut-server.service": set(),
    "nutlite-exporter.service": set(),
    "nut-driver@.service": {"CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"},
    "nut-monitor.service": {"CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_BOOT", "CAP_DAC_OVERRIDE",
                            "CAP_CHOWN", "CAP_FOWNER"},
    "nutlite-boot-guard.service": {"CAP_DAC_OVERRIDE", "CAP_FOWNER"},
    "nutlite-powerfail-marker.service": {"CAP_DAC_OVERRIDE", "CAP_FOWNER"},
}


def test_capability_bounds(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    """Every service has a capability bounding set, no larger than what it needs."""
    for name, allowed in CAPS_ALLOWED.items():
        values = get(units[name], "Service", "CapabilityBoundingSet")
        assert values, f"{name}: no CapabilityBoundingSet="
        assert words(units[name], "Service", "CapabilityBoundingSet") == allowed, name
    # upsmon's root parent: the shutdown, and nothing like CAP_SYS_ADMIN or CAP_NET_ADMIN.
    assert "CAP_SYS_BOOT" in words(units["nut-monitor.service"], "Service", "CapabilityBoundingSet")


def test_read_only_system_and_private_tmp(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    for name in ("nut-server.service", "nutlite-exporter.service", "nut-driver@.service"):
        u = units[name]
        assert one(u, "Service", "ProtectSystem") == "strict", name
        assert one(u, "Service", "NoNewPrivileges") == "yes", name
        assert one(u, "Service", "ProtectHome") == "yes", name
    for name in CAPS_ALLOWED:
        assert one(units[name], "Service", "PrivateTmp") == "yes", name
    assert words(units["nut-server.service"], "Service", "ReadWritePaths") == {"/run/nut"}
    # Drivers: the socket folder, and the folder of the serial ports' UUCP lock files.
    assert words(units["nut-driver@.service"], "Service", "ReadWritePaths") == {"/run/nut", "-/run/lock"}
    assert not get(units["nutlite-exporter.service"], "Service", "ReadWritePaths")
    # upsmon writes POWERDOWNFLAG where upsmon.conf says (/etc/killpower in NUT's sample) and runs the
    # administrator's SHUTDOWNCMD: no read-only system, and the unit says why.
    assert not get(units["nut-monitor.service"], "Service", "ProtectSystem")
    assert "ProtectSystem" in service_comments(SYSTEMD_DIR / "nut-monitor.service")


def test_drivers_reach_serial_and_usb_devices_only(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    u = units["nut-driver@.service"]
    assert get(u, "Service", "PrivateDevices") in ([], ["no"])  # it would hide /dev/ttyUSB0 and /dev/bus/usb
    assert one(u, "Service", "DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in get(u, "Service", "DeviceAllow")}
    assert {"char-ttyS", "char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-usb_device"} <= allowed
    assert all(v.split()[1] == "rw" for v in get(u, "Service", "DeviceAllow"))
    for name in ("nut-server.service", "nutlite-exporter.service"):
        assert one(units[name], "Service", "PrivateDevices") == "yes"


def test_notify_watchdog_restart(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    """Every daemon says when it is ready; those that ping the watchdog have one; all restart on failure."""
    for name in ("nut-driver@.service", "nut-server.service", "nut-monitor.service", "nutlite-exporter.service"):
        u = units[name]
        assert one(u, "Service", "Type") == "notify", name
        assert one(u, "Service", "Restart") in ("always", "on-failure"), name
    for name in ("nut-driver@.service", "nut-server.service", "nutlite-exporter.service"):
        assert one(units[name], "Service", "WatchdogSec"), name


def test_nut_target_groups_the_daemons(units: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    assert "nutlite-exporter.service" in words(units["nut.target"], "Unit", "Wants")
    for name in ("nut-server.service", "nut-monitor.service", "nutlite-exporter.service", "nut-driver.target"):
        assert "nut.target" in words(units[name], "Unit", "PartOf"), name


# systemd-analyze security's exposure (0..10) that each unit must stay within (bench/unit_security.py
# prints the figures).
EXPOSURE_LIMIT = {
    "nut-server.service": 2.0,
    "nutlite-exporter.service": 2.0,
    "nut-driver@.service": 3.2,
    "nutlite-boot-guard.service": 2.5,
    "nutlite-powerfail-marker.service": 2.5,
    "nut-monitor.service": 6.0,
}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_security() -> None:
    sys.path.insert(0, str(SYSTEMD_DIR.parent / "bench"))
    from unit_security import exposure

    with tempfile.TemporaryDirectory() as tmp:
        for name, limit in EXPOSURE_LIMIT.items():
            score, word, costs = exposure(SYSTEMD_DIR / name, Path(tmp))
            assert score <= limit, f"{name}: exposure {score} {word} > {limit}:\n" + "\n".join(costs)


# --------------------------------------------------------------------------------------------- the hook


HOOK = SYSTEMD_DIR / "nutshutdown"


def test_hook_is_an_executable_posix_script() -> None:
    assert HOOK.stat().st_mode & 0o111 == 0o111
    assert HOOK.read_text().splitlines()[0] == "#!/bin/sh"
    subprocess.run(["sh", "-n", str(HOOK)], check=True, timeout=10)


def test_hook_nutlite_commands_exist() -> None:
    """The hook's `"$nutlite" <tool> …` calls name tools and flags nutlite has."""
    code = "\n".join(ln for ln in HOOK.read_text().splitlines() if not ln.lstrip().startswith("#"))
    found = {tuple(m.split()) for m in re.findall(r'"\$nutlite"((?:[ \t]+[A-Za-z0-9_-]+)+)', code)}
    assert ("upsmon", "-K") in found
    assert ("upsdrvctl", "shutdown") in found
    for tool, *args in found:
        check_nutlite_command(" ".join([NUTLITE, tool, *args]), f"nutshutdown: {tool}")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_hook_shellcheck() -> None:
    proc = subprocess.run(["shellcheck", "-s", "sh", str(HOOK)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
