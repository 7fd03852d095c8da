#!/usr/bin/env python3
"""`make bench`: snmp-ups against Debian's, and the SNMP scanner (issue 13's figures).

1. One poll against snmpsim serving real recordings (an RFC 1628 card and an APC one): the round trips
   and time of nutlite's first pass and of a later full pass, next to Debian's /lib/nut/snmp-ups
   (``-d 1``: its start-up pass and one update; its round trips counted by a loopback agent that logs
   every request, tests/snmpagent.py, serving the same recording).
2. ``nutlite scan --snmp 127.0.0.0/24`` with agents on 127.0.0.2 and 127.0.0.3: time and what it found.

Loopback only. Figures, not assertions.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from snmpagent import SnmpAgent  # noqa: E402
from test_snmp_side_by_side import DATA, REAL_SNMP_UPS, SNMPSIM, Snmpsim  # noqa: E402

from nutlite.drivers.tables import snmp as tables  # noqa: E402
from nutlite.snmp.client import SnmpClient, SnmpSettings  # noqa: E402
from nutlite.snmp.detect import Detector  # noqa: E402
from nutlite.snmp.engine import Engine  # noqa: E402

RECORDINGS = ("generex-ups_cs141", "apc_smx750")


async def nutlite_poll(port: int, community: str, rounds: int = 10) -> tuple[str, int, float, int, float]:
    """Detection + first pass, then full passes: (mapping, first-pass round trips, ms, full-pass round
    trips, median ms)."""
    async with SnmpClient(SnmpSettings("127.0.0.1", port, "v2c", community, timeout=2, retries=1)) as c:
        det = Detector(tables, "auto")
        while (oids := det.next_oids()) is not None:
            det.feed(await c.get(oids))
        assert det.result is not None, det.error
        engine = Engine(det.result)
        before, t0 = c.round_trips, time.perf_counter()
        await run(c, engine.first_pass())
        first_rt, first_ms = c.round_trips - before, (time.perf_counter() - t0) * 1000
        times, trips = [], 0
        for _ in range(rounds):
            before, t0 = c.round_trips, time.perf_counter()
            await run(c, engine.full_pass())
            times.append((time.perf_counter() - t0) * 1000)
            trips = c.round_trips - before
        return det.result.name, first_rt, first_ms, trips, statistics.median(times)


async def run(client: SnmpClient, plan: object) -> None:
    while (oids := plan.next_oids()) is not None:  # type: ignore[attr-defined]
        plan.feed(await client.get(oids))  # type: ignore[attr-defined]
    plan.result()  # type: ignore[attr-defined]


def nut_dump(port: int, community: str) -> float:
    state = tempfile.mkdtemp(prefix="snmpbench-")
    os.chmod(state, 0o777)
    argv = [str(REAL_SNMP_UPS), "-s", "bench", "-x", f"port=127.0.0.1:{port}", "-x", f"community={community}",
            "-x", "snmp_version=v2c", "-x", "mibs=auto", "-d", "1"] + (["-u", "root"] if os.geteuid() == 0 else [])
    t0 = time.perf_counter()
    subprocess.run(argv, capture_output=True, timeout=120, env={**os.environ, "NUT_STATEPATH": state})
    return (time.perf_counter() - t0) * 1000


def nut_round_trips(name: str) -> int:
    with SnmpAgent.from_snmprec(DATA / f"{name}.snmprec", community="bench") as agent:
        nut_dump(agent.port, "bench")
        return len(agent.requests())


def scan_figures() -> None:
    agents = [SnmpAgent.from_snmprec(DATA / f"{n}.snmprec", community="public", host=h, port=161)
              for n, h in zip(RECORDINGS, ("127.0.0.2", "127.0.0.3"), strict=True)]
    for a in agents:
        a.start()
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nutlite", "scan", "--snmp", "127.0.0.0/24", "-t", "1"],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        seconds = time.perf_counter() - t0
    finally:
        for a in agents:
            a.stop()
    found = [ln.split("=", 1)[1].strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("mibs")]
    print(f"scan --snmp 127.0.0.0/24 (agents on 127.0.0.2 and .3): {seconds:.1f} s, found {len(found)}: "
          f"{', '.join(found) or '-'} (exit {proc.returncode})")


def main() -> int:
    if not SNMPSIM.exists():
        print("snmp_bench: snmpsim is not installed in this venv (pip install -e '.[test]')")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        sim = Snmpsim(Path(tmp)).start(list(RECORDINGS))
        try:
            print("one poll, against snmpsim (nutlite: batched GETs; NUT: one OID per GET)")
            for name in RECORDINGS:
                mapping, rt1, ms1, rt, ms = asyncio.run(nutlite_poll(sim.port, f"nut-{name}"))
                line = (f"  {name} ({mapping}): nutlite first pass {rt1} round trips {ms1:.0f} ms, "
                        f"full pass {rt} round trips {ms:.1f} ms")
                if REAL_SNMP_UPS.exists():
                    nut_ms = statistics.median(nut_dump(sim.port, f"nut-{name}") for _ in range(3))
                    line += (f"; NUT start-up + one update {nut_round_trips(name)} round trips "
                             f"{nut_ms:.0f} ms (process included)")
                print(line)
        finally:
            sim.stop()
    scan_figures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
