"""The test SNMP agent (tests/snmpagent.py) against real clients: Debian's snmp-ups and pysnmp."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from nutenv import NutEnv, UpsSpec, require_real_nut
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
    set_cmd,
)
from pysnmp.proto.rfc1902 import Integer, OctetString
from snmpagent import SnmpAgent, load_snmprec

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "snmp"
SNMP_UPS = Path("/lib/nut/snmp-ups")


def _vars(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(": ")
        if k and not k.startswith("driver.parameter.port"):
            out[k] = v
    return out


@pytest.mark.parametrize("name", ["generex-ups_cs141", "apc_smx750"])
def test_debian_snmp_ups_reads_recording_like_oracle(name: str) -> None:
    require_real_nut()
    if not SNMP_UPS.exists():
        pytest.fail("Debian's /lib/nut/snmp-ups is missing (apt-get install -y nut-snmp)")
    with SnmpAgent.from_snmprec(DATA / f"{name}.snmprec", community=f"nut-{name}") as agent:
        ups = UpsSpec(name, driver="snmp-ups", port=f"127.0.0.1:{agent.port}",
                      options={"community": f"nut-{name}", "snmp_version": "v2c", "mibs": "auto"})
        base = Path(tempfile.mkdtemp(prefix="sa-"))  # short: unix socket paths are limited to 108 bytes
        try:
            with NutEnv(base, [ups], driver_flavour="debian", upsd_flavour="debian") as env:
                r = subprocess.run([shutil.which("upsc") or "upsc", f"{name}@127.0.0.1:{env.port}"],
                                   env=env.environ(), capture_output=True, text=True, timeout=20)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    got = _vars(r.stdout)
    want = _vars((DATA / f"{name}.nut-2.8.0.vars").read_text())
    assert got == want
    assert agent.requests("GET"), "snmp-ups should have sent GETs"


def _run(coro):  # noqa: ANN001, ANN202
    return asyncio.run(coro)


async def _target(port: int) -> UdpTransportTarget:
    return await UdpTransportTarget.create(("127.0.0.1", port), timeout=0.5, retries=0)


def test_getbulk_set_toobig_loss_and_community(tmp_path: Path) -> None:
    rec = tmp_path / "t.snmprec"
    rec.write_text("1.3.6.1.2.1.1.1.0|4|hello  \n1.3.6.1.2.1.1.5.0|4x|50414420\n"
                   "1.3.6.1.4.1.9.1.0|2|7\n1.3.6.1.4.1.9.2.0|66|42\n1.3.6.1.4.1.9.3.0|70|5000000000\n")
    table = load_snmprec(rec)
    assert table[(1, 3, 6, 1, 2, 1, 1, 5, 0)] == ("4x", b"PAD ")
    agent = SnmpAgent(table=table, community="secret", writable={(1, 3, 6, 1, 4, 1, 9, 1, 0)})

    async def scenario() -> None:
        eng = SnmpEngine()
        t = await _target(agent.port)
        c = CommunityData("secret", mpModel=1)
        err, st, _, vbs = await bulk_cmd(eng, c, t, ContextData(), 0, 10, ObjectType(ObjectIdentity("1.3.6.1.4.1.9")))
        assert not err and not int(st)
        oids = [str(v[0]) for v in vbs]
        assert oids[:3] == ["1.3.6.1.4.1.9.1.0", "1.3.6.1.4.1.9.2.0", "1.3.6.1.4.1.9.3.0"]
        assert int(vbs[2][1]) == 5000000000
        err, st, idx, vbs = await set_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.4.1.9.1.0"), Integer(3)))
        assert not err and not int(st)
        assert agent.get("1.3.6.1.4.1.9.1.0") == ("2", 3)
        assert agent.requests("SET")[-1].varbinds == [("1.3.6.1.4.1.9.1.0", ("2", 3))]
        err, st, idx, _ = await set_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0"), OctetString("x")))
        assert int(st) == 17 and int(idx) == 1  # notWritable
        err, st, _, vbs = await get_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")),
                                        ObjectType(ObjectIdentity("1.3.6.1.2.1.1.9.0")))
        assert str(vbs[0][1]) == "hello" and vbs[1][1].__class__.__name__ == "NoSuchInstance"
        v1 = CommunityData("secret", mpModel=0)
        err, st, idx, _ = await get_cmd(eng, v1, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")),
                                        ObjectType(ObjectIdentity("1.3.6.1.2.1.1.9.0")))
        assert int(st) == 2 and int(idx) == 2  # noSuchName at the missing varbind
        agent.max_varbinds = 1
        err, st, _, _ = await get_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")),
                                      ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0")))
        assert int(st) == 1  # tooBig
        agent.max_varbinds = None
        agent.generr_multi = True
        err, st, _, _ = await get_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")),
                                      ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0")))
        assert int(st) == 5  # genErr
        agent.generr_multi = False
        agent.stop_answering()
        err, *_ = await get_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")))
        assert err  # timeout: the agent is lost
        agent.resume()
        err, st, _, vbs = await get_cmd(eng, c, t, ContextData(), ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")))
        assert not err and str(vbs[0][1]) == "hello"
        err, *_ = await get_cmd(eng, CommunityData("wrong", mpModel=1), t, ContextData(),
                                ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")))
        assert err  # wrong community: no answer
        eng.close_dispatcher()

    with agent:
        started = time.monotonic()
        _run(scenario())
    assert time.monotonic() - started < 10
    assert not agent.log[-1].answered
