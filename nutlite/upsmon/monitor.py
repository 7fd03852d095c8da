"""upsmon's monitoring process: the upsd sessions (:class:`UpsConnection`) and the loop that feeds
:mod:`nutlite.upsmon.core` and carries out its actions (:class:`UpsmonDaemon`).

Imported by :mod:`nutlite.upsmon.main` only after the root parent has forked (or in the one-process
modes), so the parent never holds the client: what the parent imports before the fork stays in its
memory however the child uses it.

The loop is synchronous, as NUT's upsmon is: one poll round every POLLFREQ, the upsd sessions polled
in parallel threads when there are several (one unreachable server must not delay the others), and
signals that wake the sleeping loop through a wakeup pipe. It does not import asyncio, which would
cost the process about 2 MiB for nothing it needs."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from nutlite import daemon
from nutlite.client import NutClient, NutClientError, NutConnectionError, NutError, host_arg
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
        self.client: NutClient | None = None
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

    def _address(self) -> str:
        if self.family == socket.AF_UNSPEC:
            return self.mon.host
        infos = socket.getaddrinfo(host_arg(self.mon.host), self.mon.port, family=self.family,
                                   type=socket.SOCK_STREAM)
        if not infos:
            raise NutConnectionError(f"no {'IPv4' if self.family == socket.AF_INET else 'IPv6'} "
                                     f"address for {self.mon.host}")
        return str(infos[0][4][0])

    def _tls(self, client: NutClient) -> None:
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
            client.starttls(verify=conf.certverify, cafile=cafile, capath=capath,
                                  server_hostname=self.mon.host)
        except NutError as exc:
            if conf.forcessl:
                raise NutConnectionError(f"FORCESSL is set but the server refused STARTTLS ({exc.code})") from None
            log.debug("UPS %s: no TLS (%s), continuing in clear text", self.name, exc.code)

    def login(self) -> None:
        """Connect and log in (USERNAME, PASSWORD, LOGIN, and PRIMARY for a primary)."""
        self.close(logout=False)
        client = NutClient(self._address(), self.mon.port, timeout=REQUEST_TIMEOUT)
        try:
            client.connect()
            self._tls(client)
            client.username(self.mon.user)
            client.password(self.mon.password)
            client.login(self.mon.upsname)
        except BaseException:
            client.close(logout=False)
            raise
        if self.mon.role == "primary":
            try:
                client.primary(self.mon.upsname)
            except NutError as exc:
                log.error("UPS %s: primary rights refused (%s): check 'upsmon primary' for user %s in "
                          "upsd.users; FSD will not work", self.name, exc.message, self.mon.user)
        self.client = client
        log.debug("logged in to UPS %s", self.name)

    def ensure(self) -> NutClient:
        if not self.connected:
            self.login()
        assert self.client is not None
        return self.client

    def poll(self) -> str:
        """``GET VAR <ups> ups.status``; raises NutClientError."""
        return self.ensure().get_var(self.mon.upsname, "ups.status")

    def set_fsd(self) -> bool:
        try:
            self.ensure().fsd(self.mon.upsname)
        except NutClientError as exc:
            log.error("setting FSD on UPS %s failed: %s", self.name, exc.message)
            return False
        log.info("FSD set on UPS %s", self.name)
        return True

    def numlogins(self) -> int | None:
        if not self.connected:
            return None
        assert self.client is not None
        try:
            return self.client.get_numlogins(self.mon.upsname)
        except NutClientError as exc:
            log.debug("GET NUMLOGINS %s failed: %s", self.name, exc.message)
            return None

    def close(self, logout: bool = True) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(logout=logout)


T = TypeVar("T")


def each(conns: Sequence[UpsConnection], fn: Callable[[UpsConnection], T]) -> list[T]:
    """``fn`` of every connection, in parallel threads when there are several (each bounded by the
    request timeout), so that one unreachable upsd does not hold up the polls of the others."""
    if len(conns) < 2:
        return [fn(c) for c in conns]
    results: list[T | None] = [None] * len(conns)

    def run(i: int, conn: UpsConnection) -> None:
        results[i] = fn(conn)

    threads = [threading.Thread(target=run, args=(i, c), name=f"poll {c.name}", daemon=True)
               for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results  # type: ignore[return-value]  # every thread has filled its slot


# --------------------------------------------------------------------------------------------- the monitor


class UpsmonDaemon:
    """The monitoring process: polls, feeds the core, carries out its actions."""

    def __init__(self, conf: UpsmonConf, handoff: Callable[[], bool],
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
        self.woken = False
        self._wake_r = self._wake_w = -1
        self.lingering = False
        self.stop_requested = False
        self.reload_requested = False
        self.fsd_requested = False
        self.ignored_logged = False

    # -------------------------------------------------------------- signals

    def _signal(self, what: str) -> None:
        if self.lingering and what == "stop":  # SHUTDOWNEXIT: waiting to be stopped
            self.stop_requested = self.woken = True
            return
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
        self.woken = True

    def _install_signals(self) -> None:
        """Signal handlers that set flags; the C handler's byte on the wakeup pipe ends a sleep."""
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig, what in ((signal.SIGTERM, "stop"), (signal.SIGINT, "stop"), (signal.SIGHUP, "reload"),
                          (signal.SIGUSR1, "fsd")):
            signal.signal(sig, lambda _n, _f, what=what: self._signal(what))

    def _restore_signals(self) -> None:
        signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking early for a signal; pings the systemd watchdog in between."""
        end = monotonic() + max(0.0, seconds)
        while True:
            left = end - monotonic()
            if left <= 0 or self.woken:
                break
            step = min(left, self.notifier.watchdog_interval or left)
            select.select([self._wake_r], [], [], step)
            with contextlib.suppress(OSError):
                while os.read(self._wake_r, 512):
                    pass
            self.notifier.watchdog()
        self.woken = False

    # -------------------------------------------------------------- main loop

    def run(self) -> int:
        self._install_signals()
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
                        self.execute(self.core.user_fsd(monotonic()))
                        continue
                    self.check_parent()
                    if monotonic() >= next_poll:
                        started = monotonic()
                        self.poll_round()
                        self.execute(self.core.evaluate(monotonic()))
                        if not ready:
                            ready = True
                            self.notifier.ready(f"monitoring {len(self.conns)} UPS")
                        self.notifier.watchdog()
                        next_poll = started + self.core.poll_interval()
                        continue
                    self._sleep(next_poll - monotonic())
                elif phase is Phase.SYNCING:
                    logins = self.numlogins_round()
                    self.execute(self.core.sync_update(logins, monotonic()))
                    self.notifier.watchdog()
                    if self.core.phase is Phase.SYNCING:
                        self._sleep(SYNC_INTERVAL)
                elif phase is Phase.FINALDELAY:
                    self._sleep(seconds_until(self.core.final_at, monotonic()))
                    self.execute(self.core.tick(monotonic()))
                else:  # DONE: the Shutdown action has been carried out
                    break
        finally:
            self.notifier.stopping()
            self.close_all()
            self._restore_signals()
        return 0

    def poll_round(self) -> None:
        conns = list(self.conns.values())
        results = each(conns, self._poll_one)
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
            self.execute(actions)

    @staticmethod
    def _poll_one(conn: UpsConnection) -> tuple[str | None, str | None]:
        try:
            status = conn.poll()
        except NutClientError as exc:
            if not isinstance(exc, NutError):
                conn.close(logout=False)
            return None, exc.message
        except OSError as exc:  # name resolution and the like
            conn.close(logout=False)
            return None, str(exc)
        except Exception as exc:  # a bug must not stop the monitoring
            log.exception("poll of UPS %s: unexpected error", conn.name)
            conn.close(logout=False)
            return None, f"internal error: {exc}"
        log.debug("UPS %s: status %r", conn.name, status)
        return status, None

    def numlogins_round(self) -> dict[str, int | None]:
        names = [n for n in self.core.primaries if n in self.conns]
        counts = dict(zip(names, each([self.conns[n] for n in names], UpsConnection.numlogins), strict=True))
        log.debug("logins: %s", ", ".join(f"{n} = {'unknown' if c is None else c}" for n, c in counts.items())
                  or "no primary UPS")
        return counts

    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Notify):
                self.notes.notify(action.type, action.ups)
            elif isinstance(action, Log):
                log.log(action.level, "%s", action.text)
            elif isinstance(action, SetFsd):
                conn = self.conns.get(action.ups)
                if conn is not None:
                    conn.set_fsd()
            elif isinstance(action, WaitSecondaries):
                log.debug("waiting for the secondaries of %s", ", ".join(action.upses))
            elif isinstance(action, Shutdown):
                self.shutdown()

    def shutdown(self) -> None:
        ok = self.handoff()
        if not ok:
            log.critical("the shutdown could not be started")
        self.close_all()
        if self.linger > 0:
            log.info("SHUTDOWNEXIT: staying around %s", "until stopped" if math.isinf(self.linger)
                     else f"for {self.linger:g} s")
            self.lingering = True
            self.stop_requested = self.woken = False
            end = monotonic() + self.linger
            while not self.stop_requested and monotonic() < end:
                self._sleep(min(end - monotonic(), 3600.0))

    def close_all(self) -> None:
        each(list(self.conns.values()), UpsConnection.close)

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
                    conn.close()
                conn = UpsConnection(m, new, self.family)
            self.conns[m.system] = conn
        for conn in old.values():
            log.info("no longer monitoring UPS %s", conn.name)
            conn.close()
        self.notes.configure(new.notifycmd, new.notifymsg, new.notifyflag)
        self.linger = parse_shutdownexit(new.shutdownexit)
        self.conf = new
        log.info("configuration reloaded: %d UPS", len(self.conns))
        self.notifier.ready()
