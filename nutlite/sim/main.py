"""``nutlite sim q1 [--link PATH] [--script FILE]``: a Megatec Q1 UPS on a pseudo-terminal.

Prints the pty path, runs the script (if any), then serves until interrupted; every command the UPS
receives is logged (``-v``) and shutdowns always are.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from nutlite.sim.q1 import PtyQ1, Q1Ups


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nutlite sim", description="UPS simulators on a pseudo-terminal")
    p.add_argument("kind", choices=["q1"], help="protocol to simulate")
    p.add_argument("--link", help="make this path a symlink to the pty")
    p.add_argument("--script", help="file of simulator actions (see nutlite.sim.q1)")
    p.add_argument("-v", action="store_true", help="log every command received")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.v else logging.INFO, format="%(asctime)s %(message)s")
    ups = Q1Ups()
    sim = PtyQ1(ups, link=args.link).start()
    print(f"Q1 UPS on {sim.path}" + (f" (link {args.link})" if args.link else ""), flush=True)
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
                logging.debug("received %s", c)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
