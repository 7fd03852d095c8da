"""`nutlite demo` (what `make run` starts): the whole stack on a simulated UPS.

It writes a private NUT configuration into a work folder: a dummy-ups driver playing a sequence that
goes OL -> OB -> OB LB -> OL, and upsd on 127.0.0.1, then runs both until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
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


def write_config(work: Path, port: int) -> tuple[Path, Path]:
    conf, state = work / "conf", work / "state"
    conf.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    (conf / "demo.seq").write_text(SEQUENCE)
    (conf / "ups.conf").write_text(
        '[demo]\n\tdriver = dummy-ups\n\tport = demo.seq\n\tdesc = "nutlite demo UPS (simulated)"\n'
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
    try:
        procs.append(subprocess.Popen([*me, "driver", "-a", "demo", "-F", *user], env=env))
        sock = state / "dummy-ups-demo"
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            if procs[0].poll() is not None:
                print("nutlite demo: the driver exited; see its messages above", file=sys.stderr)
                return 1
            time.sleep(0.05)
        procs.append(subprocess.Popen([*me, "upsd", "-F", *user], env=env))
        time.sleep(0.5)
        if procs[1].poll() is not None:
            print(f"nutlite demo: upsd exited (is port {args.port} in use? try --port)", file=sys.stderr)
            return 1
        host = "localhost" if args.port == 3493 else f"localhost:{args.port}"
        exe = os.path.join(os.path.dirname(sys.executable), "nutlite")
        print(
            f"""
nutlite demo is running: a simulated UPS 'demo' goes OL -> OB -> OB LB -> OL every minute.
  config and state: {work}
  upsd:             127.0.0.1:{args.port}

Look at it from another terminal:
  {exe} upsc demo@{host}                 all variables
  {exe} upsc demo@{host} ups.status      the status, as it changes
  {exe} upsc -l {host}                   the UPS list
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
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
