"""``upslog``: write UPS variables to a log file at a fixed interval, formatted by a template.

Same options, template language and messages as NUT's ``upslog``::

    upslog -s ups[@host[:port]] -l logfile [-i interval] [-f format] [-F | -B] [-p pidbase] [-u user]
    upslog -m ups[@host[:port]],logfile [-m ...] ...

``-l -`` logs to stdout (and stays in the foreground); any other log file sends upslog to the
background unless ``-F`` is given. ``-m`` (several allowed) monitors more UPSes, each into its own
file. Signals: HUP reopens the log files (for log rotation), USR1 logs at once, TERM/INT end it.

Template escapes (keywords are case-insensitive):
``%%`` a percent sign; ``%TIME fmt%`` the time formatted by strftime with ``@`` standing for ``%``;
``%ETIME%`` seconds since the epoch; ``%HOST%`` the local host name; ``%UPSHOST%`` the UPS as given;
``%PID%`` upslog's pid; ``%VAR name%`` the value of a variable (``NA`` when it cannot be read).
Anything else between percent signs prints ``INVALID``, and so does a ``%`` without a closing one
(followed by the rest of the template as is).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from nutlite import daemon
from nutlite.client import AddressError, NutClient, NutClientError, NutError, UpsAddress, parse_upsname
from nutlite.tools.common import banner, err, scan_options

TOOL = "upslog"
DEFAULT_INTERVAL = 30
DEFAULT_FORMAT = (
    "%TIME @Y@m@d @H@M@S% %VAR battery.charge% %VAR input.voltage% %VAR ups.load% "
    "[%VAR ups.status%] %VAR ups.temperature% %VAR input.frequency%"
)
DEFAULT_TIME_FORMAT = "%Y%m%d %H%M%S"
NA = "NA"
INVALID = "INVALID"


def usage() -> str:
    """The help text after the banner line (which upslog prints first whatever it does)."""
    return f"""
usage: upslog [OPTIONS]

Log the status of UPSes: one line per UPS every <interval> seconds, filled in from a template.

  -f <format>   - log line template, see below; quote it for the shell: -f "<format>"
  -i <interval> - seconds between two log lines (default: {DEFAULT_INTERVAL})
  -l <logfile>  - log file for the UPS of -s; - is stdout (then upslog stays in the foreground)
  -s <ups>      - UPS to log, as <upsname>[@<host>[:<port>]], e.g. -s myups@server
  -m <ups>,<logfile> - one more UPS and its log file (may be repeated)
  -F            - stay in the foreground even when logging to a file
  -B            - go to the background even when logging to stdout
  -p <pidbase>  - name of the PID file, without .pid (default: "upslog")
  -u <user>     - user to run as when started as root (default: nut)
  -h            - show this help

Template escapes:
  %%             a single %
  %TIME format%  the time, strftime format with @ instead of % (e.g. @H:@M:@S)
  %ETIME%        the time as seconds since the epoch
  %HOST%         the name of this host
  %UPSHOST%      the UPS being logged, as given
  %PID%          the process id of upslog
  %VAR varname%  the value of the UPS variable varname (NA if unavailable)

Default template:
{DEFAULT_FORMAT}
"""


# --------------------------------------------------------------------------------------------
# Template


@dataclass(frozen=True)
class Piece:
    """One part of a template: ``kind`` is text, time, etime, host, upshost, pid, var or invalid."""

    kind: str
    arg: str = ""


def compile_format(fmt: str) -> list[Piece]:
    """Split a template into pieces (see the module docstring for the escapes)."""
    pieces: list[Piece] = []
    pos = 0
    while pos < len(fmt):
        start = fmt.find("%", pos)
        if start < 0:
            pieces.append(Piece("text", fmt[pos:]))
            break
        if start > pos:
            pieces.append(Piece("text", fmt[pos:start]))
        end = fmt.find("%", start + 1)
        if end < 0:  # no closing %: INVALID, then the rest as it is
            pieces.append(Piece("invalid"))
            pieces.append(Piece("text", fmt[start + 1 :]))
            break
        body = fmt[start + 1 : end]
        pos = end + 1
        if body == "":
            pieces.append(Piece("text", "%"))
            continue
        keyword, sep, arg = body.partition(" ")
        keyword = keyword.upper()
        if keyword == "TIME":
            pieces.append(Piece("time", arg.replace("@", "%") if sep else DEFAULT_TIME_FORMAT))
        elif keyword in ("ETIME", "HOST", "UPSHOST", "PID"):
            pieces.append(Piece(keyword.lower()))
        elif keyword == "VAR" and arg:
            pieces.append(Piece("var", arg))
        else:
            pieces.append(Piece("invalid"))
    return _merge_text(pieces)


def _merge_text(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        if p.kind == "text" and out and out[-1].kind == "text":
            out[-1] = Piece("text", out[-1].arg + p.arg)
        elif not (p.kind == "text" and not p.arg):
            out.append(p)
    return out


def render(
    pieces: list[Piece], upshost: str, get_var: Callable[[str], str | None], now: float | None = None
) -> str:
    """One log line. ``get_var(name)`` returns a value or None (shown as NA)."""
    now = time.time() if now is None else now
    parts: list[str] = []
    for p in pieces:
        if p.kind == "text":
            parts.append(p.arg)
        elif p.kind == "time":
            parts.append(time.strftime(p.arg, time.localtime(now)))
        elif p.kind == "etime":
            parts.append(str(int(now)))
        elif p.kind == "host":
            parts.append(socket.gethostname())
        elif p.kind == "upshost":
            parts.append(upshost)
        elif p.kind == "pid":
            parts.append(str(os.getpid()))
        elif p.kind == "var":
            value = get_var(p.arg)
            parts.append(NA if value is None else value)
        else:
            parts.append(INVALID)
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Monitors


@dataclass
class Monitor:
    """One UPS logged into one file."""

    ups: str  # as given on the command line (%UPSHOST%)
    logname: str  # "-" = stdout
    addr: UpsAddress | None = None
    client: NutClient | None = None
    out: TextIO | None = None
    _down: bool = field(default=False, repr=False)

    def open_log(self) -> None:
        if self.logname == "-":
            self.out = sys.stdout
        else:
            self.out = open(self.logname, "a", buffering=1)  # noqa: SIM115 - kept open while logging

    def reopen_log(self) -> None:
        if self.logname == "-" or self.out is None:
            return
        try:
            new = open(self.logname, "a", buffering=1)  # noqa: SIM115
        except OSError as exc:
            err(f"could not reopen logfile {self.logname}: {exc.strerror}")
            return  # keep writing to the old file rather than losing lines
        self.out.close()
        self.out = new

    def connect(self) -> str | None:
        """(Re)connect if needed; the error text if that failed."""
        assert self.addr is not None
        if self.client is None:
            self.client = NutClient(self.addr.host, self.addr.port)
        if self.client.connected:
            return None
        try:
            self.client.connect()
        except NutClientError as exc:
            return exc.message
        return None

    def get_var(self, name: str) -> str | None:
        if self.client is None or self.addr is None or self._down or " " in name:
            return None
        try:
            return self.client.get_var(self.addr.upsname or "", name)
        except NutError:
            return None
        except NutClientError:
            self._down = True  # lost the connection: NA for the rest of this line
            return None

    def log(self, pieces: list[Piece]) -> None:
        self._down = self.connect() is not None
        line = render(pieces, self.ups, self.get_var)
        assert self.out is not None
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except OSError as exc:
            err(f"error writing to {self.logname}: {exc.strerror}")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.out is not None and self.out is not sys.stdout:
            self.out.close()


def run_as_user(requested: str | None) -> str | None:
    """Who upslog becomes when started as root: -u, else NUT's ``nut`` account (None when not root
    and no -u). Raises SystemExit, naming the account, when it does not exist."""
    import pwd

    from nutlite.daemon import resolve_user

    user = resolve_user(requested)
    if user is not None and os.geteuid() == 0:
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise SystemExit(f"user '{user}' does not exist (check the -u flag)") from None
    return user


def logfile_advice(path: str) -> str:
    """What to change when upslog cannot open its log file ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    return (f"Create {folder} if it is missing and make it writable by {daemon.account_name(os.geteuid())}, "
            "or give -l a file in a folder it may write (or - for the standard output).")


def pid_dir() -> str:
    return os.environ.get("NUT_ALTPIDPATH") or os.environ.get("NUT_STATEPATH") or "/run/nut"


def _atoi(text: str) -> int:
    text = text.strip()
    digits = ""
    for i, ch in enumerate(text):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)


def run_loop(monitors: list[Monitor], pieces: list[Piece], interval: int) -> int:
    """Log every ``interval`` seconds until TERM/INT; HUP reopens logs, USR1 logs now."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        while True:
            for mon in monitors:
                mon.log(pieces)
            deadline = time.monotonic() + interval
            while True:
                remaining = max(0.0, deadline - time.monotonic())
                info = signal.sigtimedwait(SIGNALS, remaining)
                if info is None:
                    break
                signo = info.si_signo
                if signo in (signal.SIGTERM, signal.SIGINT):
                    # Like NUT's upslog: one last line with the state at exit, then stop.
                    for mon in monitors:
                        mon.log(pieces)
                    err(f"Signal {signo}: exiting")
                    return 0
                if signo == signal.SIGHUP:
                    err(f"Signal {signo}: reopening log file")
                    for mon in monitors:
                        mon.reopen_log()
                elif signo == signal.SIGUSR1:
                    break  # log now
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def main(argv: list[str]) -> int:
    print(banner(TOOL))
    sys.stdout.flush()
    fmt = DEFAULT_FORMAT
    interval = DEFAULT_INTERVAL
    ups: str | None = None
    logname: str | None = None
    tuples: list[str] = []
    foreground: bool | None = None
    pidbase = TOOL
    user: str | None = None
    args = list(argv)
    while True:
        opts, rest = scan_options(args, "f:i:l:s:m:p:u:FBhV")
        for opt, value in opts:  # one by one, as NUT: "--help" is "-", then -h, which ends it
            if opt == "?":
                err(f"{TOOL}: {value}")
            elif opt == "h":
                print(usage(), end="")
                return 0
            if opt == "V":
                return 0
            if opt == "f":
                fmt = value
            elif opt == "i":
                interval = max(0, _atoi(value))
            elif opt == "l":
                logname = value
            elif opt == "s":
                ups = value
            elif opt == "m":
                tuples.append(value)
            elif opt == "p":
                pidbase = value
            elif opt == "u":
                user = value
            elif opt == "F":
                foreground = True
            elif opt == "B":
                foreground = False
        if not rest:
            break
        args = rest[1:]  # like GNU getopt, options may follow operands (which are ignored)

    monitors: list[Monitor] = []
    if ups is not None:
        if logname is None:
            err("No filename defined for logging - use -l <file>")
            return 1
        monitors.append(Monitor(ups, logname))
    for item in tuples:
        name, sep, path = item.partition(",")
        if not sep or not name or not path:
            err(f"Error: invalid -m argument '{item}' - use -m <ups>,<logfile>")
            return 1
        monitors.append(Monitor(name, path))
    if not monitors:
        err("No UPS defined for monitoring - use -s <system>")
        return 1

    for mon in monitors:
        print(f"logging status of {mon.ups} to {mon.logname} ({interval}s intervals)")
    sys.stdout.flush()
    for mon in monitors:
        try:
            mon.addr = parse_upsname(mon.ups)
        except AddressError as exc:
            err(
                f"{exc.where}: {exc.message}",
                "Error: invalid UPS definition.  Required format: upsname[@hostname[:port]]",
                "",
            )
            return 1
    try:
        for mon in monitors:
            mon.open_log()
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOENT) and exc.filename:
            err(daemon.path_error(exc.filename, exc, logfile_advice(exc.filename), what="could not open logfile"))
        else:
            err(f"could not open logfile {exc.filename}: {exc.strerror}")
        return 1
    for mon in monitors:
        problem = mon.connect()
        if problem is not None:
            err(f"Warning: initial connect failed: {problem}")

    try:  # before going to the background, where nobody would see the error
        run_as = run_as_user(user)
    except SystemExit as exc:
        err(str(exc))
        return 1
    to_stdout = any(m.logname == "-" for m in monitors)
    if foreground is None:
        foreground = to_stdout
    if not foreground:
        daemon.daemonize()
    pidfile = os.path.join(pid_dir(), f"{pidbase}.pid")
    daemon.write_pidfile(pidfile)
    daemon.drop_privileges(run_as)
    try:
        return run_loop(monitors, compile_format(fmt), interval)
    finally:
        for mon in monitors:
            mon.close()
        daemon.remove_pidfile(pidfile)
