"""``nutlite upssched``: timers for upsmon's events, as NUT's upssched.

Set it as upsmon's NOTIFYCMD. For each event upsmon passes (``NOTIFYTYPE`` and ``UPSNAME`` in the
environment), the ``AT`` lines of ``upssched.conf`` that match say what to do:

* ``AT <type> <ups|*> EXECUTE <arg>`` runs ``CMDSCRIPT <arg>`` now;
* ``AT <type> <ups|*> START-TIMER <name> <seconds>`` starts a timer; when it runs out, ``CMDSCRIPT <name>``
  runs (a timer that is already running is left as it is);
* ``AT <type> <ups|*> CANCEL-TIMER <name> [<arg>]`` stops it; if none was running and ``<arg>`` is given,
  ``CMDSCRIPT <arg>`` runs instead.

Timers live in a small background process reached over the socket ``PIPEFN``; ``LOCKFN`` keeps two
events from starting two of them. It ends by itself once no timer is left.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import selectors
import socket
import subprocess
import sys
import time

from nutlite.config import ConfigError, UpsschedConf, load_upssched_conf
from nutlite.daemon import setup_logging
from nutlite.tools.common import help_parser

log = logging.getLogger("nutlite.upssched")
PROG = "upssched"
IDLE_EXIT = 2.0  # seconds the timer process lingers with no timer before it exits
START_WAIT = 5.0


def run_script(cmdscript: str, arg: str) -> None:
    """``CMDSCRIPT <arg>``, in the background (its exit is reaped by the caller's process end)."""
    try:
        subprocess.Popen([cmdscript, arg], start_new_session=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        log.error("cannot run CMDSCRIPT %s %s: %s", cmdscript, arg, exc.strerror)


# ---------------------------------------------------------------------------------------- the timers


class Timers:
    """The timer table, sans-IO: commands in, due timer names out."""

    def __init__(self) -> None:
        self.due: dict[str, float] = {}

    def command(self, words: list[str], now: float) -> str:
        if len(words) == 3 and words[0] == "START":
            try:
                seconds = float(words[2])
            except ValueError:
                return "ERR bad seconds"
            if words[1] in self.due:
                return "OK running"
            self.due[words[1]] = now + seconds
            return "OK"
        if len(words) == 2 and words[0] == "CANCEL":
            return "OK" if self.due.pop(words[1], None) is not None else "NOTFOUND"
        return "ERR unknown command"

    def expired(self, now: float) -> list[str]:
        names = [n for n, t in self.due.items() if t <= now]
        for n in names:
            del self.due[n]
        return names

    def next_in(self, now: float) -> float | None:
        return max(0.0, min(self.due.values()) - now) if self.due else None


def serve(conf: UpsschedConf) -> int:
    """The background timer process: listen on PIPEFN until no timer is left."""
    assert conf.pipefn and conf.cmdscript
    with contextlib.suppress(FileNotFoundError):
        os.unlink(conf.pipefn)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(conf.pipefn)
    os.chmod(conf.pipefn, 0o600)
    server.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ)
    timers = Timers()
    idle_since = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            for name in timers.expired(now):
                log.info("timer %s ran out: running %s %s", name, conf.cmdscript, name)
                run_script(conf.cmdscript, name)
            if timers.due:
                idle_since = now
            elif now - idle_since > IDLE_EXIT:
                return 0
            wait = timers.next_in(now)
            for _key, _ in sel.select(min(wait, IDLE_EXIT) if wait is not None else IDLE_EXIT):
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(2)
                    data = b""
                    with contextlib.suppress(OSError):
                        while not data.endswith(b"\n"):
                            chunk = conn.recv(512)
                            if not chunk:
                                break
                            data += chunk
                    reply = timers.command(data.decode("ascii", "replace").split(), time.monotonic())
                    with contextlib.suppress(OSError):
                        conn.sendall(reply.encode() + b"\n")
    finally:
        sel.close()
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(conf.pipefn)


# ---------------------------------------------------------------------------------------- the client


def _ask(pipefn: str, line: str) -> str | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(pipefn)
            s.sendall(line.encode() + b"\n")
            return s.makefile().readline().strip()
    except OSError:
        return None


def send(conf: UpsschedConf, line: str) -> str | None:
    """Send a timer command, starting the timer process first if none answers."""
    assert conf.pipefn and conf.lockfn
    reply = _ask(conf.pipefn, line)
    if reply is not None:
        return reply
    with open(conf.lockfn, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        reply = _ask(conf.pipefn, line)  # another event may have started it meanwhile
        if reply is not None:
            return reply
        # detached from upsmon's pipes: the timer process logs to syslog
        subprocess.Popen([sys.executable, "-m", "nutlite", PROG, "--serve"], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            reply = _ask(conf.pipefn, line)
            if reply is not None:
                return reply
            time.sleep(0.02)
    log.error("the timer process did not answer on %s", conf.pipefn)
    return None


def handle_event(conf: UpsschedConf, notifytype: str, upsname: str) -> int:
    status = 0
    for at in conf.at:
        if at.notifytype != notifytype.upper() or at.upsname not in ("*", upsname):
            continue
        if at.command == "EXECUTE":
            if not at.args:
                log.error("%s:%d: EXECUTE needs an argument for CMDSCRIPT", conf.path, at.lineno)
                status = 1
                continue
            run_script(conf.cmdscript or "", at.args[0])
        elif at.command == "START-TIMER":
            if len(at.args) != 2:
                log.error("%s:%d: START-TIMER needs <name> <seconds>", conf.path, at.lineno)
                status = 1
                continue
            if send(conf, f"START {at.args[0]} {at.args[1]}") is None:
                status = 1
        elif at.command == "CANCEL-TIMER":
            if not at.args:
                log.error("%s:%d: CANCEL-TIMER needs a timer name", conf.path, at.lineno)
                status = 1
                continue
            reply = _ask(conf.pipefn or "", f"CANCEL {at.args[0]}")
            if reply != "OK" and len(at.args) > 1:
                run_script(conf.cmdscript or "", at.args[1])
    return status


def check(conf: UpsschedConf) -> str | None:
    if not conf.cmdscript:
        return f"{conf.path}: CMDSCRIPT is not set (expected 'CMDSCRIPT <path>')"
    needs_timers = any(a.command != "EXECUTE" for a in conf.at)
    if needs_timers and not (conf.pipefn and conf.lockfn):
        return f"{conf.path}: timers need PIPEFN and LOCKFN (e.g. PIPEFN /run/nut/upssched.pipe)"
    return None


def main(argv: list[str]) -> int:
    parser = help_parser(
        PROG,
        "Timers for upsmon's events. Set it as upsmon's NOTIFYCMD: for each event it\n"
        "carries out the AT lines of upssched.conf that match the event and the UPS: run\n"
        "CMDSCRIPT at once, start a timer that runs CMDSCRIPT when it runs out, or cancel\n"
        "one. The timers live in a small background process that ends when none is left.",
        files=["upssched.conf in $NUT_CONFPATH (default /etc/nut)"],
        environment=["NOTIFYTYPE, UPSNAME  the event and the UPS, set by upsmon"])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("message", nargs="*", help="the notification text upsmon passes (not used)")
    args = parser.parse_args(argv)
    setup_logging(PROG, foreground=not args.serve)
    try:
        conf = load_upssched_conf()
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    problem = check(conf)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 1
    if args.serve:
        return serve(conf)
    notifytype, upsname = os.environ.get("NOTIFYTYPE"), os.environ.get("UPSNAME")
    if not notifytype or upsname is None:
        print(f"{PROG}: NOTIFYTYPE and UPSNAME are not set: run it as upsmon's NOTIFYCMD", file=sys.stderr)
        return 1
    return handle_event(conf, notifytype, upsname)
