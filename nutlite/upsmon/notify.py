"""upsmon's NOTIFY events: messages, NOTIFYFLAG handling, NOTIFYCMD and wall.

Every event goes where its NOTIFYFLAG says (default SYSLOG+WALL, as NUT): SYSLOG -> the log (syslog
when in the background, stderr in the foreground), WALL -> the ``wall`` program (if installed),
EXEC -> NOTIFYCMD with the message as its only argument and ``NOTIFYTYPE``/``UPSNAME`` in the
environment. Commands are started in the background and never waited for (finished ones are reaped
on the next call); NOTIFYCMD runs without a shell unless it contains shell syntax.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping

from nutlite.config import NOTIFY_TYPES

log = logging.getLogger("nutlite.upsmon")

DEFAULT_FLAGS = frozenset({"SYSLOG", "WALL"})

# Default texts (ours, not NUT's). "%s" is the UPS as written in its MONITOR line.
DEFAULT_MESSAGES: dict[str, str] = {
    "ONLINE": "UPS %s is running on line power again",
    "ONBATT": "UPS %s is running on battery",
    "LOWBATT": "UPS %s reports a low battery",
    "FSD": "UPS %s: its primary has ordered a forced shutdown",
    "COMMOK": "Communication with UPS %s is back",
    "COMMBAD": "Lost communication with UPS %s",
    "SHUTDOWN": "Power-fail shutdown of this system starts now",
    "REPLBATT": "UPS %s says its battery needs replacing",
    "NOCOMM": "UPS %s still cannot be reached",
    "NOPARENT": "The privileged upsmon process died: this system can no longer be shut down on power failure",
    "CAL": "UPS %s is calibrating its battery",
    "NOTCAL": "UPS %s finished its battery calibration",
    "OFF": "UPS %s has switched its output off",
    "NOTOFF": "UPS %s has switched its output on",
    "BYPASS": "UPS %s is on bypass: the load is not protected",
    "NOTBYPASS": "UPS %s is no longer on bypass",
    "ECO": "UPS %s is in ECO mode",
    "NOTECO": "UPS %s left ECO mode",
    "ALARM": "UPS %s raised an alarm %s",
    "NOTALARM": "UPS %s has no alarm any more",
    "OVER": "UPS %s is overloaded",
    "NOTOVER": "UPS %s is no longer overloaded",
    "TRIM": "UPS %s is lowering a high input voltage",
    "NOTTRIM": "UPS %s stopped lowering the input voltage",
    "BOOST": "UPS %s is raising a low input voltage",
    "NOTBOOST": "UPS %s stopped raising the input voltage",
    "OTHER": "UPS %s reports an unusual status %s",
    "NOTOTHER": "UPS %s no longer reports an unusual status",
    "SUSPEND_STARTING": "This system is going to sleep",
    "SUSPEND_FINISHED": "This system woke up",
    "SHUTDOWN_HOSTSYNC": "Waiting for the secondary systems to log out before shutting down",
}
assert set(DEFAULT_MESSAGES) == set(NOTIFY_TYPES)

# Events that mean trouble are logged as warnings, the rest as information.
GOOD_EVENTS = frozenset({"ONLINE", "COMMOK", "NOTCAL", "NOTOFF", "NOTBYPASS", "NOTECO", "NOTALARM",
                         "NOTOVER", "NOTTRIM", "NOTBOOST", "NOTOTHER", "SUSPEND_FINISHED", "CAL",
                         "TRIM", "BOOST", "ECO"})

SHELL_CHARS = frozenset("|&;<>()$`\\\"'*?[]#~=%!{}\n")


def format_message(template: str, *args: str) -> str:
    """printf-style ``%s`` substitution that never fails: ``%%`` -> ``%``, missing args -> ''."""
    out: list[str] = []
    values = list(args)
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template):
            nxt = template[i + 1]
            if nxt == "s":
                out.append(values.pop(0) if values else "")
                i += 2
                continue
            if nxt == "%":
                out.append("%")
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out).rstrip()


def needs_shell(command: str) -> bool:
    """True if ``command`` uses shell syntax (pipes, quotes, variables, redirections, ...)."""
    return any(c in SHELL_CHARS for c in command)


def command_argv(command: str, message: str) -> list[str]:
    """argv running NOTIFYCMD with ``message`` as its argument (through /bin/sh only if needed)."""
    if needs_shell(command):
        # The message is passed as "$1", so nothing in it is ever interpreted by the shell.
        return ["/bin/sh", "-c", f'{command} "$1"', "upsmon-notify", message]
    return [*shlex.split(command), message]



def which(name: str) -> str | None:
    """The executable ``name`` on PATH (what ``shutil.which`` finds, without importing shutil and its
    compression modules into the monitoring process)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None

class Notifications:
    """Delivers NOTIFY events according to upsmon.conf."""

    def __init__(self, notifycmd: str | None = None, notifymsg: Mapping[str, str] | None = None,
                 notifyflag: Mapping[str, set[str]] | None = None, wall: str | None = "auto") -> None:
        self.notifycmd = notifycmd
        self.notifymsg = dict(notifymsg or {})
        self.notifyflag = {k: set(v) for k, v in (notifyflag or {}).items()}
        self.wall = which("wall") if wall == "auto" else wall
        self.children: list[subprocess.Popen[bytes]] = []

    def configure(self, notifycmd: str | None, notifymsg: Mapping[str, str],
                  notifyflag: Mapping[str, set[str]]) -> None:
        self.notifycmd = notifycmd
        self.notifymsg = dict(notifymsg)
        self.notifyflag = {k: set(v) for k, v in notifyflag.items()}

    def flags(self, ntype: str) -> set[str]:
        return set(self.notifyflag.get(ntype, DEFAULT_FLAGS))

    def message(self, ntype: str, ups: str | None, extra: str = "") -> str:
        template = self.notifymsg.get(ntype) or DEFAULT_MESSAGES.get(ntype, f"{ntype} %s")
        return format_message(template, ups or "", extra)

    def notify(self, ntype: str, ups: str | None, extra: str = "") -> str:
        """Deliver one event; return its message. Never blocks and never raises."""
        self.reap()
        msg = self.message(ntype, ups, extra)
        flags = self.flags(ntype)
        level = logging.INFO if ntype in GOOD_EVENTS else logging.WARNING
        if "SYSLOG" in flags:
            log.log(level, "%s", msg)
        else:
            log.debug("event %s (%s): %s", ntype, ups or "-", msg)
        if "WALL" in flags and self.wall:
            self._wall(msg)
        if "EXEC" in flags and self.notifycmd:
            self._exec(ntype, ups, msg)
        return msg

    def _spawn(self, argv: list[str], env: Mapping[str, str] | None = None,
               stdin_data: bytes | None = None) -> None:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                close_fds=True,
            )
        except OSError as exc:
            log.error("cannot run %s: %s", argv[0], exc.strerror or exc)
            return
        if stdin_data is not None and proc.stdin is not None:
            try:
                proc.stdin.write(stdin_data)  # a few hundred bytes: fits the pipe buffer
                proc.stdin.close()
            except OSError:
                pass
        self.children.append(proc)

    def _wall(self, msg: str) -> None:
        assert self.wall is not None
        self._spawn([self.wall], stdin_data=(msg + "\n").encode("utf-8", "replace"))

    def _exec(self, ntype: str, ups: str | None, msg: str) -> None:
        assert self.notifycmd is not None
        env = dict(os.environ)
        env["NOTIFYTYPE"] = ntype
        if ups is not None:
            env["UPSNAME"] = ups
        else:
            env.pop("UPSNAME", None)
        try:
            argv = command_argv(self.notifycmd, msg)
        except ValueError as exc:  # shlex: unbalanced quotes (needs_shell catches quotes, so rare)
            log.error("NOTIFYCMD %r cannot be parsed: %s", self.notifycmd, exc)
            return
        self._spawn(argv, env)

    def reap(self) -> None:
        """Collect finished NOTIFYCMD/wall processes (never waits)."""
        alive = []
        for proc in self.children:
            rc = proc.poll()
            if rc is None:
                alive.append(proc)
            elif rc != 0 and proc.args and proc.args[0] != self.wall:
                log.debug("notify command exited with status %s", rc)
        self.children = alive
