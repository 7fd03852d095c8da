#!/usr/bin/env python3
"""How long from the UPS reporting ``OB LB`` to SHUTDOWNCMD running, with POLLFREQALERT=1, HOSTSYNC=2
and FINALDELAY=0.

The UPS is a scripted driver behind nutlite's upsd; it goes OL -> OB (so the upsmons poll every
POLLFREQALERT) and then, at t0, OB LB. The figure is t(SHUTDOWNCMD of the primary) - t0, for:

* nutlite's upsmon as primary alone;
* nutlite's upsmon as primary with one nutlite secondary (it must see FSD and log out first);
* Debian's upsmon 2.8.0 as primary alone, for comparison (as root, when installed).

Expect about half a poll interval on average (the poll phase is random) plus a few milliseconds.
Figures, not assertions. Options: --runs N (default 5).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from nutenv import NutEnv, real_nut_available  # noqa: E402
from test_upsmon import REAL_UPSMON, Upsmon, fake_ups, monitor, set_status, wait_logins  # noqa: E402

SETTINGS = {"POLLFREQ": 1, "POLLFREQALERT": 1, "HOSTSYNC": 2, "FINALDELAY": 0, "DEADTIME": 15}


def one_run(base: Path, flavour: str, with_secondary: bool) -> float:
    env = NutEnv(base / "nut", [fake_ups()], driver_flavour="nutlite", upsd_flavour="nutlite")
    env.start()
    mons: list[Upsmon] = []
    try:
        pri = Upsmon(base, "primary", [monitor(env, role="primary")], flavour=flavour, **SETTINGS)
        mons.append(pri)
        pri.start()
        logins = 1
        if with_secondary:
            sec = Upsmon(base, "secondary", [monitor(env, role="secondary")], **SETTINGS)
            mons.append(sec)
            sec.start("-D", "-p")
            logins = 2
        wait_logins(env, logins)
        set_status(env, "ups", "OB DISCHRG")
        for m in mons:
            m.wait_event("ONBATT")
        time.sleep(random.uniform(0.0, 1.0))  # a random phase against the 1 s poll
        t0 = time.time()
        set_status(env, "ups", "OB LB DISCHRG")
        return pri.wait_shutdown(timeout=20) - t0
    finally:
        for m in mons:
            m.kill()
        env.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cases = [("nutlite upsmon, primary alone", "nutlite", False),
             ("nutlite upsmon, primary + 1 secondary", "nutlite", True)]
    if real_nut_available() and REAL_UPSMON.exists() and os.geteuid() == 0:
        cases.append(("Debian upsmon 2.8.0, primary alone", "debian", False))
    else:
        print("(Debian's upsmon skipped: needs /lib/nut/upsmon and root for 'unshare -m')")
    print(f"OB LB -> SHUTDOWNCMD, POLLFREQALERT=1 HOSTSYNC=2 FINALDELAY=0, {args.runs} runs each")
    for label, flavour, with_secondary in cases:
        times = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="upsmon-bench-") as tmp:
                times.append(one_run(Path(tmp), flavour, with_secondary))
        print(f"  {label:<40} median {statistics.median(times):6.3f} s   "
              f"min {min(times):6.3f} s   max {max(times):6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
