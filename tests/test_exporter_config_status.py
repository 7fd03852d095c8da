"""The exporter publishes the appliance's config status (``nutlite appliance setup``'s
config-status.json) on its own /metrics page, through the real exporter process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nutenv import REPO_ROOT, STAY_ROOT, free_port
from test_exporter import _wait_http, get, parse

METRIC = "nutlite_config_file_ok"


def config_series(body: bytes) -> dict[tuple[str, str], float]:
    return {(dict(labels)["file"], dict(labels)["source"]): v
            for (name, labels), v in parse(body).items() if name == METRIC}


def test_config_status_on_metrics_only(tmp_path: Path) -> None:
    status = tmp_path / "config-status.json"
    status.write_text(json.dumps({"files": {
        "ups.conf": {"ok": False, "source": "last-good", "error": "ups.conf:3: ..."},
        "upsd.users": {"ok": True, "source": "boot"}}, "time": 1}))
    port, nut_port = free_port(), free_port()  # no NUT server there: the scrape says up 0
    argv = [sys.executable, "-m", "nutlite", "exporter", "--listen", f"127.0.0.1:{port}",
            "--server", f"127.0.0.1:{nut_port}", "--timeout", "0.5", "--config-status", str(status), *STAY_ROOT]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        code, body = _wait_http(f"{base}/metrics", proc)
        assert code == 200
        assert config_series(body) == {("ups.conf", "last-good"): 0.0, ("upsd.users", "boot"): 1.0}
        assert METRIC not in get(f"{base}/ups_metrics")[1].decode()
        assert METRIC not in get(f"{base}/probe?target=127.0.0.1:{nut_port}")[1].decode()
        status.write_text("{not json")
        for _ in range(3):
            assert config_series(get(f"{base}/metrics")[1]) == {}
        status.write_text(json.dumps({"files": {"ups.conf": {"ok": True, "source": "detected"}}}))
        assert config_series(get(f"{base}/metrics")[1]) == {("ups.conf", "detected"): 1.0}
        status.unlink()
        assert config_series(get(f"{base}/metrics")[1]) == {}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    complaints = [ln for ln in err.decode().splitlines() if "is not what nutlite appliance setup writes" in ln]
    assert len(complaints) == 1, err.decode()
    assert "Traceback" not in err.decode()
