"""``nutlite hid-dump``: the values it prints are those NUT's debug log printed (the captures' `path`
lines), and what it records with --record replays to the same variables as the device it read.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nutenv import REPO_ROOT, compare_vars
from tests.test_hid_descriptor import CAPTURES, load_capture, needs_captures
from tests.test_replay import REPLAY_ONLY, replayed_vars, usbsim_vars
from tests.test_usb_transport import usbsim_lib  # noqa: F401 - the session fixture
from tests.test_usbhid_side_by_side import need_nut, sim_env  # noqa: F401

WITH_PATHS = [p for p in CAPTURES if load_capture(p).paths]
#: captures whose log was made with NUT's explore subdriver (vendor usages print as hex, not by the
#: vendor table's names): the Back-UPS 500 one is reassembled from the log of NUT issue 1776, the one
#: the nut-ddl CS 500 dump holds ("Using subdriver: EXPLORE HID 0.2")
EXPLORED = {"APC__Back-UPS_500__051d-0002", "Unknown__5131-2007__nut-issue-3227"}


def hid_dump(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", "hid-dump", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}, cwd=cwd)


def printed_paths(out: str) -> dict[tuple[str, str, int, int, int], str]:
    got = {}
    for line in out.splitlines():
        if not line.startswith("path "):
            continue
        words = line.split()
        kv = dict(w.split("=", 1) for w in words[2:])
        got[(words[1], kv["type"], int(kv["id"], 16), int(kv["offset"]), int(kv["size"]))] = kv["value"]
    return got


@needs_captures
@pytest.mark.parametrize("capture", WITH_PATHS, ids=[p.stem for p in WITH_PATHS])
def test_values_are_what_nut_printed(capture: Path) -> None:
    r = hid_dump(*(["-x", "explore"] if capture.stem in EXPLORED else []), str(capture))
    assert r.returncode == 0, r.stderr
    got = printed_paths(r.stdout)
    problems = []
    for line in load_capture(capture).paths:
        key = (line.path, line.rtype.value, line.report_id, line.offset, line.size)
        if key not in got:
            problems.append(f"no line for {key}")
            continue
        value = float(got[key])
        if math.isclose(value, line.value, rel_tol=1e-5, abs_tol=1e-12):
            continue
        if line.note and math.trunc(value) == line.value:
            continue  # the capture's source kept only the integer part (its note says so)
        problems.append(f"{key}: hid-dump {got[key]}, NUT {line.value:g}")
    assert not problems, "\n".join(problems)
    assert f"descriptor: {load_capture(capture).descriptor.hex(' ')}" in r.stdout


@pytest.mark.parametrize("name", ["APC__Back-UPS_CS_500__051d-0002", "CyberPower__CP1500PFCLCD__0764-0501"])
def test_record_then_replay_gives_the_same_variables(name: str, tmp_path: Path, usbsim_lib: Path,  # noqa: F811
                                                     need_nut: None) -> None:  # noqa: F811
    (tmp_path / "control").touch()
    record = tmp_path / "recorded.capture"
    r = hid_dump("--record", str(record), env=sim_env(usbsim_lib, tmp_path, name), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"wrote {record}" in r.stderr
    text = record.read_text()
    assert "usb " in text and "descriptor: " in text and "report get " in text
    want = usbsim_vars(tmp_path / "usbsim", usbsim_lib, name)
    got = replayed_vars(tmp_path / "replay", record)
    assert compare_vars(want, got, REPLAY_ONLY) == []
    # the recording's path lines are the values hid-dump printed from the device
    assert printed_paths(text) == printed_paths(r.stdout)


def test_no_device_and_bad_settings(tmp_path: Path, usbsim_lib: Path) -> None:  # noqa: F811
    r = hid_dump(env={"LD_LIBRARY_PATH": str(usbsim_lib), "USBSIM_DEVICE": ""}, cwd=tmp_path)
    assert r.returncode == 1 and "no USB device" in r.stderr and "Traceback" not in r.stderr
    apc = sim_env(usbsim_lib, tmp_path, "APC__Back-UPS_500__051d-0002")
    r = hid_dump("-x", "vendorid=0764", env=apc, cwd=tmp_path)
    assert r.returncode == 1 and "matches vendorid" in r.stderr and "051d:0002" in r.stderr
    r = hid_dump("-x", "vendorid=051d", "-x", "productid=0002", env=apc, cwd=tmp_path)
    assert r.returncode == 0 and "subdriver: APC HID" in r.stdout
    r = hid_dump("-x", "vendorid=zz(", cwd=tmp_path)
    assert r.returncode == 1 and "vendorid = 'zz('" in r.stderr and "Traceback" not in r.stderr
    r = hid_dump("-x", "frobnicate=1", cwd=tmp_path)
    assert r.returncode == 1 and "frobnicate" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.capture"
    bad.write_text("descriptor: 05 84\nreport get xx : 01\n")
    r = hid_dump(str(bad), cwd=tmp_path)
    assert r.returncode == 1 and f"{bad} line 2" in r.stderr and "Traceback" not in r.stderr
