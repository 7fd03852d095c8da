"""``nutlite upsdrvctl``: start, stop and shut down the drivers of ups.conf, as NUT's upsdrvctl.

``start [ups]``  start each driver (``nutlite driver -a <ups>``) in the background, one after the other:
                 a driver counts as started when it went to the background and answers PING on its
                 socket; ``maxretry`` attempts ``retrydelay`` seconds apart, each waiting at most
                 ``maxstartdelay`` seconds (ups.conf settings, section or global). With ``-F`` the
                 drivers stay in the foreground and upsdrvctl waits for them (for service managers).
``stop [ups]``   signal each running driver through its pid file and wait for it to exit.
``shutdown [ups]`` killpower, in ``sdorder`` order (-1 = skipped unless named): ask the running driver
                 over its socket (``INSTCMD driver.killpower``), else run ``driver -a <ups> -k``.

The options are NUT's (see :func:`usage`), plus ``-F`` and ``-B``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nutlite import __version__
from nutlite.config import ConfigError, UpsConf, UpsSection, load_ups_conf, statepath
from nutlite.daemon import read_pid
from nutlite.tools.common import NUT_VERSION, invoked_as

BANNER = f"Network UPS Tools - UPS driver controller {NUT_VERSION} (nutlite {__version__})"


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


class Ctl:
    def __init__(self, args: argparse.Namespace, conf: UpsConf) -> None:
        self.args = args
        self.conf = conf
        self.state = statepath(conf)
        self.debug = args.debug
        self.testing = args.testing
        self.nowait = "nowait" in conf.global_flags
        self.stopping = False

    # -- helpers
    def say(self, text: str) -> None:
        print(text, flush=True)

    def dbg(self, level: int, text: str) -> None:
        if self.debug >= level:
            print(text, file=sys.stderr, flush=True)

    def sockpath(self, sec: UpsSection) -> Path:
        return self.state / f"{sec.driver}-{sec.name}"

    def pidpath(self, sec: UpsSection) -> Path:
        from nutlite.drivers.framework.drvconfig import pid_dir

        return pid_dir(self.state) / f"{sec.driver}-{sec.name}.pid"

    def driver_argv(self, sec: UpsSection, *extra: str) -> list[str]:
        argv = [sys.executable, "-m", "nutlite", "driver", "-a", sec.name]
        if self.args.debug_drivers and self.debug:
            argv.append("-" + "D" * self.debug)
        if self.args.user:
            argv += ["-u", self.args.user]
        if self.args.chroot:
            argv += ["-r", self.args.chroot]
        return argv + list(extra)

    # -- start
    def start(self, secs: list[UpsSection]) -> int:
        failed = 0
        procs: list[tuple[UpsSection, subprocess.Popen[bytes]]] = []
        supervising = bool(self.args.foreground) and not self.testing
        if supervising:
            self.install_forwarding(procs)
        for sec in secs:
            if self.stopping:
                break
            proc = self.start_one(sec)
            if proc is False:
                failed += 1
            elif proc is not True:
                procs.append((sec, proc))
                if self.stopping and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        if supervising and procs:
            return self.supervise(procs) or (1 if failed else 0)
        return 1 if failed else 0

    def install_forwarding(self, procs: list[tuple[UpsSection, subprocess.Popen[bytes]]]) -> None:
        """-F: pass SIGTERM/SIGINT/SIGHUP on to the drivers (also while still starting them)."""
        def forward(signum: int, _frame: object) -> None:
            if signum != signal.SIGHUP:
                self.stopping = True
            for _, p in procs:
                if p.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        p.send_signal(signum)

        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, forward)

    def start_one(self, sec: UpsSection) -> subprocess.Popen[bytes] | bool:
        fg = bool(self.args.foreground)
        argv = self.driver_argv(sec, *(["-F"] if fg else []))
        tries = max(1, sec.maxretry)
        self.dbg(1, f"Starting UPS: {sec.name}")
        if self.testing:
            self.say("exec: " + " ".join(argv))
            return True
        for attempt in range(1, tries + 1):
            self.dbg(2, f"{tries - attempt + 1} remaining attempts")
            self.dbg(2, "exec: " + " ".join(argv))
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
            except OSError as exc:
                print(f"Can't start {argv[0]}: {exc.strerror}", file=sys.stderr)
                return False
            outcome = self.wait_started(sec, proc, fg)
            if outcome == "ok":
                return proc if fg else True
            if fg and proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            if outcome == "timeout":
                break  # as NUT: report and go on with the next UPS
            if attempt < tries:
                print(f"Driver for UPS [{sec.name}] failed to start, retrying in {sec.retrydelay} s "
                      f"(attempt {attempt} of {tries})", file=sys.stderr)
                time.sleep(max(0, sec.retrydelay))
        print(f"Driver failed to start for UPS [{sec.name}] (exit status "
              f"{proc.returncode if proc.returncode is not None else 'none: still starting'})", file=sys.stderr)
        return False

    def wait_started(self, sec: UpsSection, proc: subprocess.Popen[bytes], foreground: bool) -> str:
        """"ok", "failed" (the driver exited with an error) or "timeout"."""
        from nutlite.drivers.framework.sockproto import ping_socket

        deadline = time.monotonic() + max(1, sec.maxstartdelay)
        path = self.sockpath(sec)
        if not foreground:
            try:
                rc = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"Startup timer elapsed for UPS [{sec.name}] ({sec.maxstartdelay} s), continuing",
                      file=sys.stderr)
                return "timeout"
            if rc != 0:
                return "failed"
            if self.nowait:
                return "ok"
        while time.monotonic() < deadline:
            if foreground and proc.poll() is not None:
                return "failed"
            if ping_socket(path, 1.0):
                return "ok"
            time.sleep(0.1)
        print(f"Driver for UPS [{sec.name}] does not answer on {path} after {sec.maxstartdelay} s", file=sys.stderr)
        return "timeout"

    def supervise(self, procs: list[tuple[UpsSection, subprocess.Popen[bytes]]]) -> int:
        """-F: stay with the drivers until they are all gone."""
        rc = 0
        for sec, p in procs:
            code = p.wait()
            if code not in (0, -signal.SIGTERM):
                print(f"Driver for UPS [{sec.name}] exited with status {code}", file=sys.stderr)
                rc = 1
        return rc

    # -- stop
    def stop(self, secs: list[UpsSection]) -> int:
        failed = 0
        for sec in secs:
            self.dbg(1, f"Stopping UPS: {sec.name}")
            path = self.pidpath(sec)
            pid = read_pid(path)
            if pid is None:
                print(f"Can't open {path}: {'No such file or directory' if not path.exists() else 'no pid in it'}",
                      file=sys.stderr)
                failed += 1
                continue
            if self.testing:
                self.say(f"kill: {pid} (SIGTERM, from {path})")
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                print(f"Driver for UPS [{sec.name}] is not running (stale pid file {path})", file=sys.stderr)
                with contextlib.suppress(OSError):
                    path.unlink()
                failed += 1
                continue
            except PermissionError:
                print(f"Not allowed to signal pid {pid} of UPS [{sec.name}]", file=sys.stderr)
                failed += 1
                continue
            if not wait_gone(pid, 15.0):
                print(f"Driver for UPS [{sec.name}] (pid {pid}) did not stop within 15 s", file=sys.stderr)
                failed += 1
        return 1 if failed else 0

    # -- shutdown
    def shutdown(self, secs: list[UpsSection], named: bool) -> int:
        from nutlite.drivers.framework.core import Status
        from nutlite.drivers.framework.sockproto import killpower_via_socket, ping_socket

        order = secs if named else sorted((s for s in secs if s.sdorder >= 0), key=lambda s: s.sdorder)
        failed = 0
        for sec in order:
            self.dbg(1, f"Shutdown UPS: {sec.name}")
            path = self.sockpath(sec)
            argv = self.driver_argv(sec, "-k")
            if self.testing:
                self.say(f"shutdown: {sec.name}: INSTCMD driver.killpower on {path}, else exec: {' '.join(argv)}")
                continue
            if ping_socket(path, 2.0):
                result = killpower_via_socket(path)
                if result == Status.HANDLED:
                    self.say(f"UPS [{sec.name}]: the running driver sent the shutdown")
                    continue
                print(f"UPS [{sec.name}]: the running driver did not shut down (result {result}); "
                      "trying the driver's -k", file=sys.stderr)
            self.dbg(2, "exec: " + " ".join(argv))
            try:
                rc = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=max(30, sec.maxstartdelay)).returncode
            except subprocess.TimeoutExpired:
                rc = -1
            except OSError as exc:
                print(f"Can't start {argv[0]}: {exc.strerror}", file=sys.stderr)
                rc = -1
            if rc != 0:
                print(f"Shutdown failed for UPS [{sec.name}]", file=sys.stderr)
                failed += 1
        return 1 if failed else 0


def usage(prog: str) -> str:
    return f"""{BANNER}

usage: {prog} [OPTIONS] (start | stop | shutdown) [<ups>]

Start, stop and shut down the UPS drivers defined in ups.conf, one after the other.

  -h                show this help
  -V                show the version
  -r <path>         passed on to the drivers (which accept it but do not chroot)
  -t                testing mode: show what would be done, do nothing
  -u <user>         drivers started as root switch to <user> (default: ups.conf's user, else nut)
  -D                raise the debug level (repeatable)
  -d                pass the debug level on to the drivers
  -F                drivers stay in the foreground and upsdrvctl waits for them (for service managers)
  -B                drivers go to the background (the default)

  start [<ups>]     start the driver of every UPS in ups.conf, or only that of <ups>
  stop [<ups>]      stop the drivers, or only that of <ups>
  shutdown [<ups>]  make the UPSes cut their power, in sdorder order, or only <ups>

Files:
  ups.conf in $NUT_CONFPATH (default /etc/nut)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=invoked_as("upsdrvctl"), add_help=False,
                                usage="%(prog)s [OPTIONS] (start | stop | shutdown) [<ups>]")
    p.add_argument("-h", dest="help", action="store_true")
    p.add_argument("-V", dest="version", action="store_true")
    p.add_argument("-r", dest="chroot", metavar="PATH")
    p.add_argument("-t", dest="testing", action="store_true")
    p.add_argument("-u", dest="user", metavar="USER")
    p.add_argument("-D", dest="debug", action="count", default=0)
    p.add_argument("-d", dest="debug_drivers", action="store_true")
    p.add_argument("-F", dest="foreground", action="count", default=0)
    p.add_argument("-B", dest="background", action="store_true")
    p.add_argument("command", nargs="?", choices=("start", "stop", "shutdown"))
    p.add_argument("ups", nargs="?")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2
    if args.version:
        print(BANNER)
        return 0
    if args.help or not args.command:
        print(usage(parser.prog), end="")
        return 0 if args.help else 1
    print(BANNER, flush=True)
    if args.background:
        args.foreground = 0
    try:
        conf = load_ups_conf()
    except ConfigError as exc:
        print(f"upsdrvctl: {exc}", file=sys.stderr)
        return 1
    for w in conf.warnings:
        print(f"upsdrvctl: warning: {w}", file=sys.stderr)
    if args.ups:
        sec = conf.find(args.ups)
        if sec is None:
            print(f"UPS {args.ups} not found in ups.conf", file=sys.stderr)
            return 1
        secs = [sec]
    else:
        secs = list(conf.ups.values())
        if not secs:
            print(f"No UPS definitions found in {conf.path}", file=sys.stderr)
            return 1
    ctl = Ctl(args, conf)
    if args.testing:
        print("*** Testing mode: not starting, signalling or shutting down anything", flush=True)
    if args.command == "start":
        return ctl.start(secs)
    if args.command == "stop":
        return ctl.stop(secs)
    return ctl.shutdown(secs, named=bool(args.ups))
