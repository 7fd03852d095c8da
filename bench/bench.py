#!/usr/bin/env python3
"""`make bench`: nutlite's upsd against Debian's upsd serving the same UPS, in one run on one machine.

Prints requests/s and p50/p99 latency for GET VAR and LIST VAR with 1, 100 and 1000 concurrent clients,
the nutlite/Debian ratio of each, connection errors (resets), each server's RSS with 1000 clients, the time
nutlite's upsd takes to accept connections after start, and the CPU that driver + upsd use over 60 s
with no clients. Figures, not assertions: the machines are noisy.

Options: --seconds N per load point (default 3), --idle N seconds of the idle-CPU check (default 60),
--clients 1,100,1000, --only nutlite|debian, --dev FILE (a dummy-ups .dev to serve).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from nutenv import NutEnv, UpsSpec, real_nut_available  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data" / "ddl"
DEFAULT_DEV = SHARED / "Eaton" / "Eaton__5PX_2000__usbhid-ups__2.7.4__01.dev"
UPS = "bench"


def fallback_dev() -> str:
    """A HID-sized UPS (about 90 variables) when the shared dumps are not there."""
    lines = [f"ups.var{i:02d}: value {i}" for i in range(80)]
    lines += ["ups.status: OL CHRG", "battery.charge: 100", "battery.runtime: 3600", "ups.load: 20",
              "input.voltage: 230.1", "output.voltage: 230.0", "ups.mfr: Bench", "ups.model: Bench UPS"]
    return "\n".join(lines) + "\n"


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    clients_ok: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


async def _client(port: int, request: bytes, is_list: bool, start: asyncio.Event, stop_at: list[float],
                  lat: list[float], counters: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    except OSError:
        counters[1] += 1
        return
    counters[2] += 1
    # a LIST reply ends with "END <the request>"; read it in chunks, not line by line, so the load
    # generator (Python too) is not what limits the figures
    end_line = b"END " + request
    try:
        await start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            writer.write(request)
            if is_list:
                buf = b""
                while not (buf.endswith(end_line) or buf.startswith(b"ERR")):
                    chunk = await reader.read(1 << 20)
                    if not chunk:
                        raise ConnectionResetError("closed")
                    buf += chunk
            else:
                line = await reader.readline()
                if not line:
                    raise ConnectionResetError("closed")
            lat.append(time.perf_counter() - t0)
            counters[0] += 1
    except OSError:
        counters[1] += 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _load(port: int, request: str, clients: int, seconds: float) -> Result:
    is_list = request.startswith("LIST")
    start = asyncio.Event()
    stop_at = [0.0]
    lat: list[float] = []
    counters = [0, 0, 0]  # requests, errors, connected
    tasks = [asyncio.create_task(_client(port, (request + "\n").encode(), is_list, start, stop_at, lat, counters))
             for _ in range(clients)]
    # all clients connect at once, then the clock starts
    for _ in range(200):
        await asyncio.sleep(0.01)
        if counters[2] + counters[1] >= clients:
            break
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.set()
    await asyncio.gather(*tasks)
    return Result(counters[0], time.perf_counter() - t0, lat, counters[1], counters[2])


def load(port: int, request: str, clients: int, seconds: float) -> Result:
    return asyncio.run(_load(port, request, clients, seconds))


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Peak RSS of a process while a load runs (sampled in a thread)."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid = pid
        self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def start_env(base: Path, flavour: str, dev: Path | None) -> NutEnv:
    files: dict[str, str | bytes | Path] = {"bench.dev": dev if dev else fallback_dev()}
    env = NutEnv(base / flavour, [UpsSpec(UPS, port="bench.dev")], driver_flavour=flavour,
                 upsd_flavour=flavour, files=files)
    env.start()
    return env


def ready_time(env: NutEnv, runs: int = 5) -> float:
    """Median seconds from starting upsd to its first accepted connection."""
    times = []
    for _ in range(runs):
        env.stop_upsd()
        time.sleep(0.2)
        t0 = time.perf_counter()
        env.start_upsd(wait=False)
        while True:
            try:
                with socket.create_connection(("127.0.0.1", env.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.002)
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("upsd did not start listening within 10 s")
        times.append(time.perf_counter() - t0)
    env.wait_ready()
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--clients", default="1,100,1000")
    ap.add_argument("--only", choices=("nutlite", "debian"))
    ap.add_argument("--dev", type=Path, default=DEFAULT_DEV if DEFAULT_DEV.exists() else None)
    args = ap.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    flavours = ["nutlite", "debian"]
    if args.only:
        flavours = [args.only]
    elif not real_nut_available():
        print("Debian's NUT is not installed (apt-get install nut-server nut-client): nutlite only\n")
        flavours = ["nutlite"]
    base = Path(tempfile.mkdtemp(prefix="nutlite-bench-"))
    envs: dict[str, NutEnv] = {}
    try:
        for fl in flavours:
            envs[fl] = start_env(base, fl, args.dev)
        nvars = len(envs[flavours[0]].connect().request_list(f"LIST VAR {UPS}")) - 2
        print(f"UPS served: {nvars} variables ({args.dev.name if args.dev else 'built-in .dev'}); "
              f"{args.seconds:g} s per load point; {os.cpu_count()} cores\n")
        clients = [int(c) for c in args.clients.split(",")]
        rows = []
        peak_rss: dict[str, int] = {}
        for request in (f"GET VAR {UPS} ups.status", f"LIST VAR {UPS}"):
            for n in clients:
                res: dict[str, Result] = {}
                for fl, env in envs.items():
                    with RssSampler(env.upsd_pid) as s:
                        res[fl] = load(env.port, request, n, args.seconds)
                    if n == max(clients):
                        peak_rss[fl] = max(peak_rss.get(fl, 0), s.peak)
                    time.sleep(0.3)
                rows.append((request.split()[0] + " " + request.split()[1], n, res))
        print(f"{'request':<9} {'clients':>7} | {'server':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'served':>6} | {'ratio':>7}")
        for req, n, res in rows:
            for fl, r in res.items():
                ratio = ""
                if fl == "nutlite" and "debian" in res and res["debian"].rate:
                    ratio = f"{r.rate / res['debian'].rate:6.1f}x"
                print(f"{req:<9} {n:>7} | {fl:<7} {r.rate:>9.0f} {r.pct(50):>8.2f} {r.pct(99):>8.2f} "
                      f"{r.errors:>6} {r.clients_ok:>6} | {ratio:>7}")
        print()
        for fl, kb in peak_rss.items():
            print(f"upsd RSS, peak with {max(clients)} clients: {fl:<7} {kb / 1024:6.1f} MB")
        if "nutlite" in envs:
            print(f"nutlite upsd ready to accept after start (median of 5): {ready_time(envs['nutlite']) * 1000:.0f} ms")
        if args.idle > 0:
            time.sleep(1)
            before = {}
            for fl, env in envs.items():
                pids = {"upsd": env.upsd_pid, "driver": env.driver_pid(UPS)}
                before[fl] = {k: (p, cpu_seconds(p)) for k, p in pids.items()}
            t0 = time.monotonic()
            time.sleep(args.idle)
            wall = time.monotonic() - t0
            for fl, procs in before.items():
                parts = []
                total = 0.0
                for k, (p, c0) in procs.items():
                    used = (cpu_seconds(p) - c0) / wall * 100
                    total += used
                    parts.append(f"{k} {used:.2f}%")
                print(f"idle CPU over {wall:.0f} s, no clients: {fl:<7} {total:6.2f}% of a core ({', '.join(parts)})")
    finally:
        for env in envs.values():
            env.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
