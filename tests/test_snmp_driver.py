"""nutlite's snmp-ups against tests/snmpagent.py (an SNMP agent on loopback serving a recording): the
settings, the start-up and its refusals, agent loss and recovery, upscmd/upsrw as SETs, SNMPv3.

The comparison with NUT's output for every recording is tests/test_snmp_side_by_side.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nutenv import REPO_ROOT, NutEnv, UpsSpec, get_var, upsd_list, wait_for
from snmpagent import SnmpAgent

from nutlite.drivers.framework.core import prepare
from nutlite.drivers.framework.drvconfig import DriverConfig
from nutlite.drivers.programs.snmp_ups import SnmpUps

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "snmp"
CS141 = DATA / "generex-ups_cs141.snmprec"
SMX750 = DATA / "apc_smx750.snmprec"


def driver(port: int, tmp_path: Path, **values: str) -> SnmpUps:
    base = {"port": f"127.0.0.1:{port}", "community": "public", "snmp_version": "v2c",
            "snmp_timeout": "0.3", "snmp_retries": "0"}
    base.update(values)
    flags = [k for k, v in base.items() if v == "<flag>"]
    cfg = DriverConfig("ups", "snmp-ups", {k: v for k, v in base.items() if v != "<flag>"}, flags,
                       confpath=tmp_path, statepath=tmp_path)
    return SnmpUps(cfg)


async def started(d: SnmpUps) -> SnmpUps:
    await prepare(d)
    return d


def published(d: SnmpUps) -> dict[str, str]:
    return {v.name: v.value for v in d.state.sorted_vars()}


def run_driver(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """nutlite's snmp-ups in the foreground with -s (no ups.conf), as a user would run it."""
    return subprocess.run([sys.executable, "-m", "nutlite", "snmp-ups", "-s", "ups", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def core_present() -> str | None:
    """None if the sans-IO SNMP core is in the tree, else what is missing."""
    import importlib

    for module in ("nutlite.snmp.detect", "nutlite.snmp.engine", "nutlite.drivers.tables.snmp"):
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    return None


#: the tests that need detection and the MIB tables (the "snmp-core" half of issue 13)
needs_core = pytest.mark.skipif(core_present() is not None,
                                reason=f"the SNMP core is not in this tree yet ({core_present()} missing)")


@pytest.fixture
def cs141():
    with SnmpAgent.from_snmprec(CS141, community="public") as agent:
        yield agent


# --------------------------------------------------------------------------------------------------
# Start-up


@needs_core
def test_starts_on_an_ietf_agent_and_publishes_the_mapping(cs141: SnmpAgent, tmp_path: Path) -> None:
    d = asyncio.run(started(driver(cs141.port, tmp_path, mibs="auto")))
    try:
        got = published(d)
    finally:
        asyncio.run(d.cleanup())
    assert got["driver.name"] == "snmp-ups"
    assert got["driver.version.internal"] == "1.21"
    assert got["driver.version.data"] == "ietf MIB 1.54"
    assert got["driver.parameter.snmp_version"] == "v2c"
    assert got["driver.parameter.mibs"] == "auto"
    assert "driver.parameter.community" not in got  # a secret: never published, as NUT
    assert got["ups.model"] == "Upscale" and got["device.type"] == "ups"
    assert got["ups.status"] == "OL BYPASS"


@needs_core
def test_no_agent_is_refused_in_seconds_with_one_message() -> None:
    start = time.monotonic()
    res = run_driver("-x", "port=127.0.0.1:9", "-x", "snmp_timeout=0.5", "-x", "snmp_retries=1", "-d", "1")
    took = time.monotonic() - start
    assert res.returncode == 1
    assert took < 8, f"{took:.1f} s (NUT: 198 s with its defaults)"
    errors = [ln for ln in res.stderr.splitlines() if "127.0.0.1:9" in ln]
    assert len(errors) == 1, res.stderr
    assert "No supported device detected" in errors[0] and "wrong community or agent down?" in errors[0]
    assert "Traceback" not in res.stderr


@needs_core
def test_wrong_community_says_so_in_one_line(cs141: SnmpAgent) -> None:
    res = run_driver("-x", f"port=127.0.0.1:{cs141.port}", "-x", "community=nope", "-x", "snmp_version=v2c",
                     "-x", "snmp_timeout=0.3", "-x", "snmp_retries=0", "-d", "1")
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if "wrong community" in ln]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("setting,words", [
    ("snmp_version=v4", "snmp_version = 'v4': expected one of v1, v2c, v3"),
    ("snmp_timeout=soon", "snmp_timeout = 'soon'"),
    ("port=127.0.0.1:99999", "1 to 65535"),
    ("secLevel=authPriv", "needs secName"),
    ("pollfreq=0", "pollfreq = '0'"),
])
def test_unusable_settings_are_named(setting: str, words: str) -> None:
    extra = ["-x", "snmp_version=v3"] if setting.startswith("secLevel") else []
    res = run_driver("-x", "port=127.0.0.1:9", *extra, "-x", setting, "-d", "1")
    assert res.returncode == 1
    assert words in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@needs_core
def test_mibs_list_prints_the_mappings_in_detection_order() -> None:
    res = run_driver("-x", "port=127.0.0.1:9", "-x", "mibs=--list")
    assert res.returncode == 0, res.stderr
    names = [ln.split()[1] for ln in res.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert names[0] == "apc_ats" and names[-2:] == ["tripplite", "ietf"]
    assert "apcc" in names and "mge" in names


@needs_core
def test_unknown_mibs_name_is_refused(cs141: SnmpAgent) -> None:
    res = run_driver("-x", f"port=127.0.0.1:{cs141.port}", "-x", "mibs=bogus", "-x", "snmp_version=v2c", "-d", "1")
    assert res.returncode == 1
    assert "bogus" in res.stderr and "Traceback" not in res.stderr


# --------------------------------------------------------------------------------------------------
# Under upsd: agent loss, commands, SETs


def snmp_env(tmp_path: Path, agent: SnmpAgent, **options: str) -> NutEnv:
    opts = {"community": "public", "snmp_version": "v2c", "snmp_timeout": "0.5", "snmp_retries": "1"}
    opts.update(options)
    spec = UpsSpec("ups", driver="snmp-ups", port=f"127.0.0.1:{agent.port}", options=opts)
    return NutEnv(tmp_path / "env", [spec])


def upsc(env: NutEnv) -> tuple[int, str]:
    res = subprocess.run(["/usr/bin/upsc", f"ups@127.0.0.1:{env.port}"], capture_output=True, text=True, timeout=10)
    return res.returncode, res.stdout + res.stderr


@needs_core
def test_agent_loss_is_stale_within_the_bound_and_recovery_is_complete(cs141: SnmpAgent, tmp_path: Path) -> None:
    env = snmp_env(tmp_path, cs141)
    with env:
        before = upsd_list(env, "ups")
        assert before["ups.status"] == "OL BYPASS"
        t0 = time.monotonic()
        cs141.stop_answering()
        # bound: pollinterval 2 + snmp_timeout 0.5 x (1 + 1) = 3 s (NUT: its next full pass, ~30 s)
        wait_for(lambda: "Data stale" in upsc(env)[1], 6, "Data stale", env)
        stale_after = time.monotonic() - t0
        assert stale_after <= 3.0 + 0.7, f"stale after {stale_after:.1f} s"
        assert upsc(env)[0] == 1
        time.sleep(2)
        t1 = time.monotonic()
        cs141.resume()
        wait_for(lambda: upsc(env)[0] == 0, 6, "fresh data", env)
        back_after = time.monotonic() - t1
        after = upsd_list(env, "ups")
        assert back_after < 3.5, f"data back after {back_after:.1f} s"
        assert after == before  # every value, ups.status included, at the first answer
        log = env.driver_log("ups")
        assert log.count("data stale") == 1, log
        assert "Traceback" not in log


@needs_core
def test_upscmd_and_upsrw_send_the_right_set(tmp_path: Path) -> None:
    with SnmpAgent.from_snmprec(CS141, community="public", accept_all_sets=True) as agent:
        env = snmp_env(tmp_path, agent)
        with env:
            cmds = upsd_list(env, "ups", "CMD")
            assert "load.off" in cmds and "test.battery.start.quick" in cmds
            rw = upsd_list(env, "ups", "RW")
            assert "device.contact" in rw
            login = ["-u", "admin", "-p", "adminpw"]
            res = subprocess.run(["/usr/bin/upscmd", *login, "-w", f"ups@127.0.0.1:{env.port}", "load.off"],
                                 capture_output=True, text=True, timeout=15)
            assert "SUCCESS" in res.stdout + res.stderr, res.stdout + res.stderr
            res = subprocess.run(["/usr/bin/upsrw", *login, "-w", "-s", "device.contact=ops desk",
                                  f"ups@127.0.0.1:{env.port}"], capture_output=True, text=True, timeout=15)
            assert "SUCCESS" in res.stdout + res.stderr, res.stdout + res.stderr
            sets = [e.varbinds for e in agent.requests("SET")]
            assert [("1.3.6.1.2.1.33.1.8.2.0", ("2", 0))] in sets  # upsShutdownAfterDelay = 0
            assert [("1.3.6.1.2.1.1.4.0", ("4", "ops desk"))] in sets  # sysContact
            wait_for(lambda: get_var(env, "ups", "device.contact") == 'VAR ups device.contact "ops desk"', 5,
                     "the new contact", env)


# --------------------------------------------------------------------------------------------------
# SNMPv3 (a pysnmp-native USM agent: snmpsim 1.2.2 does not answer NUT's context-less v3 requests)

V3_OK = {"snmp_version": "v3", "secLevel": "authPriv", "secName": "nutv3", "authPassword": "authpass123",
         "privPassword": "privpass123", "authProtocol": "SHA", "privProtocol": "AES", "mibs": "auto"}


@needs_core
def test_v3_auth_priv_publishes_what_nut_published(tmp_path: Path) -> None:
    from snmpv3agent import V3Agent

    with V3Agent(CS141) as agent:
        d = asyncio.run(started(driver(agent.port, tmp_path, **V3_OK, snmp_timeout="1")))
        try:
            got = published(d)
        finally:
            asyncio.run(d.cleanup())
    want = {}
    for line in (DATA / "generex-ups_cs141.nut-2.8.0.v3.vars").read_text().splitlines():
        k, _, v = line.partition(": ")
        want[k] = v
    skip = {"driver.version", "driver.parameter.port", "driver.parameter.snmp_timeout",
            "driver.parameter.snmp_retries", "driver.parameter.community"}
    assert {k: v for k, v in got.items() if k not in skip} == {k: v for k, v in want.items() if k not in skip}
    for secret in ("secName", "authPassword", "privPassword"):
        assert f"driver.parameter.{secret}" not in got


@needs_core
@pytest.mark.parametrize("change,words", [
    ({"privPassword": "wrong-pass-phrase"}, "wrong privPassword or privProtocol for user 'nutv3'"),
    ({"authPassword": "wrong-pass-phrase"}, "wrong authPassword or authProtocol for user 'nutv3'"),
    ({"secName": "intruder"}, "SNMPv3 user 'intruder' is unknown"),
])
def test_v3_wrong_credentials_say_so_in_one_line(change: dict[str, str], words: str) -> None:
    from snmpv3agent import V3Agent

    with V3Agent(CS141) as agent:
        settings = {**V3_OK, **change, "port": f"127.0.0.1:{agent.port}"}
        args = [w for k, v in settings.items() for w in ("-x", f"{k}={v}")]
        start = time.monotonic()
        res = run_driver(*args, "-d", "1")
    assert res.returncode == 1
    assert time.monotonic() - start < 10
    lines = [ln for ln in res.stderr.splitlines() if words in ln]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
