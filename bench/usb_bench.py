#!/usr/bin/env python3
"""usbhid-ups under usbsim: nutlite's driver beside Debian NUT 2.8.0's, on the same emulated device.

usbsim (../shared/tools/usbsim, a fake libusb-1.0 serving one capture) is built into a temp dir. For
each capture (the APC Back-UPS CS 500 and the Eaton 3S 700) each driver runs alone with its socket, at
its defaults (pollinterval 2, pollfreq 30), and is measured:

* cold start: from starting the driver (device present) to the first DUMPALL on its socket that holds
  the full set of variables (as many as it publishes at the end of the run);
* idle CPU: utime+stime from /proc/<pid>/stat over --idle seconds once started, in % of one core (one
  socket client stays connected and says nothing);
* replug: usbsim's ``unplug`` control line, the driver's DATASTALE, then ``replug``: the time from the
  replug line to the driver's DATAOK (fresh data);
* RSS and PSS of the driver process (/proc/<pid>/smaps_rollup) at the end.

The pollonly rows run the same drivers without interrupt reads: under usbsim an interrupt read that
waits costs CPU (the fake libusb polls its control file every 5 ms), where real libusb sleeps.

Figures, not assertions. Options: --idle SECONDS (default 30), --captures NAME,NAME.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from nutenv import NutEnv, UpsSpec, real_nut_available  # noqa: E402

USBSIM = REPO.parent / "shared" / "tools" / "usbsim"
CAPTURES = ("APC__Back-UPS_CS_500__051d-0002", "Eaton__3S_700__0463-ffff")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    cold: float | None = None
    variables: int = 0
    idle_cpu: float | None = None
    stale_after: float | None = None
    replug: float | None = None
    rss_kb: int | None = None
    pss_kb: int | None = None
    notes: list[str] = field(default_factory=list)


class DriverSocket:
    """A client of a driver's socket (NUT's driver protocol): DUMPALL, and the DATAOK/DATASTALE lines
    the driver broadcasts. It stays connected until the driver is killed (Debian's 2.8.0 drivers spin
    on a client's EOF)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.buf = b""
        self.events: list[tuple[float, str]] = []

    def _lines(self, timeout: float) -> list[str]:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return []
        if not data:
            raise ConnectionError("the driver closed its socket")
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        out = [ln.decode(errors="replace") for ln in lines]
        now = time.monotonic()
        self.events.extend((now, ln) for ln in out if ln in ("DATAOK", "DATASTALE"))
        return out

    def dumpall(self, timeout: float = 5.0) -> tuple[dict[str, str], bool]:
        """The variables of one DUMPALL, and whether the data was stale."""
        self.sock.sendall(b"DUMPALL\n")
        values: dict[str, str] = {}
        stale = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ln in self._lines(0.2):
                if ln == "DUMPDONE":
                    return values, stale
                if ln == "DATASTALE":
                    stale = True
                elif ln.startswith("SETINFO "):
                    name, _, value = ln[8:].partition(" ")
                    values[name] = value
        raise TimeoutError("no DUMPDONE from the driver")

    def wait_event(self, word: str, since: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while True:
            for t, ln in self.events:
                if ln == word and t >= since:
                    return t
            if time.monotonic() > deadline:
                return None
            self._lines(0.1)

    def close(self) -> None:
        self.sock.close()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def memory_kb(pid: int) -> tuple[int | None, int | None]:
    rss = pss = None
    try:
        for ln in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if ln.startswith("Rss:"):
                rss = int(ln.split()[1])
            elif ln.startswith("Pss:"):
                pss = int(ln.split()[1])
    except OSError:
        pass
    return rss, pss


def sim_env(lib: Path, base: Path, name: str) -> dict[str, str]:
    folder = USBSIM.parent.parent / "data" / "hid-captures"
    if not (folder / f"{name}.capture").exists():
        folder = USBSIM / "examples"
    files = [folder / f"{name}.capture", folder / f"{name}.usbsim"]
    return {"LD_LIBRARY_PATH": str(lib), "USBSIM_DEVICE": ":".join(str(f) for f in files if f.exists()),
            "USBSIM_CONTROL": str(base / "control"), "USBSIM_LOG": str(base / "usbsim.log")}


class Run:
    """One driver on one capture, in its own NutEnv (no upsd)."""

    def __init__(self, base: Path, lib: Path, capture: str, flavour: str, flags: tuple[str, ...] = ()) -> None:
        base.mkdir(parents=True)
        (base / "control").touch()
        self.base, self.flavour = base, flavour
        spec = UpsSpec("ups", driver="usbhid-ups", port="auto", env=sim_env(lib, base, capture))
        self.env = NutEnv(base, [spec], driver_flavour=flavour, upsd_flavour="debian")
        self.env.write_configs()
        if flags:
            conf = self.env.confpath / "ups.conf"
            conf.write_text(conf.read_text().rstrip("\n") + "\n" + "".join(f"  {f}\n" for f in flags))
        self.fig = Figures()
        self.client: DriverSocket | None = None
        self.dumps: list[tuple[float, int]] = []
        self.t0 = 0.0

    def control(self, line: str) -> float:
        with open(self.base / "control", "a") as f:
            f.write(line + "\n")
        return time.monotonic()

    def cold_start(self, timeout: float = 30.0) -> None:
        self.t0 = time.monotonic()
        self.env.start_driver("ups", wait=False)
        self.env.wait_driver_socket("ups", timeout)
        deadline = self.t0 + timeout
        while self.client is None:
            try:
                self.client = DriverSocket(self.env.socket_path("ups"))
            except (ConnectionRefusedError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        settled = None
        while time.monotonic() < deadline:
            values, stale = self.client.dumpall()
            now = time.monotonic()
            self.dumps.append((now - self.t0, len(values) if "ups.status" in values and not stale else 0))
            if settled is None and "ups.status" in values and not stale:
                settled = now
            if settled is not None and now - settled > 3:  # a full poll's worth of later additions
                break
            time.sleep(0.02)

    def finish_cold(self) -> None:
        final = max(n for _, n in self.dumps)
        self.fig.variables = final
        self.fig.cold = next(t for t, n in self.dumps if n == final)

    def idle_start(self) -> None:
        self.pid = self.env.driver_pid("ups")
        self.ticks0, self.idle_t0 = cpu_ticks(self.pid), time.monotonic()

    def idle_stop(self) -> None:
        seconds = time.monotonic() - self.idle_t0
        self.fig.idle_cpu = 100.0 * (cpu_ticks(self.pid) - self.ticks0) / TICK / seconds

    def replug(self, timeout: float = 30.0) -> None:
        assert self.client is not None
        t = self.control("unplug")
        stale = self.client.wait_event("DATASTALE", t, timeout)
        if stale is None:
            self.fig.notes.append(f"no DATASTALE within {timeout:.0f} s of the unplug")
        else:
            self.fig.stale_after = stale - t
        t = self.control("replug")
        ok = self.client.wait_event("DATAOK", t, timeout)
        if ok is None:
            self.fig.notes.append(f"no DATAOK within {timeout:.0f} s of the replug")
        else:
            self.fig.replug = ok - t

    def stop(self) -> None:
        try:
            self.fig.rss_kb, self.fig.pss_kb = memory_kb(self.env.driver_pid("ups"))
        except KeyError:  # the driver never started
            pass
        self.env.stop()
        if self.client is not None:
            self.client.close()


def build_usbsim(into: Path) -> Path:
    r = subprocess.run(["make", "-s", "-C", str(USBSIM), f"BUILD={into}"], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0 or not (into / "libusb-1.0.so.0").exists():
        raise SystemExit(f"usb_bench: building usbsim failed: {r.stderr.strip()[-500:]}")
    return into


#: the rows of each capture: (label, flavour, ups.conf flags, replug measured). The pollonly rows show
#: the idle cost of the drivers without their interrupt reads (NUT 2.8.0 with pollonly never notices an
#: unplug, so no replug there)
ROWS = (("nutlite", "nutlite", (), True), ("debian", "debian", (), True),
        ("nutlite pollonly", "nutlite", ("pollonly",), False), ("debian pollonly", "debian", ("pollonly",), False))


def bench_capture(root: Path, lib: Path, capture: str, idle: float) -> dict[str, Figures]:
    runs = {label: Run(root / capture / label.replace(" ", "-"), lib, capture, flavour, flags)
            for label, flavour, flags, _ in ROWS}
    try:
        for run in runs.values():  # one after the other: the start-up times do not share the CPU
            run.cold_start()
            run.finish_cold()
        for run in runs.values():  # together: idle drivers hardly share anything
            run.idle_start()
        time.sleep(idle)
        for run in runs.values():
            run.idle_stop()
        for label, _flavour, _flags, replug in ROWS:
            if replug:
                runs[label].replug()
    finally:
        for run in runs.values():
            run.stop()
    return {f: r.fig for f, r in runs.items()}


def fmt(value: float | int | None, spec: str, unit: str) -> str:
    width = int(spec.split(".")[0].rstrip("df") or 0)
    return f"{'-':>{width}}" + " " * len(unit) if value is None else format(value, spec) + unit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="usb_bench.py", description="Start-up, replug, idle CPU and memory of nutlite's usbhid-ups beside "
        "Debian NUT 2.8.0's, both reading the same usbsim-emulated UPS")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement (default 30)")
    ap.add_argument("--captures", default=",".join(CAPTURES), help="capture names, comma-separated")
    args = ap.parse_args(argv)
    if not real_nut_available():
        print("usb_bench: Debian's NUT 2.8.0 is not installed (/lib/nut/usbhid-ups): skipped")
        return 0
    if os.geteuid() != 0:
        print("usb_bench: needs root (the drivers run with -u root against root-owned temp files): skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="usb-bench-") as tmp:
        root = Path(tmp)
        lib = build_usbsim(root / "usbsim")
        results = {c: bench_capture(root, lib, c, args.idle) for c in args.captures.split(",") if c}
    print(f"usbhid-ups under usbsim (pollinterval 2, pollfreq 30; idle CPU over {args.idle:.0f} s)")
    head = f"{'capture':34} {'driver':16} {'vars':>4} {'cold start':>10} {'idle CPU':>9} {'stale':>6} " \
           f"{'replug':>7} {'RSS':>8} {'PSS':>8}"
    print(head)
    print("-" * len(head))
    for capture, figs in results.items():
        for flavour, f in figs.items():
            print(f"{capture:34} {flavour:16} {f.variables:4d} {fmt(f.cold, '9.2f', 's')} {fmt(f.idle_cpu, '8.2f', '%')} "
                  f"{fmt(f.stale_after, '5.1f', 's')} {fmt(f.replug, '6.2f', 's')} {fmt(f.rss_kb, '6d', 'kB')} "
                  f"{fmt(f.pss_kb, '6d', 'kB')}")
            for note in f.notes:
                print(f"{'':34} {flavour:16} note: {note}")
    print("cold start: driver started with the device present -> its socket's DUMPALL has every variable; "
          "stale: unplug -> DATASTALE; replug: replug line -> DATAOK")
    print("idle CPU: nutlite's driver waits in an interrupt read all the time, Debian's for a part of each "
          "poll; under usbsim that wait itself costs CPU (the fake libusb looks at its control file every 5 ms "
          "while an interrupt read waits), where a real libusb sleeps in the kernel: the pollonly rows are "
          "the drivers without that wait")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
