"""``nutlite upsmon``: NUT's upsmon -- watch UPSes over the network and shut this host down in time.

The decisions are made by :mod:`nutlite.upsmon.core`; this module does the I/O around it.

Process model (as NUT's): started as root, upsmon splits in two. The parent keeps root and can do
exactly one thing: when the child writes one byte (``\\x01``) into their pipe, it writes POWERDOWNFLAG
and runs SHUTDOWNCMD (see :mod:`nutlite.upsmon.shutdown`). The child becomes ``-u``, else
RUN_AS_USER, else NUT's ``nut`` account (``-u root`` keeps it root), and does everything else: the
upsd connections, the polling, the notifications, the signals (its pid is in the pid file). If the
parent dies the child announces NOPARENT once and goes on monitoring; if the child dies the parent
exits with it. ``-p`` keeps one process (also used when not started as root).

Per MONITOR line one connection: ``USERNAME``, ``PASSWORD``, ``LOGIN <ups>``, for a primary ``PRIMARY
<ups>`` (``MASTER`` on old servers), then ``GET VAR <ups> ups.status`` every POLLFREQ seconds
(POLLFREQALERT while a UPS is on battery), ``LOGOUT`` when stopping. A lost connection is retried
at every poll. STARTTLS is attempted when CERTPATH, CERTVERIFY or FORCESSL is set.

Signals (to the pid in ``<STATEPATH>/upsmon.pid``, or via ``upsmon -c``): SIGHUP (``reload``) re-reads
upsmon.conf -- except SHUTDOWNCMD and POWERDOWNFLAG, which only a restart changes; SIGTERM/SIGINT
(``stop``) logs out and exits; SIGUSR1 (``fsd``) starts a forced shutdown as if every UPS had failed
(primary: FSD for all its secondaries too). A forced shutdown, once started, is not called off.

Under systemd (Type=notify, NotifyAccess=all since the child reports): READY=1 after the first poll
round, WATCHDOG=1 from the monitoring loop when WatchdogSec is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path

from nutlite import __version__, daemon
from nutlite.client import AsyncNutClient, NutClientError, NutConnectionError, NutError
from nutlite.config import ConfigError, Monitor, UpsmonConf, load_upsmon_conf, statepath
from nutlite.tools.common import help_parser
from nutlite.upsmon.core import (
    SYNC_INTERVAL,
    Action,
    InsufficientPower,
    Log,
    MonitorSpec,
    Notify,
    Phase,
    SetFsd,
    Settings,
    Shutdown,
    UpsmonCore,
    WaitSecondaries,
    check_power,
    seconds_until,
)
from nutlite.upsmon.notify import Notifications
from nutlite.upsmon.shutdown import (
    LocalShutdown,
    PipeHandoff,
    clear_stale_flag,
    flag_is_set,
    parse_shutdownexit,
    run_parent,
)

log = logging.getLogger("nutlite.upsmon")

PROG = "upsmon"
NUT_VERSION = "2.8.0"
REQUEST_TIMEOUT = 5.0  # seconds for a connection attempt or one request to upsd
CONTROL_SIGNALS = {"fsd": signal.SIGUSR1, "reload": signal.SIGHUP, "stop": signal.SIGTERM}

monotonic = time.monotonic


# --------------------------------------------------------------------------------------------- files


def pid_dir() -> Path:
    """Where upsmon.pid lives: ``$NUT_ALTPIDPATH``, else STATEPATH (``$NUT_STATEPATH`` or /run/nut)."""
    alt = os.environ.get("NUT_ALTPIDPATH")
    return Path(alt) if alt else statepath()


def pidfile() -> Path:
    return daemon.pidfile_path(pid_dir(), PROG)


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


def specs_of(conf: UpsmonConf) -> list[MonitorSpec]:
    return [MonitorSpec.from_monitor(m) for m in conf.monitors]


# --------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = help_parser(
        PROG,
        "Watch UPSes through upsd (NUT's network server) and shut this system down when\n"
        "its power supplies run out. Started as root, it splits in two: a root process that\n"
        "only writes POWERDOWNFLAG and runs SHUTDOWNCMD, and a monitoring process that runs\n"
        "as -u, else RUN_AS_USER, else the nut account.",
        files=["upsmon.conf in $NUT_CONFPATH (default /etc/nut); the pid file upsmon.pid in",
               "$NUT_ALTPIDPATH, else $NUT_STATEPATH (default /run/nut)"],
        help_flag="switch",
    )
    p.add_argument("-c", dest="command", choices=sorted(CONTROL_SIGNALS), metavar="CMD",
                   help="send CMD to the running upsmon: fsd (forced shutdown, use with care), "
                        "reload (re-read upsmon.conf) or stop")
    p.add_argument("-P", dest="pid", type=int, help="with -c: signal this pid instead of the pid file's")
    p.add_argument("-D", dest="debug", action="count", default=0,
                   help="raise the debug level (repeatable); stay in the foreground")
    p.add_argument("-F", dest="foreground", action="count", default=0,
                   help="stay in the foreground without debugging")
    p.add_argument("-B", dest="background", action="store_true", help="go to the background even with -D")
    p.add_argument("-K", dest="check_flag", action="store_true",
                   help="check POWERDOWNFLAG: exit 0 if the last shutdown was a power-fail shutdown")
    p.add_argument("-p", dest="privileged", action="store_true",
                   help="run as one privileged process (no unprivileged monitoring process)")
    p.add_argument("-u", dest="user", metavar="USER",
                   help="run the monitoring process as USER (over RUN_AS_USER; not with -p)")
    p.add_argument("-4", dest="ipv4", action="store_true", help="reach upsd over IPv4 only")
    p.add_argument("-6", dest="ipv6", action="store_true", help="reach upsd over IPv6 only")
    p.add_argument("-V", action="version", help="show the version and exit",
                   version=f"nutlite upsmon {__version__} (NUT upsmon {NUT_VERSION} compatible)")
    return p


def check_flag_command() -> int:
    """``upsmon -K``."""
    try:
        conf = load_upsmon_conf()
    except ConfigError as exc:
        print(f"upsmon: {exc}", file=sys.stderr)
        return 1
    if not conf.powerdownflag:
        print("POWERDOWNFLAG is not set in upsmon.conf", file=sys.stderr)
        return 1
    if flag_is_set(conf.powerdownflag):
        print("Power down flag is set", file=sys.stderr)
        return 0
    print("Power down flag is not set", file=sys.stderr)
    return 1


def control_command(command: str, pid: int | None) -> int:
    """``upsmon -c fsd|reload|stop`` (``-P pid`` bypasses the pid file)."""
    sig = CONTROL_SIGNALS[command]
    if pid is None:
        path = pidfile()
        pid = daemon.read_pid(path)
        if pid is None:
            print(f"upsmon: no pid file {path} (is upsmon running?)", file=sys.stderr)
            return 1
    return daemon.send_signal(pid, sig, "upsmon", f"pid {pid} is not running")


def child_user(requested: str | None) -> str | None:
    """Who the monitoring child becomes: ``requested`` (-u, else RUN_AS_USER), else NUT's ``nut``
    account. Raises SystemExit, naming the account, when it does not exist."""
    import pwd

    user = daemon.resolve_user(requested)
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise SystemExit(f"user '{user}' does not exist (check -u or RUN_AS_USER in upsmon.conf)") from None
    return user


def load_checked() -> UpsmonConf:
    """Read upsmon.conf and refuse what NUT refuses (no power, a UPS monitored twice)."""
    conf = load_upsmon_conf()
    for w in conf.warnings:
        log.warning("%s", w)
    specs = specs_of(conf)
    if not specs:
        raise ConfigError(conf.path, None, "no MONITOR line: nothing to monitor")
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(conf.path, None, f"UPS {', '.join(sorted(dup))} has more than one MONITOR line")
    try:
        check_power(specs, conf.minsupplies)
    except InsufficientPower as exc:
        raise ConfigError(conf.path, None, str(exc)) from None
    if not conf.shutdowncmd:
        log.warning("no SHUTDOWNCMD in %s: upsmon will not be able to shut this system down", conf.path)
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.help:
        print(parser.format_help(), end="")
        return 0
    if args.check_flag:
        return check_flag_command()
    if args.command:
        return control_command(args.command, args.pid)

    foreground = bool((args.foreground or args.debug) and not args.background)
    daemon.setup_logging(PROG, args.debug, foreground=True)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        conf = load_checked()
    except ConfigError as exc:
        log.error("fatal: %s", exc)
        return 1
    for m in conf.monitors:
        what = f"power value {m.powervalue}" if m.powervalue else "monitoring only"
        log.info("UPS: %s (%s) (%s)", m.system, m.role, what)
    flag = clear_stale_flag(conf.powerdownflag)
    if flag:
        log.info("using power down flag file %s", flag)

    path = pidfile()
    running = daemon.running_instance(path, "upsmon")
    if running is not None:
        log.error("fatal: upsmon is already running (pid %d, %s)", running, path)
        return 1
    family = socket.AF_INET if args.ipv4 and not args.ipv6 else socket.AF_INET6 if args.ipv6 else socket.AF_UNSPEC

    split = not args.privileged and os.geteuid() == 0
    user: str | None = None
    if split:
        try:
            user = child_user(args.user or conf.run_as_user)
        except SystemExit as exc:
            log.error("fatal: %s", exc)
            return 1
    if not foreground:
        daemon.daemonize()
        daemon.setup_logging(PROG, args.debug, foreground=False)
    notifier = daemon.Notifier()  # before the fork: systemd's WATCHDOG_PID is the parent's pid
    local = LocalShutdown(conf.shutdowncmd, flag)
    handoff: Callable[[], Awaitable[bool]] = local
    parent_pid: int | None = None
    if args.privileged:
        log.warning("running as one big privileged process (upsmon -p)")
    elif not split:
        log.info("not started as root: running as one process")
    if split:
        rfd, wfd = os.pipe()
        # Objects made so far stay out of the collector's way: its passes would otherwise touch (and
        # so copy) the pages the two processes share after the fork.
        gc.freeze()
        child = os.fork()
        if child > 0:
            os.close(wfd)
            return run_parent(rfd, child, conf.shutdowncmd, flag)
        os.close(rfd)
        parent_pid = os.getppid()
        daemon.write_pidfile(path)
        try:
            daemon.drop_privileges(user)
        except (SystemExit, OSError) as exc:
            log.error("fatal: cannot become user %s: %s", user, exc)
            daemon.remove_pidfile(path)
            return 1
        log.debug("the monitoring process runs as %s", daemon.account_name(os.geteuid()))
        handoff = PipeHandoff(wfd, local)
    else:
        daemon.write_pidfile(path)

    mon = UpsmonDaemon(conf, handoff, notifier, parent_pid, family)
    try:
        return asyncio.run(mon.run())
    except KeyboardInterrupt:
        return 0
    finally:
        daemon.remove_pidfile(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
