"""`make run`'s demo: the whole stack on the simulated UPS, served where it says, going OL -> OB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nutenv import NutConnection, free_port


def test_demo_serves_upses_that_lose_mains(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nutlite", "demo", "--port", str(port), "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        seen: dict[str, list[str]] = {"demo": [], "q1": [], "apc": []}
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not all(any("OB" in s.split() for s in v) for v in seen.values()):
            for ups, statuses in seen.items():
                try:
                    with NutConnection(port) as c:
                        reply = c.request(f"GET VAR {ups} ups.status")
                except OSError:
                    continue
                if reply.startswith(f"VAR {ups} ups.status "):
                    status = reply.split('"')[1]
                    if not statuses or statuses[-1] != status:
                        statuses.append(status)
            time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert seen["demo"][:2] == ["OL CHRG", "OB DISCHRG"], seen
        # The serial drivers read their simulators through a pty: mains, then the power cut.
        assert seen["q1"][:2] == ["OL", "OB"], seen
        assert seen["apc"][:2] == ["OL", "OB"], seen
        with NutConnection(port) as c:
            listing = c.request_list("LIST UPS")
        assert sorted(listing[1:-1]) == ['UPS apc "simulated APC Smart-UPS on a pty"',
                                         'UPS demo "nutlite demo UPS (simulated)"',
                                         'UPS q1 "simulated Megatec Q1 UPS on a pty"'], listing
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    text = out.decode()
    assert f"upsc demo@localhost:{port}" in text  # it tells the user where to look
