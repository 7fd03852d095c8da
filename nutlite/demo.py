"""`nutlite demo` (what `make run` starts): the whole stack on a simulated UPS.

It writes a private NUT configuration into a work folder and runs, until Ctrl-C, upsd on 127.0.0.1 with
three UPSes that each go OL -> OB -> OB LB -> OL once a minute:

* ``demo``: dummy-ups playing a sequence file;
* ``q1``: nutlite's ``nutdrv_qx`` reading the simulated Megatec Q1 UPS (:mod:`nutlite.sim.q1`) on a
  pseudo-terminal;
* ``apc``: nutlite's ``apcsmart`` reading the simulated APC Smart-UPS (:mod:`nutlite.sim.apc`) on another.

The simulators run inside this process; their ptys are linked as ``tty-q1`` and ``tty-apc`` in the work
folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

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


def start_simulators(work: Path, stop: threading.Event) -> list[object]:
    """The Q1 and APC simulators on ptys linked as ``tty-q1``/``tty-apc`` in ``work``, playing their cycle."""
    from nutlite.sim.apc import PtyApc
    from nutlite.sim.q1 import PtyQ1

    sims: list[object] = []
    for cls, link, script in ((PtyQ1, "tty-q1", Q1_CYCLE), (PtyApc, "tty-apc", APC_CYCLE)):
        sim = cls(link=work / link).start()
        sims.append(sim)
        threading.Thread(target=_loop, args=(sim.ups, script, stop), daemon=True).start()
    return sims


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nutlite demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=3493, help="upsd port on 127.0.0.1 (default 3493)")
    parser.add_argument("--dir", default=os.path.join(os.getcwd(), ".demo"),
                        help="work folder for the demo's config and state (default ./.demo)")
    args = parser.parse_args(argv)
    work = Path(args.dir).resolve()
    conf, state = write_config(work, args.port)
    env = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state))
    me = [sys.executable, "-m", "nutlite"]
    # As root, NUT's daemons switch to the 'nut' account, which may not reach the demo's folder; the
    # demo keeps the account it was started with.
    user = ["-u", "root"] if os.geteuid() == 0 else []
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    sims: list[object] = []
    (work / "lock").mkdir(exist_ok=True)
    env["NUTLITE_LOCKDIR"] = str(work / "lock")  # the simulated ports' lock files stay in the demo's folder
    try:
        sims = start_simulators(work, stop)
        sockets = {"demo": "dummy-ups-demo", "q1": "nutdrv_qx-q1", "apc": "apcsmart-apc"}
        for ups in sockets:
            procs.append(subprocess.Popen([*me, "driver", "-a", ups, "-F", *user], env=env))
        deadline = time.monotonic() + 20
        while not all((state / s).exists() for s in sockets.values()) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                print("nutlite demo: a driver exited; see its messages above", file=sys.stderr)
                return 1
            time.sleep(0.05)
        procs.append(subprocess.Popen([*me, "upsd", "-F", *user], env=env))
        time.sleep(0.5)
        if procs[-1].poll() is not None:
            print(f"nutlite demo: upsd exited (is port {args.port} in use? try --port)", file=sys.stderr)
            return 1
        host = "localhost" if args.port == 3493 else f"localhost:{args.port}"
        exe = os.path.join(os.path.dirname(sys.executable), "nutlite")
        print(
            f"""
nutlite demo is running: three simulated UPSes go OL -> OB -> OB LB -> OL every minute:
  demo  dummy-ups playing {conf / "demo.seq"}
  q1    nutdrv_qx on a simulated Megatec Q1 UPS ({work / "tty-q1"})
  apc   apcsmart on a simulated APC Smart-UPS ({work / "tty-apc"})
  config and state: {work}
  upsd:             127.0.0.1:{args.port}

Look at it from another terminal:
  {exe} upsc demo@{host}                 all variables
  {exe} upsc demo@{host} ups.status      the status, as it changes
  {exe} upsc -l {host}                   the UPS list
  {exe} upsc apc@{host} ups.status       the APC UPS, through nutlite's apcsmart
  {exe} upscmd -l demo@{host}            instant commands
  {exe} upsrw -s ups.delay.shutdown=60 -u admin -p demo demo@{host}
NUT's own clients work too (upsc demo@{host}, upsmon, Home Assistant's NUT integration).
Ctrl-C stops it.
""",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("nutlite demo: a daemon exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        for sim in sims:
            sim.stop()  # type: ignore[attr-defined]
