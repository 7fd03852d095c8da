#!/usr/bin/env python3
"""Password guessing against nutlite's upsd and Debian's upsd on the same configuration.

A guesser on 127.0.0.1 opens a connection per guess (a session sets its PASSWORD once), sends
USERNAME, a wrong PASSWORD and LOGIN, and waits for the answer; with --parallel N it runs N such
guessers at once from the same address. Printed: wrong passwords answered per second, for Debian's
upsd (no limit) and for nutlite's upsd before the slowdown (its free failures) and after it, one
guesser and N in parallel. Each phase is bounded by --seconds and --count; a guess still waiting
when its phase ends is not counted. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from nutenv import FakeDriver, NutEnv, UpsSpec, real_nut_available  # noqa: E402

from nutlite.upsd.throttle import FREE_FAILURES  # noqa: E402

UPS = "bench"
USER = "monpri"  # upsmon primary in the harness's upsd.users: may LOGIN


def guess(port: int, n: int, deadline: float) -> bool:
    """One wrong password on a new connection; True if answered (ERR ACCESS-DENIED) before `deadline`."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=remaining) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(f"USERNAME {USER}\nPASSWORD wrong{n}\nLOGIN {UPS}\n".encode())
            data = b""
            while data.count(b"\n") < 3:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
    except OSError:  # includes the timeout at the deadline
        return False
    lines = data.decode("latin-1").split("\n")
    if lines[2] != "ERR ACCESS-DENIED":
        raise SystemExit(f"unexpected answer to a wrong password: {lines[:3]!r}")
    return True


def phase(port: int, count: int, seconds: float, parallel: int = 1) -> tuple[int, float]:
    """Guess with `parallel` guessers until `count` are answered or `seconds` pass: (answered, seconds)."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    state = {"started": 0, "answered": 0}

    def guesser() -> None:
        while True:
            with lock:
                if state["started"] >= count:
                    return
                state["started"] += 1
                n = state["started"]
            if not guess(port, n, deadline):
                return
            with lock:
                state["answered"] += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=guesser) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state["answered"], time.monotonic() - t0


def start_env(base: Path, flavour: str) -> NutEnv:
    fake = FakeDriver("/nonexistent")
    fake.setvar("ups.status", "OL")
    env = NutEnv(base / flavour, [UpsSpec(UPS, driver="fakedrv", port="/dev/null", launch="fake", fake=fake)],
                 upsd_flavour=flavour)
    env.start()
    return env


def main() -> int:
    ap = argparse.ArgumentParser(prog="login_bench.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="longest time of each phase (default 10)")
    ap.add_argument("--count", type=int, default=5000, help="most guesses of each phase (default 5000)")
    ap.add_argument("--parallel", type=int, default=8, help="guessers of the parallel phase (default 8)")
    ap.add_argument("--only", choices=("nutlite", "debian"), help="bench one server only")
    args = ap.parse_args()
    flavours = [args.only] if args.only else ["nutlite", "debian"]
    if "debian" in flavours and not real_nut_available():
        print("Debian's NUT is not installed (apt-get install nut-server): nutlite only\n")
        flavours.remove("debian")
    if not flavours:
        return 1
    base = Path(tempfile.mkdtemp(prefix="nutlite-login-bench-"))
    rows: list[tuple[str, str, int, float]] = []
    try:
        for fl in flavours:
            env = start_env(base, fl)
            try:
                if fl == "debian":
                    rows.append((fl, "one guesser", *phase(env.port, args.count, args.seconds)))
                    rows.append((fl, f"{args.parallel} in parallel",
                                 *phase(env.port, args.count, args.seconds, args.parallel)))
                else:
                    rows.append((fl, f"before: the {FREE_FAILURES} free failures",
                                 *phase(env.port, FREE_FAILURES, args.seconds)))
                    rows.append((fl, "after: one guesser", *phase(env.port, args.count, args.seconds)))
                    rows.append((fl, f"after: {args.parallel} in parallel",
                                 *phase(env.port, args.count, args.seconds, args.parallel)))
            finally:
                env.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"Wrong passwords answered per second, all from 127.0.0.1 (phases of at most {args.seconds:g} s "
          f"and {args.count} guesses)\n")
    print(f"{'server':<8} {'phase':<32} {'guesses':>8} {'seconds':>8} {'guesses/s':>10}")
    for fl, what, n, secs in rows:
        print(f"{fl:<8} {what:<32} {n:>8} {secs:>8.2f} {n / secs if secs else 0:>10.1f}")
    print("\nnutlite: each further answer to that address waits longer, up to 30 s (then 2 guesses a "
          "minute); other addresses are not slowed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
