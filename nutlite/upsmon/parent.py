"""upsmon's privileged parent: the root process that waits for the monitoring child's shutdown byte,
then writes POWERDOWNFLAG and runs SHUTDOWNCMD (NUT FAQ #39).

This file uses the standard library only (os, sys and the C signal module; syslog and subprocess when
needed) and never imports nutlite: after the fork the parent runs it as a fresh interpreter
(``python3 -I -S parent.py --fd N --child PID ...``, see :func:`exec_argv`), so the parent holds about
3 MiB instead of a copy of everything the monitoring process imported. :mod:`nutlite.upsmon.shutdown`
uses the same functions in-process (``upsmon -p``, and when the exec fails).
"""

from __future__ import annotations

# ``_signal`` is what ``signal`` wraps in enums; the wrapper would bring enum, functools and a dozen
# more modules (about 0.9 MiB of the parent's 4). Nothing here needs the enums.
import _signal as signal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    #: how the parent reports: ``say("error", "text")``; levels info, error, critical
    Say = Callable[[str, str], None]

MAGIC = "upsmon-shutdown-file"  # what POWERDOWNFLAG holds (no newline, as NUT writes it)
SHUTDOWN_BYTE = b"\x01"


def write_flag(path: str) -> None:
    """Write upsmon's marker into ``path`` and sync it (the power may go any moment). Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, MAGIC.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def shutdown_command(command: str | None, say: Say) -> int:
    """Run SHUTDOWNCMD through the shell (as NUT does) and wait for it; return its status."""
    if not command:
        say("error", "no SHUTDOWNCMD in upsmon.conf: this system cannot be shut down")
        return 1
    say("critical", f"running SHUTDOWNCMD: {command}")
    import subprocess  # only now: the parent imports nothing it needs once

    try:
        rc = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, check=False).returncode
    except OSError as exc:
        say("error", f"cannot run SHUTDOWNCMD {command!r}: {exc}")
        return 1
    if rc != 0:
        say("error", f"SHUTDOWNCMD {command!r} exited with status {rc}")
    return rc


def serve(rfd: int, child: int, shutdowncmd: str | None, powerdownflag: str | None, say: Say,
          write: Callable[[str | None], object] | None = None) -> int:
    """Wait for the child's shutdown byte on ``rfd``; return when the child exits (its status, or 0
    after a shutdown). ``write`` writes the flag (default: :func:`write_flag` with a plain message)."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, forward)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    done = False
    while True:
        try:
            data = os.read(rfd, 1)
        except OSError as exc:
            say("error", f"parent: reading the pipe from the monitoring process failed: {exc}")
            break
        if not data:
            break
        if data == SHUTDOWN_BYTE and not done:
            done = True
            (write or _plain_write(say))(powerdownflag)
            shutdown_command(shutdowncmd, say)
        elif data != SHUTDOWN_BYTE:
            say("error", f"parent: unexpected byte {data!r} from the monitoring process ignored")
    os.close(rfd)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
    code = os.waitstatus_to_exitcode(status)
    if done:
        return 0
    if code != 0:
        say("error", "parent: the monitoring process exited with "
            + (f"status {code}" if code > 0 else f"signal {-code}"))
        return code if code > 0 else 1
    return 0


def _plain_write(say: Say) -> Callable[[str | None], object]:
    def write(path: str | None) -> None:
        if not path:
            return
        try:
            write_flag(path)
        except OSError as exc:
            say("error", f"cannot write POWERDOWNFLAG {path}: {exc.strerror or exc}")
            return
        say("info", f"POWERDOWNFLAG {path} written")
    return write


def exec_argv(rfd: int, child: int, shutdowncmd: str | None, powerdownflag: str | None,
              prog: str, use_syslog: bool) -> list[str]:
    """The command line that turns the forked parent into this module."""
    argv = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--fd", str(rfd), "--child", str(child),
            "--prog", prog]
    if shutdowncmd:
        argv += ["--shutdowncmd", shutdowncmd]
    if powerdownflag:
        argv += ["--powerdownflag", powerdownflag]
    if use_syslog:
        argv.append("--syslog")
    return argv


def _sayer(prog: str, use_syslog: bool) -> Say:
    if use_syslog:
        import syslog

        syslog.openlog(prog, syslog.LOG_PID, syslog.LOG_DAEMON)
        levels = {"info": syslog.LOG_INFO, "error": syslog.LOG_ERR, "critical": syslog.LOG_CRIT}
        return lambda level, text: syslog.syslog(levels.get(level, syslog.LOG_ERR), text)

    def say(_level: str, text: str) -> None:
        print(f"{prog}[{os.getpid()}]: {text}", file=sys.stderr, flush=True)
    return say


def main(argv: Sequence[str]) -> int:
    """``parent.py --fd N --child PID [--shutdowncmd CMD] [--powerdownflag PATH] [--prog NAME] [--syslog]``"""
    opts: dict[str, str] = {}
    use_syslog = False
    it = iter(argv)
    for word in it:
        if word == "--syslog":
            use_syslog = True
        elif word in ("--fd", "--child", "--shutdowncmd", "--powerdownflag", "--prog"):
            opts[word[2:]] = next(it, "")
        else:
            print(f"upsmon parent: unknown argument {word!r}", file=sys.stderr)
            return 2
    if not opts.get("fd", "").isdigit() or not opts.get("child", "").isdigit():
        print("upsmon parent: --fd and --child are required (started by upsmon, not by hand)", file=sys.stderr)
        return 2
    say = _sayer(opts.get("prog") or "upsmon", use_syslog)
    return serve(int(opts["fd"]), int(opts["child"]), opts.get("shutdowncmd"), opts.get("powerdownflag"), say)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
