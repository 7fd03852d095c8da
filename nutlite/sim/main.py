"""``nutlite sim q1|apc [--link PATH] [--script FILE]``: a simulated UPS on a pseudo-terminal.

``q1`` plays a Megatec Q1 UPS (:mod:`nutlite.sim.q1`), ``apc`` an APC Smart-UPS (:mod:`nutlite.sim.apc`).
Prints the pty path, runs the script (if any), then serves until interrupted; every command the UPS
receives is logged (``-v``) and shutdowns always are.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from nutlite.sim.apc import ApcUps, PtyApc
from nutlite.sim.q1 import PtyQ1, Q1Ups


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nutlite sim", description="UPS simulators on a pseudo-terminal")
    p.add_argument("kind", choices=["q1", "apc"], help="protocol to simulate")
    p.add_argument("--link", help="make this path a symlink to the pty")
    p.add_argument("--script", help="file of simulator actions (see nutlite.sim.q1 / nutlite.sim.apc)")
    p.add_argument("-v", action="store_true", help="log every command received")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.v else logging.INFO, format="%(asctime)s %(message)s")
    ups: Any
    sim: Any
    if args.kind == "apc":
        ups = ApcUps()
        sim = PtyApc(ups, link=args.link).start()
        what = "APC Smart-UPS"
    else:
        ups = Q1Ups()
        sim = PtyQ1(ups, link=args.link).start()
        what = "Q1 UPS"
    print(f"{what} on {sim.path}" + (f" (link {args.link})" if args.link else ""), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.script:
        with open(args.script) as fh:
            lines = fh.readlines()
        threading.Thread(target=ups.run_script, args=(lines,), daemon=True).start()
    seen = 0
    try:
        while not stop.wait(0.2):
            cmds = ups.commands[seen:]
            seen += len(cmds)
            for c in cmds:
                logging.debug("received %r", c)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
