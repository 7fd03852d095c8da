"""``nutlite upsmon``: NUT's upsmon -- watch UPSes over the network and shut this host down in time.

The decisions are made by :mod:`nutlite.upsmon.core`; this module does the I/O around it.

Process model (as NUT's): started as root, upsmon splits in two. The parent keeps root and can do
exactly one thing: when the child writes the line ``shutdown`` into their pipe, it writes POWERDOWNFLAG
and runs SHUTDOWNCMD. Right after the fork the parent becomes a small shell script (``parent.sh``, see
:mod:`nutlite.upsmon.parent`), so it holds no copy of the monitor's modules. The child becomes ``-u``, else
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
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from nutlite import __version__, daemon
from nutlite.config import ConfigError, UpsmonConf, load_upsmon_conf, statepath
from nutlite.tools.common import help_parser
from nutlite.upsmon.core import InsufficientPower, check_power, specs_of
from nutlite.upsmon.shutdown import (
    LocalShutdown,
    PipeHandoff,
    clear_stale_flag,
    flag_is_set,
)

log = logging.getLogger("nutlite.upsmon")

PROG = "upsmon"
NUT_VERSION = "2.8.0"
CONTROL_SIGNALS = {"fsd": signal.SIGUSR1, "reload": signal.SIGHUP, "stop": signal.SIGTERM}



# --------------------------------------------------------------------------------------------- files


def pid_dir() -> Path:
    """Where upsmon.pid lives: ``$NUT_ALTPIDPATH``, else STATEPATH (``$NUT_STATEPATH`` or /run/nut)."""
    alt = os.environ.get("NUT_ALTPIDPATH")
    return Path(alt) if alt else statepath()


def pidfile() -> Path:
    return daemon.pidfile_path(pid_dir(), PROG)





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


def become_parent(rfd: int, child: int, shutdowncmd: str | None, flag: str | None, use_syslog: bool) -> int:
    """The forked parent replaces itself with ``parent.sh`` (see :mod:`nutlite.upsmon.parent`), the pipe
    from the child as its standard input. Returns only if the shell cannot start: then the child,
    left without its parent, announces NOPARENT."""
    from nutlite.upsmon import parent

    argv = parent.exec_argv(child, shutdowncmd, flag, PROG, use_syslog)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    try:
        os.dup2(rfd, 0)
        os.close(rfd)
        os.execv(argv[0], argv)
    except OSError as exc:
        log.critical("cannot start the privileged parent (%s %s): %s; this host cannot be shut down by upsmon",
                     argv[0], argv[1], exc.strerror or exc)
    return 1


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
    handoff: Callable[[], bool] = local
    parent_pid: int | None = None
    if args.privileged:
        log.warning("running as one big privileged process (upsmon -p)")
    elif not split:
        log.info("not started as root: running as one process")
    if split:
        rfd, wfd = os.pipe()
        child = os.fork()
        if child > 0:
            os.close(wfd)
            return become_parent(rfd, child, conf.shutdowncmd, flag, use_syslog=not foreground)
        os.close(rfd)
        # The monitor's modules load here, still as root: the installed files may be readable by root only.
        import nutlite.upsmon.monitor  # noqa: F401
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

    # Only the monitoring process imports the client and the monitor (see monitor.py).
    import socket

    from nutlite.upsmon.monitor import UpsmonDaemon

    family = socket.AF_INET if args.ipv4 and not args.ipv6 else socket.AF_INET6 if args.ipv6 else socket.AF_UNSPEC
    mon = UpsmonDaemon(conf, handoff, notifier, parent_pid, family)
    status = 1  # (an exception on the way out)
    try:
        status = mon.run()
    except KeyboardInterrupt:
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
        raise
    finally:
        daemon.remove_pidfile(path)
        if isinstance(handoff, PipeHandoff):
            handoff.report_exit(status)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
