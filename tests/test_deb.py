"""The Debian package (make deb -> build/nutlite_<version>_all.deb, packaging/build_deb.py).

The package is built once per session into a tmp folder. Its contents are checked with dpkg-deb
(units, hook and generator modes, NUT's command names as links, control fields, conffiles, nothing in
/etc/nut) and with lintian when it is installed. Then it is installed for real with apt into a fresh
Debian bookworm root made by mmdebstrap (the root tarball is made once per session), where the
installed commands run with Debian's own Python libraries, and purged again.

pysnmp 7 and pyasn1 0.6, which bookworm lacks, are vendored (packaging/vendor.py): the package must carry
them with their licences, and in the fresh root SNMP v2c and v3 must work through /usr/bin/nutlite's path
with bookworm's python3-cryptography 38, or fail in one clear line without it.

mmdebstrap needs root and the Debian mirror: without them the install test is skipped, or fails
with NUTLITE_REQUIRE_REAL_NUT=1 (as the other tests that need real Debian programs).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "packaging"))
import build_deb  # noqa: E402
import vendor  # noqa: E402
from snmpv3agent import PRIV_PROTOCOLS, V3Agent  # noqa: E402 - the shared SNMPv3 test agent

VERSION = build_deb.version()
UNITS = ["nut.target", "nut-driver.target", "nut-driver@.service", "nut-server.service", "nut-monitor.service",
         "nutlite-exporter.service", "nutlite-boot-guard.service", "nutlite-powerfail-marker.service"]
# The tags docs/packaging.md lists as left on purpose (the others are overridden in the package).
ALLOWED_LINTIAN = {"bogus-mail-host", "bogus-mail-host-in-debian-changelog"}
MIRROR = os.environ.get("NUTLITE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SNMP_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "snmp"
VENDOR = "usr/lib/nutlite/vendor"


def need(what: str) -> None:
    if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
        pytest.fail(f"{what} (NUTLITE_REQUIRE_REAL_NUT=1)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dpkg-deb") is None:
        need("dpkg-deb is not installed")
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run([sys.executable, str(REPO / "packaging" / "build_deb.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    path = out / f"nutlite_{VERSION}_all.deb"
    assert proc.stdout.strip() == str(path) and path.is_file()
    return path


def contents(deb: Path) -> dict[str, tuple[str, str]]:
    """path (without the leading ./) -> (mode string, link target or '')."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        name, _, target = fields[5].partition(" -> ")
        entries[name.removeprefix("./").rstrip("/")] = (fields[0], target)
    return entries


def control(deb: Path, tmp: Path) -> Path:
    ctrl = tmp / "DEBIAN"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(ctrl)], check=True)
    return ctrl


def test_units_hook_generator_and_config_files(deb: Path) -> None:
    files = contents(deb)
    for unit in UNITS:
        mode, _ = files[f"lib/systemd/system/{unit}"]
        assert mode == "-rw-r--r--", unit
        assert (REPO / "systemd" / unit).read_bytes()  # the checkout's file is what is shipped
    assert files["lib/systemd/system-shutdown/nutshutdown"][0] == "-rwxr-xr-x"
    assert files["lib/systemd/system-generators/nutlite-driver-generator"][0] == "-rwxr-xr-x"
    assert files["usr/bin/nutlite"][0] == "-rwxr-xr-x"
    assert files["usr/lib/sysusers.d/nutlite.conf"][0] == "-rw-r--r--"
    assert files["usr/lib/tmpfiles.d/nutlite.conf"][0] == "-rw-r--r--"
    assert files["etc/default/nutlite-exporter"][0] == "-rw-r--r--"
    # The generated udev rules (group nut's USB UPSes), after Debian's 50-udev-default as NUT's 62.
    assert files["lib/udev/rules.d/62-nutlite-usbups.rules"][0] == "-rw-r--r--"
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    shipped = subprocess.run(["tar", "-xO", "./lib/udev/rules.d/62-nutlite-usbups.rules"], input=tar,
                             capture_output=True, check=True).stdout
    assert shipped == (REPO / "udev" / "62-nutlite-usbups.rules").read_bytes()
    # ... and AppStream metadata naming the same devices (lintian asks for it with udev rules).
    metainfo = subprocess.run(["tar", "-xO", "./usr/share/metainfo/org.nutlite.nutlite.metainfo.xml"],
                              input=tar, capture_output=True, check=True).stdout.decode()
    assert metainfo.count("<modalias>usb:v") == shipped.decode().count("ATTR{idVendor}")
    assert "<modalias>usb:v051Dp0002d*</modalias>" in metainfo
    assert "usr/lib/python3/dist-packages/nutlite/cli.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    # A user's /etc/nut is never touched: the package ships nothing there.
    assert not [f for f in files if f == "etc/nut" or f.startswith("etc/nut/")]
    # Every file belongs to root (dpkg-deb --root-owner-group).
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert {ln.split()[1] for ln in listing.splitlines()} == {"root/root"}


def test_nut_command_names_are_links(deb: Path) -> None:
    files = contents(deb)
    expected = ["bin/upsc", "bin/upscmd", "bin/upsrw", "bin/upslog", "sbin/upsd", "sbin/upsmon",
                "sbin/upsdrvctl", "sbin/upssched", "lib/nut/upsd", "lib/nut/upsmon"]
    expected += [f"lib/nut/{name}" for name in build_deb.driver_names()]
    assert "lib/nut/dummy-ups" in expected and "lib/nut/nutdrv_qx" in expected
    for path in expected:
        mode, target = files[path]
        assert mode.startswith("l") and target == "/usr/bin/nutlite", (path, mode, target)


def test_control_fields_and_conffiles(deb: Path, tmp_path: Path) -> None:
    ctrl = control(deb, tmp_path)
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", (ctrl / "control").read_text(), re.M))
    assert fields["Package"] == "nutlite"
    assert fields["Version"] == VERSION
    assert fields["Architecture"] == "all"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    for lib in ("python3-serial", "python3-usb", "python3-yaml", "python3-bcrypt", "python3-sdnotify"):
        assert any(d.startswith(lib + " ") or d == lib for d in depends), lib
    # The exporter renders the text format and serves HTTP itself (nutlite.exporter.exposition, httpd).
    assert not any(d.startswith("python3-prometheus-client") for d in depends)
    assert "python3 (>= 3.11~)" in depends
    for other in ("nut-server", "nut-client"):
        assert other in fields["Conflicts"].split(", ")
        assert other in fields["Replaces"].split(", ")
    assert int(fields["Installed-Size"]) > 100
    assert (ctrl / "conffiles").read_text().split() == ["/etc/default/nutlite-exporter"]
    for script in ("postinst", "prerm", "postrm"):
        path = ctrl / script
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert path.read_text().startswith("#!/bin/sh\n")
        subprocess.run(["sh", "-n", str(path)], check=True)
    # debhelper-like guards: no systemctl call unless systemd runs (not in a chroot or an image build).
    for script in ("postinst", "postrm"):
        for line in (ctrl / script).read_text().splitlines():
            if "systemctl --system daemon-reload" in line:
                assert "|| true" in line
        assert '[ -d /run/systemd/system ]' in (ctrl / script).read_text()


def test_vendored_pysnmp_and_pyasn1_with_their_licences(deb: Path, tmp_path: Path) -> None:
    files = contents(deb)
    for module in ("pysnmp/__init__.py", "pysnmp/hlapi/v3arch/asyncio/__init__.py",
                   "pysnmp/proto/secmod/rfc3826/priv/aes.py", "pyasn1/__init__.py", "pyasn1/codec/ber/decoder.py"):
        assert files[f"{VENDOR}/{module}"][0] == "-rw-r--r--", module
    assert not [f for f in files if f.startswith(VENDOR) and (".dist-info" in f or "pysmi" in f)]
    # The build venv's files, byte for byte, except the three cipher modules with the cryptography fallback.
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    patched = {rel for _, rel, _, _ in vendor.PATCHES}
    shipped = {str(p.relative_to(tree / VENDOR)) for p in (tree / VENDOR).rglob("*.py")}
    for name, tops in vendor.VENDORED.items():
        dist = vendor.find_distribution(name)
        theirs = {str(f) for f in dist.files if str(f).split("/")[0] in tops and str(f).endswith(".py")}
        assert theirs and theirs <= shipped, (name, sorted(theirs - shipped)[:5])
        for rel in theirs:
            same = (tree / VENDOR / rel).read_bytes() == Path(str(dist.locate_file(rel))).read_bytes()
            assert same != (rel in patched), rel
    for rel in patched:
        assert "except ImportError:  # nutlite: cryptography <" in (tree / VENDOR / rel).read_text(), rel
    # Debian's copyright file names each vendored library, its version and its licence, with the text.
    copyright_file = (tree / "usr/share/doc/nutlite/copyright").read_text()
    for name in vendor.VENDORED:
        version = vendor.find_distribution(name).version
        stanza = copyright_file.split(f"Files: {VENDOR}/{name}/*\n", 1)[1].split("\n\n", 1)[0]
        assert f"{name} {version}" in stanza and "\nLicense: BSD-2-Clause\n" in stanza, stanza[:300]
        assert " Redistribution and use in source and binary forms" in stanza
    assert "Ilya Etingof" in copyright_file and "LeXtudio" in copyright_file
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", (control(deb, tmp_path) / "control").read_text(), re.M))
    assert "python3-cryptography" in fields["Recommends"].split(", ")
    assert "pyasn1" not in fields["Depends"] and "pysnmp" not in fields["Depends"]


def test_vendor_names_a_missing_distribution(tmp_path: Path) -> None:
    with pytest.raises(vendor.VendorError, match="no 'no-such-snmp-lib' distribution to copy into "
                                                 "usr/lib/nutlite/vendor"):
        vendor.vendor(tmp_path, {"no-such-snmp-lib": ("nosuch",)})


def test_lintian(deb: Path) -> None:
    if shutil.which("lintian") is None:
        need("lintian is not installed (apt-get install lintian)")
    proc = subprocess.run(["lintian", "--allow-root", str(deb)], capture_output=True, text=True, timeout=300)
    tags = {m.group(2) for m in re.finditer(r"^([EWI]): nutlite: (\S+)", proc.stdout, re.M)}
    assert tags <= ALLOWED_LINTIAN, proc.stdout


# --------------------------------------------------------------------------------------- a real install


@pytest.fixture(scope="session")
def root_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal Debian bookworm root (mmdebstrap --variant=minbase), made once per session."""
    if os.geteuid() != 0:
        need("mmdebstrap and chroot need root")
    if shutil.which("mmdebstrap") is None:
        need("mmdebstrap is not installed (apt-get install mmdebstrap)")
    tarball = tmp_path_factory.mktemp("mmdebstrap") / "bookworm-minbase.tar"
    started = time.monotonic()
    proc = subprocess.run(["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase", "bookworm", str(tarball),
                           MIRROR], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        need(f"mmdebstrap could not make a bookworm root from {MIRROR}: {proc.stderr.strip()[-500:]}")
    print(f"mmdebstrap bookworm minbase: {time.monotonic() - started:.1f} s")
    return tarball


@contextlib.contextmanager
def fresh_root(tarball: Path, where: Path) -> Iterator[Path]:
    root = where / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=False)


def inroot(root: Path, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    return subprocess.run(["chroot", str(root), "/bin/sh", "-ec", script], capture_output=True, text=True,
                          timeout=timeout, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Run in the fresh root by Debian's python3: the launcher's own sys.path lines, then GETs with nutlite's
# SNMP client (what snmp-ups polls with) for each settings object of argv[2]; one line per GET.
SNMP_GET = """\
import sys
exec(open("/usr/bin/nutlite").read().split("from nutlite.cli")[0])
import asyncio, json
from nutlite.snmp.client import SnmpClient, SnmpError, SnmpSettings

async def get(kw):
    try:
        async with SnmpClient(SnmpSettings("127.0.0.1", int(sys.argv[1]), timeout=1, retries=1, **kw)) as c:
            return repr(next(iter((await c.get(["1.3.6.1.2.1.33.1.1.2.0"])).values())))
    except SnmpError as exc:
        return f"{type(exc).__name__}: {exc}"

for kw in json.loads(sys.argv[2]):
    print(asyncio.run(get(kw)), flush=True)
"""


def v3_settings(priv: str) -> dict[str, str]:
    return {"version": "v3", "sec_level": "authPriv", "sec_name": f"priv_{priv}", "auth_protocol": "SHA",
            "auth_password": "authpass123", "priv_protocol": priv, "priv_password": "privpass123"}


def snmp_in_root(root: Path, port: int, cases: list[dict[str, str]]) -> list[str]:
    (root / "tmp/snmpget.py").write_text(SNMP_GET)
    proc = inroot(root, f"python3 -I /tmp/snmpget.py {port} '{json.dumps(cases)}'", timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def test_install_run_purge_in_fresh_bookworm(deb: Path, root_tarball: Path, tmp_path: Path) -> None:
    with fresh_root(root_tarball, tmp_path) as root:
        # An administrator's NUT configuration from before: the package must leave it alone.
        (root / "etc/nut").mkdir()
        user_conf = "[ups1]\n  driver = dummy-ups\n  port = ups1.dev\n[my-ups]\n  driver = dummy-ups\n  port = b.dev\n"
        (root / "etc/nut/ups.conf").write_text(user_conf)
        shutil.copy(deb, root / "tmp" / deb.name)
        started = time.monotonic()
        proc = inroot(root, f"apt-get update -qq && apt-get install -y -qq --no-install-recommends /tmp/{deb.name}")
        if proc.returncode != 0 and "Failed to fetch" in proc.stdout + proc.stderr:
            need(f"the Debian mirror is not reachable from the chroot: {proc.stderr[-300:]}")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        print(f"apt-get install ./{deb.name} (with its dependencies): {time.monotonic() - started:.1f} s")

        # The commands run, with Debian's python3-* libraries.
        proc = inroot(root, "nutlite upsc -h; echo ---; upsc -h; echo ---; /lib/nut/dummy-ups -h; echo ---;"
                            " /sbin/upsmon -h")
        assert proc.returncode == 0, proc.stderr
        first = proc.stdout.split("---")
        assert first[0].lstrip().startswith("Network UPS Tools upsc") and "usage: upsc" in first[0]
        assert "usage: upsc" in first[1]
        assert "usage: dummy-ups" in first[2]
        assert "usage: upsmon" in first[3]
        assert "Traceback" not in proc.stdout + proc.stderr
        proc = inroot(root, "python3 -c 'import serial, usb.core, yaml, bcrypt, sdnotify;"
                            " import nutlite; print(nutlite.__file__)'")
        assert proc.stdout.strip() == "/usr/lib/python3/dist-packages/nutlite/__init__.py", proc.stderr
        # postinst: the nut account (in dialout), /run/nut, bytecode (of the vendored libraries too).
        proc = inroot(root, "id nut; stat -c '%a %U %G' /run/nut;"
                            " ls /usr/lib/python3/dist-packages/nutlite/__pycache__ | grep -c cpython-311;"
                            " ls /usr/lib/nutlite/vendor/pysnmp/hlapi/v3arch/asyncio/__pycache__ | grep -c cpython-311;"
                            " ls /usr/lib/nutlite/vendor/pyasn1/codec/ber/__pycache__ | grep -c cpython-311")
        assert proc.returncode == 0, proc.stderr
        ident, run_nut, pyc, pyc_pysnmp, pyc_pyasn1 = proc.stdout.splitlines()
        assert "(dialout)" in ident and run_nut == "770 root nut" and int(pyc) > 5
        assert int(pyc_pysnmp) >= 5 and int(pyc_pyasn1) >= 3

        # snmp-ups, and pysnmp 7 with pyasn1 0.6 from /usr/lib/nutlite/vendor through the launcher's path.
        # Installed without Recommends: no python3-cryptography, which v1, v2c and v3 auth never need.
        (root / "tmp/imports.py").write_text(
            "import nutlite  # puts /usr/lib/nutlite/vendor on the path, as for /usr/bin/nutlite\n"
            "import pyasn1, pysnmp, pysnmp.hlapi.v3arch.asyncio\n"
            "print(pysnmp.__file__, pysnmp.__version__, pyasn1.__file__, pyasn1.__version__)\n"
            "try:\n    import cryptography\n    print('cryptography', cryptography.__version__)\n"
            "except ImportError:\n    print('no cryptography')\n")
        proc = inroot(root, "nutlite snmp-ups -h; echo ---; /lib/nut/snmp-ups -h; echo ---; python3 -I /tmp/imports.py")
        assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        snmp_help, link_help, imports = proc.stdout.split("---")
        assert "usage: nutlite snmp-ups" in snmp_help and "usage: snmp-ups" in link_help
        versions = {name: vendor.find_distribution(name).version for name in vendor.VENDORED}
        assert imports.split("\n")[1:] == [
            f"/{VENDOR}/pysnmp/__init__.py {versions['pysnmp']} /{VENDOR}/pyasn1/__init__.py {versions['pyasn1']}",
            "no cryptography", ""], imports

        upscale = "Value(tag='4', value=b'Upscale')"
        with V3Agent(SNMP_DATA / "generex-ups_cs141.snmprec", users=[(f"priv_{p}", "SHA", p) for p in PRIV_PROTOCOLS],
                     community="public") as agent:
            started = time.monotonic()
            got = snmp_in_root(root, agent.port, [{"version": "v2c"}, v3_settings("AES"), v3_settings("DES")])
            assert got[0] == upscale, got
            for line, priv in zip(got[1:], ("AES", "DES"), strict=True):
                assert line.startswith(f"SnmpConfigError: privProtocol = '{priv}': SNMPv3 privacy needs the Python "
                                       "library cryptography, and cryptography is not installed: apt install "
                                       "python3-cryptography"), line
            # With bookworm's python3-cryptography 38 every privacy protocol works (vendor.py's fallback),
            # and Debian's python3-pyasn1 0.4.8 does not shadow the vendored pyasn1.
            proc = inroot(root, "apt-get install -y -qq --no-install-recommends python3-cryptography python3-pyasn1"
                                " && dpkg-query -W -f '${Version}\\n' python3-cryptography python3-pyasn1")
            if proc.returncode != 0 and "Failed to fetch" in proc.stdout + proc.stderr:
                need(f"the Debian mirror is not reachable from the chroot: {proc.stderr[-300:]}")
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
            crypto_version, debian_pyasn1 = proc.stdout.split()[-2:]
            assert crypto_version.startswith("38.") and debian_pyasn1.startswith("0.4."), proc.stdout
            got = snmp_in_root(root, agent.port, [v3_settings(priv) for priv in PRIV_PROTOCOLS])
            assert got == [upscale] * len(PRIV_PROTOCOLS), list(zip(PRIV_PROTOCOLS, got, strict=True))
            proc = inroot(root, "python3 -I /tmp/imports.py")
            assert f"/{VENDOR}/pyasn1/__init__.py {versions['pyasn1']}" in proc.stdout, proc.stdout + proc.stderr
            assert "cryptography 38." in proc.stdout
            print(f"SNMP v2c and v3 in the fresh root (with the apt install): {time.monotonic() - started:.1f} s")

        # The installed generator, with Debian's python3, on the administrator's ups.conf.
        proc = inroot(root, "/lib/systemd/system-generators/nutlite-driver-generator /tmp/gen /tmp/gen.early"
                            " /tmp/gen.late; ls /tmp/gen/nut-driver.target.wants")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["nut-driver@my\\x2dups.service", "nut-driver@ups1.service"]

        # The exporter serves metrics with Debian's python3 alone; no upsd: up 0.
        port = free_port()
        exporter = subprocess.Popen(["chroot", str(root), "nutlite", "exporter", "--listen", f"127.0.0.1:{port}",
                                     "--server", "127.0.0.1:1"], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        try:
            body = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not body:
                with contextlib.suppress(OSError):
                    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                if not body:
                    assert exporter.poll() is None, exporter.communicate()[0]
                    time.sleep(0.3)
            assert "# TYPE" in body, body
        finally:
            exporter.terminate()
            exporter.communicate(timeout=10)

        # Purge: what the package and its scripts added is gone; the administrator's ups.conf is not.
        (root / "var/lib/nutlite/powerfail").write_text("marker\n")
        (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True, exist_ok=True)
        (root / "etc/systemd/system/multi-user.target.wants/nut.target").symlink_to("/lib/systemd/system/nut.target")
        proc = inroot(root, "apt-get purge -y -qq nutlite")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        for gone in ("usr/bin/nutlite", "bin/upsc", "sbin/upsmon", "lib/nut/dummy-ups",
                     "lib/systemd/system/nut-server.service", "lib/systemd/system-shutdown/nutshutdown",
                     "lib/systemd/system-generators/nutlite-driver-generator", "usr/lib/tmpfiles.d/nutlite.conf",
                     "usr/lib/python3/dist-packages/nutlite", "etc/default/nutlite-exporter", "run/nut",
                     "var/lib/nutlite", "etc/systemd/system/multi-user.target.wants/nut.target",
                     "usr/share/doc/nutlite", "usr/lib/nutlite"):
            assert not os.path.lexists(root / gone), f"/{gone} is still there after the purge"
        assert (root / "etc/nut/ups.conf").read_text() == user_conf
        proc = inroot(root, "dpkg-query -W -f '${db:Status-Abbrev}' nutlite || true")
        assert not proc.stdout.startswith("ii"), proc.stdout
