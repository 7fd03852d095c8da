"""upsmon's privileged side: POWERDOWNFLAG, SHUTDOWNCMD, and the root parent that does both for
the unprivileged monitoring process (see :mod:`nutlite.upsmon.main` for the process model)."""

from __future__ import annotations

import logging
import math
import os

from nutlite.daemon import account_name, path_error
from nutlite.upsmon import parent
from nutlite.upsmon.parent import MAGIC, SHUTDOWN_LINE, exit_line

log = logging.getLogger("nutlite.upsmon")



def flag_is_set(path: str | os.PathLike[str]) -> bool:
    """True if POWERDOWNFLAG ``path`` exists and starts with upsmon's marker."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC.encode()
    except OSError:
        return False


def flag_advice(path: str) -> str:
    """What to change when upsmon cannot read, write or remove its POWERDOWNFLAG ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    return (f"upsmon handles the flag in its root process: start it as root, or make {folder} writable by "
            f"{account_name(os.geteuid())}, or point POWERDOWNFLAG in upsmon.conf at a file in a folder it may write.")


def write_powerdownflag(path: str | None) -> bool:
    """Write the marker into POWERDOWNFLAG (nothing to do when it is not configured)."""
    if not path:
        return True
    try:
        parent.write_flag(path)
    except OSError as exc:
        log.error("%s", path_error(path, exc, flag_advice(path), what="cannot write POWERDOWNFLAG"))
        return False
    log.info("POWERDOWNFLAG %s written", path)
    return True


def clear_stale_flag(path: str | None) -> str | None:
    """At start: remove a POWERDOWNFLAG left by the last power-fail shutdown.

    Returns the path to use from now on, or None if the file holds something that is not ours: then
    it is left alone and no flag will be written (the setting probably points at the wrong file).
    """
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
    except FileNotFoundError:
        return path
    except OSError as exc:
        log.error("%s", path_error(path, exc, "Until this is fixed upsmon writes no power-down flag. " + flag_advice(path),
                                   what="cannot read POWERDOWNFLAG"))
        return None
    if head == MAGIC.encode():
        try:
            os.unlink(path)
            log.info("removed POWERDOWNFLAG %s left by the previous power-fail shutdown", path)
        except OSError as exc:
            log.error("%s", path_error(path, exc, flag_advice(path), what="cannot remove the old POWERDOWNFLAG"))
        return path
    log.error("POWERDOWNFLAG %s exists but was not written by upsmon (it does not start with %r): "
              "leaving it alone and writing no power-down flag; check the POWERDOWNFLAG setting",
              path, MAGIC)
    return None


def _say(level: str, text: str) -> None:
    log.log({"info": logging.INFO, "critical": logging.CRITICAL}.get(level, logging.ERROR), "%s", text)


def run_shutdowncmd(command: str | None) -> int:
    """Run SHUTDOWNCMD through the shell (as NUT does) and wait for it; return its status."""
    return parent.shutdown_command(command, _say)


def parse_shutdownexit(value: str) -> float:
    """SHUTDOWNEXIT -> seconds to linger after the shutdown handoff (0 = exit, inf = forever)."""
    v = value.strip().lower()
    if v in ("yes", "true", "on", "1", ""):
        return 0.0
    if v in ("no", "false", "off", "0"):
        return math.inf if v != "0" else 0.0
    try:
        n = float(v)
    except ValueError:
        log.warning("SHUTDOWNEXIT %r not understood: exiting after the shutdown handoff", value)
        return 0.0
    return math.inf if n < 0 else n


# --------------------------------------------------------------------------------------------- shutdown


class LocalShutdown:
    """Write the flag and run SHUTDOWNCMD in this process (``-p``, or a root child without parent)."""

    def __init__(self, shutdowncmd: str | None, powerdownflag: str | None) -> None:
        self.shutdowncmd = shutdowncmd
        self.powerdownflag = powerdownflag

    def __call__(self) -> bool:
        if os.geteuid() != 0:
            log.warning("not running as root: the shutdown command may fail")
        write_powerdownflag(self.powerdownflag)
        return run_shutdowncmd(self.shutdowncmd) == 0


class PipeHandoff:
    """The child's way to shut down: one line to the privileged parent."""

    def __init__(self, wfd: int, fallback: LocalShutdown) -> None:
        self.wfd = wfd
        self.fallback = fallback

    def __call__(self) -> bool:
        try:
            os.write(self.wfd, SHUTDOWN_LINE)
            log.debug("shutdown handed to the privileged parent")
            return True
        except OSError as exc:
            log.critical("cannot reach the privileged parent (%s)", exc.strerror or exc)
        if os.geteuid() == 0:
            log.critical("still root: shutting down from the monitoring process")
            return self.fallback()
        log.critical("shutdown impossible: the privileged parent is gone and this process is not root")
        return False

    def report_exit(self, status: int) -> None:
        """Tell the parent the status this process exits with (its last line)."""
        try:
            os.write(self.wfd, exit_line(status))
        except OSError:
            pass  # the parent is gone: nobody to tell
