"""The systemd generator (nutlite/systemd_generator.py, installed as nutlite-driver-generator).

It is run as systemd runs it: a process with the three output folders as arguments (here tmp folders)
and NUT_CONFPATH pointing at a sample ups.conf. Instance names are compared with systemd's own
``systemd-escape``; ``systemd-analyze verify`` loads the generated links and drop-ins next to the
shipped units.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_systemd_units import assert_verified, verifiable_copies

from nutlite.systemd_generator import DROPIN, TEMPLATE, UNIT_DIR, systemd_escape

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
    env = {**os.environ, "NUT_CONFPATH": str(conf), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "nutlite.systemd_generator", str(out), str(tmp / "early"),
                           str(tmp / "late")], capture_output=True, text=True, timeout=30, env=env)
    return proc, out


def section(name: str, driver: str = "dummy-ups", port: str = "ups.dev") -> str:
    return f"[{name}]\n  driver = {driver}\n  port = {port}\n"


def escape(text: str) -> str:
    return subprocess.run(["systemd-escape", "--", text], capture_output=True, text=True, check=True).stdout.strip()


def test_one_instance_per_section(tmp_path: Path) -> None:
    proc, out = run_generator(tmp_path, section("ups1") + section("ups2", "nutdrv_qx", "/dev/ttyUSB0"))
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
    conf = section("ups1") + "[nodriver]\n  port = x\n" + section(long)
    proc, out = run_generator(tmp_path, conf)
    assert proc.returncode == 0
    assert "[nodriver] has no 'driver'" in proc.stderr
    assert f"[{long}]" in proc.stderr and "longer than 255" in proc.stderr
    assert [p.name for p in (out / WANTS).iterdir()] == ["nut-driver@ups1.service"]


def test_unwritable_output_folder_never_fails(tmp_path: Path) -> None:
    (tmp_path / "generator").write_text("not a folder")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "ups.conf").write_text(section("ups1"))
    proc = subprocess.run([sys.executable, "-m", "nutlite.systemd_generator", str(tmp_path / "generator")],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NUT_CONFPATH": str(conf), "PYTHONPATH": str(REPO)})
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
