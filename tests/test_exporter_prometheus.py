"""nutlite exporter with a real Prometheus (Debian's `prometheus` package) and Debian's real upsd.

* Prometheus scrapes the exporter (both name families) every second while a dummy-ups sequence goes
  OL -> OB -> OB LB -> OL; PromQL over its HTTP API sees the values and the status changes, and the
  shipped alert rules go off;
* `promtool check rules` / `promtool test rules` pass on the shipped rules and their unit tests;
* every query of the shipped Grafana dashboard and of DRuggeri's published dashboard returns data for
  each UPS in the matching name family;
* Debian's upsd as the remote target gives the same series as nutlite's upsd.

Prometheus missing: skipped, or failed with NUTLITE_REQUIRE_REAL_NUT=1 (as the other interop tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EnvFactory
from nutenv import DATA_DIR, REPO_ROOT, STAY_ROOT, NutEnv, dummy_ups, free_port

from nutlite.exporter import data_file

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
DRUGGERI_QUERIES = REPO_ROOT.parent / "shared" / "data" / "dashboards" / "nut_exporter-dashboard-queries.txt"

pytestmark = pytest.mark.interop

STEADY_DEV = """\
ups.status: OL CHRG
ups.mfr: ACME
ups.model: Smart 1500
ups.serial: AS42
device.type: ups
battery.charge: 100
battery.runtime: 2400
battery.voltage: 27.3
battery.voltage.high: 28.0
battery.voltage.low: 21.0
battery.voltage.nominal: 24
input.voltage: 230.0
input.voltage.nominal: 230
output.voltage: 229.8
ups.load: 23
ups.beeper.status: enabled
"""
# OL -> OB -> OB LB -> OL: ten seconds on line (the stack starts meanwhile), four seconds per other
# step, then on line for a long time.
SEQUENCE = STEADY_DEV.replace("ups.status: OL CHRG", "ups.status: OL") + """\
TIMER 10
ups.status: OB DISCHRG
battery.charge: 60
battery.runtime: 900
TIMER 4
ups.status: OB DISCHRG LB
battery.charge: 9
battery.runtime: 120
TIMER 4
ups.status: OL CHRG
battery.charge: 40
battery.runtime: 1200
TIMER 600
"""


def require_prometheus() -> None:
    if PROMETHEUS.exists() and PROMTOOL.exists():
        return
    msg = "Prometheus is not installed (/usr/bin/prometheus, /usr/bin/promtool)"
    if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
        pytest.fail(f"{msg}; install it: apt-get install prometheus", pytrace=False)
    pytest.skip(msg)


# ------------------------------------------------------------------------------------------------
# promtool on the shipped rules


@pytest.mark.parametrize("family", ["native", "nut_exporter"])
def test_promtool_check_and_test_rules(family: str, tmp_path: Path) -> None:
    require_prometheus()
    for name in (f"alerts-{family}.yml", f"alerts-{family}.test.yml"):
        shutil.copy(data_file(name), tmp_path / name)
    check = subprocess.run([str(PROMTOOL), "check", "rules", f"alerts-{family}.yml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 7 rules found" in check.stdout
    test = subprocess.run([str(PROMTOOL), "test", "rules", f"alerts-{family}.test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


# ------------------------------------------------------------------------------------------------
# Helpers


class Prom:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict]:  # type: ignore[type-arg]
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=10) as resp:
            data = json.load(resp)
        assert data["status"] == "success", data
        return data["data"]["result"]  # type: ignore[no-any-return]

    def label_values(self, metric: str, label: str) -> set[str]:
        q = urllib.parse.urlencode({"match[]": metric})
        with urllib.request.urlopen(f"{self.url}/api/v1/label/{label}/values?{q}", timeout=10) as resp:
            return set(json.load(resp)["data"])

    def value(self, expr: str, **labels: str) -> float:
        res = [r for r in self.query(expr) if all(r["metric"].get(k) == v for k, v in labels.items())]
        assert len(res) == 1, f"{expr} {labels}: {res}"
        return float(res[0]["value"][1])

    def status_history(self, name: str, label: str, ups: str, seconds: int = 60) -> list[set[str]]:
        """The distinct successive sets of status tokens of ``ups`` over the last ``seconds``."""
        end = time.time()
        q = urllib.parse.urlencode({"query": f'{name}{{ups="{ups}"}} == 1', "start": end - seconds,
                                    "end": end, "step": "0.5"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{q}", timeout=10) as resp:
            data = json.load(resp)["data"]["result"]
        at: dict[float, set[str]] = {}
        for series in data:
            for ts, _ in series["values"]:
                at.setdefault(float(ts), set()).add(series["metric"][label])
        history: list[set[str]] = []
        for ts in sorted(at):
            if not history or history[-1] != at[ts]:
                history.append(at[ts])
        return history

    def wait(self, expr: str, timeout: float = 30.0) -> list[dict]:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout
        while True:
            res = self.query(expr)
            if res:
                return res
            if time.monotonic() > deadline:
                raise AssertionError(f"no result for {expr!r} after {timeout}s")
            time.sleep(0.5)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{url} not answering\n{log.read_text(errors='replace')[-3000:]}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def process(argv: list[str], log: Path, url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(url, proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def exporter_argv(port: int, nut_port: int, names: str) -> list[str]:
    return [sys.executable, "-m", "nutlite", "exporter", "--listen", f"127.0.0.1:{port}",
            "--server", f"127.0.0.1:{nut_port}", "--names", names, "--timeout", "1", *STAY_ROOT]


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the shipped dashboard (panel targets and template queries)."""
    dash = json.loads(data_file("grafana-dashboard-native.json").read_text())
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            out.append(var["query"]["query"])
    return out


def druggeri_queries() -> list[str]:
    if not DRUGGERI_QUERIES.exists():
        pytest.fail(f"{DRUGGERI_QUERIES} is missing (shared/ must sit beside the work tree)")
    return [ln.strip() for ln in DRUGGERI_QUERIES.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?(\w+)\)$")


def check_query(prom: Prom, query: str, upses: list[str], job: str) -> None:
    """The Grafana query returns data for each UPS (template variables filled in as Grafana would)."""
    for ups in upses:
        expr = query.replace("$instance", ".*").replace("$job", job).replace("$ups", ups)
        m = LABEL_VALUES.match(expr)
        if m:
            metric, label = m.group(1), m.group(2)
            values = prom.label_values(metric, label)
            assert values, f"{query}: no values"
            if label == "ups":
                assert set(upses) <= values, f"{query}: {values}"
            continue
        res = prom.query(expr)
        assert res, f"{query} returned nothing for ups={ups}"
        assert all(r["metric"].get("ups", ups) == ups for r in res), f"{query}: {res}"


# ------------------------------------------------------------------------------------------------
# The scenario


def test_prometheus_scrapes_power_failure_sequence(tmp_path: Path, nut_env_factory: EnvFactory) -> None:
    require_prometheus()
    env: NutEnv = nut_env_factory(
        [dummy_ups("steady", "steady.dev", desc="steady"),
         dummy_ups("seq", "power.seq", desc="sequence", options={"pollinterval": "1"})],
        files={"steady.dev": STEADY_DEV, "power.seq": SEQUENCE},
        start=False,
    )
    ports = {"nut_exporter": free_port(), "native": free_port()}
    prom_port = free_port()
    rules = []
    for fam in ports:
        shutil.copy(data_file(f"alerts-{fam}.yml"), tmp_path / f"alerts-{fam}.yml")
        rules.append(f"alerts-{fam}.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": rules,
        "scrape_configs": [
            {"job_name": fam, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for fam, port in ports.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    prom_argv = [str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"]
    prom_url = f"http://127.0.0.1:{prom_port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(prom_argv, tmp_path / "prometheus.log", prom_url + "/-/ready"))
        for fam, port in ports.items():
            stack.enter_context(process(exporter_argv(port, env.port, fam), tmp_path / f"exp-{fam}.log",
                                        f"http://127.0.0.1:{port}/-/healthy"))
        env.start()
        t0 = time.monotonic()
        prom = Prom(prom_url)
        prom.wait('nut_up{ups="seq"} == 1')
        prom.wait('network_ups_tools_up{ups="seq"} == 1')
        # Wait until the sequence is back on line after the low-battery step.
        prom.wait('max_over_time(nut_ups_status{ups="seq",status="LB"}[1m]) == 1 '
                  'and on(ups) nut_ups_status{ups="seq",status="OL"} == 1', timeout=40)
        prom.wait('max_over_time(network_ups_tools_ups_status{ups="seq",flag="LB"}[1m]) == 1 '
                  'and on(ups) network_ups_tools_ups_status{ups="seq",flag="OL"} == 1', timeout=10)
        assert time.monotonic() - t0 < 60

        # Values in both families.
        assert prom.value('nut_battery_charge_ratio{ups="steady"}') == pytest.approx(1.0)
        assert prom.value('network_ups_tools_battery_charge{ups="steady"}') == 100.0
        assert prom.value('nut_battery_runtime_seconds{ups="seq"}') == 1200.0
        assert prom.value('network_ups_tools_ups_load{ups="steady"}') == 23.0
        assert prom.value('nut_ups_load_ratio{ups="steady"}') == pytest.approx(0.23)
        assert prom.value('nut_input_voltage_volts{ups="steady"}') == 230.0
        # The status changes, seen by PromQL in both families.
        for name, lab in (("nut_ups_status", "status"), ("network_ups_tools_ups_status", "flag")):
            sel = f'{name}{{ups="seq",{lab}="%s"}}'
            assert prom.value(f"max_over_time({sel % 'OB'}[1m])") == 1.0
            assert prom.value(f"max_over_time({sel % 'LB'}[1m])") == 1.0
            assert prom.value(f"min_over_time({sel % 'OL'}[1m])") == 0.0
            assert prom.value(sel % "OL") == 1.0 and prom.value(sel % "OB") == 0.0
            assert prom.value(f"changes({sel % 'OB'}[1m])") >= 1
            assert prom.status_history(name, lab, "seq") == [
                {"OL"}, {"OB", "DISCHRG"}, {"OB", "DISCHRG", "LB"}, {"OL", "CHRG"}]
            assert prom.value(f"max_over_time({name}{{ups=\"steady\",{lab}=\"OB\"}}[1m])") == 0.0
        assert prom.value('min_over_time(nut_battery_charge_ratio{ups="seq"}[1m])') == pytest.approx(0.09)
        # The shipped rules saw it: LowBattery fired (no 'for'), OnBattery was at least pending.
        for fam in ports:
            alerts = prom.query(f'max_over_time(ALERTS{{alertname="UPSLowBattery",job="{fam}"}}[1m])')
            assert [a["metric"]["ups"] for a in alerts] == ["seq"], alerts
            assert prom.query(f'ALERTS{{alertname="UPSOnBattery",job="{fam}"}}') or prom.query(
                f'max_over_time(ALERTS{{alertname="UPSOnBattery",job="{fam}"}}[1m])')
            assert not prom.query(f'ALERTS{{alertname="UPSUnreachable",job="{fam}"}}')

        # Dashboards: every query has data for each UPS in its family.
        for q in dashboard_queries():
            check_query(prom, q, ["steady", "seq"], "native")
        for q in druggeri_queries():
            check_query(prom, q, ["steady", "seq"], "nut_exporter")

        # upsd goes away: up 0 for both UPSes within a few scrapes.
        env.stop_upsd(signal.SIGKILL)
        prom.wait('count(nut_up == 0) == 2', timeout=15)
        prom.wait("network_ups_tools_server_up == 0", timeout=15)


# ------------------------------------------------------------------------------------------------
# Debian's upsd as the remote target


def _scrape(port: int, family: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:

    from prometheus_client.parser import text_string_to_metric_families

    from nutlite.exporter import naming
    from nutlite.exporter.collector import Options, Target, build_families, render, scrape

    opts = Options(names=naming.names_for(family))
    results = scrape([Target("127.0.0.1", port)], opts)
    out = {}
    for fam in text_string_to_metric_families(render(build_families(results, opts)).decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@pytest.mark.parametrize("family", ["nut_exporter", "native"])
def test_debian_upsd_gives_the_same_metrics(family: str, nut_env_factory: EnvFactory) -> None:
    files = {"conformance.dev": DATA_DIR / "conformance.dev"}
    debian = nut_env_factory([dummy_ups(desc="Test UPS")], files=files, driver_flavour="debian",
                             upsd_flavour="debian")
    ours = nut_env_factory([dummy_ups(desc="Test UPS")], files=files)
    a, b = _scrape(debian.port, family), _scrape(ours.port, family)

    def comparable(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[object, float]:
        # Durations differ by nature; the driver's own version/parameters differ by implementation.
        return {k: v for k, v in samples.items()
                if not k[0].endswith(("scrape_duration_seconds", "_info")) and "_driver_" not in k[0]}

    assert comparable(a) == comparable(b)
    up = "network_ups_tools_up" if family == "nut_exporter" else "nut_up"
    assert a[(up, frozenset({("ups", "dummy")}))] == 1.0
    # The info series carries the same device data (driver version aside).
    info = [dict(k[1]) for k in a if k[0].endswith("_info") and "ups" in dict(k[1])]
    ours_info = [dict(k[1]) for k in b if k[0].endswith("_info") and "ups" in dict(k[1])]
    for d in (*info, *ours_info):
        d.pop("driver_version", None)
    assert info == ours_info
