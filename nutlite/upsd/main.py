"""``nutlite upsd``: the asyncio shell around :mod:`nutlite.upsd.core`.

It binds the LISTEN addresses (then, started as root, becomes ``-u``'s user or ``nut``), connects to
every driver socket ``<STATEPATH>/<driver>-<ups>`` (retrying about once a second), serves clients
(:mod:`nutlite.upsd.clients`), and runs one 1-second timer for what upsd does periodically: PING silent
drivers, notice stale data, drop clients idle for 60 s, purge old tracking results and forgive quiet
password guessers. SIGHUP (or ``upsd -c reload``) re-reads ups.conf, upsd.conf and
upsd.users; SIGTERM/SIGINT (``-c stop``) stops it. Under systemd it reports READY=1 once listening and
pings the watchdog when WATCHDOG_USEC is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nutlite import daemon
from nutlite.config import (
    ConfigError,
    UpsConf,
    UpsdConf,
    UsersConf,
    load_ups_conf,
    load_upsd_conf,
    load_upsd_users,
    statepath,
)
from nutlite.tools.common import help_parser
from nutlite.upsd.clients import ClientConn, ClientPoller
from nutlite.upsd.core import NUT_VERSION, Server, UpsEntry

if TYPE_CHECKING:
    from nutlite.exporter.main import Embedded

log = logging.getLogger("nutlite.upsd")

PROG = "upsd"
BACKLOG = 4096
CONNFAIL_LOG_INTERVAL = 300.0  # log a driver connection failure at most this often per UPS
TICK = 1.0

monotonic = time.monotonic


class Configs:
    """The three files upsd reads."""

    def __init__(self, ups: UpsConf, upsd: UpsdConf, users: UsersConf) -> None:
        self.ups = ups
        self.upsd = upsd
        self.users = users


def load_configs() -> Configs:
    """Read ups.conf, upsd.conf and upsd.users from NUT_CONFPATH; log their warnings.

    As in NUT, all three must exist (ConfigError naming the missing one and what to put in it)."""
    upsd = load_upsd_conf(missing_ok=False)
    ups = load_ups_conf()
    users = load_upsd_users(missing_ok=False)
    for w in (*ups.warnings, *upsd.warnings, *users.warnings):
        log.warning("%s", w)
    check_permissions(upsd.path)
    check_permissions(users.path)
    return Configs(ups, upsd, users)


def check_permissions(path: str) -> None:
    """Warn, like upsd, when a file that may hold passwords (CERTIDENT, users) can be read by everybody."""
    try:
        if os.stat(path).st_mode & stat.S_IROTH:
            log.warning("%s is world readable", path)
    except OSError:
        pass


def allow_no_device(conf: UpsdConf) -> bool:
    env = os.environ.get("ALLOW_NO_DEVICE")
    if env is not None:
        return env.strip().lower() in ("1", "yes", "true", "on")
    return conf.allow_no_device


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard limit; return the limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.debug("cannot raise the open-files limit to %d: %s", hard, exc)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return int(soft)


# --------------------------------------------------------------------------------------------- listeners


class ListenError(Exception):
    pass


def _bind_one(host: str, port: int, family: int) -> socket.socket:
    """Bind the first address `host` resolves to (as upsd does) and listen."""
    from nutlite.client import host_arg  # (here: upsd without the exporter imports no client otherwise)

    infos = socket.getaddrinfo(host_arg(host), port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    last: OSError | None = None
    for fam, kind, proto, _canon, addr in infos:
        s = socket.socket(fam, kind, proto)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
            s.listen(BACKLOG)
            s.setblocking(False)
            return s
        except OSError as exc:
            s.close()
            last = exc
    raise last or OSError(errno.EADDRNOTAVAIL, "no usable address")


def bind_listeners(conf: UpsdConf, family: int = socket.AF_UNSPEC) -> list[socket.socket]:
    """Sockets for every LISTEN line (default: 127.0.0.1 and ::1); raise ListenError if upsd can't run."""
    explicit = bool(conf.listen)
    wanted: list[tuple[str, int]] = []
    for host, port in conf.listen_addresses():
        if host == "*":
            wanted += [("0.0.0.0", port), ("::", port)]
        else:
            wanted.append((host, port))
    socks: list[socket.socket] = []
    failed: list[str] = []
    for host, port in wanted:
        is_v6 = ":" in host
        if (is_v6 and family == socket.AF_INET) or (not is_v6 and host[:1].isdigit() and family == socket.AF_INET6):
            continue  # -4 / -6 leave out the other family
        try:
            s = _bind_one(host, port, family)
        except (OSError, UnicodeError) as exc:
            msg = f"not listening on {host} port {port}: {getattr(exc, 'strerror', None) or exc}"
            failed.append(msg)
            # The default ::1 may simply not exist (no IPv6): only LISTEN lines are worth an error.
            log.log(logging.ERROR if explicit else logging.DEBUG, "%s", msg)
            continue
        log.info("listening on %s port %d", host, port)
        socks.append(s)
    if not socks:
        raise ListenError("not listening on any address (check LISTEN in upsd.conf)")
    if failed and explicit and not conf.allow_not_all_listeners:
        for s in socks:
            s.close()
        raise ListenError(f"{failed[0]} (set ALLOW_NOT_ALL_LISTENERS to run without it)")
    return socks


def local_server(listeners: list[socket.socket]) -> str:
    """``host:port`` at which a client on this machine reaches the first listener (for the exporter)."""
    for s in listeners:
        host, port = s.getsockname()[:2]
        if s.family == socket.AF_INET6:
            return f"[{'::1' if host == '::' else host}]:{port}"
        return f"{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    return "127.0.0.1:3493"


def make_ssl_context(conf: UpsdConf) -> Any:
    """A server TLS context from CERTFILE (one PEM: certificate chain and private key)."""
    from nutlite import lazyssl

    ssl = lazyssl.load()  # only when TLS is configured

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert conf.certfile is not None
    try:
        ctx.load_cert_chain(conf.certfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(conf.path, None,
                          f"CERTFILE {conf.certfile}: cannot load a certificate and its private key "
                          f"from it ({exc}); expected one PEM file with both") from None
    return ctx


# --------------------------------------------------------------------------------------------- protocols


class DriverConn(asyncio.Protocol):
    """upsd's connection to one driver socket."""

    def __init__(self, upsd: Upsd, entry: UpsEntry) -> None:
        self.upsd = upsd
        self.entry = entry
        self.transport: asyncio.Transport | None = None
        self.quiet = False  # closed on purpose: no warning

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.upsd.core.driver_data(self.entry, data, monotonic())
        except Exception:
            log.exception("internal error reading the driver of UPS [%s]", self.entry.name)

    def connection_lost(self, exc: Exception | None) -> None:
        self.upsd.driver_gone(self)

    def close(self) -> None:
        self.quiet = True
        if self.transport is not None:
            self.transport.close()


# --------------------------------------------------------------------------------------------- daemon


class Upsd:
    """The running server: listeners, clients, drivers, timers, signals."""

    def __init__(self, configs: Configs, listeners: list[socket.socket], state_dir: Path,
                 maxconn: int, ssl_context: Any = None, notifier: daemon.Notifier | None = None,
                 exporter: Embedded | None = None) -> None:
        self.configs = configs
        self.listeners = listeners
        self.statepath = state_dir
        self.maxconn = maxconn
        self.ssl_context = ssl_context
        self.notifier = notifier or daemon.Notifier()
        self.exporter = exporter
        self.core = Server(tls_available=ssl_context is not None)
        self.core.configure(configs.ups, configs.upsd, configs.users)
        self.core.send_driver = self.send_driver
        self.drivers: dict[UpsEntry, DriverConn] = {}
        self.connecting: set[UpsEntry] = set()
        self.connfail: dict[str, float] = {}
        self.clients: set[ClientConn] = set()
        self.nclients = 0
        self.accepting = False
        self.accept_blocked = False
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.poller: ClientPoller = None  # type: ignore[assignment]
        self._stop: asyncio.Future[None] | None = None
        self._tick_handle: asyncio.TimerHandle | None = None

    # -------------------------------------------------------------------- run / stop

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.poller = ClientPoller(self.loop)
        self._stop = self.loop.create_future()
        restore_signals = daemon.handle_signals(self.loop, {signal.SIGHUP: self.reload, signal.SIGTERM: self.stop,
                                                            signal.SIGINT: self.stop})
        # Connect to the drivers before serving, so the first clients don't see DRIVER-NOT-CONNECTED.
        await asyncio.gather(*(self.connect_driver(e) for e in self.core.entries()))
        self.update_accepting()
        if self.exporter is not None:
            self.exporter.start()
        self.notifier.ready(f"serving {len(self.core.upses)} UPS")
        self._tick_handle = self.loop.call_later(TICK, self.tick)
        if self.notifier.watchdog_interval:
            self.loop.call_later(self.notifier.watchdog_interval, self._watchdog)
        try:
            await self._stop
        finally:
            self.shutdown()
            restore_signals()

    def stop(self) -> None:
        log.info("Signal received, stopping")
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)

    def shutdown(self) -> None:
        self.stopping = True
        self.notifier.stopping()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self.set_accepting(False)
        for s in self.listeners:
            s.close()
        for c in list(self.clients):
            c.drop()
        self.poller.close()
        for d in list(self.drivers.values()):
            d.close()
        if self.exporter is not None:
            self.exporter.close()

    def _watchdog(self) -> None:
        if self.exporter is None or self.exporter.healthy():
            self.notifier.watchdog()
        else:  # no ping: systemd restarts the service, exporter and upsd together
            log.error("the exporter's HTTP thread is %s; not pinging the watchdog",
                      "hung" if self.exporter.thread.is_alive() else "gone")
        assert self.notifier.watchdog_interval
        self.loop.call_later(self.notifier.watchdog_interval, self._watchdog)

    # -------------------------------------------------------------------- periodic work

    def tick(self) -> None:
        now = monotonic()
        core = self.core
        try:
            for e in list(core.entries()):
                if e.connected:
                    if core.ping_due(e, now):
                        self.send_driver(e, "PING")
                    core.check_stale(e, now)
                elif e not in self.connecting:
                    self.loop.create_task(self.connect_driver(e))
            for s in core.idle_sessions(now):
                log.debug("Client %s timed out", s.addr)
                s.transport.drop()
            core.purge_tracking(now)
            core.throttle.expire(now)
        except Exception:
            log.exception("internal error in the periodic check")
        self._tick_handle = self.loop.call_later(TICK, self.tick)

    # -------------------------------------------------------------------- drivers

    async def connect_driver(self, entry: UpsEntry) -> None:
        if entry in self.connecting or entry in self.drivers:
            return
        self.connecting.add(entry)
        path = str(self.statepath / entry.sockname)
        try:
            transport, proto = await self.loop.create_unix_connection(lambda: DriverConn(self, entry), path)
        except OSError as exc:
            now = monotonic()
            key = entry.name + "\0" + entry.sockname
            last = self.connfail.get(key)
            if last is None or now - last >= CONNFAIL_LOG_INTERVAL:
                self.connfail[key] = now
                if exc.errno in (errno.EACCES, errno.EPERM):
                    log.error("%s", daemon.path_error(
                        path, exc, socket_advice(path), what=f"Can't connect to UPS [{entry.name}] at"))
                else:
                    log.error("Can't connect to UPS [%s] (%s): %s", entry.name, entry.sockname,
                              exc.strerror or exc)
            return
        finally:
            self.connecting.discard(entry)
        if self.core.get_ups(entry.name) is not entry:  # removed by a reload meanwhile
            proto.close()
            return
        self.connfail.pop(entry.name + "\0" + entry.sockname, None)
        self.drivers[entry] = proto
        line = self.core.driver_connected(entry, monotonic())
        transport.write(line.encode() + b"\n")
        log.info("Connected to UPS [%s]: %s", entry.name, entry.sockname)
        self.update_accepting()

    def driver_gone(self, proto: DriverConn) -> None:
        entry = proto.entry
        if self.drivers.get(entry) is not proto:
            return
        del self.drivers[entry]
        self.core.driver_lost(entry)
        if not proto.quiet:
            log.warning("UPS [%s]: driver %s disconnected - check driver", entry.name, entry.sockname)
        self.update_accepting()

    def disconnect_driver(self, entry: UpsEntry) -> None:
        proto = self.drivers.pop(entry, None)
        if proto is not None:
            proto.close()
        self.core.driver_lost(entry)

    def send_driver(self, entry: UpsEntry, line: str) -> bool:
        proto = self.drivers.get(entry)
        t = proto.transport if proto is not None else None
        if t is None or t.is_closing():
            return False
        t.write(line.encode("latin-1", "replace") + b"\n")
        return True

    # -------------------------------------------------------------------- clients

    def update_accepting(self) -> None:
        if self.stopping:
            return
        room = self.nclients + len(self.drivers) < self.maxconn
        self.set_accepting(room and not self.accept_blocked)

    def set_accepting(self, on: bool) -> None:
        if on == self.accepting or self.loop is None:
            return
        for s in self.listeners:
            if s.fileno() < 0:
                continue
            if on:
                self.loop.add_reader(s.fileno(), self._accept, s)
            else:
                self.loop.remove_reader(s.fileno())
        self.accepting = on

    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(128):
            if self.nclients + len(self.drivers) >= self.maxconn:
                break
            try:
                conn, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept more clients: %s (pausing for a second)", exc.strerror)
                    self.accept_blocked = True
                    self.loop.call_later(1.0, self._unblock)
                    break
                continue  # ECONNABORTED and the like: next one
            host = addr[0] if isinstance(addr, tuple) else str(addr)
            if "%" in host:
                host = host.split("%", 1)[0]
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client = ClientConn(self, conn, host)
            except OSError as exc:
                log.debug("cannot set up the connection from %s: %s", host, exc)
                conn.close()
                continue
            self.nclients += 1
            self.clients.add(client)
            log.debug("Connect from %s", host)
        self.update_accepting()

    def _unblock(self) -> None:
        self.accept_blocked = False
        self.update_accepting()

    def client_gone(self, client: ClientConn) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        self.nclients -= 1
        self.core.disconnect(client.session)
        log.debug("Disconnect from %s", client.addr)
        self.update_accepting()

    # -------------------------------------------------------------------- reload

    def reload(self) -> None:
        log.info("SIGHUP: reloading configuration")
        self.notifier.reloading()
        try:
            self._reload()
        except Exception:
            log.exception("reload failed; the old configuration stays in force")
        self.notifier.ready(f"serving {len(self.core.upses)} UPS")

    def _reload(self) -> None:
        try:
            configs = load_configs()
        except ConfigError as exc:
            log.error("reload failed: %s; the old configuration stays in force", exc)
            return
        old = self.configs.upsd
        if configs.upsd.listen_addresses() != old.listen_addresses():
            log.warning("LISTEN changes take effect when upsd restarts")
        if configs.upsd.certfile != old.certfile:
            if configs.upsd.certfile:
                try:
                    self.ssl_context = make_ssl_context(configs.upsd)
                except ConfigError as exc:
                    log.error("%s; TLS settings unchanged", exc)
            else:
                self.ssl_context = None
            self.core.tls_available = self.ssl_context is not None
        if not configs.ups.ups and not allow_no_device(configs.upsd):
            log.error("reload failed: no UPS defined in %s (set ALLOW_NO_DEVICE to allow it); "
                      "the old configuration stays in force", configs.ups.path)
            return
        added, removed, changed = self.core.configure(configs.ups, configs.upsd, configs.users)
        for e in removed:
            log.info("Deleting UPS [%s]", e.name)
            self.disconnect_driver(e)
        for e in changed:
            log.info("Redefined UPS [%s]", e.name)
            self.disconnect_driver(e)
        for e in (*added, *changed):
            if e in added:
                log.info("New UPS [%s]", e.name)
            self.loop.create_task(self.connect_driver(e))
        if configs.upsd.maxconn:
            self.maxconn = configs.upsd.maxconn
        self.configs = configs
        self.update_accepting()
        log.info("configuration reloaded: %d UPS, %d users", len(self.core.upses), len(self.core.users))


# --------------------------------------------------------------------------------------------- CLI


HELP_DESCRIPTION = """\
The NUT network server: it serves the UPSes of ups.conf, whose drivers it
reaches through their sockets in the state path, to NUT clients on TCP port
3493 (or the LISTEN addresses of upsd.conf). Started as root it switches to
user nut unless -u names another. SIGHUP re-reads the configuration."""

HELP_FILES = (
    "ups.conf      the UPSes to serve",
    "upsd.conf     LISTEN addresses and other settings (required, may be empty)",
    "upsd.users    who may log in and what they may do (required)",
    "upsd.pid      in the state path: the pid file that -c uses",
)
HELP_ENVIRONMENT = (
    "NUT_CONFPATH   folder of the configuration files (default /etc/nut)",
    "NUT_STATEPATH  state path: driver sockets and pid file (default /run/nut)",
)


def build_parser() -> argparse.ArgumentParser:
    p = help_parser(PROG, HELP_DESCRIPTION, files=HELP_FILES, environment=HELP_ENVIRONMENT)
    daemon.add_common_flags(p)
    p.add_argument("-P", dest="pid", metavar="PID", type=int,
                   help="with -c, signal process PID instead of the one in the pid file")
    p.add_argument("-q", dest="quiet", action="count", default=0,
                   help="raise the log threshold (repeatable): -q hides info lines, -qq warnings too")
    p.add_argument("-r", dest="chroot", metavar="DIR",
                   help="accepted as in NUT, but nutlite does not chroot: confine it with its service's "
                        "sandbox instead")
    p.add_argument("-4", dest="ipv4", action="store_true", help="listen on IPv4 addresses only")
    p.add_argument("-6", dest="ipv6", action="store_true", help="listen on IPv6 addresses only")
    p.add_argument("--with-exporter", metavar="ARGS",
                   help="also serve the Prometheus exporter from this process (a thread that scrapes this "
                        "upsd over TCP like any client, saving the exporter's own interpreter); ARGS are the "
                        "exporter's options ('nutlite exporter --help') as one string: "
                        "--with-exporter='--listen :9199'; "
                        "without --server it scrapes this upsd at its first LISTEN address")
    p.add_argument("-V", action="version", version=f"nutlite upsd (NUT protocol of upsd {NUT_VERSION})",
                   help="show the version and exit")
    return p


def signal_pid(pid: int, command: str) -> int:
    """``-c <command> -P <pid>``: signal ``pid`` directly; return an exit code."""
    if pid <= 0:
        print(f"{PROG}: -P {pid}: expected a process id (a number > 0)", file=sys.stderr)
        return 1
    return daemon.send_signal(pid, daemon.SIGNALS[command], PROG, f"-P {pid}: no such process",
                              f"-P {pid}: not allowed to signal it (run as its owner or root)")


def setup_logging(args: argparse.Namespace, foreground: bool) -> None:
    """Logging as daemon.setup_logging sets it up, with the threshold raised once per -q."""
    daemon.setup_logging(PROG, args.debug, foreground=foreground)
    if args.quiet:
        base = logging.DEBUG if args.debug else logging.INFO
        logging.getLogger().setLevel(min(logging.CRITICAL, base + 10 * args.quiet))


def control_statepath() -> Path:
    """STATEPATH for ``-c``, reading the configs leniently."""
    ups = upsd = None
    with contextlib.suppress(ConfigError, OSError):
        ups = load_ups_conf()
    with contextlib.suppress(ConfigError, OSError):
        upsd = load_upsd_conf()
    return statepath(ups, upsd)


def socket_advice(path: str) -> str:
    """What to change when upsd may not connect to a driver's socket."""
    return (f"The drivers give {path} mode 0660 and the group nut when started as root: run upsd as a member "
            "of the socket's group (-u nut), or start the driver as the same user as upsd (-u, or 'user =' in "
            "ups.conf).")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command:
        if args.pid is not None:
            return signal_pid(args.pid, args.command)
        pidfile = daemon.pidfile_path(control_statepath(), PROG)
        return daemon.signal_running(pidfile, args.command, PROG)

    foreground = daemon.is_foreground(args)
    setup_logging(args, foreground=True)
    if args.pid is not None:
        log.warning("-P %d is used only with -c; ignored", args.pid)
    if args.chroot is not None:
        if not os.path.isdir(args.chroot):
            log.error("fatal: -r %s: no such directory", args.chroot)
            return 1
        log.warning("-r %s: nutlite does not chroot (a reload re-reads the configuration and the driver "
                    "sockets are reached at their usual paths); confine upsd with its service's sandbox "
                    "instead (systemd: ProtectSystem=, ReadOnlyPaths=, RootDirectory=)", args.chroot)
    try:
        configs = load_configs()
        if not configs.ups.ups and not allow_no_device(configs.upsd):
            raise ConfigError(configs.ups.path, None,
                              "no UPS defined (add a [section], or set ALLOW_NO_DEVICE in upsd.conf)")
        ssl_context = make_ssl_context(configs.upsd) if configs.upsd.certfile else None
    except ConfigError as exc:
        log.error("fatal: %s", exc)
        return 1
    try:
        user = daemon.resolve_user(args.user)
    except SystemExit as exc:
        log.error("fatal: %s", exc)
        return 1
    if configs.upsd.certrequest:
        log.warning("CERTREQUEST is not supported: client certificates are not asked for")
    state_dir = statepath(configs.ups, configs.upsd)
    pidfile = daemon.pidfile_path(state_dir, PROG)
    running = daemon.running_instance(pidfile, "upsd")
    if running is not None:
        log.error("fatal: upsd is already running (pid %d, %s)", running, pidfile)
        return 1

    limit = raise_nofile()
    maxconn = configs.upsd.maxconn or limit
    family = socket.AF_INET if args.ipv4 and not args.ipv6 else socket.AF_INET6 if args.ipv6 else socket.AF_UNSPEC
    try:
        listeners = bind_listeners(configs.upsd, family)
    except ListenError as exc:
        log.error("fatal: %s", exc)
        return 1
    exporter = None
    if args.with_exporter is not None:
        from nutlite.exporter.main import Embedded, StartError

        try:
            exporter = Embedded.from_args(args.with_exporter, local_server(listeners))
        except StartError as exc:
            log.error("fatal: exporter: %s", exc.message)
            for s in listeners:
                s.close()
            return exc.code

    if not foreground:
        daemon.daemonize()
        setup_logging(args, foreground=False)
    if not state_dir.is_dir():
        why = "not a folder" if state_dir.exists() else "does not exist"
        log.warning("%s", daemon.path_error(
            state_dir, why, "Start the drivers first (they create their sockets there), or point NUT_STATEPATH "
            "or STATEPATH in upsd.conf at the folder of the driver sockets.",
            what="no driver can be reached in the state folder"))
    else:
        daemon.write_pidfile(pidfile)
    try:
        daemon.drop_privileges(user)
    except (SystemExit, OSError) as exc:
        log.error("fatal: %s", exc)
        daemon.remove_pidfile(pidfile)
        return 1
    if user and not os.access(configs.users.path, os.R_OK):
        users = configs.users.path
        log.warning("%s", daemon.path_error(
            users, f"not readable by user {user}",
            f"A reload will keep the users read at start. NUT's layout: owner root, group {daemon.own_group()}, "
            f"mode 0640 (chown root:{daemon.own_group()} {users}; chmod 0640 {users}).", what="cannot re-read"))

    upsd = Upsd(configs, listeners, state_dir, maxconn, ssl_context, exporter=exporter)
    try:
        asyncio.run(upsd.run())
    except KeyboardInterrupt:
        pass
    finally:
        daemon.remove_pidfile(pidfile)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
