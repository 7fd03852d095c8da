"""nutlite exporter: naming and conversion, series shapes, endpoints, timeouts, credentials, auth/TLS.

Fast: the exporter runs in-process (its HTTP server in a thread) against nutlite's stack or a scripted
NUT server; one test starts it as `python -m nutlite exporter`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from conftest import EnvFactory
from nutenv import DATA_DIR, REPO_ROOT, STAY_ROOT, NutEnv, UpsSpec, dummy_ups, free_port
from prometheus_client.parser import text_string_to_metric_families

from nutlite.exporter import data_file, naming
from nutlite.exporter.collector import (
    CredentialsError,
    Options,
    ServerResult,
    Target,
    UpsResult,
    build_families,
    load_credentials,
    render,
)
from nutlite.exporter.main import Exporter, make_server, parse_listen
from nutlite.exporter.targets import AllowList
from nutlite.exporter.web import WebConfigError, load_web_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str | bytes) -> Samples:
    if isinstance(text, bytes):
        text = text.decode()
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no {name}{labels}; have {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def names_of(samples: Samples) -> set[str]:
    return {k[0] for k in samples}


# ------------------------------------------------------------------------------------------------
# Naming and conversion (pure)


@pytest.mark.parametrize(
    ("var", "family", "expected", "scale"),
    [
        ("battery.charge", "nut_exporter", "network_ups_tools_battery_charge", 1.0),
        ("ups.load", "nut_exporter", "network_ups_tools_ups_load", 1.0),
        ("input.voltage-extra", "nut_exporter", "network_ups_tools_input_voltage_extra", 1.0),
        ("battery.charge", "native", "nut_battery_charge_ratio", 0.01),
        ("battery.charge.low", "native", "nut_battery_charge_low_ratio", 0.01),
        ("ups.load", "native", "nut_ups_load_ratio", 0.01),
        ("battery.runtime", "native", "nut_battery_runtime_seconds", 1.0),
        ("ups.delay.shutdown", "native", "nut_ups_delay_shutdown_seconds", 1.0),
        ("input.voltage.nominal", "native", "nut_input_voltage_nominal_volts", 1.0),
        ("input.transfer.low", "native", "nut_input_transfer_low_volts", 1.0),
        ("output.current", "native", "nut_output_current_amperes", 1.0),
        ("input.frequency", "native", "nut_input_frequency_hertz", 1.0),
        ("ups.temperature", "native", "nut_ups_temperature_celsius", 1.0),
        ("ups.realpower.nominal", "native", "nut_ups_realpower_nominal_watts", 1.0),
        ("ups.power", "native", "nut_ups_power_voltamperes", 1.0),
        ("ambient.humidity", "native", "nut_ambient_humidity_ratio", 0.01),
        ("device.uptime", "native", "nut_device_uptime_seconds", 1.0),
        ("my.custom.counter", "native", "nut_my_custom_counter", 1.0),
    ],
)
def test_gauge_names(var: str, family: str, expected: str, scale: float) -> None:
    assert naming.names_for(family).gauge(var) == (expected, scale)


def test_value_parsing_and_classes() -> None:
    assert naming.parse_number("023") == 23.0
    assert naming.parse_number(" 27.30 ") == 27.3
    assert naming.parse_number("-1.5e2") == -150.0
    assert naming.parse_number("1.2.3") is None
    assert naming.parse_number("enabled") is None
    assert naming.parse_number("") is None
    assert naming.status_tokens("ALARM  ol RB") == ["ALARM", "OL", "RB"]
    assert naming.is_string_var("ups.serial") and naming.is_string_var("device.serial")
    assert naming.is_string_var("ups.mfr.date") and naming.is_string_var("ups.firmware")
    assert not naming.is_string_var("device.uptime") and not naming.is_string_var("battery.charge")
    assert naming.enum_states("outlet.1.status") == ("on", "off")
    assert naming.enum_states("ups.beeper.status") == ("enabled", "disabled", "muted")
    assert naming.enum_states("battery.charge") is None
    assert naming.on_off("Enabled") == 1.0 and naming.on_off("off") == 0.0 and naming.on_off("x") is None
    assert naming.sanitize("1st.var-x") == "_1st_var_x"
    with pytest.raises(ValueError):
        naming.names_for("hon95")
    with pytest.raises(ValueError, match="bad metric prefix"):
        naming.names_for("native", "ups-1")
    assert naming.names_for("nut_exporter", "ups10153").gauge("ups.load") == ("ups10153_ups_load", 1.0)


def _result(variables: dict[str, str], ups: str = "ups1") -> ServerResult:
    return ServerResult(Target("10.0.0.1"), up=True, upses=[UpsResult(ups, variables=dict(variables), duration=0.002)])


SAMPLE_VARS = {
    "ups.status": "ALARM OL RB WEIRD",
    "battery.charge": "087",
    "battery.runtime": "1800",
    "ups.load": "23",
    "ups.serial": "0012345",
    "ups.mfr": "ACME",
    "ups.model": "Smart 1500",
    "device.type": "ups",
    "device.location": "rack 3",
    "ups.firmware": "08.3",
    "ups.beeper.status": "muted",
    "ups.test.result": "Done  and warning",
    "battery.charger.status": "floating",
    "outlet.1.status": "off",
    "ups.id": "12",
    "input.sensitivity": "high",
    "driver.version": "2.8.0",
}


@pytest.mark.parametrize("family", naming.FAMILIES)
def test_status_stateset_covers_every_token(family: str) -> None:
    n = naming.names_for(family)
    s = parse(render(build_families([_result(SAMPLE_VARS)], Options(names=n), False, "9")))
    lab = n.status_label
    for token in naming.STANDARD_STATUSES:
        expected = 1.0 if token in ("ALARM", "OL", "RB") else 0.0
        assert value(s, n.status, ups="ups1", **{lab: token}) == expected
    assert value(s, n.status, ups="ups1", **{lab: "WEIRD"}) == 1.0  # unknown token: present as 1
    # A custom status list: only those plus the present ones.
    s = parse(render(build_families([_result(SAMPLE_VARS)], Options(names=n, statuses=["OB"]), False)))
    flags = {dict(k[1])[lab] for k in s if k[0] == n.status}
    assert flags == {"OB", "ALARM", "OL", "RB", "WEIRD"}


def test_enums_info_and_strings_native() -> None:
    n = naming.names_for("native")
    s = parse(render(build_families([_result(SAMPLE_VARS)], Options(names=n), False, "1.2")))
    assert value(s, "nut_battery_charge_ratio", ups="ups1") == pytest.approx(0.87)
    assert value(s, "nut_ups_load_ratio", ups="ups1") == pytest.approx(0.23)
    assert value(s, "nut_ups_beeper_status", ups="ups1", state="muted") == 1.0
    assert value(s, "nut_ups_beeper_status", ups="ups1", state="enabled") == 0.0
    assert value(s, "nut_ups_test_result", ups="ups1", state="Done and warning") == 1.0
    assert value(s, "nut_ups_test_result", ups="ups1", state="Done and passed") == 0.0
    assert value(s, "nut_battery_charger_status", ups="ups1", state="floating") == 1.0
    assert value(s, "nut_outlet_1_status", ups="ups1", state="off") == 1.0
    info = [dict(k[1]) for k in s if k[0] == "nut_ups_info"]
    assert info == [{"ups": "ups1", "mfr": "ACME", "model": "Smart 1500", "serial": "0012345",
                     "ups_mfr": "ACME", "ups_model": "Smart 1500", "ups_serial": "0012345",
                     "type": "ups", "location": "rack 3", "firmware": "08.3", "driver_version": "2.8.0"}]
    # Identifiers and free text are not numbers; info data is not a label anywhere else.
    assert not {"nut_ups_serial", "nut_ups_id", "nut_driver_version", "nut_ups_firmware"} & names_of(s)
    assert value(s, "nut_input_sensitivity", ups="ups1", state="high") == 1.0
    assert all(set(dict(k[1])) <= {"ups", "state", "status"} for k in s if k[0] != "nut_ups_info"
               and not k[0].startswith("nutlite_exporter"))
    assert value(s, "nutlite_exporter_build_info", version="1.2", names="native") == 1.0
    assert value(s, "nut_up", ups="ups1") == 1.0 and value(s, "nut_data_stale", ups="ups1") == 0.0
    assert value(s, "nut_scrape_duration_seconds", ups="ups1") == pytest.approx(0.002)


def test_nut_exporter_family_compat() -> None:
    n = naming.names_for("nut_exporter")
    s = parse(render(build_families([_result(SAMPLE_VARS)], Options(names=n), False)))
    assert value(s, "network_ups_tools_battery_charge", ups="ups1") == 87.0  # raw percent
    assert value(s, "network_ups_tools_ups_load", ups="ups1") == 23.0
    assert value(s, "network_ups_tools_battery_runtime", ups="ups1") == 1800.0
    # DRuggeri's on/off gauge and the state set side by side.
    assert value(s, "network_ups_tools_ups_beeper_status_state", ups="ups1", state="muted") == 1.0
    assert "network_ups_tools_ups_beeper_status" not in names_of(s)  # "muted" is neither on nor off
    s2 = parse(render(build_families([_result({**SAMPLE_VARS, "ups.beeper.status": "enabled"})],
                                     Options(names=n), False)))
    assert value(s2, "network_ups_tools_ups_beeper_status", ups="ups1") == 1.0
    info = [dict(k[1]) for k in s if k[0] == "network_ups_tools_device_info"]
    assert len(info) == 1 and info[0]["model"] == "Smart 1500" and info[0]["ups"] == "ups1"


def test_include_exclude_and_server_label() -> None:
    n = naming.names_for("native")
    opts = Options(names=n, include=["battery.*"])
    s = parse(render(build_families([_result(SAMPLE_VARS)], opts, True)))
    measured = {k[0] for k in s if k[0].startswith("nut_") and k[0] not in (
        n.up, n.stale, n.duration, n.info, n.status, n.server_up)}
    assert measured == {"nut_battery_charge_ratio", "nut_battery_runtime_seconds", "nut_battery_charger_status"}
    assert value(s, n.status, ups="ups1", server="10.0.0.1:3493", status="OL") == 1.0  # status is kept
    assert value(s, n.server_up, server="10.0.0.1:3493") == 1.0
    opts = Options(names=n, exclude=["ups.status", "battery.charge*"])
    s = parse(render(build_families([_result(SAMPLE_VARS)], opts, False)))
    assert n.status not in names_of(s) and "nut_battery_charge_ratio" not in names_of(s)
    assert "nut_battery_runtime_seconds" in names_of(s)
    s = parse(render(build_families([_result(SAMPLE_VARS)], Options(names=n, device_info=False), False)))
    assert n.info not in names_of(s)


def test_name_clash_keeps_one_family() -> None:
    n = naming.names_for("nut_exporter")
    s = render(build_families([_result({"a.b-c": "1", "a.b.c": "2", "ups.status": "OL"})], Options(names=n)))
    assert s.count(b"# TYPE network_ups_tools_a_b_c gauge") == 1
    assert value(parse(s), "network_ups_tools_a_b_c", ups="ups1") == 1.0


def test_down_ups_has_only_health_series() -> None:
    n = naming.names_for("native")
    res = ServerResult(Target("h"), up=True, upses=[UpsResult("u", error="DATA-STALE", stale=True)])
    s = parse(render(build_families([res], Options(names=n))))
    assert value(s, "nut_up", ups="u") == 0.0 and value(s, "nut_data_stale", ups="u") == 1.0
    assert n.status not in names_of(s) and n.info not in names_of(s)


def test_parse_listen() -> None:
    assert parse_listen(":9199") == ("", 9199)
    assert parse_listen("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_listen("[::1]:9100") == ("::1", 9100)
    with pytest.raises(ValueError):
        parse_listen(":http")


# ------------------------------------------------------------------------------------------------
# Credentials and web config files


def test_credentials_file(tmp_path: Path) -> None:
    f = tmp_path / "creds"
    f.write_text('# NUT logins\nusername = mon\npassword = "se cret\\#x"\n\n[nas.lan]\nusername = a\npassword = b\n')
    creds = load_credentials(f)
    assert creds[None].username == "mon" and creds[None].password == "se cret#x"
    assert creds["nas.lan:3493"].username == "a"
    opts = Options(credentials=creds, servers=[Target("127.0.0.1"), Target("NAS.lan")])
    assert opts.credentials_for(Target("nas.lan")) is creds["nas.lan:3493"]
    assert opts.credentials_for(Target("nas.lan", 3494)) is None  # a section is for its port only
    assert opts.credentials_for(Target("127.0.0.1")) is creds[None]  # a --server
    assert opts.credentials_for(Target("other")) is None  # not a --server: no section-less login
    assert opts.credentials_for(Target("127.0.0.1", 3494)) is None
    assert "se cret" not in repr(creds)
    f.write_text("username = mon\npassword: x\n")
    with pytest.raises(CredentialsError, match=r"creds:2: expected"):
        load_credentials(f)
    f.write_text("username = mon\n")
    with pytest.raises(CredentialsError, match="needs both"):
        load_credentials(f)
    f.write_text("[nas/lan]\nusername = a\npassword = b\n")
    with pytest.raises(CredentialsError, match=r"creds:1: bad section \[nas/lan\]: not a host name"):
        load_credentials(f)


def test_web_config_errors(tmp_path: Path) -> None:
    f = tmp_path / "web.yml"
    f.write_text("basic_auth_users:\n  bob: plaintext\n")
    with pytest.raises(WebConfigError, match="not a bcrypt hash"):
        load_web_config(f)
    f.write_text("tls_server_config:\n  cert_file: x.crt\n")
    with pytest.raises(WebConfigError, match="needs cert_file and key_file"):
        load_web_config(f)
    f.write_text("bogus: 1\n")
    with pytest.raises(WebConfigError, match="unknown keys bogus"):
        load_web_config(f)


# ------------------------------------------------------------------------------------------------
# Integration helpers


@contextlib.contextmanager
def serve(exporter: Exporter) -> Iterator[str]:
    """Run the exporter's HTTP server on a free loopback port; yields its base URL."""
    server = make_server(("127.0.0.1", 0), exporter)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    scheme = "https" if exporter.web.tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None,
        timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def make_exporter(targets: list[Target], family: str = "nut_exporter", **kw: object) -> Exporter:
    return Exporter(targets, Options(names=naming.names_for(family), **kw))  # type: ignore[arg-type]


@pytest.fixture
def two_ups_env(nut_env_factory: EnvFactory) -> NutEnv:
    return nut_env_factory(
        [dummy_ups(desc="Test UPS"), dummy_ups("second")],
        files={"conformance.dev": DATA_DIR / "conformance.dev"},
    )


# ------------------------------------------------------------------------------------------------
# Against nutlite's stack


def test_metrics_both_families_against_nutlite(two_ups_env: NutEnv) -> None:
    target = Target("127.0.0.1", two_ups_env.port)
    with serve(make_exporter([target])) as url:
        status, body = get(url + "/metrics")
    assert status == 200
    s = parse(body)
    for ups in ("dummy", "second"):
        assert value(s, "network_ups_tools_battery_charge", ups=ups) == 87.0
        assert value(s, "network_ups_tools_ups_status", ups=ups, flag="OL") == 1.0
        assert value(s, "network_ups_tools_ups_status", ups=ups, flag="CHRG") == 1.0
        assert value(s, "network_ups_tools_ups_status", ups=ups, flag="ALARM") == 0.0
        assert value(s, "network_ups_tools_up", ups=ups) == 1.0
    with serve(make_exporter([target], "native")) as url:
        s = parse(get(url + "/metrics")[1])
    assert value(s, "nut_battery_charge_ratio", ups="dummy") == pytest.approx(0.87)
    assert value(s, "nut_ups_temperature_celsius", ups="second") == 31.5
    assert value(s, "nut_ups_test_result", ups="dummy", state="Done and passed") == 1.0
    info = {k for k in s if k[0] == "nut_ups_info"}
    assert len(info) == 2 and all(dict(k[1])["serial"] == "AS1234567890" for k in info)


def test_probe_and_ups_metrics(two_ups_env: NutEnv) -> None:
    port = two_ups_env.port
    # /metrics is configured for a dead server; /probe and /ups_metrics name the live one, which
    # --allow-target allows (tests/test_exporter_targets.py: what is refused).
    exporter = make_exporter([Target("127.0.0.1", free_port())])
    exporter.allow = AllowList.parse(exporter.targets, [f"127.0.0.1:{port}"])
    with serve(exporter) as url:
        status, body = get(f"{url}/probe?target=127.0.0.1:{port}")
        assert status == 200
        s = parse(body)
        assert {dict(k[1])["ups"] for k in s if k[0] == "network_ups_tools_up"} == {"dummy", "second"}
        assert not any("server" in dict(k[1]) for k in s)
        status, body = get(f"{url}/ups_metrics?server=127.0.0.1&serverport={port}&ups=second"
                           "&variables=battery.charge,ups.load&statuses=OL,OB")
        assert status == 200
        s = parse(body)
        assert {dict(k[1]).get("ups") for k in s if k[0].startswith("network_ups_tools_")
                and k[0] != "network_ups_tools_server_up"} == {"second"}
        assert value(s, "network_ups_tools_ups_load", ups="second") == 23.0
        assert "network_ups_tools_battery_runtime" not in names_of(s)
        assert {dict(k[1])["flag"] for k in s if k[0] == "network_ups_tools_ups_status"} == {"OL", "OB", "CHRG"}
        assert get(f"{url}/probe")[0] == 400
        status, body = get(f"{url}/ups_metrics?server=127.0.0.1&serverport={port}&password=x")
        assert status == 400 and b"credentials-file" in body
        assert get(f"{url}/nothing")[0] == 404
        assert get(f"{url}/-/healthy") == (200, b"OK\n")


def test_two_servers_get_server_label(nut_env_factory: EnvFactory) -> None:
    files = {"conformance.dev": DATA_DIR / "conformance.dev"}
    a = nut_env_factory([dummy_ups()], files=files)
    b = nut_env_factory([dummy_ups()], files=files)
    ta, tb = Target("127.0.0.1", a.port), Target("127.0.0.1", b.port)
    with serve(make_exporter([ta, tb], "native")) as url:
        s = parse(get(url + "/metrics")[1])
    for t in (ta, tb):
        assert value(s, "nut_up", ups="dummy", server=str(t)) == 1.0
        assert value(s, "nut_server_up", server=str(t)) == 1.0


def test_driver_gone_is_stale(nut_env_factory: EnvFactory) -> None:
    env = nut_env_factory(
        [dummy_ups(), UpsSpec("nodriver", launch="none")], files={"conformance.dev": DATA_DIR / "conformance.dev"}
    )
    with serve(make_exporter([Target("127.0.0.1", env.port)], "native")) as url:
        s = parse(get(url + "/metrics")[1])
    assert value(s, "nut_up", ups="dummy") == 1.0
    assert value(s, "nut_up", ups="nodriver") == 0.0
    assert value(s, "nut_data_stale", ups="nodriver") == 1.0


def test_dead_server_is_up0_fast(nutlite_env: NutEnv) -> None:
    # A black hole: accepts connections, never answers.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    live = Target("127.0.0.1", nutlite_env.port)
    refused = Target("127.0.0.1", free_port())
    silent = Target("127.0.0.1", hole.getsockname()[1])
    exporter = make_exporter([live, refused, silent], "native", timeout=0.5, deadline=5.0)
    try:
        with serve(exporter) as url:
            t0 = time.monotonic()
            status, body = get(url + "/metrics")
            elapsed = time.monotonic() - t0
            assert status == 200 and elapsed < 2.0, elapsed
            s = parse(body)
            assert value(s, "nut_server_up", server=str(live)) == 1.0
            assert value(s, "nut_server_up", server=str(refused)) == 0.0
            assert value(s, "nut_server_up", server=str(silent)) == 0.0
            assert value(s, "nut_up", ups="dummy", server=str(live)) == 1.0
            # Prometheus's scrape timeout header bounds the whole answer too.
            exporter.options.timeout = 30.0
            t0 = time.monotonic()
            status, _ = get(url + "/metrics", {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
            assert status == 200 and time.monotonic() - t0 < 2.5
            # The live server goes away: its known UPS stays, with up 0, and the scrape stays fast.
            nutlite_env.stop_upsd(9)
            exporter.options.timeout = 0.5
            t0 = time.monotonic()
            s = parse(get(url + "/metrics")[1])
            assert time.monotonic() - t0 < 2.0
            assert value(s, "nut_up", ups="dummy", server=str(live)) == 0.0
            assert value(s, "nut_server_up", server=str(live)) == 0.0
            assert "nut_battery_charge_ratio" not in names_of(s)
    finally:
        hole.close()


# ------------------------------------------------------------------------------------------------
# A scripted NUT server: what goes over the wire


class ScriptedNut:
    """A minimal NUT server on loopback that records every request line."""

    def __init__(self, upses: dict[str, dict[str, str]], strings: tuple[str, ...] = ()) -> None:
        self.upses = upses
        self.strings = strings  # variables GET TYPE calls STRING
        self.lines: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for raw in f:
                line = raw.decode().rstrip("\r\n")
                self.lines.append(line)
                words = line.split()
                if line == "LIST UPS":
                    out = ["BEGIN LIST UPS", *(f'UPS {u} "x"' for u in self.upses), "END LIST UPS"]
                elif words[:2] == ["LIST", "VAR"]:
                    ups = words[2]
                    out = [f"BEGIN LIST VAR {ups}",
                           *(f'VAR {ups} {k} "{v}"' for k, v in self.upses[ups].items()),
                           f"END LIST VAR {ups}"]
                elif words[:2] == ["GET", "TYPE"]:
                    kind = "STRING:10" if words[3] in self.strings else "NUMBER"
                    out = [f"TYPE {words[2]} {words[3]} {kind}"]
                elif words[0] in ("USERNAME", "PASSWORD"):
                    out = ["OK"]
                elif words[0] == "LOGOUT":
                    f.write(b"OK Goodbye\n")
                    f.flush()
                    return
                else:
                    out = ["ERR UNKNOWN-COMMAND"]
                f.write("".join(x + "\n" for x in out).encode())
                f.flush()

    def close(self) -> None:
        self.sock.close()


def test_one_list_var_per_ups_and_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nut = ScriptedNut({"a": {"ups.status": "OB LB", "battery.charge": "5", "x.code": "0042", "x.count": "7"},
                       "b": {"ups.status": "OL"}}, strings=("x.code",))
    creds = tmp_path / "creds"
    creds.write_text(f'[127.0.0.1:{nut.port}]\nusername = monuser\npassword = "hunter2 pw"\n')
    exporter = make_exporter([Target("127.0.0.1", nut.port)], credentials=load_credentials(creds))
    caplog.set_level("DEBUG")
    try:
        with serve(exporter) as url:
            s = parse(get(url + "/metrics")[1])
            first = list(nut.lines)
            nut.lines.clear()
            get(url + "/metrics")
    finally:
        nut.close()
    # Variables that no table knows and look numeric: one GET TYPE each, the first time only.
    assert first == ["USERNAME monuser", 'PASSWORD "hunter2 pw"', "LIST UPS", "LIST VAR a", "GET TYPE a x.code",
                     "GET TYPE a x.count", "LIST VAR b", "LOGOUT"]
    assert nut.lines == ["USERNAME monuser", 'PASSWORD "hunter2 pw"', "LIST UPS", "LIST VAR a", "LIST VAR b",
                         "LOGOUT"]
    assert value(s, "network_ups_tools_x_count", ups="a") == 7.0
    assert "network_ups_tools_x_code" not in names_of(s)
    assert value(s, "network_ups_tools_ups_status", ups="a", flag="LB") == 1.0
    assert value(s, "network_ups_tools_battery_charge", ups="a") == 5.0
    assert "hunter2" not in caplog.text


def test_no_ups_and_declared_upses() -> None:
    nut = ScriptedNut({})
    try:
        with serve(make_exporter([Target("127.0.0.1", nut.port)], "native")) as url:
            status, body = get(url + "/metrics")
    finally:
        nut.close()
    s = parse(body)
    assert status == 200 and value(s, "nut_server_up") == 1.0
    assert "nut_up" not in names_of(s)
    # UPSes named up front are reported (up 0) even if their server was never reachable.
    exporter = Exporter([Target("127.0.0.1", free_port())], Options(names=naming.names_for("native"), timeout=0.5),
                        upses=["a", "b"])
    with serve(exporter) as url:
        s = parse(get(url + "/metrics")[1])
        assert value(s, "nut_up", ups="a") == 0.0 and value(s, "nut_up", ups="b") == 0.0
        s = parse(get(url + "/metrics?ups=c")[1])
        assert {dict(k[1])["ups"] for k in s if k[0] == "nut_up"} == {"c"}


# ------------------------------------------------------------------------------------------------
# HTTP basic auth and TLS


def _basic(user: str, pw: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_basic_auth_and_tls(tmp_path: Path, nutlite_env: NutEnv) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(tmp_path / "c.pem")],
        check=True, capture_output=True,
    )
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n"
                   f"basic_auth_users:\n  prom: '{hashed}'\n")
    exporter = make_exporter([Target("127.0.0.1", nutlite_env.port)])
    exporter.web = load_web_config(web)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
    with serve(exporter) as url:
        assert url.startswith("https://")
        assert get(url + "/metrics", context=ctx)[0] == 401
        assert get(url + "/metrics", _basic("prom", "wrong"), context=ctx)[0] == 401
        assert get(url + "/metrics", _basic("other", "s3cret"), context=ctx)[0] == 401
        for _ in range(2):  # the second time from the cache
            status, body = get(url + "/metrics", _basic("prom", "s3cret"), context=ctx)
            assert status == 200
            assert value(parse(body), "network_ups_tools_up", ups="dummy") == 1.0
        # Plain HTTP to the TLS port gets nowhere.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(url.replace("https", "http") + "/metrics", timeout=5).read()


# ------------------------------------------------------------------------------------------------
# The command


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get(url, timeout=5)
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_command_line(tmp_path: Path, nutlite_env: NutEnv) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    creds = tmp_path / "creds"
    creds.write_text("username = admin\npassword = adminpw\n")
    argv = [sys.executable, "-m", "nutlite", "exporter", "--listen", f"127.0.0.1:{port}",
            "--server", f"127.0.0.1:{nutlite_env.port}", "--names", "native", "--credentials-file", str(creds),
            "--exclude", "ambient.*", *STAY_ROOT]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    try:
        status, body = _wait_http(f"http://127.0.0.1:{port}/metrics", proc)
        assert status == 200
        s = parse(body)
        assert value(s, "nut_battery_runtime_seconds", ups="dummy") == 1800.0
        assert "nut_ambient_temperature_celsius" not in names_of(s)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert b"adminpw" not in err
    bad = subprocess.run([*argv[:4], "--credentials-file", str(tmp_path / "missing")], env=env,
                         capture_output=True, timeout=30)
    assert bad.returncode == 2 and b"missing" in bad.stderr


def test_exporter_inside_upsd(nut_env_factory: EnvFactory) -> None:
    """``upsd --with-exporter``: one process serves NUT clients and /metrics, scraping itself over TCP."""
    http = free_port()
    env = nut_env_factory([dummy_ups(desc="Test UPS")], files={"conformance.dev": DATA_DIR / "conformance.dev"},
                          upsd_args=[f"--with-exporter=--listen 127.0.0.1:{http} --names native"])
    # No --server: the exporter scrapes the upsd it runs in, at its LISTEN address.
    deadline = time.monotonic() + 15
    while True:
        status, body = get(f"http://127.0.0.1:{http}/metrics", timeout=5)
        s = parse(body)
        if s.get(("nut_up", frozenset({("ups", "dummy")}))) == 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and value(s, "nut_battery_runtime_seconds", ups="dummy") == 1800.0
    assert value(s, "nut_ups_status", ups="dummy", status="OL") == 1.0
    upsc = subprocess.run([sys.executable, "-m", "nutlite", "upsc", f"dummy@127.0.0.1:{env.port}", "battery.charge"],
                          env=env.environ(), capture_output=True, text=True, timeout=30)
    assert upsc.stdout == "87\n"
    pid = env.upsd_pid
    assert {p for p in os.listdir("/proc") if p.isdigit() and _listens_on(p, http)} == {str(pid)}
    t0 = time.monotonic()
    env.stop_upsd()
    assert time.monotonic() - t0 < 5


def test_embedded_exporter_health_follows_its_accept_loop() -> None:
    """What upsd's watchdog asks before each ping: the HTTP thread is alive and its loop turns."""
    from nutlite.exporter.main import Embedded

    port = free_port()
    emb = Embedded.from_args(f"--listen 127.0.0.1:{port} --config-status ''", "127.0.0.1:1")
    assert [str(t) for t in emb.exporter.targets] == ["127.0.0.1:1"]  # the host daemon's address
    emb.start()
    try:
        assert get(f"http://127.0.0.1:{port}/-/healthy")[0] == 200
        assert emb.healthy()
        emb.turns.last_turn -= Embedded.STALL + 1  # as if the loop had hung
        assert not emb.healthy()
        time.sleep(0.7)  # the next turn (every 0.5 s) makes it healthy again
        assert emb.healthy()
    finally:
        emb.close()
    assert not emb.thread.is_alive() and not emb.healthy()


def _listens_on(pid: str, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` (from /proc, no tools)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return any(r[1].endswith(f":{port:04X}") and r[3] == "0A" and f"socket:[{r[9]}]" in inodes for r in rows)


@pytest.mark.parametrize(("args", "words"), [
    ("--listen nonsense:x", "fatal: exporter: bad --listen"),
    ("--credentials-file /nonexistent/creds", "fatal: exporter: "),
    ("-u nobody", "-u and -D are the host daemon's own options"),
    ("--bogus", "unrecognized arguments: --bogus"),
    ("'unclosed", "--with-exporter"),
])
def test_exporter_inside_upsd_refuses_bad_options(nut_env_factory: EnvFactory, args: str, words: str) -> None:
    env = nut_env_factory([dummy_ups()], start=False, files={"conformance.dev": DATA_DIR / "conformance.dev"})
    env.write_configs()
    out = subprocess.run([sys.executable, "-m", "nutlite", "upsd", "-F", *STAY_ROOT, f"--with-exporter={args}"],
                         env=env.environ(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert words in out.stderr and "Traceback" not in out.stderr


def test_shipped_files_exist() -> None:
    for name in ("alerts-native.yml", "alerts-nut_exporter.yml", "alerts-native.test.yml",
                 "alerts-nut_exporter.test.yml", "grafana-dashboard-native.json"):
        assert data_file(name).is_file(), name




# ------------------------------------------------------------------------------------------------
# The README's name-family table says what a scrape gives


def test_readme_name_family_examples_are_what_the_exporter_publishes() -> None:
    """Each ``| `var` = value | `family A sample` | `family B sample` |`` row of the README's table is
    rendered from that variable by the real collector, in both families."""
    readme = (REPO_ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z.]+)` = (\d+) \| `(network_ups_tools_\w+) ([\d.]+)` \| `(nut_\w+) ([\d.]+)` \|$",
                      readme, re.M)
    assert len(rows) >= 4, "the README's name-family table lost its example rows"
    for var, raw, old_name, old_value, new_name, new_value in rows:
        for family, name, expected in (("nut_exporter", old_name, old_value), ("native", new_name, new_value)):
            options = Options(names=naming.names_for(family))
            result = ServerResult(Target("127.0.0.1", 3493), up=True,
                                  upses=[UpsResult("ups", {var: raw, "ups.status": "OL"})])
            samples = parse(render(build_families([result], options)))
            assert value(samples, name, ups="ups") == float(expected), (family, var)
