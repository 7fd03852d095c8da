"""snmp-ups side by side: the recordings of ../shared/data/snmp/ served by snmpsim 1.2.2 on loopback (one
process, one community per recording), read by nutlite's snmp-ups under nutlite's upsd, and looked at
with Debian's own clients (upsc, upscmd -l, upsrw -l): what they show must equal what Debian's NUT 2.8.0
showed for the same recording (the ``.vars`` / ``.v1.vars`` / ``.cmds`` / ``.v1.cmds`` / ``.rw`` oracle
files), but for the differences listed below with their reasons. Also a live run of Debian's
/lib/nut/snmp-ups next to nutlite's on two recordings, and the two devices NUT refuses.

Without Debian's NUT (or snmpsim) the tests are skipped, or fail with NUTLITE_REQUIRE_REAL_NUT=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import NutEnv, UpsSpec, compare_vars, require_real_nut
from test_snmp_engine import COMMANDS_NOT_OFFERED  # noqa: E402 - one list of the known differences

from nutlite.snmp.client import SnmpClient, SnmpError, SnmpSettings

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "snmp"
SNMPSIM = Path(sys.executable).with_name("snmpsim-command-responder")
UPSC, UPSCMD, UPSRW = "/usr/bin/upsc", "/usr/bin/upscmd", "/usr/bin/upsrw"
REAL_SNMP_UPS = Path("/lib/nut/snmp-ups")

#: recordings NUT 2.8.0 detects (README of the data set), and the two it refuses
DETECTED = [
    "generex-ups_cs141", "eastpower-istars-swv053", "apc_smx750", "apc_surt3000xl", "apc_symmetralx",
    "apc_sua1500rmi2u", "eaton-mgeups_9pxle", "cyberpower", "eatonupsm2_9px-empg2", "deltaups",
    "huawei-gse200m",
]
REFUSED = ["socomec-ups", "liebert_apm"]

#: variables allowed to differ from the oracle, with the reason
INTENDED = {
    "driver.version": "nutlite's own release number, not NUT's 2.8.0",
    "driver.parameter.port": "the simulator's UDP port of this run, not the one of the recorded run",
}


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_upsc(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            out[name] = value
        elif line.endswith(":"):
            out[line[:-1]] = ""
    return out


def oracle(name: str, kind: str) -> str:
    return (DATA / f"{name}.nut-2.8.0.{kind}").read_text()


# --------------------------------------------------------------------------------------------------
# snmpsim


class Snmpsim:
    """One snmpsim-command-responder serving every recording (community ``nut-<name>``) on a free port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.cache = base / "cache"
        self.port = udp_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, names: list[str]) -> Snmpsim:
        self.data.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        os.chmod(self.cache, 0o777)
        for name in names:  # copies: snmpsim names a symlinked file's community after its target
            shutil.copyfile(DATA / f"{name}.snmprec", self.data / f"nut-{name}.snmprec")
        argv = [str(SNMPSIM), f"--data-dir={self.data}", f"--cache-dir={self.cache}",
                f"--agent-udpv4-endpoint=127.0.0.1:{self.port}", "--log-level=error"]
        if os.geteuid() == 0:  # it refuses to run as root without being told whom to become
            argv += ["--process-user=root", "--process-group=root"]
        log = open(self.base / "snmpsim.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.wait(names[0])
        return self

    def wait(self, name: str, timeout: float = 20.0) -> None:
        import asyncio

        async def ask() -> bool:
            s = SnmpSettings("127.0.0.1", self.port, "v2c", f"nut-{name}", timeout=0.3, retries=0)
            try:
                async with SnmpClient(s) as c:
                    await c.get(["1.3.6.1.2.1.1.2.0"])
                return True
            except SnmpError:
                return False

        deadline = time.monotonic() + timeout
        while not asyncio.run(ask()):
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.base / "snmpsim.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"snmpsim did not answer on 127.0.0.1:{self.port}\n{log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(5)
        self.proc = None


def require_core() -> None:
    """Skip while the sans-IO SNMP core (detection, engine, MIB tables) is not in the tree."""
    import importlib

    for module in ("nutlite.snmp.detect", "nutlite.snmp.engine", "nutlite.drivers.tables.snmp"):
        try:
            importlib.import_module(module)
        except ImportError:
            pytest.skip(f"the SNMP core is not in this tree yet ({module} missing)")


def require_snmpsim() -> None:
    require_real_nut()
    if not SNMPSIM.exists():
        pytest.fail(f"snmpsim is not installed in this venv ({SNMPSIM}): pip install -e '.[test]'")


@pytest.fixture(scope="module")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    require_snmpsim()
    sim = Snmpsim(tmp_path_factory.mktemp("snmpsim")).start(DETECTED + REFUSED)
    yield sim
    sim.stop()


# --------------------------------------------------------------------------------------------------
# nutlite's snmp-ups under nutlite's upsd, every recording, v2c and v1, against the oracle files


def section(name: str, version: str) -> str:
    return name if version == "v2c" else f"v1-{name}"


def start_env(base: Path, sim: Snmpsim, names: list[str], versions: tuple[str, ...], flavour: str) -> NutEnv:
    """One env serving a section per recording and version; the drivers start in parallel."""
    specs = [UpsSpec(section(n, v), driver="snmp-ups", port=f"127.0.0.1:{sim.port}", desc=f"{n} via snmpsim",
                     options={"snmp_version": v, "community": f"nut-{n}", "mibs": "auto"})
             for n in names for v in versions]
    return NutEnv(base, specs, driver_flavour=flavour, upsd_flavour=flavour).start_together(socket_timeout=60)


@pytest.fixture(scope="module")
def nutlite_env(snmpsim: Snmpsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NutEnv]:
    require_core()
    env = start_env(tmp_path_factory.mktemp("nl"), snmpsim, DETECTED, ("v2c", "v1"), "nutlite")
    yield env
    env.stop()


def client(tool: str, env: NutEnv, ups: str, *args: str) -> str:
    res = subprocess.run([tool, *args, f"{ups}@127.0.0.1:{env.port}"], capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, f"{tool} {ups}: {res.stderr}\n{env.logs()}"
    return res.stdout


CASES = [(n, v) for n in DETECTED for v in ("v2c", "v1")]


@pytest.mark.parametrize("name,version", CASES, ids=[f"{n}-{v}" for n, v in CASES])
def test_upsc_shows_what_nut_showed(nutlite_env: NutEnv, name: str, version: str) -> None:
    want = parse_upsc(oracle(name, "vars" if version == "v2c" else "v1.vars"))
    got = parse_upsc(client(UPSC, nutlite_env, section(name, version)))
    assert compare_vars(want, got, INTENDED) == []
    assert list(got) == list(want)  # the same names, in upsc's (case-insensitive) order


@pytest.mark.parametrize("name,version", CASES, ids=[f"{n}-{v}" for n, v in CASES])
def test_upscmd_lists_what_nut_listed(nutlite_env: NutEnv, name: str, version: str) -> None:
    want = oracle(name, "cmds" if version == "v2c" else "v1.cmds")
    got = client(UPSCMD, nutlite_env, section(name, version), "-l")
    names = [n for n in cmd_names(want) if n not in COMMANDS_NOT_OFFERED.get((name, version), {})]
    assert cmd_names(got) == names


def cmd_names(text: str) -> list[str]:
    """upscmd -l output: the names (the descriptions are upsd's, in nutlite's own words)."""
    return [ln.split(" - ")[0] for ln in text.splitlines()[2:] if " - " in ln]


def rw_blocks(text: str) -> list[list[str]]:
    """upsrw -l output without the description line of each variable (nutlite's own words)."""
    return [[ln for i, ln in enumerate(block.splitlines()) if i != 1] for block in text.strip().split("\n\n")]


#: writable variables shown differently on purpose: (recording, variable) -> reason
RW_DIFFERENCES = {
    ("eatonupsm2_9px-empg2", "battery.date"): "NUT 2.8.0 offers the battery date as an enumeration whose "
    "only choice is \"dummy\", so upsrw shows no value; nutlite offers it as a STRING of 128",
}


@pytest.mark.parametrize("name", DETECTED)
def test_upsrw_lists_what_nut_listed(nutlite_env: NutEnv, name: str) -> None:
    def keep(blocks: list[list[str]]) -> list[list[str]]:
        return [b for b in blocks if (name, b[0].strip("[]")) not in RW_DIFFERENCES]

    assert keep(rw_blocks(client(UPSRW, nutlite_env, name, "-l"))) == keep(rw_blocks(oracle(name, "rw")))


@pytest.mark.parametrize("name", REFUSED)
def test_devices_nut_refuses_are_refused_with_one_message(snmpsim: Snmpsim, name: str) -> None:
    require_core()
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "nutlite", "snmp-ups", "-s", name, "-x",
                          f"port=127.0.0.1:{snmpsim.port}", "-x", f"community=nut-{name}", "-x", "snmp_version=v2c",
                          "-x", "mibs=auto", "-d", "1"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert time.monotonic() - start < 10
    sysoid = next(line.split("|")[2] for line in (DATA / f"{name}.snmprec").read_text().splitlines()
                  if line.startswith("1.3.6.1.2.1.1.2.0|"))
    lines = [ln for ln in res.stderr.splitlines() if sysoid in ln]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout == ""


# --------------------------------------------------------------------------------------------------
# Live: Debian's /lib/nut/snmp-ups and nutlite's on the same simulator at the same time

LIVE = ["generex-ups_cs141", "apc_smx750"]


@pytest.fixture(scope="module")
def debian_env(snmpsim: Snmpsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NutEnv]:
    if not REAL_SNMP_UPS.exists():
        pytest.fail("Debian's /lib/nut/snmp-ups is missing: apt-get install -y nut-snmp")
    env = start_env(tmp_path_factory.mktemp("deb"), snmpsim, LIVE, ("v2c",), "debian")
    yield env
    env.stop()


@pytest.mark.parametrize("name", LIVE)
def test_this_simulator_gives_debians_driver_the_oracle(debian_env: NutEnv, name: str) -> None:
    """The set-up itself: Debian's driver reading this snmpsim publishes the oracle files' values."""
    want = parse_upsc(oracle(name, "vars"))
    got = parse_upsc(client(UPSC, debian_env, name))
    assert compare_vars(want, got, ("driver.parameter.port",)) == []
    assert client(UPSCMD, debian_env, name, "-l") == oracle(name, "cmds")


def test_live_side_by_side_with_debians_driver(debian_env: NutEnv, snmpsim: Snmpsim) -> None:
    require_core()
    # a short folder: the driver sockets are named after the long recording names (AF_UNIX: 108 bytes)
    short = Path(tempfile.mkdtemp(prefix="snmp-live-"))
    ours = start_env(short / "nl", snmpsim, LIVE, ("v2c",), "nutlite")
    try:
        for name in LIVE:
            want = parse_upsc(client(UPSC, debian_env, name))
            got = parse_upsc(client(UPSC, ours, name))
            assert compare_vars(want, got, INTENDED) == [], name
            assert cmd_names(client(UPSCMD, debian_env, name, "-l")) == cmd_names(client(UPSCMD, ours, name, "-l"))
            assert rw_blocks(client(UPSRW, debian_env, name, "-l")) == rw_blocks(client(UPSRW, ours, name, "-l"))
    finally:
        ours.stop()
        shutil.rmtree(short, ignore_errors=True)
