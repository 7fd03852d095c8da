"""upsmon's monitoring process: the upsd sessions (:class:`UpsConnection`) and the loop that feeds
:mod:`nutlite.upsmon.core` and carries out its actions (:class:`UpsmonDaemon`).

Imported by :mod:`nutlite.upsmon.main` only after the root parent has forked (or in the one-process
modes), so the parent never holds asyncio and the client: what the parent imports before the fork
stays in its memory however the child uses it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine

from nutlite import daemon
from nutlite.client import AsyncNutClient, NutClientError, NutConnectionError, NutError
from nutlite.config import ConfigError, Monitor, UpsmonConf, load_upsmon_conf
from nutlite.upsmon.core import (
    SYNC_INTERVAL,
    Action,
    InsufficientPower,
    Log,
    Notify,
    Phase,
    SetFsd,
    Settings,
    Shutdown,
    UpsmonCore,
    WaitSecondaries,
    check_power,
    seconds_until,
    specs_of,
)
from nutlite.upsmon.notify import Notifications
from nutlite.upsmon.shutdown import (
    parse_shutdownexit,
)

log = logging.getLogger("nutlite.upsmon")

REQUEST_TIMEOUT = 5.0  # seconds for a connection attempt or one request to upsd
monotonic = time.monotonic

# --------------------------------------------------------------------------------------------- connections


class UpsConnection:
    """The upsd session of one MONITOR line."""

    def __init__(self, mon: Monitor, conf: UpsmonConf, family: int = socket.AF_UNSPEC) -> None:
        self.mon = mon
        self.conf = conf
        self.family = family
        self.client: AsyncNutClient | None = None
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return self.mon.system

    def same_session(self, other: Monitor) -> bool:
        m = self.mon
        return (m.upsname, m.host, m.port, m.user, m.password, m.role) == (
            other.upsname, other.host, other.port, other.user, other.password, other.role)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    async def _address(self) -> str:
        if self.family == socket.AF_UNSPEC:
            return self.mon.host
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.mon.host, self.mon.port, family=self.family,
                                       type=socket.SOCK_STREAM)
        if not infos:
            raise NutConnectionError(f"no {'IPv4' if self.family == socket.AF_INET else 'IPv6'} "
                                     f"address for {self.mon.host}")
        return str(infos[0][4][0])

    async def _tls(self, client: AsyncNutClient) -> None:
        conf = self.conf
        if not (conf.forcessl or conf.certverify or conf.certpath):
            return
        cafile = capath = None
        if conf.certpath:
            if os.path.isdir(conf.certpath):
                capath = conf.certpath
            else:
                cafile = conf.certpath
        try:
            await client.starttls(verify=conf.certverify, cafile=cafile, capath=capath,
                                  server_hostname=self.mon.host)
        except NutError as exc:
            if conf.forcessl:
                raise NutConnectionError(f"FORCESSL is set but the server refused STARTTLS ({exc.code})") from None
            log.debug("UPS %s: no TLS (%s), continuing in clear text", self.name, exc.code)

    async def login(self) -> None:
        """Connect and log in (USERNAME, PASSWORD, LOGIN, and PRIMARY for a primary)."""
        await self.close(logout=False)
        client = AsyncNutClient(await self._address(), self.mon.port, timeout=REQUEST_TIMEOUT)
        try:
            await client.connect()
            await self._tls(client)
            await client.username(self.mon.user)
            await client.password(self.mon.password)
            await client.login(self.mon.upsname)
        except BaseException:
            await client.close(logout=False)
            raise
        if self.mon.role == "primary":
            try:
                await client.primary(self.mon.upsname)
            except NutError as exc:
                log.error("UPS %s: primary rights refused (%s): check 'upsmon primary' for user %s in "
                          "upsd.users; FSD will not work", self.name, exc.message, self.mon.user)
        self.client = client
        log.debug("logged in to UPS %s", self.name)

    async def ensure(self) -> AsyncNutClient:
        if not self.connected:
            await self.login()
        assert self.client is not None
        return self.client

    async def poll(self) -> str:
        """``GET VAR <ups> ups.status``; raises NutClientError."""
        client = await self.ensure()
        return await client.get_var(self.mon.upsname, "ups.status")

    async def set_fsd(self) -> bool:
        try:
            client = await self.ensure()
            await client.fsd(self.mon.upsname)
        except NutClientError as exc:
            log.error("setting FSD on UPS %s failed: %s", self.name, exc.message)
            return False
        log.info("FSD set on UPS %s", self.name)
        return True

    async def numlogins(self) -> int | None:
        if not self.connected:
            return None
        assert self.client is not None
        try:
            return await self.client.get_numlogins(self.mon.upsname)
        except NutClientError as exc:
            log.debug("GET NUMLOGINS %s failed: %s", self.name, exc.message)
            return None

    async def close(self, logout: bool = True) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close(logout=logout)


# --------------------------------------------------------------------------------------------- the monitor


class UpsmonDaemon:
    """The monitoring process: polls, feeds the core, carries out its actions."""

    def __init__(self, conf: UpsmonConf, handoff: Callable[[], Awaitable[bool]],
                 notifier: daemon.Notifier | None = None, parent_pid: int | None = None,
                 family: int = socket.AF_UNSPEC) -> None:
        self.conf = conf
        self.handoff = handoff
        self.notifier = notifier or daemon.Notifier()
        self.parent_pid = parent_pid
        self.family = family
        self.core = UpsmonCore(Settings.from_conf(conf), specs_of(conf), monotonic())
        self.conns = {m.system: UpsConnection(m, conf, family) for m in conf.monitors}
        self.notes = Notifications(conf.notifycmd, conf.notifymsg, conf.notifyflag)
        self.linger = parse_shutdownexit(conf.shutdownexit)
        self.wake: asyncio.Event | None = None
        self.stop_requested = False
        self.reload_requested = False
        self.fsd_requested = False
        self.ignored_logged = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -------------------------------------------------------------- signals

    def _signal(self, what: str) -> None:
        if self.core.phase is not Phase.MONITORING:
            if not self.ignored_logged:
                log.warning("forced shutdown in progress: %s request ignored", what)
                self.ignored_logged = True
            return
        if what == "stop":
            log.info("signal received: stopping")
            self.stop_requested = True
        elif what == "reload":
            self.reload_requested = True
        elif what == "fsd":
            self.fsd_requested = True
        if self.wake is not None:
            self.wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early for a signal; pings the systemd watchdog in between."""
        assert self.wake is not None
        end = monotonic() + max(0.0, seconds)
        while True:
            left = end - monotonic()
            if left <= 0 or self.wake.is_set():
                break
            step = min(left, self.notifier.watchdog_interval or left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=step)
            self.notifier.watchdog()
        self.wake.clear()

    # -------------------------------------------------------------- main loop

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        for sig, what in ((signal.SIGTERM, "stop"), (signal.SIGINT, "stop"), (signal.SIGHUP, "reload"),
                          (signal.SIGUSR1, "fsd")):
            loop.add_signal_handler(sig, self._signal, what)
        ready = False
        next_poll = monotonic()
        try:
            while True:
                self.notes.reap()
                phase = self.core.phase
                if phase is Phase.MONITORING:
                    if self.stop_requested:
                        break
                    if self.reload_requested:
                        self.reload_requested = False
                        self.reload()
                        next_poll = monotonic()
                    if self.fsd_requested:
                        self.fsd_requested = False
                        await self.execute(self.core.user_fsd(monotonic()))
                        continue
                    self.check_parent()
                    if monotonic() >= next_poll:
                        started = monotonic()
                        await self.poll_round()
                        await self.execute(self.core.evaluate(monotonic()))
                        if not ready:
                            ready = True
                            self.notifier.ready(f"monitoring {len(self.conns)} UPS")
                        self.notifier.watchdog()
                        next_poll = started + self.core.poll_interval()
                        continue
                    await self._sleep(next_poll - monotonic())
                elif phase is Phase.SYNCING:
                    logins = await self.numlogins_round()
                    await self.execute(self.core.sync_update(logins, monotonic()))
                    self.notifier.watchdog()
                    if self.core.phase is Phase.SYNCING:
                        await self._sleep(SYNC_INTERVAL)
                elif phase is Phase.FINALDELAY:
                    await self._sleep(seconds_until(self.core.final_at, monotonic()))
                    await self.execute(self.core.tick(monotonic()))
                else:  # DONE: the Shutdown action has been carried out
                    break
        finally:
            self.notifier.stopping()
            await self.close_all()
        return 0

    async def poll_round(self) -> None:
        conns = list(self.conns.values())
        results = await asyncio.gather(*(self._poll_one(c) for c in conns))
        now = monotonic()
        for conn, (status, error) in zip(conns, results, strict=True):
            if conn.name not in self.core.upses:
                continue
            if status is not None:
                if conn.last_error is not None:
                    log.info("UPS %s answers again", conn.name)
                conn.last_error = None
                actions = self.core.poll_ok(conn.name, status, now)
            else:
                if error != conn.last_error:
                    log.warning("poll of UPS %s failed: %s", conn.name, error)
                else:
                    log.debug("poll of UPS %s failed: %s", conn.name, error)
                conn.last_error = error
                actions = [a for a in self.core.poll_failed(conn.name, now, error or "")
                           if not isinstance(a, Log)]
            await self.execute(actions)

    @staticmethod
    async def _poll_one(conn: UpsConnection) -> tuple[str | None, str | None]:
        try:
            status = await conn.poll()
        except NutClientError as exc:
            if not isinstance(exc, NutError):
                await conn.close(logout=False)
            return None, exc.message
        except OSError as exc:  # name resolution and the like
            await conn.close(logout=False)
            return None, str(exc)
        except Exception as exc:  # a bug must not stop the monitoring
            log.exception("poll of UPS %s: unexpected error", conn.name)
            await conn.close(logout=False)
            return None, f"internal error: {exc}"
        log.debug("UPS %s: status %r", conn.name, status)
        return status, None

    async def numlogins_round(self) -> dict[str, int | None]:
        names = [n for n in self.core.primaries if n in self.conns]
        counts = dict(zip(names, await asyncio.gather(*(self.conns[n].numlogins() for n in names)), strict=True))
        log.debug("logins: %s", ", ".join(f"{n} = {'unknown' if c is None else c}" for n, c in counts.items())
                  or "no primary UPS")
        return counts

    async def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Notify):
                self.notes.notify(action.type, action.ups)
            elif isinstance(action, Log):
                log.log(action.level, "%s", action.text)
            elif isinstance(action, SetFsd):
                conn = self.conns.get(action.ups)
                if conn is not None:
                    await conn.set_fsd()
            elif isinstance(action, WaitSecondaries):
                log.debug("waiting for the secondaries of %s", ", ".join(action.upses))
            elif isinstance(action, Shutdown):
                await self.shutdown()

    async def shutdown(self) -> None:
        ok = await self.handoff()
        if not ok:
            log.critical("the shutdown could not be started")
        await self.close_all()
        if self.linger > 0:
            log.info("SHUTDOWNEXIT: staying around %s", "until stopped" if math.isinf(self.linger)
                     else f"for {self.linger:g} s")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), None if math.isinf(self.linger) else self.linger)

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close(logout=True) for c in self.conns.values()))

    def check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            for action in self.core.parent_gone():
                if isinstance(action, Notify):
                    self.notes.notify(action.type, action.ups)
                elif isinstance(action, Log):
                    log.log(action.level, "%s", action.text)

    # -------------------------------------------------------------- reload

    def reload(self) -> None:
        log.info("reloading %s", self.conf.path)
        self.notifier.reloading()
        try:
            new = load_upsmon_conf()
            specs = specs_of(new)
            check_power(specs, new.minsupplies)
            self.core.reconfigure(Settings.from_conf(new), specs, monotonic())
        except (ConfigError, InsufficientPower, ValueError) as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            self.notifier.ready()
            return
        for w in new.warnings:
            log.warning("%s", w)
        for key in ("shutdowncmd", "powerdownflag"):
            if getattr(new, key) != getattr(self.conf, key):
                log.warning("%s changed in upsmon.conf: it only takes effect when upsmon is restarted",
                            key.upper())
        old = self.conns
        self.conns = {}
        for m in new.monitors:
            conn = old.pop(m.system, None)
            if conn is not None and conn.same_session(m):
                conn.mon = m
                conn.conf = new
            else:
                if conn is not None:
                    self._background(conn.close())
                conn = UpsConnection(m, new, self.family)
            self.conns[m.system] = conn
        for conn in old.values():
            log.info("no longer monitoring UPS %s", conn.name)
            self._background(conn.close())
        self.notes.configure(new.notifycmd, new.notifymsg, new.notifyflag)
        self.linger = parse_shutdownexit(new.shutdownexit)
        self.conf = new
        log.info("configuration reloaded: %d UPS", len(self.conns))
        self.notifier.ready()


    def _background(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
