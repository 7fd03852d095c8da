"""Build build/nutlite_<version>_all.deb from this checkout with dpkg-deb (no network, no debhelper).

usage: python3 packaging/build_deb.py [--out DIR] [--keep-tree]

The package holds the pure-Python code under /usr/lib/python3/dist-packages (its libraries are
Debian's own python3-* packages), /usr/bin/nutlite, NUT's command and driver names as links to it
at NUT's paths, the systemd units, the driver generator, the late-shutdown hook, sysusers and
tmpfiles snippets, udev rules (when the checkout has a udev/ folder), /etc/default/nutlite-exporter
(a conffile) and the documentation. See docs/packaging.md.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "nutlite"
PYDIR = "usr/lib/python3/dist-packages"
UNITDIR = "lib/systemd/system"
# NUT's command names and where Debian's nut-client/nut-server put them (scripts call them there).
COMMANDS = {
    "bin": ("upsc", "upscmd", "upsrw", "upslog"),
    "sbin": ("upsd", "upsmon", "upsdrvctl", "upssched"),
    "lib/nut": ("upsd", "upsmon"),
}
UNITS = ("nut.target", "nut-driver.target", "nut-driver@.service", "nut-server.service",
         "nut-monitor.service", "nutlite-exporter.service", "nutlite-boot-guard.service",
         "nutlite-powerfail-marker.service")
DOCS = ("README.md", "docs/design.md", "docs/shutdown.md", "docs/exporter.md", "docs/packaging.md")
CONFFILES = ("/etc/default/nutlite-exporter",)
# Debian bookworm's versions serve (docs/packaging.md says why each one is enough).
DEPENDS = ("python3 (>= 3.11~)", "python3-serial (>= 3.5)", "python3-usb (>= 1.2)",
           "python3-prometheus-client (>= 0.16)", "python3-yaml (>= 5.4)", "python3-bcrypt (>= 3.2)",
           "python3-sdnotify (>= 0.3)", "systemd | systemd-standalone-sysusers | systemd-sysusers",
           "systemd | systemd-standalone-tmpfiles | systemd-tmpfiles")
# Same unit names, commands at the same paths, the same shutdown hook: never both installed.
CONFLICTS = ("nut-server", "nut-client")
MAINTAINER = os.environ.get("NUTLITE_DEB_MAINTAINER", "nutlite maintainers <nutlite@localhost>")
DESCRIPTION = """\
lean NUT-compatible UPS stack (drivers, upsd, upsmon, exporter)
 nutlite re-implements Network UPS Tools in Python for small machines such as
 a Raspberry Pi: UPS drivers for serial and USB UPSes, the upsd network server
 (TCP 3493, NUT's protocol), upsmon with the late power-off of the UPS, the
 upsc, upscmd, upsrw, upslog and upssched tools, and a Prometheus exporter.
 .
 It reads NUT's configuration in /etc/nut and answers NUT's clients, so it
 replaces Debian's nut-server and nut-client. A systemd generator makes one
 driver unit per ups.conf section."""


def version() -> str:
    text = (REPO / "nutlite" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not match:
        raise SystemExit("build_deb: no __version__ in nutlite/__init__.py")
    return match.group(1)


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH, else the last commit's time, else now: every file gets this mtime."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if out.isdigit():
            return int(out)
    except OSError:
        pass
    return int(time.time())


def driver_names() -> list[str]:
    """The drivers this checkout has (planned ones get no link)."""
    sys.path.insert(0, str(REPO))
    from nutlite.drivers.main import available_drivers

    return list(available_drivers())


def install(src: Path, dst: Path, mode: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(mode)


def link(root: Path, path: str, target: str) -> None:
    where = root / path
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(target)


def gzip_file(data: bytes, dst: Path, mtime: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=mtime) as gz:
        gz.write(data)
    dst.write_bytes(buf.getvalue())
    dst.chmod(0o644)


def copyright_text() -> str:
    return """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: nutlite
Comment: nutlite is a re-implementation of Network UPS Tools from its documented
 behaviour; it contains no NUT source code.

Files: *
Copyright: 2026 nutlite contributors
License: Expat

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.
"""


def changelog(ver: str, epoch: int) -> bytes:
    return (f"{PACKAGE} ({ver}) unstable; urgency=medium\n\n"
            f"  * Built from the nutlite source tree; see /usr/share/doc/{PACKAGE}/README.md.\n\n"
            f" -- {MAINTAINER}  {formatdate(epoch)}\n").encode()


def build_tree(root: Path, ver: str, epoch: int) -> None:
    """Lay out the package's files under ``root`` (DEBIAN/ included)."""
    pkg = root / PYDIR / "nutlite"
    shutil.copytree(REPO / "nutlite", pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    install(REPO / "packaging" / "nutlite", root / "usr/bin/nutlite", 0o755)
    for folder, names in COMMANDS.items():
        for name in names:
            link(root, f"{folder}/{name}", "/usr/bin/nutlite")
    for name in driver_names():
        link(root, f"lib/nut/{name}", "/usr/bin/nutlite")
    sysd = REPO / "systemd"
    for unit in UNITS:
        install(sysd / unit, root / UNITDIR / unit, 0o644)
    install(sysd / "nutshutdown", root / "lib/systemd/system-shutdown/nutshutdown", 0o755)
    install(REPO / "packaging" / "nutlite-driver-generator",
            root / "lib/systemd/system-generators/nutlite-driver-generator", 0o755)
    install(sysd / "nutlite-sysusers.conf", root / "usr/lib/sysusers.d/nutlite.conf", 0o644)
    install(sysd / "nutlite-tmpfiles.conf", root / "usr/lib/tmpfiles.d/nutlite.conf", 0o644)
    install(sysd / "nutlite-exporter.default", root / "etc/default/nutlite-exporter", 0o644)
    udev = REPO / "udev"  # the hot-plug rules, once the checkout has them
    if udev.is_dir():
        for rules in sorted(udev.glob("*.rules")):
            install(rules, root / "lib/udev/rules.d" / rules.name, 0o644)
    (root / "var/lib/nutlite").mkdir(parents=True)
    doc = root / "usr/share/doc" / PACKAGE
    for name in DOCS:
        if (REPO / name).exists():
            install(REPO / name, doc / Path(name).name, 0o644)
    (doc / "copyright").write_text(copyright_text())
    gzip_file(changelog(ver, epoch), doc / "changelog.gz", epoch)
    (root / "usr/share/lintian/overrides").mkdir(parents=True)
    install(REPO / "packaging" / "lintian-overrides", root / "usr/share/lintian/overrides" / PACKAGE, 0o644)

    debian = root / "DEBIAN"
    debian.mkdir()
    for script in ("postinst", "prerm", "postrm"):
        install(REPO / "packaging" / "debian" / script, debian / script, 0o755)
    (debian / "conffiles").write_text("".join(f"{c}\n" for c in CONFFILES))
    size_kib = sum((p.lstat().st_size + 1023) // 1024 for p in root.rglob("*")
                   if not p.is_relative_to(debian) and (p.is_file() or p.is_symlink())) or 1
    control = {
        "Package": PACKAGE,
        "Version": ver,
        "Architecture": "all",
        "Maintainer": MAINTAINER,
        "Installed-Size": str(size_kib),
        "Depends": ", ".join(DEPENDS),
        "Recommends": "udev",
        "Conflicts": ", ".join(CONFLICTS),
        "Replaces": ", ".join(CONFLICTS),
        "Section": "admin",
        "Priority": "optional",
        "Description": DESCRIPTION,
    }
    (debian / "control").write_text("".join(f"{k}: {v}\n" for k, v in control.items()))
    for path in [*root.rglob("*"), root]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_deb.py", description="Build the nutlite Debian package.")
    parser.add_argument("--out", default=str(REPO / "build"), help="folder for the .deb (default build/)")
    parser.add_argument("--keep-tree", action="store_true", help="keep the staging tree next to the .deb")
    args = parser.parse_args(argv)
    if shutil.which("dpkg-deb") is None:
        print("build_deb: dpkg-deb is missing (apt-get install dpkg-dev)", file=sys.stderr)
        return 1
    ver, epoch = version(), source_date_epoch()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tree = out / f"{PACKAGE}_{ver}_all.tree"
    shutil.rmtree(tree, ignore_errors=True)
    try:
        os.umask(0o022)
        build_tree(tree, ver, epoch)
        deb = out / f"{PACKAGE}_{ver}_all.deb"
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
        proc = subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(deb)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"build_deb: dpkg-deb failed:\n{proc.stderr}", file=sys.stderr)
            return 1
        print(deb)
    finally:
        if not args.keep_tree:
            shutil.rmtree(tree, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
