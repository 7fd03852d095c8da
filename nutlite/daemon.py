"""What every nutlite daemon shares: NUT's common flags, pid files, ``-c reload|stop``, dropping root,
logging, running in the background, and systemd's sd_notify."""

from __future__ import annotations

import _signal
import argparse
import contextlib
import errno
import grp
import logging
import os
import pwd
import signal
import socket
import stat
import sys
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Mapping

log = logging.getLogger("nutlite")

DEFAULT_USER = "nut"  # NUT's build-time run-as account (Debian's too): who a daemon started as root becomes

SIGNALS = {"reload": signal.SIGHUP, "stop": signal.SIGTERM}


_M_MMAP_THRESHOLD = -3  # glibc mallopt() parameters
_M_ARENA_MAX = -8
_libc: object | None = None


def _glibc() -> object | None:
    global _libc
    if _libc is None:
        try:
            import ctypes

            lib = ctypes.CDLL(None)
            lib.mallopt  # noqa: B018 - glibc only (musl has no mallopt/malloc_trim)
            lib.malloc_trim  # noqa: B018
            _libc = lib
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def tune_malloc(mmap_threshold: int = 128 * 1024) -> None:
    """Keep a long-running, threaded daemon's heap small: one malloc arena for all threads, and big
    blocks (a scrape's text, a large reply) in their own mappings, given back when freed. No-op
    without glibc."""
    lib = _glibc()
    if lib is not None:
        lib.mallopt(_M_ARENA_MAX, 1)  # type: ignore[attr-defined]
        lib.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)  # type: ignore[attr-defined]


def trim_memory() -> None:
    """Give freed heap pages back to the system (after a burst of allocations). No-op without glibc."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)  # type: ignore[attr-defined]


def handle_signals(loop: asyncio.AbstractEventLoop, handlers: Mapping[int, Callable[[], object]]) -> Callable[[], None]:
    """Call each handler from ``loop`` when its signal arrives, as ``loop.add_signal_handler`` does:
    the signal's number comes through a socket the loop watches. Without asyncio's check that a
    handler is no coroutine function, which imports ``inspect`` (about 1 MiB in each daemon).
    Returns the function that puts the default handlers back."""
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    old_fd = signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)

    def dispatch() -> None:
        try:
            data = rsock.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            fn = handlers.get(signum)
            if fn is not None:
                fn()

    def restore() -> None:
        for sig in handlers:
            _signal.signal(sig, _signal.SIG_DFL if sig != signal.SIGINT else _signal.default_int_handler)
        signal.set_wakeup_fd(old_fd)
        with contextlib.suppress(ValueError, RuntimeError):  # (the loop may be closed already)
            loop.remove_reader(rsock.fileno())
        rsock.close()
        wsock.close()

    loop.add_reader(rsock.fileno(), dispatch)
    for sig in handlers:
        # (_signal: signal.signal makes an enum of the handler it replaces, and for asyncio.run's
        # SIGINT handler that formats its task, which imports inspect)
        _signal.signal(sig, _dispatched_by_the_loop)
    return restore


def _dispatched_by_the_loop(_signum: int, _frame: object) -> None:
    """The Python-level handler does nothing: the wake-up socket carries the signal to the loop."""


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """NUT's daemon flags: -F, -D, -u, -c (and -B to force background)."""
    parser.add_argument("-F", dest="foreground", action="count", default=0,
                        help="stay in the foreground (do not fork)")
    parser.add_argument("-B", dest="background", action="store_true",
                        help="go to the background even with -D")
    parser.add_argument("-D", dest="debug", action="count", default=0,
                        help="raise the debug level (repeatable); implies -F")
    parser.add_argument("-u", dest="user", metavar="USER",
                        help="run as USER when started as root")
    parser.add_argument("-c", dest="command", metavar="CMD", choices=sorted(SIGNALS),
                        help="send CMD (reload or stop) to the running instance, found by its pid file")


def setup_logging(prog: str, debug: int = 0, foreground: bool = True) -> None:
    """Log to stderr in the foreground (the journal under systemd), to syslog in the background."""
    level = logging.DEBUG if debug else logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    if foreground:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        fmt = f"{prog}[%(process)d]: %(message)s" if not debug else f"%(relativeCreated)9.0f {prog}: %(message)s"
    else:
        from logging.handlers import SysLogHandler  # here: it pulls in pickle, socket and queue

        try:
            handler = SysLogHandler(address="/dev/log")
        except OSError:
            handler = logging.StreamHandler(sys.stderr)
        fmt = f"{prog}[%(process)d]: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)


def pidfile_path(statepath: str | os.PathLike[str], name: str) -> Path:
    return Path(statepath) / f"{name}.pid"


def write_pidfile(path: str | os.PathLike[str]) -> bool:
    """Record our pid in ``path``; a failure is logged (with the facts of NUT FAQ #4), not raised, since
    the daemon works without its pid file (only ``-c reload|stop`` cannot find it then)."""
    try:
        with open(path, "w") as fh:
            fh.write(f"{os.getpid()}\n")
    except OSError as exc:
        folder = os.path.dirname(os.path.abspath(path))
        log.warning("%s", path_error(
            path, exc, f"Without it '-c reload' and '-c stop' cannot find this process: make {folder} writable "
            f"by {account_name(os.geteuid())} (owner or group, mode 0770), or point NUT_STATEPATH (NUT_ALTPIDPATH "
            "for the drivers) at a folder it may write.", what="cannot write the pid file"))
        return False
    return True


def remove_pidfile(path: str | os.PathLike[str]) -> None:
    try:
        with open(path) as fh:
            if fh.read().strip() != str(os.getpid()):
                return  # not ours any more
        os.unlink(path)
    except OSError:
        pass


def read_pid(path: str | os.PathLike[str]) -> int | None:
    try:
        with open(path) as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_instance(path: str | os.PathLike[str], program: str) -> int | None:
    """The pid recorded in ``path`` if it is alive, not us, and (as far as /proc tells) ``program``."""
    pid = read_pid(path)
    if pid is None or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if program.encode() not in fh.read():
                return None
    except OSError:
        pass
    return pid


def send_signal(pid: int, sig: int, prog: str, gone: str, denied: str | None = None) -> int:
    """Send ``sig`` to ``pid`` for a control command: 0, or 1 once ``prog: gone`` (no such process) or
    ``prog: denied`` (not ours to signal; by default it says so with the pid) is on stderr."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        print(f"{prog}: {gone}", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"{prog}: {denied or f'not allowed to signal pid {pid} (run as its owner or root)'}", file=sys.stderr)
        return 1
    return 0


def signal_running(path: str | os.PathLike[str], command: str, prog: str) -> int:
    """``-c reload|stop``: signal the instance whose pid is in ``path``; return an exit code."""
    pid = read_pid(path)
    if pid is None:
        print(f"{prog}: no pid file {path} (is {prog} running?)", file=sys.stderr)
        return 1
    return send_signal(pid, SIGNALS[command], prog, f"pid {pid} from {path} is not running (stale pid file)")


def write_synced(path: str | os.PathLike[str], data: bytes, *, sync_folder: bool = False) -> None:
    """Write ``data`` to ``path`` (created 0644, else truncated) and sync it to disk, for the files of a
    shutdown (the power may go any moment); with ``sync_folder``, the folder's entry too, as far as it
    can be. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if sync_folder:
        with contextlib.suppress(OSError):
            dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        time.sleep(0.05)
    return False


def account_name(uid: int) -> str:
    """The user name of ``uid``, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    """The group name of ``gid``, or the number when it has none."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def describe_path(path: str | os.PathLike[str]) -> str:
    """``/run/nut is owned by user root (UID 0), group root (GID 0), mode 0755`` (or why it cannot be
    looked at): the facts NUT FAQ #4 asks a user to check."""

    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return (f"{path} is owned by user {account_name(st.st_uid)} (UID {st.st_uid}), group "
            f"{group_name(st.st_gid)} (GID {st.st_gid}), mode {stat.S_IMODE(st.st_mode):04o}")


def own_group() -> str:
    """The name of the group this program runs with (what a file's group should be for it to read it)."""
    return group_name(os.getegid())


def running_as() -> str:
    """``This program is currently running as nut (UID 102)``."""
    uid = os.geteuid()
    return f"This program is currently running as {account_name(uid)} (UID {uid})"


def _nearest_existing(path: Path) -> Path | None:
    """``path`` or the closest folder above it that can be looked at."""
    for p in (path, *path.parents):
        try:
            os.stat(p)
            return p
        except OSError:
            continue
    return None


def path_facts(path: str | os.PathLike[str]) -> list[str]:
    """What NUT FAQ #4 asks a user to check about ``path``: its owner, group and mode and those of its
    folder (creating, replacing or removing a file needs the folder's write permission); for a path
    that is missing or cannot be looked at, the nearest folder above it that can."""
    p = Path(os.path.abspath(path))
    lines: list[str] = []
    try:
        os.stat(p)
    except OSError as exc:
        lines.append(f"{p} does not exist" if exc.errno == errno.ENOENT
                     else f"{p} cannot be looked at: {exc.strerror or exc}")
        near = _nearest_existing(p.parent)
        if near is not None:
            lines.append(describe_path(near))
        return lines
    lines.append(describe_path(p))
    if p.parent != p:
        lines.append(describe_path(p.parent))
    return lines


def path_error(path: str | os.PathLike[str], exc: OSError | str, advice: str, what: str | None = None) -> str:
    """A start-up error about ``path`` in the style of NUT FAQ #4, one fact a line: what failed and why,
    who this program runs as, the owner/group/mode of the path (and of its folder), what to change.

    ``what`` names the action (``cannot create the driver socket``); the default is ``cannot use``."""
    why = exc if isinstance(exc, str) else (exc.strerror or str(exc))
    return "\n".join([f"{what or 'cannot use'} {path}: {why}", running_as(), *path_facts(path), advice])


def resolve_user(requested: str | None) -> str | None:
    """Who a daemon becomes: ``requested`` (``-u`` or a configuration setting) when given; when started
    as root without one, NUT's ``nut`` account; None when not root and nothing was asked for.

    Raises SystemExit with what to do when root has no account to switch to."""
    if requested:
        return requested
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        raise SystemExit(
            f"started as root without -u, and there is no '{DEFAULT_USER}' account to switch to: create it "
            f"(systemd-sysusers, or: adduser --system --group {DEFAULT_USER}), or pass -u root to stay root"
        ) from None
    return DEFAULT_USER


def drop_privileges(user: str | None) -> None:
    """Become ``user`` (and its groups) when running as root; nothing otherwise.

    Raises SystemExit with a clear message if the user does not exist.
    """
    if not user or os.geteuid() != 0:
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise SystemExit(f"user '{user}' does not exist (check the -u flag or the 'user' setting)") from None
    if pw.pw_uid == 0:
        return
    os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    os.environ["HOME"] = pw.pw_dir
    log.debug("now running as %s (uid %d)", user, pw.pw_uid)


def chown_to(path: str | os.PathLike[str], user: str | None, mode: int | None = None) -> None:
    """Give ``path`` to ``user`` (when root) and set ``mode``; errors are logged, not raised."""
    try:
        if mode is not None:
            os.chmod(path, mode)
        if user and os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            os.chown(path, pw.pw_uid, pw.pw_gid)
    except (OSError, KeyError) as exc:
        log.warning("cannot set owner/mode of %s: %s", path, exc)


def daemonize() -> None:
    """Go to the background: double fork, new session, stdio on /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def is_foreground(args: argparse.Namespace) -> bool:
    if args.background:
        return False
    return bool(args.foreground or args.debug)


class Notifier:
    """systemd's sd_notify (READY, WATCHDOG, STATUS, RELOADING, STOPPING); silent when not under systemd."""

    def __init__(self) -> None:
        self._sock = None
        if os.environ.get("NOTIFY_SOCKET"):
            try:
                import sdnotify

                self._sock = sdnotify.SystemdNotifier()
            except ImportError:  # pragma: no cover - sdnotify is a dependency
                self._sock = None
        usec = os.environ.get("WATCHDOG_USEC")
        wpid = os.environ.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        if usec and (not wpid or wpid == str(os.getpid())):
            try:
                self.watchdog_interval = int(usec) / 2e6  # ping at half the timeout
            except ValueError:
                self.watchdog_interval = None

    @property
    def active(self) -> bool:
        return self._sock is not None

    def send(self, text: str) -> None:
        if self._sock is not None:
            try:
                self._sock.notify(text)
            except OSError as exc:
                if exc.errno != errno.ECONNREFUSED:
                    log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str | None = None) -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def reloading(self) -> None:
        mono = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1_000_000)
        self.send(f"RELOADING=1\nMONOTONIC_USEC={mono}")

    def stopping(self) -> None:
        self.send("STOPPING=1")
