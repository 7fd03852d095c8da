"""The APC smart protocol core, the APC simulator, and nutlite's apcsmart on a simulated Smart-UPS:
alerts acted on at once, the two-step confirmation, SET, killpower through ``upsdrvctl shutdown``, the
940-0095B cable, and the faults (silence, garbage, truncated replies, the port disappearing)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nutlite.drivers.framework.core import DriverError, prepare
from nutlite.drivers.framework.drvconfig import DriverConfig
from nutlite.drivers.programs.apcsmart import ApcSmart
from nutlite.drivers.protocols import apc
from nutlite.drivers.transports.serialport import SerialPort
from nutlite.sim.apc import ApcUps, PtyApc, capability_reply

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serialsim  # noqa: E402
from nutenv import NutEnv, UpsSpec, get_var, wait_for  # noqa: E402
from serialsim import serial_lockdir  # noqa: E402, F401 - autouse fixture: lock files in the test's own folder

# --------------------------------------------------------------------------------------------------
# sans-IO core


def test_protocol_info_and_commands() -> None:
    info = apc.parse_protocol_info("3.!$%+?=#|.\x01\x0e\x1a@ABDKSUWZ^bcfj")
    assert (info.version, info.alerts) == ("3", "!$%+?=#|")
    assert apc.command_table(info.commands) == [
        "bypass.start", "bypass.stop", "calibrate.start", "calibrate.stop", "load.off", "load.on",
        "shutdown.return", "shutdown.stayoff", "test.battery.start", "test.battery.stop", "test.failure.start",
        "test.panel.start"]
    assert apc.command_table("ABf") == ["test.panel.start"]  # only what the UPS supports
    for bad in (None, "NA", "3.!$"):
        with pytest.raises(apc.ApcError):
            apc.parse_protocol_info(bad)


def test_capabilities_by_locale() -> None:
    caps = apc.parse_capabilities(capability_reply(), "I")
    assert caps["u"] == ["253", "264", "271", "280"]  # the 230 V row, not the 120 V one
    assert caps["E"] == ["336", "168", "ON ", "OFF"]
    assert apc.enum_values(apc.VAR_BY_CHAR["E"], caps["E"]) == ["1209600", "604800", "0"]
    assert apc.enum_values(apc.VAR_BY_CHAR["s"], caps["s"]) == ["H", "M", "L"]
    assert apc.enum_values(apc.VAR_BY_CHAR["q"], caps["q"]) == ["120", "300", "420", "600"]
    assert apc.parse_capabilities(capability_reply(), "D")["u"] == ["127", "130", "133", "136"]
    with pytest.raises(apc.ApcError, match="cut short"):
        apc.parse_capabilities(capability_reply()[:30], "I")
    with pytest.raises(apc.ApcError):
        apc.parse_capabilities("NA", "I")


def test_status_and_alerts() -> None:
    assert apc.status_tokens(apc.parse_status("08")) == ["OL"]
    assert apc.status_tokens(apc.parse_status("F1")) == ["CAL", "OB", "OVER", "LB", "RB"]
    assert apc.status_tokens(apc.parse_status("0C")) == ["BOOST", "OL"]
    for bad in (None, "", "8", "XY", "\xff\x00~#garbage\xfe"):
        with pytest.raises(apc.ApcError, match="unexpected status reply"):
            apc.parse_status(bad)
    bits = apc.apply_alert(apc.BIT["OL"], "!")
    assert apc.status_tokens(bits) == ["OB"]
    bits = apc.apply_alert(apc.apply_alert(bits, "%"), "?")
    assert apc.status_tokens(bits) == ["OB", "OVER", "LB"]
    bits = apc.apply_alert(apc.apply_alert(apc.apply_alert(bits, "$"), "+"), "=")
    assert apc.status_tokens(bits) == ["OL"]
    assert apc.split_alerts("!$08") == ("!$", "08")
    assert apc.split_alerts("*") == ("", "*")  # a shutdown's reply, not an alert
    assert apc.split_alerts("!#uI43253", capabilities=True) == ("!", "#uI43253")
    assert apc.split_alerts("##uI43253", capabilities=True) == ("#", "#uI43253")


def test_conversions() -> None:
    v = apc.VAR_BY_NAME
    assert v["battery.runtime"].value("0060:") == "3600"
    assert v["battery.runtime.low"].value("02") == "120"
    assert v["ups.test.interval"].value("336") == "1209600"
    assert v["ups.test.interval"].value("OFF") == "0"
    assert v["input.transfer.reason"].value("T") == "line voltage notch or spike"
    assert v["input.transfer.reason"].value("Z") == "Z"
    assert v["ups.load"].value("021.0") == "021.0"  # as sent, like NUT
    with pytest.raises(apc.ApcError, match="not a number"):
        v["ups.temperature"].value("\xff\x00~#garbage\xfe")


def test_shutdown_methods() -> None:
    assert apc.sdtype_plan(0, on_battery=True) == ["S"]
    assert apc.sdtype_plan(0, on_battery=False) == ["@"]
    assert apc.sdtype_plan(1, on_battery=True) == ["S", "@"]
    assert [apc.sdtype_plan(n, True) for n in (2, 3, 4, 5)] == [["Z"], ["K"], ["CS"], ["@"]]
    assert apc.parse_advorder("210") == ["K", "@", "S"]
    assert apc.parse_advorder("no") is None and apc.parse_advorder(None) is None
    assert (apc.parse_awd(None), apc.parse_awd("5"), apc.parse_awd("12"), apc.parse_awd("123")) == (
        "000", "005", "12", "123")
    for fn, bad in ((apc.parse_sdtype, "6"), (apc.parse_advorder, "5"), (apc.parse_awd, "1234")):
        with pytest.raises(ValueError):
            fn(bad)


def test_simulator_model() -> None:
    now = [100.0]
    ups = ApcUps(clock=lambda: now[0])
    assert ups.feed(b"Y") == b"SM\r\n"
    assert ups.feed(b"Q") == b"08\r\n"
    assert ups.feed(b"j") == b"0060:\r\n"
    assert ups.feed(b"T") == b"NA\r\n"
    ups.apply("mains off")
    ups.apply("drain 10")
    now[0] = 103.0
    assert ups.feed(b"f") == b"!070.0\r\n"  # the alert goes out in front of the next reply
    assert ups.feed(b"Q") == b"10\r\n"
    assert ups.feed(b"u-u") == b"|253\r\nOK\r\n264\r\n"  # stepped on; "|" = EEPROM changed
    assert ups.feed(b"c-ABC\r") == b"|UPS_IDEN\r\nOK\r\n" and ups.ups_id == "ABC"
    assert ups.feed(b"K") == b"" and ups.feed(b"K") == b"OK\r\n"  # K acts the second time
    assert ups.feed(b"@000") == b"OK\r\n"
    assert [s.command for s in ups.shutdowns] == ["K", "@000"]
    ups.apply("mains on")
    assert ups.feed(b"S") == b"$NA\r\n"  # soft hibernate only works on battery
    ups.apply("garbage")
    assert b"garbage" in ups.feed(b"Q")
    ups.apply("truncate")
    assert ups.feed(b"g") == b"0"  # "024" cut short, without its CR LF
    ups.apply("mute")
    assert ups.feed(b"Q") == b""
    with pytest.raises(ValueError):
        ups.apply("explode")


# --------------------------------------------------------------------------------------------------
# nutlite's driver on the pty simulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PtyApc]:
    with PtyApc(ApcUps(), link=tmp_path / "ttyAPC") as s:
        yield s


def get(env: NutEnv, var: str = "ups.status") -> str:
    return get_var(env, "apc", var)


def start_env(factory: Callable[..., NutEnv], sim: PtyApc, maxage: int | None = None, **options: str) -> NutEnv:
    opts = {"pollinterval": "1", **options}
    return factory([UpsSpec("apc", driver="apcsmart", port=str(sim.link), options=opts)], maxage=maxage)


def login(c: object) -> None:
    assert c.request("USERNAME admin") == "OK"  # type: ignore[attr-defined]
    assert c.request("PASSWORD adminpw") == "OK"  # type: ignore[attr-defined]


def test_alerts_act_before_the_next_poll(nut_env_factory: Callable[..., NutEnv], sim: PtyApc) -> None:
    env = start_env(nut_env_factory, sim, pollinterval="60")
    assert get(env) == 'VAR apc ups.status "OL"'
    t0 = time.monotonic()
    sim.ups.apply("mains off")  # the UPS sends "!"
    wait_for(lambda: get(env) == 'VAR apc ups.status "OB"', 5, "OB from the alert", env)
    sim.ups.apply("lowbatt on")  # "%"
    wait_for(lambda: get(env) == 'VAR apc ups.status "OB LB"', 5, "LB from the alert", env)
    sim.ups.apply("mains on")
    sim.ups.apply("lowbatt off")  # "$+"
    wait_for(lambda: get(env) == 'VAR apc ups.status "OL"', 5, "OL from the alert", env)
    assert time.monotonic() - t0 < 30  # long before the next poll (60 s)
    log = env.driver_log("apc")
    assert "alert from the UPS: '!' (on battery)" in log and "alert from the UPS: '$'" in log


class LowBatteryMidPoll(ApcUps):
    """Goes low on battery in the middle of a poll: right after answering its first Q on battery."""

    armed = False
    done = False

    def feed(self, data: bytes) -> bytes:
        if self.armed and not self.done:
            self.done = True
            self.apply("lowbatt on")  # "%" goes out now, in front of this command's reply
        out = super().feed(data)
        if data == b"Q" and self.on_battery and not self.done:
            self.armed = True
        return out


def test_alert_during_a_poll_is_not_undone_by_it(nut_env_factory: Callable[..., NutEnv], tmp_path: Path) -> None:
    """An alert that arrives after the poll's Q reply is newer than that reading: LB must stay."""
    with PtyApc(LowBatteryMidPoll(), link=tmp_path / "ttyMid") as sim:
        env = start_env(nut_env_factory, sim, pollinterval="60")
        assert get(env) == 'VAR apc ups.status "OL"'
        sim.ups.apply("mains off")  # "!": status now, then a poll at once, during which "%" comes
        wait_for(lambda: sim.ups.done, 5, "the low battery during the poll", env)
        wait_for(lambda: get(env) == 'VAR apc ups.status "OB LB"', 5, "LB kept after the poll", env)
        time.sleep(1)
        assert get(env) == 'VAR apc ups.status "OB LB"'


def test_two_step_confirmation(nut_env_factory: Callable[..., NutEnv], sim: PtyApc) -> None:
    env = start_env(nut_env_factory, sim, pollinterval="5")
    with env.connect(timeout=10) as c:
        login(c)
        assert c.request("INSTCMD apc shutdown.stayoff") == "OK"
        assert c.request("INSTCMD apc shutdown.stayoff") == "OK"  # too soon: arms it again
        time.sleep(3.2)
        assert "K" not in sim.ups.commands
        assert c.request("INSTCMD apc shutdown.stayoff") == "OK"  # 3.2 s after the last one: done
        wait_for(lambda: sim.ups.shutdowns, 5, "K at the UPS", env)
    assert [s.command for s in sim.ups.shutdowns] == ["K"]
    assert sim.ups.commands.count("K") == 2  # sent twice, as the UPS wants
    assert "shutdown.stayoff: send it again in 3 to 15 seconds" in env.driver_log("apc")


def test_commands_and_set(nut_env_factory: Callable[..., NutEnv], sim: PtyApc) -> None:
    env = start_env(nut_env_factory, sim, pollinterval="5")
    with env.connect(timeout=10) as c:
        login(c)
        for cmd, wire in (("test.battery.start", "W"), ("test.panel.start", "A"), ("calibrate.start", "D")):
            n = len(sim.ups.commands)
            assert c.request(f"INSTCMD apc {cmd}") == "OK"
            wait_for(lambda n=n, wire=wire: wire in sim.ups.commands[n:], 5, wire, env)
        assert c.request('SET VAR apc input.transfer.high "271"') == "OK"
        wait_for(lambda: c.request("GET VAR apc input.transfer.high") == 'VAR apc input.transfer.high "271"', 5,
                 "271")
        assert sim.ups.settings["u"] == "271"
        assert c.request('SET VAR apc ups.id "RACK2"') == "OK"
        wait_for(lambda: sim.ups.ups_id == "RACK2", 5, "ups.id at the UPS", env)
        wait_for(lambda: c.request("GET VAR apc ups.id") == 'VAR apc ups.id "RACK2"', 5, "ups.id")
    assert "SET ups.id='RACK2'" in env.driver_log("apc")


@pytest.mark.parametrize("options, wire", [
    ({"sdtype": "3"}, "K"),
    ({"sdtype": "5", "awd": "2"}, "@002"),
    ({}, "@000"),  # sdtype 0 on line power: hard hibernate
])
def test_upsdrvctl_shutdown_sends_killpower(nut_env_factory: Callable[..., NutEnv], sim: PtyApc,
                                            options: dict[str, str], wire: str) -> None:
    env = start_env(nut_env_factory, sim, **options)
    r = subprocess.run([sys.executable, "-m", "nutlite", "upsdrvctl", "shutdown"], env=env.environ(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + env.logs()
    wait_for(lambda: sim.ups.shutdowns, 5, "a shutdown command", env)
    assert [s.command for s in sim.ups.shutdowns] == [wire]


def test_killpower_without_a_running_driver(tmp_path: Path, sim: PtyApc) -> None:
    sim.ups.apply("mains off")
    env = NutEnv(tmp_path / "env", [UpsSpec("apc", driver="apcsmart", port=str(sim.link),
                                            options={"sdtype": "1"})])
    env.write_configs()
    r = subprocess.run([sys.executable, "-m", "nutlite", "driver", "-a", "apc", "-k", *NutEnv._user_args()],
                       env=env.environ(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s.command for s in sim.ups.shutdowns] == ["S"]
    assert sim.ups.commands[-1] == "R"  # back to dumb mode, as NUT


def test_bad_settings_are_refused(tmp_path: Path, sim: PtyApc) -> None:
    for options, message in (({"sdtype": "7"}, "sdtype: expected one digit 0..5, got '7'"),
                             ({"cable": "940-0020B"}, "the only alternate cable is 940-0095B")):
        env = NutEnv(tmp_path / f"env{len(message)}", [UpsSpec("apc", driver="apcsmart", port=str(sim.link),
                                                               options=options)])
        env.write_configs()
        r = subprocess.run([sys.executable, "-m", "nutlite", "driver", "-a", "apc", "-d", "1",
                            *NutEnv._user_args()], env=env.environ(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert message in r.stdout + r.stderr


def _driver(sim: PtyApc, **values: str) -> ApcSmart:
    cfg = DriverConfig("apc", "apcsmart", {"port": str(sim.link), **values})
    return ApcSmart(cfg)


def test_cable_940_0095b(sim: PtyApc, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAQ #8: the dual-mode grey cable needs DTR set and RTS cleared (a test double stands in for the
    modem lines a pty does not have); without modem lines the driver says what is wrong."""
    with pytest.raises(DriverError, match="cable=940-0095B: cannot set DTR and clear RTS .* no modem-control lines"):
        asyncio.run(prepare(_driver(sim, cable="940-0095B")))
    lines: list[int] = []
    monkeypatch.setattr(SerialPort, "set_modem_bits", lambda self, bits: lines.append(bits))
    driver = _driver(sim, cable="940-0095B")

    async def run() -> None:
        await prepare(driver)
        await driver.cleanup()

    asyncio.run(run())
    assert lines == [termios.TIOCM_DTR]
    assert driver.state.value("ups.status") == "OL" and driver.state.value("ups.model") == "Smart-UPS 1000"


def test_only_what_the_ups_supports(sim: PtyApc, monkeypatch: pytest.MonkeyPatch) -> None:
    """A UPS without Ctrl-Z, K and Z: no writable enums, no shutdown.stayoff / load.off."""
    monkeypatch.setattr(ApcUps, "command_set", lambda self: "\x01\x0e@ABCDEFGLMNOPQRSUVWXYbcefgjklmnopqrsuxy9^")
    driver = _driver(sim)

    async def run() -> None:
        await prepare(driver)
        await driver.cleanup()

    asyncio.run(run())
    st = driver.state
    assert "load.off" not in st.cmds and "shutdown.stayoff" not in st.cmds and "shutdown.return" in st.cmds
    assert st.get("input.transfer.high") is not None and "RW" not in st.get("input.transfer.high").flags
    assert "RW" in st.get("ups.id").flags  # strings need no capability list


# --------------------------------------------------------------------------------------------------
# Faults


def test_silent_ups_goes_stale_and_recovers(nut_env_factory: Callable[..., NutEnv], sim: PtyApc) -> None:
    env = start_env(nut_env_factory, sim, maxage=5)
    log = serialsim.silent_ups_goes_stale_and_recovers(env, sim, "apc", recovery=2 * 1 + 2)
    assert "data stale: no reply to 'Q' within 1.5s" in log


@pytest.mark.parametrize("fault, logged", [
    ("garbage", "data stale: reply to 'Q': unexpected status reply b'\\xff\\x00~#garbage\\xfe'"),
    ("truncate", "data stale: no reply to 'Q' within 1.5s (received b'0' without an end of line)"),
])
def test_garbled_reply_is_logged(nut_env_factory: Callable[..., NutEnv], sim: PtyApc, fault: str,
                                 logged: str) -> None:
    env = start_env(nut_env_factory, sim)
    serialsim.garbled_reply_is_logged(env, sim, "apc", fault, logged, timeout=6)


def test_port_disappears_and_comes_back(nut_env_factory: Callable[..., NutEnv], sim: PtyApc) -> None:
    env = start_env(nut_env_factory, sim)
    serialsim.port_disappears_and_comes_back(env, sim, "apc")


def test_sim_cli_and_script(tmp_path: Path) -> None:
    with serialsim.sim_cli(tmp_path, "apc", "mains off  # power cut\nsleep 0.1\nlowbatt on\n") as (first, ser):
        assert "APC Smart-UPS on /dev/pts/" in first
        ser.reset_input_buffer()
        ser.write(b"Y")
        assert ser.read_until(b"\n") == b"SM\r\n"
        ser.write(b"Q")
        reply = ser.read_until(b"\n").decode().strip()
    assert apc.status_tokens(apc.parse_status(reply)) == ["OB", "LB"]
