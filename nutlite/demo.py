"""`nutlite demo` (what `make run` starts): the whole stack on simulated UPSes.

It writes a private NUT configuration into a work folder and runs upsd on 127.0.0.1 with three UPSes
that each go OL -> OB -> OB LB -> OL once a minute: ``demo`` (dummy-ups playing :data:`SEQUENCE`),
``q1`` (nutdrv_qx on the Megatec Q1 simulator) and ``apc`` (apcsmart on the APC Smart-UPS simulator).
The simulators are threads of this process, on ptys linked as ``tty-q1``/``tty-apc`` in the work
folder; the daemons are child processes (see :func:`spawn` for how they never outlive the demo).

Every way the demo ends stops everything it started: Ctrl-C, SIGTERM, SIGHUP (the terminal closing),
an error in the demo, a daemon exiting (the demo says which and stops the others), and even SIGKILL.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from nutlite.tools.common import help_parser

HELP = """\
Run the whole nutlite stack on simulated UPSes until it is stopped: upsd on
127.0.0.1 with three UPSes that each go from mains to battery, to low battery
and back to mains once a minute. Ctrl-C, SIGTERM or closing the terminal stops
it and everything it started."""

EPILOG = """\
UPSes:
  demo   dummy-ups playing a sequence file (conf/demo.seq)
  q1     nutdrv_qx on a simulated Megatec Q1 UPS (a pty, linked as tty-q1)
  apc    apcsmart on a simulated APC Smart-UPS (a pty, linked as tty-apc)

Files (in the work folder):
  conf/     ups.conf, upsd.conf, nut.conf and upsd.users (users admin,
            password demo, and monuser, password secret)
  state/    the drivers' sockets
  lock/     the lock files of the simulated serial ports
  tty-q1, tty-apc
            links to the simulators' pseudo-terminals ('nutlite sim -h' tells
            their script language)

Examples:
  nutlite demo
  nutlite demo --port 3500 --dir /tmp/demo
  nutlite upsc q1@localhost"""

SEQUENCE = """\
# nutlite demo UPS: mains, then a power cut that drains the battery, then mains again.
device.mfr: nutlite
device.model: Demo UPS 1500
device.type: ups
ups.mfr: nutlite
ups.model: Demo UPS 1500
ups.serial: DEMO-0001
ups.beeper.status: enabled
ups.delay.shutdown: 20
ups.delay.start: 30
input.voltage: 230.4
input.voltage.nominal: 230
input.frequency: 50.0
output.voltage: 230.0
battery.voltage.nominal: 24
ups.realpower.nominal: 900
ups.status: OL CHRG
battery.charge: 100
battery.runtime: 2400
battery.voltage: 27.1
ups.load: 23
TIMER 20
ups.status: OB DISCHRG
input.voltage: 0.0
battery.charge: 71
battery.runtime: 1320
battery.voltage: 24.6
TIMER 15
ups.status: OB DISCHRG LB
battery.charge: 18
battery.runtime: 180
battery.voltage: 22.1
TIMER 10
ups.status: OL CHRG
input.voltage: 229.8
battery.charge: 25
battery.runtime: 600
battery.voltage: 25.9
TIMER 15
"""


# The simulators' minute, in their own script languages (same timing as SEQUENCE).
Q1_CYCLE = """\
mains on
lowbatt off
charge 0.05
sleep 20
mains off
drain 0.06
sleep 15
lowbatt on
sleep 10
mains on
sleep 15
"""
APC_CYCLE = """\
mains on
lowbatt off
recharge 1
sleep 20
mains off
drain 2
sleep 15
lowbatt on
sleep 10
mains on
sleep 15
"""


def _loop(ups: object, script: str, stop: threading.Event) -> None:
    """Play ``script`` on a simulated UPS over and over."""
    lines = script.splitlines()
    while not stop.is_set():
        for line in lines:
            pause = ups.apply(line)  # type: ignore[attr-defined]
            if pause and stop.wait(pause):
                return


def start_simulators(work: Path, stop: threading.Event, sims: list[object]) -> None:
    """The Q1 and APC simulators on ptys linked as ``tty-q1``/``tty-apc`` in ``work``, playing their cycle
    until ``stop`` is set; each is added to ``sims`` as soon as it runs (to be stopped)."""
    from nutlite.sim.apc import PtyApc
    from nutlite.sim.q1 import PtyQ1

    for cls, link, script in ((PtyQ1, "tty-q1", Q1_CYCLE), (PtyApc, "tty-apc", APC_CYCLE)):
        sim = cls(link=work / link).start()
        sims.append(sim)
        threading.Thread(target=_loop, args=(sim.ups, script, stop), daemon=True).start()


def write_config(work: Path, port: int) -> tuple[Path, Path]:
    conf, state = work / "conf", work / "state"
    conf.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    (conf / "demo.seq").write_text(SEQUENCE)
    (conf / "ups.conf").write_text(
        '[demo]\n\tdriver = dummy-ups\n\tport = demo.seq\n\tdesc = "nutlite demo UPS (simulated)"\n'
        f'[q1]\n\tdriver = nutdrv_qx\n\tport = {work / "tty-q1"}\n\tpollinterval = 2\n'
        '\tdesc = "simulated Megatec Q1 UPS on a pty"\n'
        f'[apc]\n\tdriver = apcsmart\n\tport = {work / "tty-apc"}\n\tpollinterval = 2\n'
        '\tdesc = "simulated APC Smart-UPS on a pty"\n'
    )
    (conf / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {port}\nMAXAGE 15\n")
    users = conf / "upsd.users"
    users.write_text(
        "[admin]\n\tpassword = demo\n\tactions = SET FSD\n\tinstcmds = ALL\n"
        "[monuser]\n\tpassword = secret\n\tupsmon primary\n"
    )
    os.chmod(users, 0o600)
    (conf / "nut.conf").write_text("MODE=standalone\n")
    return conf, state


# The daemons are started through this stub. It asks the kernel to send the child SIGTERM when the demo
# goes away (PR_SET_PDEATHSIG = 1, kept across the exec that follows), so even a SIGKILL of the demo,
# which runs no cleanup of its own, takes the daemons with it; the demo also stops them itself (SIGTERM,
# then SIGKILL) on every other way out. A process group of their own would not survive SIGKILL (nobody
# would be left to signal it) and would take the daemons out of the terminal's foreground group. The
# stub rather than subprocess's preexec_fn, which is not safe while the simulator threads run; its
# parent-pid check covers a demo that died before the prctl.
_PDEATHSIG_STUB = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a daemon that dies with the demo (see :data:`_PDEATHSIG_STUB`)."""
    if sys.platform != "linux":
        return subprocess.Popen(argv, env=env)
    return subprocess.Popen([sys.executable, "-I", "-c", _PDEATHSIG_STUB, str(os.getpid()), *argv], env=env)


class Stopped(BaseException):
    """A signal asked the demo to stop (a BaseException, like KeyboardInterrupt: nothing swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_stopped(signum: int, _frame: object) -> None:
    ignore_stop_signals()  # the first one stops the demo; nothing may interrupt its cleanup
    raise Stopped(signum)


def ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def catch_stop_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Stopped`; a signal the demo was started with ignored
    (``nohup``, a background job's SIGINT) stays ignored."""
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _raise_stopped)


def say(text: str) -> None:
    """A message to stderr; nothing if the terminal is gone (SIGHUP after it was closed)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"nutlite demo: {text}", file=sys.stderr, flush=True)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def stop_all(procs: dict[str, subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    """Stop every daemon still running, the last started first (upsd, then the drivers): SIGTERM and a wait
    for it to end, SIGKILL for what still runs when ``timeout`` s have passed."""
    deadline = time.monotonic() + timeout
    for p in reversed(procs.values()):
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (1..65535)")
    return port


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = help_parser("demo", HELP, epilog=EPILOG)
    parser.add_argument("--port", type=port_number, default=3493, help="upsd port on 127.0.0.1 (default 3493)")
    parser.add_argument("--dir", default=os.path.join(os.getcwd(), ".demo"),
                        help="work folder for the demo's configuration and state (default ./.demo)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    catch_stop_signals()
    procs: dict[str, subprocess.Popen[bytes]] = {}  # what each is -> its process, in starting order
    stop = threading.Event()
    sims: list[object] = []
    try:
        return run(args, procs, stop, sims)
    except Stopped as exc:
        say(f"{signal.Signals(exc.signum).name}: stopping")
        return 0
    except Exception as exc:  # an error of the demo itself: say it, and stop what it started
        ignore_stop_signals()
        say(f"error: {exc}; stopping")
        return 1
    finally:
        ignore_stop_signals()  # a second Ctrl-C reaches the daemons through the terminal anyway
        stop.set()
        stop_all(procs)
        for sim in sims:
            with contextlib.suppress(Exception):
                sim.stop()  # type: ignore[attr-defined]


def run(args: argparse.Namespace, procs: dict[str, subprocess.Popen[bytes]], stop: threading.Event,
        sims: list[object]) -> int:
    work = Path(args.dir).resolve()
    if port_in_use(args.port):
        say(f"port {args.port} on 127.0.0.1 is in use (another upsd?); choose another with --port")
        return 1
    try:
        conf, state = write_config(work, args.port)
        (work / "lock").mkdir(exist_ok=True)
    except OSError as exc:
        say(f"cannot write the demo's configuration in {work}: {exc.strerror or exc}")
        return 1
    env = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state))
    env["NUTLITE_LOCKDIR"] = str(work / "lock")  # the simulated ports' lock files stay in the demo's folder
    me = [sys.executable, "-m", "nutlite"]
    # As root, NUT's daemons switch to the 'nut' account, which may not reach the demo's folder; the
    # demo keeps the account it was started with.
    user = ["-u", "root"] if os.geteuid() == 0 else []
    start_simulators(work, stop, sims)
    drivers = {"demo": ("dummy-ups", "dummy-ups-demo"), "q1": ("nutdrv_qx", "nutdrv_qx-q1"),
               "apc": ("apcsmart", "apcsmart-apc")}
    for ups, (driver, _) in drivers.items():
        procs[f"the {driver} driver of {ups}"] = spawn([*me, "driver", "-a", ups, "-F", *user], env)
    deadline = time.monotonic() + 20
    while not all((state / sock).exists() for _, sock in drivers.values()):
        if dead := exited(procs):
            return dead
        if time.monotonic() > deadline:
            say("the drivers did not start within 20 s; see their messages above")
            return 1
        time.sleep(0.05)
    procs["upsd"] = spawn([*me, "upsd", "-F", *user], env)
    deadline = time.monotonic() + 20
    while not listening(args.port):
        if dead := exited(procs):
            return dead
        if time.monotonic() > deadline:
            say(f"upsd does not listen on 127.0.0.1:{args.port} after 20 s; see its messages above")
            return 1
        time.sleep(0.05)
    print(banner(work, conf, args.port), flush=True)
    while not (dead := exited(procs)):
        time.sleep(0.2)
    return dead


def exited(procs: dict[str, subprocess.Popen[bytes]]) -> int:
    """1 (after saying which) if a daemon has exited, else 0."""
    for what, p in procs.items():
        code = p.poll()
        if code is not None:
            say(f"{what} {how_it_ended(code)} (its messages are above); stopping the demo")
            return 1
    return 0


def banner(work: Path, conf: Path, port: int) -> str:
    host = "localhost" if port == 3493 else f"localhost:{port}"
    exe = os.path.join(os.path.dirname(sys.executable), "nutlite")
    return f"""
nutlite demo is running: three simulated UPSes go OL -> OB -> OB LB -> OL every minute:
  demo  dummy-ups playing {conf / "demo.seq"}
  q1    nutdrv_qx on a simulated Megatec Q1 UPS ({work / "tty-q1"})
  apc   apcsmart on a simulated APC Smart-UPS ({work / "tty-apc"})
  config and state: {work}
  upsd:             127.0.0.1:{port}

Look at it from another terminal:
  {exe} upsc demo@{host}                 all variables
  {exe} upsc demo@{host} ups.status      the status, as it changes
  {exe} upsc -l {host}                   the UPS list
  {exe} upsc apc@{host} ups.status       the APC UPS, through nutlite's apcsmart
  {exe} upscmd -l demo@{host}            instant commands
  {exe} upsrw -s ups.delay.shutdown=60 -u admin -p demo demo@{host}
NUT's own clients work too (upsc demo@{host}, upsmon, Home Assistant's NUT integration).
Ctrl-C stops it.
"""
