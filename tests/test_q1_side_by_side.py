"""nutlite's nutdrv_qx / blazer_ser next to Debian's NUT 2.8.0 drivers, on the same simulated UPS.

Each driver gets its own simulator (same script) on its own pseudo-terminal, and its own private
stack (Debian's upsd in both, so only the driver differs). After every step of the script the two
variable lists are compared value for value; :data:`KNOWN_DIFFERENCES` lists what may differ, and why
(and :data:`BETWEEN_FULL_UPDATES` what differs while Debian's nutdrv_qx waits for its next full update).
Killpower (``-k``) and the instant commands are compared by what each simulator was told.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nutlite.sim.q1 import PtyQ1, Q1Ups

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serialsim  # noqa: E402
from nutenv import REAL_NUT_DIR, NutEnv, UpsSpec, compare_vars, upsd_list, wait_for  # noqa: E402
from serialsim import serial_lockdir  # noqa: E402, F401 - autouse fixture: lock files in the test's own folder

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("real_nut")]

KNOWN_DIFFERENCES = {
    "driver.version": "NUT's release number (2.8.0) against nutlite's own version",
    "driver.version.usb": "Debian's nutdrv_qx is built with libusb; nutlite's Q1 drivers are serial only",
    "driver.parameter.port": "each driver reads its own simulator, on its own pty link",
}

# With runtimecal, nutdrv_qx's estimates are not reproduced (blazer_ser's are):
RUNTIMECAL_DIFFERENCES = {
    "battery.runtime": "nutdrv_qx 2.8.0 publishes a runtime only at full updates, by a model nutlite does not "
                       "reproduce; nutlite's nutdrv_qx uses blazer_ser's model (see q1.RuntimeModel)",
    "battery.charge": "the same: nutdrv_qx 2.8.0's charge with runtimecal follows its own model",
}

# nutdrv_qx 2.8.0 refreshes only ups.status between its full updates (every pollfreq seconds, with the AVR
# bit judged by the voltages and the alarms of the last full update); nutlite's publishes every reply
# whole, status and values together, so that a client never sees the status of one reply with the
# values of another (OB with the input voltage of the mains). While Debian's driver waits for its next
# full update, these differ:
BETWEEN_FULL_UPDATES = {
    name: "nutlite publishes every Q1 reply whole; nutdrv_qx 2.8.0 only its ups.status between full updates"
    for name in ("ups.status", "ups.alarm", "input.voltage", "input.voltage.fault", "output.voltage", "ups.load",
                 "input.frequency", "battery.voltage", "battery.charge", "ups.temperature", "ups.beeper.status")
}

# (name, simulator actions); each step also sets a unique temperature, used to know that both
# drivers have polled the UPS since the step.
SCRIPT: list[tuple[str, list[str]]] = [
    ("OL", []),
    ("OB", ["mains off", "battery 11.8"]),
    ("OB LB", ["lowbatt on", "battery 10.9"]),
    ("overload", ["mains on", "lowbatt off", "battery 13.2", "load 115"]),
    ("boost", ["load 40", "boost"]),
    ("trim", ["trim"]),
    ("bypass", ["normal", "bypass"]),
    ("replace battery", ["normal", "replace on"]),
    ("online type, beeper off, test running, shutdown pending",
     ["replace off", "type online", "beeper off", "test on", "fsd on"]),
    ("mains back, full battery", ["battery 13.5", "load 21", "type offline", "beeper on", "test off", "fsd off"]),
]

EXPECTED_STATUS = {  # what Debian's drivers showed, to make sure the script does what it says
    "OL": "OL", "OB": "OB", "OB LB": "OB LB", "overload": "OL", "boost": "OL BOOST", "trim": "OL TRIM",
    "bypass": "OL BYPASS",
}


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[dict[str, PtyQ1]]:
    with serialsim.sim_pair(lambda f: PtyQ1(Q1Ups(), link=tmp_path / f"tty-{f}")) as out:
        yield out


def all_vars(env: NutEnv) -> dict[str, str]:
    return upsd_list(env, "q1")


def start_pair(factory: Callable[..., NutEnv], sims: dict[str, PtyQ1], driver: str,
               options: dict[str, str] | None = None) -> dict[str, NutEnv]:
    # Debian's nutdrv_qx refreshes only ups.status between full updates (every pollfreq seconds): it polls
    # fully every second here, to compare settled values; test_every_reply_is_published_whole covers the
    # in-between polls
    opts = {"pollinterval": "1", **({"pollfreq": "1"} if driver == "nutdrv_qx" else {}), **(options or {})}
    return serialsim.start_side_by_side(factory, sims, "q1", driver, opts)


def compare(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return compare_vars(a, b, KNOWN_DIFFERENCES)


@pytest.mark.parametrize("driver", ["nutdrv_qx", "blazer_ser"])
def test_same_variables_through_a_script(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1],
                                         driver: str) -> None:
    envs = start_pair(nut_env_factory, sims, driver)
    serialsim.step_through_script(sims, envs, "q1", SCRIPT, EXPECTED_STATUS, KNOWN_DIFFERENCES)


@pytest.mark.parametrize("dialect, version", [("mustek", "Mustek 0.07"), ("voltronic-qs", "Voltronic-QS 0.07")])
def test_other_dialects(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1], dialect: str,
                        version: str) -> None:
    """UPSes that answer QS (and M): the probe picks the same protocol, with the same variables."""
    for s in sims.values():
        s.ups.dialect = dialect
        s.ups.apply("mains off")
    envs = start_pair(nut_env_factory, sims, "nutdrv_qx")
    got = {f: all_vars(e) for f, e in envs.items()}
    assert got["debian"]["driver.version.data"] == version
    assert got["debian"]["ups.status"] == "OB"
    assert not compare(got["debian"], got["nutlite"]), compare(got["debian"], got["nutlite"])


@pytest.mark.parametrize("driver", ["nutdrv_qx", "blazer_ser"])
def test_configured_battery_range(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1], driver: str) -> None:
    """battery.voltage.low/high from ups.conf (default.* / override.*) replace the guess."""
    for s in sims.values():
        s.ups.apply("battery 12.3")
    envs = start_pair(nut_env_factory, sims, driver, {"default.battery.voltage.low": "11.0",
                                                      "override.battery.voltage.high": "13.6"})
    got = {f: all_vars(e) for f, e in envs.items()}
    assert got["nutlite"]["battery.charge"] == "50"
    assert not compare(got["debian"], got["nutlite"]), compare(got["debian"], got["nutlite"])


def test_blazer_runtime_estimate(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1]) -> None:
    """blazer_ser's runtimecal estimate: the same at start, and the same fall on battery (up to the one
    poll the two drivers may be apart)."""
    envs = start_pair(nut_env_factory, sims, "blazer_ser", {"runtimecal": "300,100,600,50", "chargetime": "3600"})
    got = {f: all_vars(e) for f, e in envs.items()}
    assert (got["nutlite"]["battery.charge"], got["nutlite"]["battery.runtime"]) == ("83", "1186")
    assert not compare(got["debian"], got["nutlite"]), compare(got["debian"], got["nutlite"])
    for s in sims.values():
        for a in ("mains off", "load 50", "battery 12.6"):
            s.ups.apply(a)
    time.sleep(4)
    got = {f: all_vars(e) for f, e in envs.items()}
    for name, tolerance in (("battery.charge", 1), ("battery.runtime", 2)):
        a, b = float(got["debian"][name]), float(got["nutlite"][name])
        assert abs(a - b) <= tolerance, (name, a, b)
    assert 480 < float(got["nutlite"]["battery.runtime"]) < 498  # 83 % of 600 s, minus ~4 s
    other = [p for p in compare(got["debian"], got["nutlite"]) if p.split(":")[0] not in RUNTIMECAL_DIFFERENCES]
    assert not other, other


def test_nutdrv_qx_runtimecal_differences(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1]) -> None:
    """nutdrv_qx with runtimecal: only the listed estimates differ."""
    envs = start_pair(nut_env_factory, sims, "nutdrv_qx",
                      {"runtimecal": "300,100,600,50", "chargetime": "3600", "idleload": "10"})
    for s in sims.values():
        for a in ("mains off", "load 50", "battery 12.6"):
            s.ups.apply(a)
    time.sleep(2.5)
    got = {f: all_vars(e) for f, e in envs.items()}
    assert "battery.runtime" in got["debian"] and "battery.runtime" in got["nutlite"]
    problems = [p for p in compare(got["debian"], got["nutlite"]) if p.split(":")[0] not in RUNTIMECAL_DIFFERENCES]
    assert not problems, problems


def test_every_reply_is_published_whole(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1]) -> None:
    """Between Debian's full updates (pollfreq 15 s here) only its ups.status follows the UPS, with the AVR
    bit judged by the voltages of the last full update (boost with 230 V in and out reads as BYPASS);
    nutlite's nutdrv_qx shows the whole reply at once (:data:`BETWEEN_FULL_UPDATES`). Once Debian's
    driver has made its full update, the two agree again."""
    envs = start_pair(nut_env_factory, sims, "nutdrv_qx", {"pollfreq": "15"})
    for s in sims.values():
        for a in ("mains off", "battery 11.8", "temp 40", "boost", "test on", "fsd on"):
            s.ups.apply(a)
    wait_for(lambda: all_vars(envs["debian"])["ups.status"] == "OB BYPASS CAL FSD", 10,
             "Debian's status from a quick poll", *envs.values())
    wait_for(lambda: all_vars(envs["nutlite"])["ups.temperature"] == "40.0", 10, "nutlite's poll", *envs.values())
    got = {f: all_vars(e) for f, e in envs.items()}
    assert got["debian"]["ups.temperature"] == "25.0", "Debian's full update came too early for the test"
    assert got["nutlite"]["ups.status"] == "ALARM OB BOOST CAL FSD"
    assert (got["nutlite"]["ups.temperature"], got["nutlite"]["input.voltage"], got["nutlite"]["battery.charge"],
            got["nutlite"]["ups.alarm"]) == ("40.0", "190.0", "54", "Shutdown imminent!")
    differences = {p.split(":")[0] for p in compare(got["debian"], got["nutlite"])}
    assert differences and differences <= set(BETWEEN_FULL_UPDATES), differences
    wait_for(lambda: all_vars(envs["debian"])["ups.temperature"] == "40.0", 20, "Debian's full update",
             *envs.values())
    time.sleep(1.2)  # and one more poll each
    got = {f: all_vars(e) for f, e in envs.items()}
    assert not compare(got["debian"], got["nutlite"]), compare(got["debian"], got["nutlite"])


def run_k(flavour: str, driver: str, link: Path, tmp: Path, options: dict[str, str], flags: list[str]) -> str:
    env = NutEnv(tmp / f"k-{flavour}", [UpsSpec("q1", driver=driver, port=str(link), options=options)])
    env.write_configs()
    if flags:
        conf = env.confpath / "ups.conf"
        conf.write_text(conf.read_text().replace("[q1]\n", "[q1]\n" + "".join(f"  {f}\n" for f in flags)))
    argv = ([str(REAL_NUT_DIR / driver)] if flavour == "debian" else [sys.executable, "-m", "nutlite", "driver"])
    r = subprocess.run([*argv, "-a", "q1", "-k", *NutEnv._user_args()], env=env.environ(), capture_output=True,
                       text=True, timeout=60)
    return f"rc={r.returncode}"


@pytest.mark.parametrize("driver, options, flags", [
    ("nutdrv_qx", {}, []),
    ("nutdrv_qx", {"offdelay": "12", "ondelay": "0"}, []),
    ("nutdrv_qx", {"offdelay": "59", "ondelay": "59"}, []),
    ("nutdrv_qx", {"offdelay": "90", "ondelay": "61"}, []),
    ("nutdrv_qx", {"offdelay": "600", "ondelay": "599940"}, []),
    ("nutdrv_qx", {}, ["stayoff"]),
    ("nutdrv_qx", {"offdelay": "5"}, []),
    ("blazer_ser", {}, []),
    ("blazer_ser", {"offdelay": "60", "ondelay": "1"}, []),
    ("blazer_ser", {"offdelay": "12", "ondelay": "0"}, []),
    ("blazer_ser", {"ondelay": "10000"}, []),
])
def test_killpower_sends_the_same(tmp_path: Path, sims: dict[str, PtyQ1], driver: str,
                                  options: dict[str, str], flags: list[str]) -> None:
    results = {}
    for flavour, sim in sims.items():
        rc = run_k(flavour, driver, sim.link, tmp_path, options, flags)  # type: ignore[arg-type]
        results[flavour] = (rc.split("=")[1] == "0", [s.command for s in sim.ups.shutdowns])
    assert results["debian"] == results["nutlite"], results


COMMANDS = ["test.battery.start.quick", "test.battery.start.deep", "test.battery.stop", "beeper.toggle",
            "load.off", "load.on", "shutdown.return", "shutdown.stayoff", "shutdown.stop"]


@pytest.mark.parametrize("driver", ["nutdrv_qx", "blazer_ser"])
def test_instant_commands_send_the_same(nut_env_factory: Callable[..., NutEnv], sims: dict[str, PtyQ1],
                                        driver: str) -> None:
    envs = start_pair(nut_env_factory, sims, driver, {"offdelay": "60", "ondelay": "2" if driver == "blazer_ser" else "120"})
    for flavour, env in envs.items():
        with env.connect() as c:
            assert c.request("USERNAME admin") == "OK"
            assert c.request("PASSWORD adminpw") == "OK"
            for cmd in [*COMMANDS, "test.battery.start " + ("2" if driver == "blazer_ser" else "120")]:
                name, _, param = cmd.partition(" ")
                line = f"INSTCMD q1 {name}" + (f' "{param}"' if param else "")
                assert c.request(line) == "OK", (flavour, line)
                time.sleep(0.3)  # a command at a time, as a person (or upsmon) sends them
    # Debian's drivers wait for a reply after some commands (the simulator sends none): give them time
    want = {"T", "TL", "CT", "Q", "C", "T02"}
    wait_for(lambda: all(want <= set(s.ups.commands) and s.ups.commands.count("C") >= 2 for s in sims.values()),
             20, "every command at both simulators", *envs.values())
    time.sleep(0.5)
    sent = {f: [c for c in s.ups.commands if c != "Q1"] for f, s in sims.items()}
    # the probe differs (nutdrv_qx asks more dialects than nutlite knows): compare from the last "I" on
    tails = {f: cmds[len(cmds) - cmds[::-1].index("I"):] for f, cmds in sent.items()}
    assert tails["debian"] == tails["nutlite"], repr(tails)
    assert len(tails["nutlite"]) == len(COMMANDS) + 1
