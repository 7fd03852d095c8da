"""An SNMPv3 agent for tests: pysnmp's own command responder with USM users, in a thread on 127.0.0.1,
serving a ``.snmprec`` recording (GET, GETNEXT, GETBULK) with an empty context, as NUT and nutlite ask.

    with V3Agent(path) as agent:                       # user nutv3, SHA + AES
        ...agent.port...
    V3Agent(path, users=[("priv_DES", "SHA", "DES")], community="public")   # several users, and v2c
"""

from __future__ import annotations

import asyncio
import bisect
import threading
from pathlib import Path

from snmpagent import _encode_value, load_snmprec

#: the privacy protocols the agent offers (pysnmp's names differ; AES192C/AES256C are the Cisco keys)
PRIV_PROTOCOLS = ("DES", "AES", "AES192", "AES256", "AES192C", "AES256C")


class _Table:
    """A pysnmp MIB instrumentation serving a .snmprec table (read-only)."""

    def __init__(self, table: dict) -> None:
        from pysnmp.proto import api

        self.p = api.v2c
        self.table = table
        self.keys = sorted(table)

    def read_variables(self, *vbs, **ctx):  # noqa: ANN002, ANN003, ANN201 - pysnmp's hook
        return [(o, _encode_value(self.p, self.table[tuple(o)]) if tuple(o) in self.table
                 else self.p.NoSuchInstance("")) for o, _ in vbs]

    def read_next_variables(self, *vbs, **ctx):  # noqa: ANN002, ANN003, ANN201
        out = []
        for o, _ in vbs:
            i = bisect.bisect_right(self.keys, tuple(o))
            if i < len(self.keys):
                k = self.keys[i]
                out.append((self.p.ObjectIdentifier(k), _encode_value(self.p, self.table[k])))
            else:
                out.append((o, self.p.EndOfMibView("")))
        return out


class V3Agent:
    """USM users (name, auth protocol, privacy protocol) sharing the pass phrases ``auth`` / ``priv``;
    ``community`` also answers v1/v2c."""

    def __init__(self, snmprec: Path, user: str = "nutv3", auth: str = "authpass123", priv: str = "privpass123",
                 auth_proto: str = "SHA", priv_proto: str = "AES", *,
                 users: list[tuple[str, str, str]] | None = None, community: str | None = None) -> None:
        self.table = load_snmprec(snmprec)
        self.auth, self.priv = auth, priv
        self.users = users if users is not None else [(user, auth_proto, priv_proto)]
        self.community = community
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp
        from pysnmp.entity.rfc3413 import context as rcontext

        auths = {"MD5": config.USM_AUTH_HMAC96_MD5, "SHA": config.USM_AUTH_HMAC96_SHA,
                 "SHA256": config.USM_AUTH_HMAC192_SHA256}
        privs = {"DES": config.USM_PRIV_CBC56_DES, "AES": config.USM_PRIV_CFB128_AES,
                 "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL, "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
                 "AES192C": config.USM_PRIV_CFB192_AES, "AES256C": config.USM_PRIV_CFB256_AES}
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        eng = engine.SnmpEngine()
        transport = udp.UdpTransport().open_server_mode(("127.0.0.1", 0))
        config.add_transport(eng, udp.DOMAIN_NAME, transport)
        for name, auth_proto, priv_proto in self.users:
            config.add_v3_user(eng, name, auths[auth_proto], self.auth, privs[priv_proto], self.priv)
            config.add_vacm_user(eng, 3, name, "authPriv", (1,), (1,))
        if self.community is not None:
            config.add_v1_system(eng, "v2c-area", self.community)
            config.add_vacm_user(eng, 2, "v2c-area", "noAuthNoPriv", (1,), (1,))
        ctx = rcontext.SnmpContext(eng)
        ctx.context_names[b""] = _Table(self.table)  # type: ignore[assignment]
        for kind in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder, cmdrsp.BulkCommandResponder):
            kind(eng, ctx)
        loop.call_soon(self._bound, transport)
        loop.run_forever()
        eng.close_dispatcher()

    def _bound(self, transport: object) -> None:
        sock = getattr(transport, "transport", None)
        if sock is None:  # the datagram endpoint is created by a task of the loop: wait for it
            assert self._loop is not None
            self._loop.call_later(0.01, self._bound, transport)
            return
        self.port = sock.get_extra_info("sockname")[1]
        self._ready.set()

    def __enter__(self) -> V3Agent:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the SNMPv3 test agent did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
