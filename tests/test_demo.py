"""`make run`'s demo: the whole stack on the simulated UPS, served where it says, going OL -> OB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nutenv import NutConnection, free_port


def test_demo_serves_a_ups_that_loses_mains(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nutlite", "demo", "--port", str(port), "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and "OB DISCHRG" not in seen:
            try:
                with NutConnection(port) as c:
                    reply = c.request("GET VAR demo ups.status")
                if reply.startswith("VAR demo ups.status "):
                    status = reply.split('"')[1]
                    if not seen or seen[-1] != status:
                        seen.append(status)
            except OSError:
                pass
            time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert seen[:2] == ["OL CHRG", "OB DISCHRG"], seen
        with NutConnection(port) as c:
            assert c.request_list("LIST UPS")[1] == 'UPS demo "nutlite demo UPS (simulated)"'
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    text = out.decode()
    assert f"upsc demo@localhost:{port}" in text  # it tells the user where to look
