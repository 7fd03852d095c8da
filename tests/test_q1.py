"""The Q1 protocol core, the simulator, and nutlite's nutdrv_qx/blazer_ser on a simulated UPS:
commands, killpower through ``upsdrvctl shutdown``, and the faults (silence, garbage, truncated
replies, the port disappearing)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nutlite.drivers.protocols import q1
from nutlite.sim.q1 import PtyQ1, Q1Ups

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serialsim  # noqa: E402
from nutenv import NutEnv, UpsSpec, get_var, upsd_list, wait_for  # noqa: E402
from serialsim import serial_lockdir  # noqa: E402, F401 - autouse fixture: lock files in the test's own folder

# --------------------------------------------------------------------------------------------------
# sans-IO core


def test_parse_q1_reply() -> None:
    r = q1.parse_q1("(208.4 140.0 208.4 034 59.9 2.05 35.0 00110000")
    assert (r.input_voltage, r.fault_voltage, r.output_voltage) == (208.4, 140.0, 208.4)
    assert (r.load, r.frequency, r.battery_voltage, r.temperature) == (34, 59.9, 2.05, 35.0)
    assert r.avr and r.failed and not r.utility_fail and not r.beeper
    assert q1.values(r) == {
        "input.voltage": "208.4", "input.voltage.fault": "140.0", "output.voltage": "208.4",
        "ups.load": "34", "input.frequency": "59.9", "battery.voltage": "2.05", "ups.temperature": "35.0"}


@pytest.mark.parametrize("line, what", [
    (None, "no reply"),
    ("", "no reply"),
    ("(230.0 230.0 230", "truncated"),
    ("\xff\x00#@!garbage?\xfe", "unexpected status reply"),
    ("Q1", "unexpected status reply"),
    ("(230.0 230.0 230.0 021 50.0 13.5 25.0 0000100", "truncated"),
])
def test_parse_q1_rejects(line: str | None, what: str) -> None:
    with pytest.raises(q1.Q1Error, match=what):
        q1.parse_q1(line)


def test_parse_f_and_i() -> None:
    f = q1.parse_f("#230.0 004 12.00 50.0")
    assert q1.rating_values(f) == {"input.voltage.nominal": "230", "input.current.nominal": "4.0",
                                   "battery.voltage.nominal": "12.0", "input.frequency.nominal": "50"}
    i = q1.parse_i("#NUTLITE         SIM-Q1     1.0       ")
    assert (i.company, i.model, i.firmware) == ("NUTLITE", "SIM-Q1", "1.0")
    with pytest.raises(q1.Q1Error):
        q1.parse_f("F")
    with pytest.raises(q1.Q1Error):
        q1.parse_i("I")


@pytest.mark.parametrize("vin, vout, token", [
    (230, 100, None), (230, 120, "TRIM"), (230, 218, "TRIM"), (230, 219, "BYPASS"), (230, 241, "BYPASS"),
    (230, 242, "BOOST"), (230, 344, "BOOST"), (230, 346, None),
])
def test_avr_decision_matches_observed_nut(vin: float, vout: float, token: str | None) -> None:
    # thresholds observed on Debian's nutdrv_qx and blazer_ser 2.8.0 with the simulator
    assert q1.avr_status(vin, vout) == token


def test_status_tokens() -> None:
    r = q1.parse_q1("(000.0 000.0 230.0 021 50.0 10.9 25.0 11100110")
    assert q1.status_tokens(r) == ["OB", "LB", "CAL", "FSD"]
    assert q1.ups_type(r) == "online"


def test_battery_charge_guess() -> None:
    low, high = q1.guess_battery_range(12.0)
    assert (f"{low:.2f}", f"{high:.2f}") == ("10.40", "13.00")
    # values Debian's drivers published for these voltages
    assert q1.fmt_charge(q1.charge_from_voltage(10.9, low, high)) == "19"
    assert q1.fmt_charge(q1.charge_from_voltage(11.8, low, high)) == "54"
    assert q1.fmt_charge(q1.charge_from_voltage(13.5, low, high)) == "100"
    assert q1.fmt_charge(q1.charge_from_voltage(2.25, low, high)) == "0"


def test_runtime_model() -> None:
    m = q1.RuntimeModel(*q1.parse_runtimecal("300,100,600,50"), chargetime=1000, idleload=10)
    assert m.full_runtime(100) == pytest.approx(300)
    assert m.full_runtime(50) == pytest.approx(600)
    assert m.full_runtime(1) == pytest.approx(3000)  # idleload floor
    charge, runtime = m.update(0.0, 50, True, 100.0)
    assert (charge, runtime) == (100.0, pytest.approx(600))
    charge, runtime = m.update(60.0, 50, True, 100.0)  # a minute at half load: 1/10 gone
    assert charge == pytest.approx(90) and runtime == pytest.approx(540)
    charge, _ = m.update(160.0, 50, False, 0.0)  # 100 s on mains with a 1000 s charge time
    assert charge == pytest.approx(100)
    with pytest.raises(ValueError, match="runtimecal"):
        q1.parse_runtimecal("300,100")


@pytest.mark.parametrize("off, on, wire", [
    # (offdelay, ondelay minutes or None) -> what Debian's nutdrv_qx -k sent to the simulator
    (30, 3, "S.5R0003"), (12, None, "S.2"), (59, None, "S.9"), (60, 1, "S01R0001"), (90, 1, "S01R0001"),
    (600, 9999, "S10R9999"), (30, 0, "S.5R0000"),
])
def test_shutdown_encoding(off: int, on: int | None, wire: str) -> None:
    assert q1.shutdown_command(off, on) == wire


def test_test_command() -> None:
    assert q1.test_command(None) == "T10"
    assert q1.test_command(100) == "T01"
    assert q1.test_command(5940) == "T99"
    for bad in (5, 6000):
        with pytest.raises(ValueError):
            q1.test_command(bad)
    assert q1.test_command(99, in_minutes=True) == "T99"  # blazer_ser
    for bad in (0, 100):
        with pytest.raises(ValueError):
            q1.test_command(bad, in_minutes=True)


def _query(ups: Q1Ups) -> Callable[[str], str | None]:
    def query(cmd: str) -> str | None:
        reply = ups.feed(cmd.encode() + b"\r")
        return reply.decode("latin-1").rstrip("\r") if reply else None
    return query


def test_probe_order_on_a_megatec_ups() -> None:
    ups = Q1Ups()
    proto = q1.probe(_query(ups))
    assert proto is not None and proto.name == "megatec" and proto.version == "Megatec 0.06"
    assert ups.commands == ["M", "QS", "Q1", "I"]  # voltronic-qs, mustek, then megatec claims it


def test_probe_falls_back_to_q1_without_vendor_info() -> None:
    ups = Q1Ups(answer_i=False)
    proto = q1.probe(_query(ups))
    assert proto is not None and proto.name == "q1"
    assert q1.probe(_query(ups), "mustek") is None
    with pytest.raises(ValueError, match="unknown protocol"):
        q1.probe(_query(ups), "nonsense")


def test_simulator_model() -> None:
    now = [100.0]
    ups = Q1Ups(clock=lambda: now[0])
    assert ups.feed(b"Q1\r") == b"(230.0 230.0 230.0 021 50.0 13.5 25.0 00001001\r"
    assert len(ups.feed(b"I\r")) == 39
    ups.apply("mains off")
    ups.apply("drain 0.5")
    now[0] = 101.0
    ups.tick()
    assert ups.battery_voltage == pytest.approx(13.0)
    assert q1.parse_q1(ups.feed(b"Q1\r").decode().rstrip("\r")).utility_fail
    ups.feed(b"S.5R0003\r")
    assert ups.shutdowns[-1].command == "S.5R0003" and ups.shutdowns[-1].off_seconds == 30
    ups.apply("garbage")
    assert b"garbage" in ups.feed(b"Q1\r")
    ups.apply("mute")
    assert ups.feed(b"Q1\r") == b""
    with pytest.raises(ValueError):
        ups.apply("explode")


# --------------------------------------------------------------------------------------------------
# nutlite's drivers on the pty simulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PtyQ1]:
    with PtyQ1(Q1Ups(), link=tmp_path / "ttyQ1") as s:
        yield s


def start_env(factory: Callable[..., NutEnv], sim: PtyQ1, driver: str = "nutdrv_qx",
              **options: str) -> NutEnv:
    opts = {"pollinterval": "1", **options}
    return factory([UpsSpec("q1", driver=driver, port=str(sim.link), options=opts)])


def test_driver_serves_the_simulated_ups(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1) -> None:
    env = start_env(nut_env_factory, sim, pollfreq="1")
    v = upsd_list(env, "q1")
    assert v["ups.status"] == "OL" and v["device.mfr"] == "NUTLITE" and v["battery.charge"] == "100"
    assert v["driver.version.data"] == "Megatec 0.06"
    sim.ups.apply("mains off")
    sim.ups.apply("battery 11.8")
    wait_for(lambda: get_var(env, "q1") == 'VAR q1 ups.status "OB"', 10, "OB", env)
    assert upsd_list(env, "q1")["battery.charge"] == "54"


@pytest.mark.parametrize("driver", ["nutdrv_qx", "blazer_ser"])
def test_status_and_values_come_from_the_same_reply(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1,
                                                    driver: str) -> None:
    """After the mains go off (and on again), every reading through upsd shows the status and the input
    voltage of the same reply: OB with 0.0 V, OL with 230.0 V. nutdrv_qx keeps its default pollfreq
    (30 s), so no full update of NUT's kind comes within the test."""
    env = start_env(nut_env_factory, sim, driver)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as drv:
        drv.connect(str(env.socket_path("q1")))  # the driver's broadcasts, as upsd reads them
        drv.settimeout(5)
        for action, status, volts in (("mains off", "OB", "0.0"), ("mains on", "OL", "230.0")):
            sim.ups.apply(action)
            # the driver hands each reply's changes over in one write: the status comes with its voltage
            chunk = b""
            while f'SETINFO ups.status "{status}"'.encode() not in chunk:
                chunk = drv.recv(65536)
                assert chunk, "the driver closed its socket"
            assert f'SETINFO input.voltage "{volts}"'.encode() in chunk, chunk
            readings = []
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                v = upsd_list(env, "q1")
                readings.append((v["ups.status"], v["input.voltage"], v["input.voltage.fault"]))
            assert readings[-1] == (status, volts, volts), readings
            mixed = [r for r in readings if ("OB" in r[0].split()) != (r[1] == "0.0" and r[2] == "0.0")]
            assert not mixed, (action, mixed)


def test_instant_commands_and_delays(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1) -> None:
    env = start_env(nut_env_factory, sim)
    expected = [
        ("INSTCMD q1 test.battery.start.quick", "T"), ("INSTCMD q1 test.battery.start.deep", "TL"),
        ("INSTCMD q1 test.battery.stop", "CT"), ('INSTCMD q1 test.battery.start "120"', "T02"),
        ("INSTCMD q1 beeper.toggle", "Q"), ("INSTCMD q1 load.off", "S00R0000"), ("INSTCMD q1 load.on", "C"),
        ("INSTCMD q1 shutdown.return", "S.5R0003"), ("INSTCMD q1 shutdown.stayoff", "S.5R0000"),
        ("INSTCMD q1 shutdown.stop", "C"),
    ]
    with env.connect() as c:
        assert c.request("USERNAME admin") == "OK"
        assert c.request("PASSWORD adminpw") == "OK"
        for line, wire in expected:
            n = len(sim.ups.commands)
            assert c.request(line) == "OK", line
            wait_for(lambda n=n, wire=wire: wire in sim.ups.commands[n:], 5, f"{wire} after {line}", env)
        assert c.request('SET VAR q1 ups.delay.shutdown "59"') == "OK"
        assert c.request('SET VAR q1 ups.delay.start "61"') == "OK"
        wait_for(lambda: 'VAR q1 ups.delay.shutdown "54"' == c.request("GET VAR q1 ups.delay.shutdown"), 5,
                 "rounded delay")
        wait_for(lambda: 'VAR q1 ups.delay.start "60"' == c.request("GET VAR q1 ups.delay.start"), 5,
                 "rounded start delay")
        n = len(sim.ups.commands)
        assert c.request("INSTCMD q1 shutdown.return") == "OK"
        wait_for(lambda: "S.9R0001" in sim.ups.commands[n:], 5, "S.9R0001", env)


@pytest.mark.parametrize("driver, options, wire", [
    ("nutdrv_qx", {"offdelay": "12", "ondelay": "120"}, "S.2R0002"),
    ("nutdrv_qx", {"offdelay": "90", "ondelay": "180", "stayoff": "yes"}, "S01R0000"),
    ("blazer_ser", {"offdelay": "30", "ondelay": "2"}, "S.5R0002"),  # blazer's ondelay is in minutes
])
def test_upsdrvctl_shutdown_sends_killpower(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1,
                                            driver: str, options: dict[str, str], wire: str) -> None:
    opts = dict(options)
    flags = ""
    if opts.pop("stayoff", None):
        flags = "  stayoff\n"
    env = start_env(nut_env_factory, sim, driver, **opts)
    if flags:  # a flag line in the section: restart the driver with it
        conf = env.confpath / "ups.conf"
        conf.write_text(conf.read_text().replace("[q1]\n", "[q1]\n" + flags))
        env.restart_driver("q1")
    r = subprocess.run([sys.executable, "-m", "nutlite", "upsdrvctl", "shutdown"], env=env.environ(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + env.logs()
    wait_for(lambda: sim.ups.shutdowns, 5, "a shutdown command", env)
    assert [s.command for s in sim.ups.shutdowns] == [wire]
    assert sim.ups.commands[-2:] == ["C", wire]


def test_killpower_without_a_running_driver(tmp_path: Path, sim: PtyQ1) -> None:
    env = NutEnv(tmp_path / "env", [UpsSpec("q1", driver="nutdrv_qx", port=str(sim.link),
                                            options={"offdelay": "60", "ondelay": "300"})])
    env.write_configs()
    r = subprocess.run([sys.executable, "-m", "nutlite", "driver", "-a", "q1", "-k", *NutEnv._user_args()], env=env.environ(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s.command for s in sim.ups.shutdowns] == ["S01R0005"]


def test_bad_offdelay_is_refused(tmp_path: Path, sim: PtyQ1) -> None:
    env = NutEnv(tmp_path / "env", [UpsSpec("q1", driver="nutdrv_qx", port=str(sim.link),
                                            options={"offdelay": "5"})])
    env.write_configs()
    r = subprocess.run([sys.executable, "-m", "nutlite", "driver", "-a", "q1", "-d", "1", *NutEnv._user_args()], env=env.environ(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "Shutdown delay '5' out of range [12..600]" in r.stdout + r.stderr


# --------------------------------------------------------------------------------------------------
# Faults


def test_silent_ups_goes_stale_and_recovers(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1) -> None:
    env = nut_env_factory([UpsSpec("q1", driver="nutdrv_qx", port=str(sim.link), options={"pollinterval": "1"})],
                          maxage=5)
    log = serialsim.silent_ups_goes_stale_and_recovers(env, sim, "q1", recovery=2 * 2 + 1)
    assert "data stale: no reply to Q1 within 1s" in log


@pytest.mark.parametrize("fault, logged", [
    ("garbage", "Q1: unexpected status reply b'\\xff\\x00#@!garbage?\\xfe'"),
    ("truncate", "Q1: truncated status reply b'(230.0 230.0 230.0 02"),
])
def test_garbled_reply_is_logged(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1, fault: str,
                                 logged: str) -> None:
    env = start_env(nut_env_factory, sim)
    serialsim.garbled_reply_is_logged(env, sim, "q1", fault, logged, timeout=5)


def test_port_disappears_and_comes_back(nut_env_factory: Callable[..., NutEnv], sim: PtyQ1) -> None:
    env = start_env(nut_env_factory, sim)
    serialsim.port_disappears_and_comes_back(env, sim, "q1", without_port=1.5)  # a few polls without the port: no crash


def test_sim_cli_and_script(tmp_path: Path) -> None:
    with serialsim.sim_cli(tmp_path, "q1", "mains off  # power cut\nsleep 0.1\nlowbatt on\n") as (first, ser):
        assert "Q1 UPS on /dev/pts/" in first
        ser.write(b"Q1\r")
        reply = ser.read_until(b"\r")
    assert q1.status_tokens(q1.parse_q1(reply.decode().rstrip("\r"))) == ["OB", "LB"]
