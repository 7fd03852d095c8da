"""upsmon's privileged parent: the root process that waits for the monitoring child's shutdown line,
then writes POWERDOWNFLAG and runs SHUTDOWNCMD (NUT FAQ #39).

After the fork the parent becomes ``parent.sh``, next to this file, run by ``/bin/sh`` (see
:func:`exec_argv`): a shell holds a few hundred KiB where a Python interpreter, even a bare one, held
4 MiB. This module holds what the script and the Python side share -- the marker, the line, the
command line -- and the same two actions in Python for one-process mode (``upsmon -p``), used by
:mod:`nutlite.upsmon.shutdown`. It imports only ``os``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    #: how the Python side reports: ``say("error", "text")``; levels info, error, critical
    Say = Callable[[str, str], None]

MAGIC = "upsmon-shutdown-file"  # what POWERDOWNFLAG holds (no newline, as NUT writes it)
SHUTDOWN_LINE = b"shutdown\n"  # the child's one request (one write, so never split)
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parent.sh")
SHELL = "/bin/sh"


def exit_line(status: int) -> bytes:
    """The child's last line: the status it exits with (the parent exits with it too)."""
    return f"exit {status & 255}\n".encode()


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


def exec_argv(child: int, shutdowncmd: str | None, powerdownflag: str | None, prog: str,
              use_syslog: bool) -> list[str]:
    """The command line that turns the forked parent into ``parent.sh`` (the pipe is its stdin)."""
    return [SHELL, SCRIPT, str(child), prog, "1" if use_syslog else "0", MAGIC, shutdowncmd or "",
            powerdownflag or ""]
