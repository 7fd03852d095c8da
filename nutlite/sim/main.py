"""``nutlite sim q1|apc [--link PATH] [--script FILE] [-v]``: a simulated UPS on a pseudo-terminal.

The help lists every script action from the models' action tables (:mod:`nutlite.sim.script`); a script
is checked whole before the simulator starts.
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
from nutlite.sim.script import OFF_WORDS, ON_WORDS, ScriptedUps, describe_actions
from nutlite.tools.common import help_parser

KINDS: dict[str, tuple[type[ScriptedUps], Any, str]] = {  # kind -> model, its pty server, what it is
    "q1": (Q1Ups, PtyQ1, "Megatec Q1 UPS"),
    "apc": (ApcUps, PtyApc, "APC Smart-UPS"),
}

HELP = """\
Simulate a UPS on a pseudo-terminal for a serial driver (nutlite's or NUT's) to
talk to: q1 is a Megatec Q1 UPS (nutdrv_qx, blazer_ser), apc an APC Smart-UPS
(apcsmart). It prints the path of the pty, carries out the script if one is
given, then answers the driver until it is stopped (Ctrl-C or SIGTERM); the
shutdowns it is told to do are always logged."""

EXAMPLE = """\
  # a power cut that drains the battery, then the mains come back
  mains off
  drain 0.05       # volts a second (q1)
  sleep 20
  lowbatt on
  sleep 10
  mains on
  lowbatt off"""


def epilog() -> str:
    lines = [
        "Scripts:",
        "  One action per line, with its arguments; '#' starts a comment. The lines",
        "  are carried out in order, 'sleep' waits between them; after the last one",
        f"  the UPS keeps its state. on|off also takes {'|'.join(ON_WORDS[1:])} and {'|'.join(OFF_WORDS[1:])}.",
    ]
    for kind, (model, _, what) in KINDS.items():
        lines += ["", f"Script actions of the {what} ({kind}):", *describe_actions(model)]
    lines += ["", "Example script (q1):", EXAMPLE, "", "Examples:",
              "  nutlite sim q1 --link /tmp/ttyQ1 --script power-cut.txt",
              "  nutlite sim apc --link /tmp/ttyAPC -v"]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = help_parser("sim", HELP, epilog=epilog())
    p.add_argument("kind", choices=list(KINDS), help="the UPS to simulate: q1 (Megatec Q1) or apc (APC "
                   "Smart-UPS)")
    p.add_argument("--link", metavar="PATH", help="make PATH a symbolic link to the pty")
    p.add_argument("--script", metavar="FILE", help="carry out the script actions of FILE (see Scripts below)")
    p.add_argument("-v", action="store_true", help="log every command the UPS receives")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    model, server, what = KINDS[args.kind]
    lines: list[str] = []
    if args.script:
        try:
            with open(args.script) as fh:
                lines = fh.readlines()
        except (OSError, UnicodeDecodeError) as exc:
            p.error(f"cannot read the script {args.script}: {getattr(exc, 'strerror', None) or exc}")
        problems = model.check_script(lines)
        if problems:
            p.error("\n".join(f"{args.script}: {problem}" for problem in problems))
    logging.basicConfig(level=logging.DEBUG if args.v else logging.INFO, format="%(asctime)s %(message)s")
    ups: Any = model()
    try:
        sim = server(ups, link=args.link).start()
    except OSError as exc:
        print(f"nutlite sim: cannot set up the pty{f' linked as {args.link}' if args.link else ''}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{what} on {sim.path}" + (f" (link {args.link})" if args.link else ""), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if lines:
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
