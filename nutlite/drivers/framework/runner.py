"""The asyncio shell of a driver: the socket server at ``<STATEPATH>/<driver>-<ups>``, the poll loop,
signals, the pid file, reload, killpower; and the process entry points used by
:mod:`nutlite.drivers.main` (foreground/background, ``-k``, ``-d``)."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nutlite import daemon
from nutlite.config import ConfigError
from nutlite.daemon import (
    Notifier,
    account_name,
    drop_privileges,
    own_group,
    path_error,
    remove_pidfile,
    setup_logging,
    write_pidfile,
)
from nutlite.drivers.framework.core import Driver, DriverError, Status, call, prepare, publish_core, truthy
from nutlite.drivers.framework.drvconfig import DriverConfig
from nutlite.drivers.framework.sockproto import (
    Request,
    SockClient,
    SockProtocol,
    killpower_via_socket,
    ping_socket,
)

log = logging.getLogger("nutlite.driver")

DEFAULT_GROUP = "nut"  # the group the socket file is given to when started as root (as Debian's drivers)
MAX_CLIENT_BACKLOG = 4 * 1024 * 1024  # bytes queued for a socket client that does not read

# Core commands: accepted on the socket (for upsdrvctl and friends) but, like Debian 2.8.0, not
# advertised with ADDCMD.
CORE_COMMANDS = ("driver.killpower", "driver.reload", "driver.reload-or-error", "driver.reload-or-exit", "driver.exit")


# --------------------------------------------------------------------------------------------------
# Privileges, socket file, background


def become_driver_user(cfg: DriverConfig) -> None:
    """Drop root as every nutlite daemon does (:func:`nutlite.daemon.resolve_user`): to ``-u``, else the
    ups.conf ``user`` setting (of the section, else the global one), else NUT's ``nut`` account."""
    try:
        drop_privileges(daemon.resolve_user(cfg.run_as_user))
    except SystemExit as exc:
        raise DriverError(str(exc.code)) from None


def state_dir_advice(folder: Path) -> str:
    who = account_name(os.geteuid())
    return (f"Make {folder} writable by {who} (e.g. chown root:{own_group()} {folder}; chmod 0770 {folder}), "
            "point NUT_STATEPATH or the 'statepath' setting of ups.conf at a folder it may write, or run the driver "
            "as a user who may write there (-u, or 'user = ...' in ups.conf).")


def check_state_dir(cfg: DriverConfig) -> None:
    """Fail early, before the device is opened, when the socket cannot be created in the state folder."""
    folder = cfg.statepath
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise DriverError(path_error(
            folder, exc, f"Create it (e.g. mkdir -p {folder}; chown root:{own_group()} {folder}; "
            f"chmod 0770 {folder}) or point NUT_STATEPATH or the 'statepath' setting of ups.conf at the folder for the driver sockets.",
            what="cannot use the state folder")) from None
    if not stat.S_ISDIR(st.st_mode):
        raise DriverError(path_error(folder, "not a folder", "Point NUT_STATEPATH or the 'statepath' setting of "
                                     "ups.conf at the folder for the driver sockets.",
                                     what="cannot use the state folder"))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DriverError(path_error(folder, "no permission to create the driver socket there",
                                     state_dir_advice(folder), what="cannot use the state folder"))


def socket_group(cfg: DriverConfig) -> str | None:
    group = cfg.run_as_group
    if group:
        return group
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            grp.getgrnam(DEFAULT_GROUP)
            return DEFAULT_GROUP
    return None


def create_socket(path: Path, group: str | None) -> socket.socket:
    """Bind the driver socket: stale file removed, mode 0660, given group."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DriverError(path_error(path, exc, state_dir_advice(path.parent),
                                     what="cannot look at the old driver socket")) from None
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise DriverError(path_error(path, "exists and is not a socket", f"Remove {path} (or move it away).",
                                         what="cannot create the driver socket"))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DriverError(path_error(
                path, exc, "It is left from an earlier start, perhaps as another user: remove it. "
                + state_dir_advice(path.parent),
                what="cannot replace the old driver socket")) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
    except OSError as exc:
        sock.close()
        raise DriverError(path_error(path, exc, state_dir_advice(path.parent),
                                     what="cannot create the driver socket")) from None
    os.chmod(path, 0o660)
    if group:
        try:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        except (KeyError, OSError) as exc:
            log.warning("cannot give the socket %s to group %s: %s", path, group, exc)
    sock.listen(16)
    sock.setblocking(False)
    return sock


class Background:
    """Go to the background early but let the parent exit only when the driver is ready.

    The parent waits on a pipe: one byte means ready (exit 0); the pipe closing without it means the
    driver failed at start (exit 1), so ``upsdrvctl`` sees the outcome.
    """

    def __init__(self) -> None:
        self._w: int | None = None

    def fork(self) -> None:
        r, w = os.pipe()
        if os.fork() > 0:
            os.close(w)
            data = os.read(r, 1)
            os._exit(0 if data == b"1" else 1)
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        self._w = w

    def ready(self) -> None:
        if self._w is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._w, b"1")
            os.close(self._w)
        self._w = None
        fd = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        if fd > 2:
            os.close(fd)


# --------------------------------------------------------------------------------------------------
# The asyncio shell


class DriverRunner:
    """Runs one driver: socket server, poll loop, signals, reload, killpower."""

    def __init__(self, driver: Driver, *, background: Background | None = None, prog: str | None = None,
                 reload_config: Callable[[], DriverConfig] | None = None) -> None:
        self.driver = driver
        driver.runner = self
        self.config = driver.config
        self.state = driver.state
        self.proto = SockProtocol(self.state)
        self.background = background
        self.prog = prog or driver.name
        self.reload_config = reload_config
        self.lock = asyncio.Lock()
        self.notifier = Notifier()
        self.allow_killpower = truthy(self.config.values.get("allow_killpower")) or self.config.has_flag("allow_killpower")
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sock_ino: tuple[int, int] | None = None
        self._clients: dict[asyncio.StreamWriter, asyncio.Task[Any] | None] = {}  # connection -> its task
        self._pidfile: Path | None = None
        self.exit_code = 0
        self._update_failures = 0

    # -- life
    async def start(self) -> None:
        """Everything up to the socket being served (errors propagate)."""
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        await prepare(self.driver, self.update)
        await self.serve()

    async def serve(self) -> None:
        path = self.config.sockpath
        self._check_other_instance(path)
        sock = create_socket(path, socket_group(self.config))
        st = os.stat(path)
        self._sock_ino = (st.st_dev, st.st_ino)
        self._server = await asyncio.start_unix_server(self._client, sock=sock)
        self._pidfile = self.config.pidpath
        write_pidfile(self._pidfile)
        log.info("serving %s on %s", self.config.upsname, path)

    def _check_other_instance(self, path: Path) -> None:
        """Another driver for this UPS answering on the socket is stopped, as NUT does."""
        if not path.exists() or not ping_socket(path, 1.0):
            return
        pidpath = self.config.pidpath
        try:
            pid = int(pidpath.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            raise DriverError(f"another driver is serving {path} and has no pid file {pidpath}") from None
        log.warning("another driver for %s is running (pid %d): stopping it", self.config.upsname, pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        except PermissionError:
            raise DriverError(f"another driver (pid {pid}) serves {path} and cannot be stopped") from None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise DriverError(f"the other driver (pid {pid}) did not stop")

    async def run(self) -> int:
        """Start, then poll until stopped; return the exit code."""
        loop = asyncio.get_running_loop()
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        restore_signals = daemon.handle_signals(loop, {
            signal.SIGTERM: self.stop, signal.SIGINT: self.stop, signal.SIGQUIT: self.stop,
            signal.SIGHUP: lambda: asyncio.ensure_future(self.reload())})
        if self.background is not None:
            self.background.ready()
            setup_logging(self.prog, self.config.debug, foreground=False)
        self.notifier.ready(f"serving {self.config.upsname}")
        try:
            await self.poll_loop()
        finally:
            self.notifier.stopping()
            restore_signals()
            await self.close()
        return self.exit_code

    def stop(self, code: int | None = None) -> None:
        if code is not None:
            self.exit_code = code
        if self._stop is not None:
            self._stop.set()
        if self._wake is not None:
            self._wake.set()

    async def poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop is not None and self._wake is not None
        next_poll = loop.time()  # like NUT, the loop polls once as soon as the socket is up
        wd = self.notifier.watchdog_interval
        next_wd = loop.time() + wd if wd else None
        while not self._stop.is_set():
            now = loop.time()
            deadline = next_poll if next_wd is None else min(next_poll, next_wd)
            if deadline > now:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), deadline - now)
                if self._stop.is_set():
                    break
            now = loop.time()
            if next_wd is not None and now >= next_wd:
                self.notifier.watchdog()
                next_wd = now + (wd or 1)
            if now >= next_poll:
                start = now
                await self.update()
                next_poll = start + self.config.pollinterval
                if next_poll < loop.time():
                    next_poll = loop.time()

    async def update(self) -> None:
        """One poll. What it changes reaches each socket client in one write (:meth:`SockProtocol.batch`),
        whatever the driver, so upsd never serves half of a poll."""
        async with self.lock:
            with self.proto.batch():
                try:
                    await call(self.driver.updateinfo)
                    self._update_failures = 0
                except DriverError as exc:
                    self._update_failed(str(exc))
                except Exception as exc:
                    log.debug("updateinfo failed", exc_info=True)
                    self._update_failed(f"{type(exc).__name__}: {exc}")
                self.state.refresh_status()

    def _update_failed(self, text: str) -> None:
        self._update_failures += 1
        if self._update_failures == 1 or self._update_failures % 100 == 0:
            log.error("poll failed (%d in a row): %s", self._update_failures, text)
        self.state.set_stale(True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._close_clients()
        path = self.config.sockpath
        if self._sock_ino is not None:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == self._sock_ino:
                    os.unlink(path)
            self._sock_ino = None
        if self._pidfile is not None:
            remove_pidfile(self._pidfile)
            self._pidfile = None
        try:
            await call(self.driver.cleanup)
        except Exception as exc:
            log.warning("cleanup: %s", exc)

    async def _close_clients(self, timeout: float = 2.0) -> None:
        """Close every connection and let its task end by itself (a task cancelled by ``asyncio.run`` at
        exit makes asyncio print a traceback about the connection): closing the writer ends the reader,
        so the task sees the end of its input and finishes; one still busy after ``timeout`` (a command
        that does not return) is cancelled, which :meth:`_client` takes as the end of the connection."""
        tasks = [t for t in self._clients.values() if t is not None and not t.done()]
        for w in list(self._clients):
            w.close()
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    # -- socket clients
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients[writer] = asyncio.current_task()

        def write(data: bytes) -> None:
            if writer.is_closing():
                return
            transport = writer.transport
            if transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
                log.warning("%s does not read its data: disconnecting it", client.name)
                self.proto.remove_client(client)
                writer.close()
                return
            writer.write(data)

        client = SockClient(write, writer.close)
        self.proto.add_client(client)
        log.debug("%s connected", client.name)
        try:
            while not client.closing:
                data = await reader.read(65536)
                if not data:
                    break
                for req in self.proto.feed(client, data):
                    result = await self.execute(req)
                    self.proto.finish(req, result)
        except (ConnectionError, OSError) as exc:
            log.debug("%s: %s", client.name, exc)
        except asyncio.CancelledError:  # the driver is stopping (see _close_clients)
            log.debug("%s: closed as the driver stops", client.name)
        finally:
            self.proto.remove_client(client)
            self._clients.pop(writer, None)
            writer.close()
            log.debug("%s disconnected", client.name)

    async def execute(self, req: Request) -> int:
        """Run an INSTCMD/SET request; return its :class:`Status`."""
        try:
            if req.kind == "INSTCMD":
                log.info("instant command: %s%s", req.name, f" {req.value}" if req.value is not None else "")
                if req.name.lower() in CORE_COMMANDS:
                    return int(await self.core_command(req.name.lower()))
                async with self.lock:
                    with self.proto.batch():
                        result = await call(self.driver.instcmd, req.name, req.value)
            else:
                log.info("set variable: %s = %s", req.name, req.value)
                if req.name.lower().startswith("driver."):
                    return int(self.core_setvar(req.name, req.value or ""))
                async with self.lock:
                    with self.proto.batch():
                        result = await call(self.driver.setvar, req.name, req.value or "")
            return int(Status.HANDLED if result is None else result)
        except Exception as exc:
            log.error("%s %s failed: %s", req.kind, req.name, exc)
            log.debug("traceback", exc_info=True)
            return int(Status.FAILED)

    def core_setvar(self, name: str, value: str) -> Status:
        if name.lower() == "driver.flag.allow_killpower":
            self.allow_killpower = truthy(value)
            self.state.setinfo("driver.flag.allow_killpower", "1" if self.allow_killpower else "0")
            return Status.HANDLED
        return Status.UNKNOWN

    async def core_command(self, cmd: str) -> Status:
        if cmd == "driver.killpower":
            if not self.allow_killpower:
                log.warning("driver.killpower refused: set allow_killpower first (ups.conf or "
                            "SET driver.flag.allow_killpower 1 on the socket)")
                return Status.INVALID
            log.warning("killpower requested: running the %s shutdown routine", self.driver.name)
            async with self.lock:
                ok = await call(self.driver.shutdown)
            return Status.HANDLED if ok is not False else Status.FAILED
        if cmd == "driver.exit":
            asyncio.get_running_loop().call_soon(self.stop)
            return Status.HANDLED
        outcome = await self.reload(strict=cmd != "driver.reload")
        if outcome is None:
            return Status.FAILED
        if outcome is False and cmd != "driver.reload":  # plain reload: what needs a restart is logged
            if cmd == "driver.reload-or-exit":
                log.warning("settings changed that need a restart: exiting")
                asyncio.get_running_loop().call_soon(self.stop)
                return Status.HANDLED
            return Status.FAILED
        return Status.HANDLED

    async def reload(self, strict: bool = False) -> bool | None:
        """Re-read ups.conf and apply what can change at runtime.

        Returns False if some changes need a restart (with ``strict``, nothing is applied then), None if
        the new configuration is unusable (nothing applied).
        """
        if self.reload_config is None:
            return True
        self.notifier.reloading()
        try:
            new = self.reload_config()
        except (ConfigError, DriverError) as exc:
            log.error("reload: %s; keeping the current settings", exc)
            self.notifier.ready()
            return None
        old = self.config
        new.user, new.group, new.debug, new.pollinterval_arg = old.user, old.group, old.debug, old.pollinterval_arg
        try:
            new.pollinterval  # noqa: B018 - validate
        except DriverError as exc:
            log.error("reload: %s; keeping the current settings", exc)
            self.notifier.ready()
            return None
        runtime = {"pollinterval", "synchronous", "desc", "sdorder", "maxretry", "retrydelay", "maxstartdelay",
                   "allow_killpower", "debug_min"}
        changed: dict[str, str | None] = {}
        for key in set(old.values) | set(new.values):
            if old.values.get(key) != new.values.get(key) and key not in runtime and not key.startswith(("default.", "override.")):
                changed[key] = new.values.get(key)
        needs_restart = bool(changed) and not self.driver.reload(dict(changed))
        if needs_restart:
            log.warning("reload: changed settings need a driver restart: %s", ", ".join(sorted(changed)))
            if strict:
                self.notifier.ready()
                return False
            for key in changed:  # keep running with what the driver uses now
                if key in old.values:
                    new.values[key] = old.values[key]
                else:
                    new.values.pop(key, None)
        self.config = new
        self.driver.config = new
        self.state.setinfo("driver.parameter.pollinterval", str(new.pollinterval))
        self.state.setinfo("driver.parameter.synchronous", new.get("synchronous") or "auto")
        if "allow_killpower" in new.values:
            self.allow_killpower = truthy(new.values["allow_killpower"])
            self.state.setinfo("driver.flag.allow_killpower", "1" if self.allow_killpower else "0")
        for key, value in new.values.items():
            if key.startswith("override."):
                name = key[len("override."):]
                self.state.setinfo(name, value, force=True)
                self.state.make_immutable(name)
        for key in old.values:
            if key.startswith("override.") and key not in new.values:
                self.state.immutable.discard(key[len("override."):].lower())
        log.info("reloaded the configuration")
        self.notifier.ready()
        return not needs_restart


# --------------------------------------------------------------------------------------------------
# Process entry points (used by nutlite.drivers.main)



async def run_killpower_direct(driver: Driver) -> bool:
    """``-k`` without a running driver: open the device, learn it, tell it to shut down."""
    try:
        await call(driver.initups)
        publish_core(driver)
        await call(driver.initinfo)
        ok = await call(driver.shutdown)
        return ok is not False
    finally:
        with contextlib.suppress(Exception):
            await call(driver.cleanup)


def killpower(driver: Driver) -> int:
    """The ``-k`` entry point: the running driver first (NUT 2.8.1+), else the device directly."""
    cfg = driver.config
    if cfg.sockpath.exists():
        result = killpower_via_socket(cfg.sockpath)
        if result == Status.HANDLED:
            log.warning("the running %s driver ran its shutdown routine", driver.name)
            return 0
        if result is not None:
            log.error("the running driver refused or failed killpower (result %d); trying directly", result)
    try:
        become_driver_user(cfg)
        log.warning("initiating UPS shutdown")
        ok = asyncio.run(run_killpower_direct(driver))
    except DriverError as exc:
        log.error("%s", exc)
        return 1
    return 0 if ok else 1


def run_foreground_or_background(driver: Driver, *, background: bool, prog: str,
                                 reload_config: Callable[[], DriverConfig] | None = None) -> int:
    bg = Background() if background else None
    if bg is not None:
        bg.fork()
    runner = DriverRunner(driver, background=bg, prog=prog, reload_config=reload_config)
    try:
        become_driver_user(driver.config)
        check_state_dir(driver.config)
        return asyncio.run(runner.run())
    except DriverError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0


async def dump_and_exit(driver: Driver, count: int, out: Any = None) -> None:
    """``-d <count>``: start, poll ``count`` times in all, print the variables as ``upsc`` does, exit."""
    out = out or sys.stdout
    await prepare(driver)
    for _ in range(max(1, count) - 1):
        await asyncio.sleep(driver.pollinterval)
        await call(driver.updateinfo)
        driver.state.refresh_status()
    for v in driver.state.sorted_vars():
        print(f"{v.name}: {v.value}", file=out)
    await call(driver.cleanup)
