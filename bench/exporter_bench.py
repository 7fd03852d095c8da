#!/usr/bin/env python3
"""nutlite exporter: scrape latency and RSS for 1, 10 and 50 UPSes, beside nut_exporter's request pattern.

For each UPS count, every UPS is a scripted driver (tests/nutenv.py FakeDriver) serving a HID-sized UPS
(the Eaton 5PX dump from shared/data/ddl, about 90 variables, plus 10 instant commands). Measured:

* ``nutlite exporter`` (a separate process, ``--names nut_exporter``) scraping nutlite's upsd, and
  the same exporter scraping Debian's upsd: p50/p95 of a full ``/metrics`` request over N scrapes, and
  the exporter's RSS after them;
* a client replaying DRuggeri/nut_exporter's per-scrape wire sequence (go.nut: ``VER``, ``NETVER``,
  ``LIST CLIENT``, ``LIST CMD`` + ``GET CMDDESC`` per command, ``GET UPSDESC``, ``GET NUMLOGINS``,
  ``LIST VAR`` + ``GET DESC`` + ``GET TYPE`` per variable, ``LOGOUT``; one scrape per UPS since it
  exports one UPS per scrape) against Debian's upsd for the same UPSes: time for all of them and the
  round trips it takes.

Figures, not assertions. Options: --counts 1,10,50, --scrapes N (default 20).
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from nutenv import REPO_ROOT, STAY_ROOT, FakeDriver, NutEnv, UpsSpec, free_port, real_nut_available  # noqa: E402

DEV = HERE.parent.parent / "shared" / "data" / "ddl" / "Eaton" / "Eaton__5PX_2000__usbhid-ups__2.7.4__01.dev"
CMDS = ["beeper.disable", "beeper.enable", "beeper.mute", "load.off", "load.on", "shutdown.return",
        "shutdown.stayoff", "shutdown.stop", "test.battery.start.deep", "test.battery.start.quick"]


def ups_vars() -> dict[str, str]:
    out: dict[str, str] = {}
    if DEV.exists():
        for line in DEV.read_text(errors="replace").splitlines():
            m = re.match(r"^([a-z][\w.-]*):\s*(.*)$", line.strip())
            if m and not m.group(1).startswith("driver."):
                out[m.group(1)] = m.group(2).strip().strip('"')
    if len(out) < 10:  # no shared dumps: a HID-sized stand-in
        out = {f"ups.var{i:02d}": str(i) for i in range(80)}
        out.update({"ups.status": "OL CHRG", "battery.charge": "100", "battery.runtime": "3600"})
    out.setdefault("ups.status", "OL")
    return out


def make_env(base: Path, count: int, flavour: str) -> NutEnv:
    specs = []
    for i in range(count):
        fake = FakeDriver("/nonexistent")
        for k, v in ups_vars().items():
            fake.setvar(k, v)
        fake.addcmd(*CMDS)
        specs.append(UpsSpec(f"ups{i:02d}", driver="fakedrv", port="/dev/null", launch="fake", fake=fake))
    return NutEnv(base, specs, driver_flavour=flavour, upsd_flavour=flavour)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bench_exporter(nut_port: int, scrapes: int) -> tuple[float, float, int, int]:
    """(p50 ms, p95 ms, RSS KiB, body bytes) for the exporter process scraping ``nut_port``."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "nutlite", "exporter", "--listen", f"127.0.0.1:{port}",
                             "--server", f"127.0.0.1:{nut_port}", *STAY_ROOT], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=10).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        times = []
        size = 0
        for _ in range(scrapes):
            t0 = time.perf_counter()
            size = len(urllib.request.urlopen(url, timeout=30).read())
            times.append((time.perf_counter() - t0) * 1000)
        rss = rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], rss, size


class LineClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.round_trips = 0

    def _line(self) -> str:
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("latin-1")

    def one(self, req: str) -> str:
        self.round_trips += 1
        self.sock.sendall(req.encode() + b"\n")
        return self._line()

    def listing(self, req: str) -> list[str]:
        first = self.one(req)
        if first.startswith("ERR"):
            return []
        end = "END" + first[5:]
        items = []
        while (line := self._line()) != end:
            items.append(line)
        return items


def gonut_scrape(nut_port: int, ups: str) -> int:
    """One DRuggeri/nut_exporter scrape of ``ups`` as go.nut does it; returns the round trips."""
    c = LineClient(nut_port)
    c.one("VER")
    c.one("NETVER")
    c.listing(f"LIST CLIENT {ups}")
    for line in c.listing(f"LIST CMD {ups}"):
        c.one(f"GET CMDDESC {ups} {line.split()[2]}")
    c.one(f"GET UPSDESC {ups}")
    c.one(f"GET NUMLOGINS {ups}")
    for line in c.listing(f"LIST VAR {ups}"):
        var = line.split()[2]
        c.one(f"GET DESC {ups} {var}")
        c.one(f"GET TYPE {ups} {var}")
    c.one("LOGOUT")
    c.sock.close()
    return c.round_trips


def bench_gonut(nut_port: int, count: int, scrapes: int) -> tuple[float, float, int]:
    times = []
    trips = 0
    for _ in range(scrapes):
        t0 = time.perf_counter()
        trips = sum(gonut_scrape(nut_port, f"ups{i:02d}") for i in range(count))
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], trips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1,10,50")
    ap.add_argument("--scrapes", type=int, default=20)
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.counts.split(",")]
    # Measure the exporter as installed: pip compiles the package's bytecode, while a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module at each start (and keep ~2 MB more RSS).
    compileall.compile_dir(str(REPO_ROOT / "nutlite"), quiet=1)
    debian = real_nut_available()
    print(f"UPS: {len(ups_vars())} variables, {len(CMDS)} commands; {args.scrapes} scrapes per figure")
    if not debian:
        print("Debian's NUT is not installed: the Debian columns are left out")
    header = f"{'UPSes':>5} | {'exporter->nutlite upsd p50/p95 ms':>34} | {'RSS MiB':>7} | {'bytes':>7}"
    if debian:
        header += f" | {'exporter->Debian upsd p50/p95':>30} | {'go.nut seq->Debian p50/p95 ms':>30} | {'RTTs':>6}"
    print(header)
    print("-" * len(header))
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            env = make_env(Path(tmp) / "nutlite", count, "nutlite")
            with env:
                p50, p95, rss, size = bench_exporter(env.port, args.scrapes)
            row = f"{count:>5} | {p50:>16.1f} / {p95:<15.1f} | {rss / 1024:>7.1f} | {size:>7}"
            if debian:
                denv = make_env(Path(tmp) / "debian", count, "debian")
                with denv:
                    d50, d95, _, _ = bench_exporter(denv.port, args.scrapes)
                    g50, g95, trips = bench_gonut(denv.port, count, max(3, args.scrapes // 4))
                row += f" | {d50:>13.1f} / {d95:<14.1f} | {g50:>13.1f} / {g95:<14.1f} | {trips:>6}"
            print(row, flush=True)
    print("exporter: 1 connection and 1 + N requests per scrape (LIST UPS, then LIST VAR per UPS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
