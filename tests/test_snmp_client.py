"""nutlite.snmp.client (the pysnmp shell) against agents on loopback: tests/snmpagent.py for v1/v2c and a
pysnmp-native USM agent (below) for v3.

What a user of the driver would notice: every value arrives even from agents that refuse big or mixed
batches, a poll takes few round trips, walks and SETs do what they say, and a dead agent, a wrong
community or a wrong v3 password gives one clear line in bounded time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from snmpagent import GEN_ERR, NO_ERROR, SnmpAgent

from nutlite.snmp.client import (
    SnmpAuthError,
    SnmpClient,
    SnmpConfigError,
    SnmpRequestError,
    SnmpSettings,
    SnmpTimeout,
    parse_target,
)
from nutlite.snmp.types import Missing, Value

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "snmp"
CS141 = DATA / "generex-ups_cs141.snmprec"
IDENT_MODEL = "1.3.6.1.2.1.33.1.1.2.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
# what NUT's ietf mapping asks for, roughly: every ups-MIB scalar slot (most absent in the recording)
UPS_OIDS = [f"1.3.6.1.2.1.33.1.{g}.{i}.0" for g in range(1, 10) for i in range(1, 11)]


def run(coro):  # noqa: ANN001, ANN201 - test helper
    return asyncio.run(coro)


def settings(port: int, version: str = "v2c", community: str = "public", **kw: object) -> SnmpSettings:
    kw.setdefault("timeout", 0.3)
    kw.setdefault("retries", 0)
    return SnmpSettings("127.0.0.1", port, version, community, **kw)  # type: ignore[arg-type]


async def poll(s: SnmpSettings, oids: list[str], times: int = 1) -> tuple[list[dict], SnmpClient]:
    async with SnmpClient(s) as c:
        return [await c.get(oids) for _ in range(times)], c


def expected(table: dict, oids: list[str]) -> dict[str, Value]:
    """What the recording holds for those OIDs, as Values (text strings as their bytes)."""
    out = {}
    for oid in oids:
        entry = table.get(tuple(int(p) for p in oid.split(".")))
        if entry is None:
            continue
        tag, value = entry
        if tag in ("4", "4x"):
            out[oid] = Value("4", value if isinstance(value, bytes) else value.encode())
        elif tag == "6":
            out[oid] = Value("6", ".".join(map(str, value)))
        else:
            out[oid] = Value(tag, value)
    return out


def present(answers: dict) -> dict:
    return {k: v for k, v in answers.items() if isinstance(v, Value)}


@pytest.fixture
def cs141():
    with SnmpAgent.from_snmprec(CS141, community="public") as agent:
        yield agent


# --------------------------------------------------------------------------------------------------
# GET: batching and the fallbacks


def test_one_poll_of_90_oids_is_two_round_trips_with_every_value(cs141: SnmpAgent) -> None:
    (answers,), client = run(poll(settings(cs141.port), UPS_OIDS + [SYS_OBJECT_ID]))
    assert client.round_trips == 2 == len(cs141.requests("GET"))
    assert present(answers) == expected(cs141.table, UPS_OIDS + [SYS_OBJECT_ID])
    assert answers[IDENT_MODEL] == Value("4", b"Upscale")
    assert answers[SYS_OBJECT_ID] == Value("6", "1.3.6.1.2.1.33")
    assert answers["1.3.6.1.2.1.33.1.1.9.0"] is Missing.NO_SUCH_INSTANCE  # v2c exception, not an error
    assert list(answers) == UPS_OIDS + [SYS_OBJECT_ID]  # every OID asked for, in order


def test_too_big_halves_the_batch_keeps_every_value_and_remembers(cs141: SnmpAgent) -> None:
    cs141.max_varbinds = 10
    (first, second), client = run(poll(settings(cs141.port), UPS_OIDS, times=2))
    assert present(first) == present(second) == expected(cs141.table, UPS_OIDS)
    assert client.batch <= 10
    log = cs141.requests("GET")
    first_poll = [e for e in log if e.error_status != NO_ERROR]
    assert first_poll, "the agent never said tooBig: the test proves nothing"
    second_poll = log[-(90 // client.batch + 1):]
    assert all(e.error_status == NO_ERROR for e in second_poll)
    assert all(len(e.varbinds) <= 10 for e in second_poll)


def test_agent_refusing_multi_varbind_gets_gives_every_value_then_single_gets(cs141: SnmpAgent) -> None:
    cs141.generr_multi = True
    oids = UPS_OIDS[:24]
    (first, second), client = run(poll(settings(cs141.port), oids, times=2))
    assert present(first) == present(second) == expected(cs141.table, oids)
    assert client.batch == 1
    # the second poll goes straight to one OID per GET: 24 requests, no error
    tail = cs141.requests("GET")[-24:]
    assert all(e.error_status == NO_ERROR and len(e.varbinds) == 1 for e in tail)


def test_one_oid_with_generr_does_not_lose_the_others(cs141: SnmpAgent) -> None:
    bad = (1, 3, 6, 1, 2, 1, 33, 1, 2, 4, 0)  # battery charge
    answer = cs141._answer

    def generr_for_bad(proto, pdu, req, vbs, v1):  # noqa: ANN001, ANN202 - the agent's hook
        for i, (oid, _) in enumerate(vbs, 1):
            if tuple(oid) == bad:
                return GEN_ERR, i, []
        return answer(proto, pdu, req, vbs, v1)

    cs141._answer = generr_for_bad  # type: ignore[method-assign]
    (first, second), client = run(poll(settings(cs141.port), UPS_OIDS, times=2))
    bad_oid = ".".join(map(str, bad))
    want = expected(cs141.table, UPS_OIDS)
    want.pop(bad_oid)
    assert present(first) == present(second) == want
    assert first[bad_oid] is Missing.NO_SUCH_NAME
    assert client.batch > 1  # one bad OID is no reason to ask one at a time
    # the second poll: the bad OID alone, the rest in batches, no error for the batches
    first_count = client.round_trips - 3
    assert first_count > 3
    tail = cs141.requests("GET")[-3:]
    assert [len(e.varbinds) for e in tail] == [48, 41, 1]
    assert [e.error_status for e in tail] == [NO_ERROR, NO_ERROR, GEN_ERR]


def test_v1_no_such_name_in_a_batch_drops_only_that_oid(cs141: SnmpAgent) -> None:
    oids = [SYS_OBJECT_ID, "1.3.6.1.2.1.33.1.1.9.0", IDENT_MODEL, "1.3.6.1.2.1.33.1.9.9.0",
            "1.3.6.1.2.1.33.1.1.1.0"]
    (answers,), client = run(poll(settings(cs141.port, "v1"), oids))
    assert answers["1.3.6.1.2.1.33.1.1.9.0"] is Missing.NO_SUCH_NAME
    assert answers["1.3.6.1.2.1.33.1.9.9.0"] is Missing.NO_SUCH_NAME
    assert present(answers) == expected(cs141.table, oids)
    assert client.round_trips == 3  # the agent names one bad OID per answer
    assert all(e.version == "v1" for e in cs141.requests())


def test_every_snmp_type_arrives_with_its_tag() -> None:
    agent = SnmpAgent(community="public")
    values = {"1.3.6.1.4.1.99.1.0": ("2", -5), "1.3.6.1.4.1.99.2.0": ("4x", b"\x00AB\xff"),
              "1.3.6.1.4.1.99.3.0": ("6", (1, 3, 6, 1, 4, 1, 318)), "1.3.6.1.4.1.99.4.0": ("64", "10.0.0.7"),
              "1.3.6.1.4.1.99.5.0": ("65", 4294967295), "1.3.6.1.4.1.99.6.0": ("66", 7),
              "1.3.6.1.4.1.99.7.0": ("67", 123400), "1.3.6.1.4.1.99.8.0": ("68", b"\x9f\x78\x04"),
              "1.3.6.1.4.1.99.9.0": ("70", 2**40)}
    for oid, (tag, value) in values.items():
        agent.set(oid, tag, value)
    v1_oids = [o for o, (tag, _) in values.items() if tag not in ("65", "66")]  # (snmpagent cannot send
    with agent:                                                                  # those two in v1)
        (v2,), _ = run(poll(settings(agent.port), list(values)))
        (v1,), _ = run(poll(settings(agent.port, "v1"), v1_oids))
    assert v2 == {
        "1.3.6.1.4.1.99.1.0": Value("2", -5), "1.3.6.1.4.1.99.2.0": Value("4", b"\x00AB\xff"),
        "1.3.6.1.4.1.99.3.0": Value("6", "1.3.6.1.4.1.318"), "1.3.6.1.4.1.99.4.0": Value("64", "10.0.0.7"),
        "1.3.6.1.4.1.99.5.0": Value("65", 4294967295), "1.3.6.1.4.1.99.6.0": Value("66", 7),
        "1.3.6.1.4.1.99.7.0": Value("67", 123400), "1.3.6.1.4.1.99.8.0": Value("68", b"\x9f\x78\x04"),
        "1.3.6.1.4.1.99.9.0": Value("70", 2**40)}
    counter64 = "1.3.6.1.4.1.99.9.0"
    assert v1[counter64] is Missing.NO_SUCH_NAME  # v1 has no Counter64
    assert {k: v for k, v in v1.items() if k != counter64} == {k: v2[k] for k in v1_oids if k != counter64}


# --------------------------------------------------------------------------------------------------
# WALK and SET


@pytest.mark.parametrize("version,pdu", [("v2c", "GETBULK"), ("v1", "GETNEXT")])
def test_walk_reads_the_whole_subtree_and_stops_there(cs141: SnmpAgent, version: str, pdu: str) -> None:
    async def go() -> tuple[dict, int]:
        async with SnmpClient(settings(cs141.port, version)) as c:
            return await c.walk(".1.3.6.1.2.1.33"), c.round_trips

    got, trips = run(go())
    base = (1, 3, 6, 1, 2, 1, 33)
    subtree = [k for k in sorted(cs141.table) if k[:7] == base]
    assert list(got) == [".".join(map(str, k)) for k in subtree]
    assert got == expected(cs141.table, list(got))
    assert {e.pdu for e in cs141.requests()} == {pdu}
    assert trips == len(cs141.requests())
    if version == "v2c":
        assert trips <= len(subtree) // 25 + 2


def test_walk_through_an_agent_that_truncates_bulk_answers(cs141: SnmpAgent) -> None:
    cs141.max_varbinds = 5

    async def go() -> dict:
        async with SnmpClient(settings(cs141.port)) as c:
            return await c.walk("1.3.6.1.2.1.33.1.2")

    got = run(go())
    assert list(got) == [f"1.3.6.1.2.1.33.1.2.{i}.0" for i in range(1, 8)
                         if (1, 3, 6, 1, 2, 1, 33, 1, 2, i, 0) in cs141.table]


def test_walk_falls_back_to_getnext_for_an_agent_refusing_getbulk(cs141: SnmpAgent) -> None:
    answer = cs141._answer

    def no_bulk(proto, pdu, req, vbs, v1):  # noqa: ANN001, ANN202 - the agent's hook
        return (GEN_ERR, 1, []) if pdu == "GETBULK" else answer(proto, pdu, req, vbs, v1)

    cs141._answer = no_bulk  # type: ignore[method-assign]

    async def go() -> tuple[dict, dict]:
        async with SnmpClient(settings(cs141.port)) as c:
            return await c.walk("1.3.6.1.2.1.33.1.2"), await c.walk("1.3.6.1.2.1.33.1.1")

    battery, ident = run(go())
    assert list(battery) == [f"1.3.6.1.2.1.33.1.2.{i}.0" for i in range(1, 8)
                             if (1, 3, 6, 1, 2, 1, 33, 1, 2, i, 0) in cs141.table]
    assert ident["1.3.6.1.2.1.33.1.1.2.0"] == Value("4", b"Upscale")
    assert len(cs141.requests("GETBULK")) == 1  # asked once, then GETNEXT


def test_set_sends_the_value_and_a_refused_set_names_oid_and_reason(cs141: SnmpAgent) -> None:
    shutdown, contact = "1.3.6.1.2.1.33.1.8.2.0", "1.3.6.1.2.1.1.4.0"
    cs141.writable = {(1, 3, 6, 1, 2, 1, 33, 1, 8, 2, 0), (1, 3, 6, 1, 2, 1, 1, 4, 0)}

    async def go() -> str:
        async with SnmpClient(settings(cs141.port)) as c:
            await c.set([(shutdown, Value("2", 0))])
            await c.set([(contact, Value("4", b"ops desk"))])
            with pytest.raises(SnmpRequestError) as err:
                await c.set([("1.3.6.1.2.1.33.1.7.1.0", Value("6", "1.3.6.1.2.1.33.1.7.7.3"))])
            return str(err.value)

    message = run(go())
    sets = cs141.requests("SET")
    assert sets[0].varbinds == [(shutdown, ("2", 0))]
    assert sets[1].varbinds == [(contact, ("4", "ops desk"))]
    assert cs141.get(contact) == ("4", "ops desk")
    assert "1.3.6.1.2.1.33.1.7.1.0" in message and "notWritable" in message
    assert "\n" not in message


def test_clients_of_several_agents_can_share_one_engine(cs141: SnmpAgent) -> None:
    with SnmpAgent.from_snmprec(DATA / "apc_smx750.snmprec", community="other") as apc:
        async def go() -> list[dict]:
            engine = SnmpClient.new_engine()
            try:
                clients = [SnmpClient(settings(cs141.port), engine=engine),
                           SnmpClient(settings(apc.port, "v1", "other"), engine=engine)]
                out = []
                for c in clients:
                    async with c:
                        out.append(await c.get([SYS_OBJECT_ID]))
                return out
            finally:
                SnmpClient.close_engine(engine)

        ietf, apcc = run(go())
    assert ietf == {SYS_OBJECT_ID: Value("6", "1.3.6.1.2.1.33")}
    assert apcc == {SYS_OBJECT_ID: Value("6", "1.3.6.1.4.1.318.1.3.27")}


# --------------------------------------------------------------------------------------------------
# No answer


def test_dead_agent_and_wrong_community_say_so_in_one_line_within_the_bound(cs141: SnmpAgent) -> None:
    s = settings(cs141.port, community="wrong", timeout=0.2, retries=2)
    start = time.monotonic()
    with pytest.raises(SnmpTimeout) as err:
        run(poll(s, UPS_OIDS))
    took = time.monotonic() - start
    assert 0.55 < took < 2.0  # timeout x (retries + 1) = 0.6 s, plus the engine's start
    text = str(err.value)
    assert text.startswith(f"no answer from 127.0.0.1:{cs141.port} (wrong community or agent down?)")
    assert "\n" not in text
    assert len(cs141.requests()) == 3  # one request, sent 3 times: pysnmp's retries
    cs141.stop_answering()
    with pytest.raises(SnmpTimeout):
        run(poll(settings(cs141.port, timeout=0.2), [IDENT_MODEL]))


def test_client_recovers_when_the_agent_answers_again(cs141: SnmpAgent) -> None:
    async def go() -> tuple[object, dict]:
        async with SnmpClient(settings(cs141.port, timeout=0.2)) as c:
            cs141.stop_answering()
            try:
                await c.get([IDENT_MODEL])
                lost: object = None
            except SnmpTimeout as exc:
                lost = exc
            cs141.resume()
            return lost, await c.get([IDENT_MODEL])

    lost, back = run(go())
    assert isinstance(lost, SnmpTimeout)
    assert back == {IDENT_MODEL: Value("4", b"Upscale")}


# --------------------------------------------------------------------------------------------------
# SNMPv3, against a pysnmp-native agent (snmpsim 1.2.2 only answers v3 in a named context; NUT, and so
# nutlite, use the empty context)


from snmpv3agent import V3Agent  # noqa: E402 - the shared SNMPv3 test agent


def v3(port: int, **kw: object) -> SnmpSettings:
    base: dict[str, object] = dict(sec_level="authPriv", sec_name="nutv3", auth_password="authpass123",
                                   priv_password="privpass123", auth_protocol="SHA", priv_protocol="AES")
    base.update(kw)
    return settings(port, "v3", timeout=1.0, **base)


@pytest.fixture(scope="module")
def v3agent():
    with V3Agent(CS141) as agent:
        yield agent


def test_v3_auth_priv_reads_values_and_walks(v3agent: V3Agent) -> None:
    async def go() -> tuple[dict, dict]:
        async with SnmpClient(v3(v3agent.port)) as c:
            return await c.get([IDENT_MODEL, SYS_OBJECT_ID, "1.3.6.1.2.1.33.1.1.9.0"]), await c.walk("1.3.6.1.2.1.33")

    got, walked = run(go())
    assert got == {IDENT_MODEL: Value("4", b"Upscale"), SYS_OBJECT_ID: Value("6", "1.3.6.1.2.1.33"),
                   "1.3.6.1.2.1.33.1.1.9.0": Missing.NO_SUCH_INSTANCE}
    assert len(walked) == sum(1 for k in v3agent.table if k[:7] == (1, 3, 6, 1, 2, 1, 33))


@pytest.mark.parametrize("auth,priv", [("MD5", "DES"), ("SHA256", "AES256")])
def test_v3_other_protocols_as_nut_names_them(auth: str, priv: str) -> None:
    # NUT's (Net-SNMP's) AES256 is the Blumenthal key extension; the agent is set up with that one
    with V3Agent(CS141, auth_proto=auth, priv_proto=priv) as agent:
        (got,), _ = run(poll(v3(agent.port, auth_protocol=auth, priv_protocol=priv), [IDENT_MODEL]))
    assert got == {IDENT_MODEL: Value("4", b"Upscale")}


@pytest.mark.parametrize("change,words", [
    ({"sec_name": "nobody"}, "SNMPv3 user 'nobody' is unknown to"),
    ({"auth_password": "not-the-password"}, "wrong authPassword or authProtocol for user 'nutv3'"),
    ({"priv_password": "not-the-password"}, "wrong privPassword or privProtocol for user 'nutv3'"),
    ({"auth_protocol": "MD5"}, "wrong authPassword or authProtocol"),
    ({"sec_level": "authNoPriv"}, "does not accept secLevel authNoPriv"),
])
def test_v3_refusals_are_one_clear_line(v3agent: V3Agent, change: dict, words: str) -> None:
    start = time.monotonic()
    with pytest.raises(SnmpAuthError) as err:
        run(poll(v3(v3agent.port, **change), [IDENT_MODEL]))
    assert words in str(err.value)
    assert f"127.0.0.1:{v3agent.port}" in str(err.value)
    assert "\n" not in str(err.value)
    assert time.monotonic() - start < 1.5  # the agent's report answers at once: no timeout to wait for


# --------------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize("text,want", [
    ("10.0.0.5", ("10.0.0.5", 161)), ("ups.lan:16100", ("ups.lan", 16100)), ("[::1]:1161", ("::1", 1161)),
    ("fe80::1", ("fe80::1", 161)), (" 127.0.0.1:161 ", ("127.0.0.1", 161)),
])
def test_port_setting_forms(text: str, want: tuple[str, int]) -> None:
    assert parse_target(text) == want


@pytest.mark.parametrize("text,words", [
    ("", "got nothing"), ("host:0", "1 to 65535"), ("host:snmp", "1 to 65535"), (":161", "no host"),
    ("[::1", "missing ']'"),
])
def test_bad_port_settings_are_named(text: str, words: str) -> None:
    with pytest.raises(SnmpConfigError, match=words):
        parse_target(text)


@pytest.mark.parametrize("kw,words", [
    ({"version": "v4"}, "snmp_version = 'v4': expected one of v1, v2c, v3"),
    ({"version": "v3"}, "needs secName"),
    ({"version": "v3", "sec_name": "u", "sec_level": "authPriv", "auth_password": "12345678"}, "needs privPassword"),
    ({"version": "v3", "sec_name": "u", "sec_level": "authNoPriv", "auth_password": "short"}, "at least 8"),
    ({"version": "v3", "sec_name": "u", "sec_level": "authNoPriv", "auth_password": "12345678",
      "auth_protocol": "SHA1"}, "authProtocol = 'SHA1': expected one of MD5, SHA"),
    ({"version": "v3", "sec_name": "u", "sec_level": "authPriv", "auth_password": "12345678",
      "priv_password": "12345678", "priv_protocol": "3DES"}, "privProtocol = '3DES'"),
    ({"version": "v3", "sec_name": "u", "sec_level": "secret"}, "secLevel = 'secret'"),
    ({"timeout": 0}, "snmp_timeout"),
])
def test_unusable_settings_are_refused_by_name(kw: dict, words: str) -> None:
    with pytest.raises(SnmpConfigError, match=words.replace("(", r"\(")):
        SnmpClient(SnmpSettings("127.0.0.1", **kw))  # type: ignore[arg-type]


def test_unresolvable_host_is_a_config_error() -> None:
    with pytest.raises(SnmpConfigError, match="cannot use the agent address 'no-such-host.invalid'"):
        run(poll(SnmpSettings("no-such-host.invalid", timeout=0.2, retries=0), [IDENT_MODEL]))
