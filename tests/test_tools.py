"""nutlite's upsc, upscmd, upsrw and upslog side by side with Debian's 2.8.0 binaries.

Each case runs Debian's tool and ``python -m nutlite <tool>`` with the same arguments against the same
server (Debian's upsd with dummy-ups, a scripted driver for ENUM/RANGE/STRING variables and tracking,
a UPS without driver, and small misbehaving servers) and compares stdout, stderr and the exit code.
Known, deliberate differences are normalized: Debian's "Init SSL without certificate database" line,
the "(nutlite x.y)" in banners, and the wording of the help texts (only their first line is compared).
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nutenv import DATA_DIR, REPO_ROOT, FakeDriver, NutEnv, UpsSpec, free_port, require_real_nut
from test_client import LineServer, answer, garbage

from nutlite.tools.common import getopt, scan_options
from nutlite.tools.upslog import compile_format, render

interop = pytest.mark.interop  # the tests that need Debian's NUT (all but a few unit tests)

DEBIAN_BIN = Path("/bin")
NOISE = "Init SSL without certificate database"
BANNER_SUFFIX = re.compile(r" \(nutlite [^)]*\)")


@dataclass
class Result:
    rc: int
    out: str
    err: str


def make_fake() -> FakeDriver:
    fake = FakeDriver("unused")
    fake.setvar("a.both", "5", flags=["RW"], enums=["5"], ranges=[(1, 10)])
    fake.setvar("a.enumbad", "q", flags=["RW"], enums=["x"])
    fake.setvar("a.enumstr", "x y", flags=["RW", "STRING"], aux=10, enums=["x y", 'q"uote', "back\\slash"])
    fake.setvar("a.rangebad", "500", flags=["RW"], ranges=[(1, 10)])
    fake.setvar("a.str0", "v", flags=["RW", "STRING"])
    fake.setvar("battery.charge", "90")
    fake.setvar("input.sensitivity", "H", flags=["RW"], enums=["H", "M", "L"])
    fake.setvar("ups.delay.shutdown", "20", flags=["RW"], ranges=[(0, 60), (120, 180)])
    fake.setvar("ups.id", "abc", flags=["RW", "STRING"], aux=8)
    fake.setvar("ups.mfr", 'Fake "Co" #1 \\ x')
    fake.setvar("ups.status", "OL")
    fake.addcmd("beeper.toggle", "fake.cmd", "load.off", "test.battery.start")
    return fake


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NutEnv]:
    require_real_nut()
    for tool in ("upsc", "upscmd", "upsrw", "upslog"):
        if not (DEBIAN_BIN / tool).exists():
            msg = f"Debian's {tool} is not installed (apt-get install nut-client)"
            if os.environ.get("NUTLITE_REQUIRE_REAL_NUT") == "1":
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
    base = tmp_path_factory.mktemp("nut")
    nut = NutEnv(
        base,
        [
            UpsSpec("dummy", port="conformance.dev", desc="Test UPS"),
            UpsSpec("fake", launch="fake", fake=make_fake(), desc='Fake "UPS"'),
            UpsSpec("nodriver", launch="none"),
        ],
        driver_flavour="debian",
        upsd_flavour="debian",
        files={"conformance.dev": DATA_DIR / "conformance.dev"},
    )
    nut.start()
    try:
        yield nut
    finally:
        nut.stop()


@pytest.fixture
def fake(env: NutEnv) -> Iterator[FakeDriver]:
    drv = env.upses["fake"].fake
    assert drv is not None
    drv.tracking_result = 0
    yield drv
    drv.tracking_result = 0


def tool_env(env: NutEnv) -> dict[str, str]:
    e = env.environ()
    e["LC_ALL"] = "C"
    return e


def run_tool(env: NutEnv, flavour: str, tool: str, args: list[str], stdin: str = "") -> Result:
    if flavour == "debian":  # run as "upsc", not "/bin/upsc": getopt's messages name argv[0]
        argv, executable = [tool, *args], str(DEBIAN_BIN / tool)
    else:
        argv, executable = [sys.executable, "-m", "nutlite", tool, *args], sys.executable
    p = subprocess.run(
        argv,
        executable=executable,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=tool_env(env),
        cwd=REPO_ROOT,
        start_new_session=True,  # no controlling terminal: prompts read stdin
    )
    err = "".join(line for line in p.stderr.splitlines(keepends=True) if line.strip() != NOISE)
    return Result(p.returncode, BANNER_SUFFIX.sub("", p.stdout), BANNER_SUFFIX.sub("", err))


def expand(env: NutEnv, args: list[str], extra: dict[str, str] | None = None) -> list[str]:
    subst = {"H": f"127.0.0.1:{env.port}", **(extra or {})}
    return [a.format(**subst) for a in args]


def compare(env: NutEnv, tool: str, args: list[str], stdin: str = "", help_text: bool = False) -> Result:
    deb = run_tool(env, "debian", tool, args, stdin)
    mine = run_tool(env, "nutlite", tool, args, stdin)
    if help_text:  # our own wording: compare the exit code, stderr and the banner line
        assert (mine.rc, mine.err) == (deb.rc, deb.err)
        assert mine.out.splitlines()[:1] == deb.out.splitlines()[:1]
        assert mine.out.startswith(deb.out.split("\n\n")[0])
        return mine
    assert (mine.rc, mine.out, mine.err) == (deb.rc, deb.out, deb.err), f"args: {args}"
    return mine


# --------------------------------------------------------------------------------------------
# upsc

UPSC_CASES = [
    ["-l", "{H}"],
    ["-L", "{H}"],
    ["-L", "-l", "{H}"],
    ["-l", "{H}", "extra"],
    ["dummy@{H}"],
    ["fake@{H}"],
    ["dummy@{H}", "ups.id"],
    ["fake@{H}", "ups.mfr"],
    ["FAKE@{H}", "UPS.STATUS"],
    ["fake@{H}", "ups.status", "extra"],
    ["fake@{H}", "nope.var"],
    ["fake@{H}", "status"],
    ["fake@{H}", ""],
    ["nope@{H}"],
    ["nope@{H}", "ups.status"],
    ["nodriver@{H}"],
    ["nodriver@{H}", "ups.status"],
    ["@{H}"],
    ["-c", "fake@{H}"],
    ["-c", "nope@{H}"],
    ["-c", "nodriver@{H}"],
    ["-c", "fake@{H}", "-l"],
    ["-c", "-l", "{H}"],
    ["-l", "-c", "fake@{H}"],
    [],
    [""],
    ["-c"],
    ["-c", ""],
    ["-l", ""],
    ["-l", "127.0.0.1:abc"],
    ["-l", "127.0.0.1:"],
    ["fake@127.0.0.1:70000"],
    ["fake@[::1"],
    ["fake@::1"],
    ["fake@[127.0.0.1]:{PORT}", "ups.status"],
    ["fake@{H}:junk", "ups.status"],
    ["fake@127.0.0.1:{CLOSED}"],
    ["-l", "127.0.0.1:{CLOSED}"],
    ["fake@127.0.0.1:{CLOSED}", "status"],
    ["fake@nonexistent.invalid"],
]


@interop
@pytest.mark.parametrize("args", UPSC_CASES, ids=[" ".join(a) or "(none)" for a in UPSC_CASES])
def test_upsc(env: NutEnv, args: list[str]) -> None:
    compare(env, "upsc", expand(env, args, {"PORT": str(env.port), "CLOSED": str(free_port())}))


@interop
@pytest.mark.parametrize("args", [["-h"], ["-x"], ["-h", "-l", "{H}"]])
def test_upsc_help(env: NutEnv, args: list[str]) -> None:
    compare(env, "upsc", expand(env, args), help_text=True)


@interop
def test_upsc_clients(env: NutEnv) -> None:
    with env.connect() as conn:
        for line in ("USERNAME monsec", "PASSWORD secpw", "LOGIN fake"):
            assert conn.request(line) == "OK"
        assert compare(env, "upsc", expand(env, ["-c", "fake@{H}"])).out == "127.0.0.1\n"


@interop
def test_upsc_output_matches_values(env: NutEnv) -> None:
    out = compare(env, "upsc", expand(env, ["dummy@{H}"])).out
    assert "ups.id: hash # tag\n" in out
    assert 'input.sensitivity: say "hi"\n' in out


# --------------------------------------------------------------------------------------------
# Misbehaving servers


@pytest.fixture(scope="module")
def bad_servers() -> Iterator[dict[str, int]]:
    replies = {
        "STARTTLS": "ERR FEATURE-NOT-CONFIGURED\n",
        "SET TRACKING ON": "ERR UNKNOWN-COMMAND\n",
        "USERNAME a": "OK\n",
        "PASSWORD b": "OK\n",
        "GET VAR u a.b": "ERR UNKNOWN-COMMAND\n",
        "LIST VAR u": "ERR UNKNOWN-COMMAND\n",
        "INSTCMD u c.d": "OK\n",
    }

    def close_after_starttls(conn: socket.socket, line: str) -> bool:
        if line == "STARTTLS":  # refuse TLS like upsd without certificate, then hang up
            conn.sendall(b"ERR FEATURE-NOT-CONFIGURED\n")
            return False
        return True

    servers = {
        "closing": LineServer(close_after_starttls),
        "garbage": LineServer(garbage),
        "oldupsd": LineServer(answer(replies)),
    }
    for s in servers.values():
        s.__enter__()
    try:
        yield {name: s.port for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.__exit__(None, None, None)


BAD_CASES = [
    ("upsc", ["u@127.0.0.1:{closing}", "ups.status"]),
    ("upsc", ["u@127.0.0.1:{garbage}", "ups.status"]),
    ("upsc", ["-l", "127.0.0.1:{garbage}"]),
    ("upsc", ["u@127.0.0.1:{oldupsd}", "a.b"]),
    ("upsc", ["u@127.0.0.1:{oldupsd}"]),
    ("upscmd", ["-l", "u@127.0.0.1:{garbage}"]),
    ("upscmd", ["-u", "a", "-p", "b", "u@127.0.0.1:{closing}", "c.d"]),
    ("upscmd", ["-u", "a", "-p", "b", "-w", "u@127.0.0.1:{oldupsd}", "c.d"]),
    ("upscmd", ["-u", "a", "-p", "b", "u@127.0.0.1:{oldupsd}", "c.d"]),
    ("upsrw", ["u@127.0.0.1:{garbage}"]),
    ("upsrw", ["-s", "a.b=c", "-u", "a", "-p", "b", "-w", "u@127.0.0.1:{oldupsd}"]),
]


@interop
@pytest.mark.parametrize("tool, args", BAD_CASES, ids=[f"{t} {' '.join(a)}" for t, a in BAD_CASES])
def test_misbehaving_servers(env: NutEnv, bad_servers: dict[str, int], tool: str, args: list[str]) -> None:
    compare(env, tool, expand(env, args, {k: str(v) for k, v in bad_servers.items()}))


# --------------------------------------------------------------------------------------------
# upscmd

UPSCMD_CASES = [
    ["-l", "fake@{H}"],
    ["-l", "dummy@{H}"],
    ["-l", "nope@{H}"],
    ["-l", "nodriver@{H}"],
    ["-l", "fake@{H}", "extra"],
    ["-u", "admin", "-p", "adminpw", "fake@{H}", "test.battery.start"],
    ["-u", "admin", "-p", "adminpw", "fake@{H}", "load.off", "5"],
    ["-u", "admin", "-p", "adminpw", "fake@{H}", "load.off", "5", "6"],
    ["-u", "admin", "-p", "wrong", "fake@{H}", "test.battery.start"],
    ["-u", "nobody", "-p", "nobodypw", "fake@{H}", "test.battery.start"],
    ["-u", "admin", "-p", "adminpw", "fake@{H}", "no.such.cmd"],
    ["-u", "admin", "-p", "adminpw", "fake@{H}", "oldname"],
    ["-u", "admin", "-p", "adminpw", "nope@{H}", "load.off"],
    ["-u", "admin", "-p", "adminpw", "nodriver@{H}", "load.off"],
    ["-u", "admin", "-p", "adminpw", "-t", "abc", "fake@{H}", "load.off"],
    ["-u", "admin", "-p", "adminpw", "-t", "-5", "-w", "fake@{H}", "load.off"],
    ["-u", "admin", "-p", "adminpw", "-t", "0", "-w", "fake@{H}", "load.off"],
    ["-u", "admin", "-p", "adminpw", "fake@127.0.0.1:{CLOSED}", "oldname"],
    ["-uadmin", "-padminpw", "fake@{H}", "test.battery.start"],
]


@interop
@pytest.mark.parametrize("args", UPSCMD_CASES, ids=[" ".join(a) for a in UPSCMD_CASES])
def test_upscmd(env: NutEnv, fake: FakeDriver, args: list[str]) -> None:
    compare(env, "upscmd", expand(env, args, {"CLOSED": str(free_port())}))


# Driver result codes and how upscmd -w shows them (4, "conversion failed": Debian's upsd 2.8.0 says ERR UNKNOWN).
@interop
@pytest.mark.parametrize("result, shown", [(0, "SUCCESS"), (1, "ERR UNKNOWN"), (2, "ERR INVALID-ARGUMENT"),
                                           (3, "ERR FAILED"), (4, "ERR UNKNOWN")])  # fmt: skip
def test_upscmd_wait(env: NutEnv, fake: FakeDriver, result: int, shown: str) -> None:
    fake.tracking_result = result
    got = compare(env, "upscmd", expand(env, ["-u", "admin", "-p", "adminpw", "-w", "fake@{H}", "load.off"]))
    assert (got.rc, got.err) == (0, shown + "\n")


@interop
def test_upscmd_wait_timeout(env: NutEnv, fake: FakeDriver) -> None:
    fake.tracking_result = None  # the driver never answers: PENDING
    got = compare(
        env, "upscmd", expand(env, ["-u", "admin", "-p", "adminpw", "-w", "-t", "1", "fake@{H}", "fake.cmd"])
    )
    assert (got.rc, got.err) == (1, "Can't receive status tracking information: timeout\n")


@interop
@pytest.mark.parametrize("args", [[], ["-h"], ["-l"], ["fake@{H}"], ["-x"], ["-u"], ["-t"]])
def test_upscmd_usage(env: NutEnv, args: list[str]) -> None:
    compare(env, "upscmd", expand(env, args), help_text=True)


@pytest.mark.parametrize(
    "args, stdin",
    [
        (["fake@{H}", "test.battery.start"], "admin\nadminpw\n"),
        (["fake@{H}", "test.battery.start"], "\nadminpw\n"),  # empty answer: the login name
        (["fake@{H}", "test.battery.start"], ""),  # end of input at the username prompt
        (["-u", "admin", "fake@{H}", "test.battery.start"], "adminpw\n"),
        (["-p", "adminpw", "fake@{H}", "test.battery.start"], "admin\n"),
    ],
)
@interop
def test_upscmd_prompts(env: NutEnv, fake: FakeDriver, args: list[str], stdin: str) -> None:
    compare(env, "upscmd", expand(env, args), stdin=stdin)


# --------------------------------------------------------------------------------------------
# upsrw

UPSRW_CASES = [
    ["fake@{H}"],
    ["-l", "fake@{H}"],
    ["dummy@{H}"],
    ["fake@{H}", "extra"],
    ["nope@{H}"],
    ["nodriver@{H}"],
    ["-u", "admin", "fake@{H}"],
    ["-s", "ups.id=xyz", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", 'ups.id=a "b" #c', "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.id=", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.id=a=b", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.id=waytoolongvalue", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "input.sensitivity=Q", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "input.sensitivity=M", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.delay.shutdown=90", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.delay.shutdown=130", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "nope.var=1", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.mfr=1", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.id=1", "-u", "admin", "-p", "wrong", "fake@{H}"],
    ["-s", "ups.id=1", "-u", "nobody", "-p", "nobodypw", "fake@{H}"],
    ["-s", "oldname=1", "-u", "admin", "-p", "adminpw", "fake@{H}"],
    ["-s", "ups.id=1", "-u", "admin", "-p", "adminpw", "nope@{H}"],
    ["-s", "ups.id=1", "-u", "admin", "-p", "adminpw", "-t", "x", "fake@{H}"],
    ["-s", "ups.id=1", "-u", "admin", "-p", "adminpw", "fake@127.0.0.1:{CLOSED}"],
    ["-V"],
]


@interop
@pytest.mark.parametrize("args", UPSRW_CASES, ids=[" ".join(a) for a in UPSRW_CASES])
def test_upsrw(env: NutEnv, fake: FakeDriver, args: list[str]) -> None:
    compare(env, "upsrw", expand(env, args, {"CLOSED": str(free_port())}))


@interop
def test_upsrw_listing_format(env: NutEnv) -> None:
    out = compare(env, "upsrw", expand(env, ["fake@{H}"])).out
    assert "[input.sensitivity]\nInput power sensitivity\nType: ENUM NUMBER\n" in out
    assert 'Option: "H" SELECTED\nOption: "M"\n' in out or 'Option: "M" SELECTED\n' in out
    assert "Type: RANGE NUMBER\n" in out
    assert "[ups.id]\nUPS system identifier\nType: STRING\nMaximum length: 8\nValue: " in out
    assert 'Option: "q"uote"\n' in out  # options are shown raw inside the quotes


@interop
@pytest.mark.parametrize("result, shown", [(0, "SUCCESS"), (3, "ERR FAILED")])
def test_upsrw_wait(env: NutEnv, fake: FakeDriver, result: int, shown: str) -> None:
    fake.tracking_result = result
    got = compare(
        env, "upsrw", expand(env, ["-s", "ups.id=w", "-u", "admin", "-p", "adminpw", "-w", "fake@{H}"])
    )
    assert (got.rc, got.err) == (0, shown + "\n")


@interop
def test_upsrw_wait_timeout(env: NutEnv, fake: FakeDriver) -> None:
    fake.tracking_result = None
    args = ["-s", "ups.id=t", "-u", "admin", "-p", "adminpw", "-w", "-t", "1", "fake@{H}"]
    got = compare(env, "upsrw", expand(env, args))
    assert got.rc == 1


@interop
@pytest.mark.parametrize("args", [[], ["-h"], ["-x"], ["-s"], ["-s", "ups.id=1", "-u", "admin"]])
def test_upsrw_usage(env: NutEnv, args: list[str]) -> None:
    compare(env, "upsrw", expand(env, args), help_text=True)


@pytest.mark.parametrize(
    "args, stdin",
    [
        (["-s", "ups.id", "fake@{H}"], "admin\nadminpw\nprompted\n"),
        (["-s", "ups.id", "-u", "admin", "-p", "adminpw", "fake@{H}"], "value2\n"),
        (["-s", "ups.id=x", "fake@{H}"], "\nadminpw\n"),
        (["-s", "ups.id=x", "fake@{H}"], ""),  # end of input: login name, empty password
        (["-s", "ups.id=x", "-u", "admin", "fake@{H}"], "adminpw\n"),
    ],
)
@interop
def test_upsrw_prompts(env: NutEnv, fake: FakeDriver, args: list[str], stdin: str) -> None:
    compare(env, "upsrw", expand(env, args), stdin=stdin)


@interop
def test_upsrw_sets_the_value(env: NutEnv, fake: FakeDriver) -> None:
    run_tool(
        env,
        "nutlite",
        "upsrw",
        expand(env, ["-s", 'ups.id=q"#\\', "-u", "admin", "-p", "adminpw", "fake@{H}"]),
    )
    deadline = time.monotonic() + 3
    while True:
        got = run_tool(env, "nutlite", "upsc", expand(env, ["fake@{H}", "ups.id"])).out
        if got == 'q"#\\\n' or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got == 'q"#\\\n'


# --------------------------------------------------------------------------------------------
# upslog


def test_upslog_template_unit() -> None:
    values = {"ups.status": "OL", "battery.charge": "90"}
    pieces = compile_format(
        "%VAR ups.status% [%var battery.charge%] %VAR nope% %% %FOO% %VAR% %UPSHOST x% x %ETIME"
    )
    line = render(pieces, "ups@host", values.get, now=1000.0)
    assert line == "OL [90] NA % INVALID INVALID ups@host x INVALIDETIME"
    assert (
        render(compile_format("%ETIME%|%TIME @Y@%|a%"), "u", values.get, now=86400.0 * 365)
        == "31536000|1971%|aINVALID"
    )
    assert render(compile_format("%PID%"), "u", values.get) == str(os.getpid())
    assert render(compile_format("%HOST%"), "u", values.get) == socket.gethostname()
    assert re.fullmatch(r"\d{8} \d{6}", render(compile_format("%TIME%"), "u", values.get))


def start_upslog(env: NutEnv, flavour: str, args: list[str]) -> subprocess.Popen[str]:
    if flavour == "debian":
        argv, executable = ["upslog"], str(DEBIAN_BIN / "upslog")
    else:
        argv, executable = [sys.executable, "-m", "nutlite", "upslog"], sys.executable
    return subprocess.Popen(
        [*argv, *args],
        executable=executable,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tool_env(env),
        cwd=REPO_ROOT,
        start_new_session=True,
    )


def read_lines(proc: subprocess.Popen[str], count: int, timeout: float = 15) -> list[str]:
    """``count`` more stdout lines (read from the pipe directly, the text wrapper stays empty)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    buf = b""
    while len(lines) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 1)  # byte by byte: never read past the lines asked for
        if not chunk:
            break
        buf += chunk
        if chunk == b"\n":
            lines.append(buf[:-1].decode())
            buf = b""
    return lines


def upslog_session(env: NutEnv, flavour: str, args: list[str]) -> tuple[list[str], str, int]:
    """Start upslog logging to stdout, take the first line, ask for one more with USR1, stop it with
    TERM; return stdout lines (banner, header, first, second), stderr and exit code."""
    proc = start_upslog(env, flavour, args)
    try:
        lines = read_lines(proc, 3)
        for _ in range(20):  # USR1 = log now (resent: one arriving before upslog sleeps is lost)
            proc.send_signal(signal.SIGUSR1)
            more = read_lines(proc, 1, timeout=0.5)
            if more:
                lines += more
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = "".join(ln for ln in err.splitlines(keepends=True) if ln.strip() != NOISE)
    return [BANNER_SUFFIX.sub("", ln) for ln in lines[:4]], err, proc.returncode


UPSLOG_FORMAT = (
    "%UPSHOST% [%VAR ups.status%] %VAR ups.mfr% %VAR battery.charge% %VAR nope.var% %VAR ups.status x% "
    "%FOO% %VAR% %% %var ups.id% %TIME @%"
)


@interop
@pytest.mark.parametrize("target", ["fake@{H}", "nodriver@{H}", "nope@{H}", "fake@127.0.0.1:{CLOSED}"])
def test_upslog_lines(env: NutEnv, target: str) -> None:
    args = [
        "-s",
        *expand(env, [target], {"CLOSED": str(free_port())}),
        "-l",
        "-",
        "-i",
        "30",
        "-f",
        UPSLOG_FORMAT,
    ]
    deb = upslog_session(env, "debian", args)
    mine = upslog_session(env, "nutlite", args)
    assert mine[0] == deb[0]
    # Debian's stderr ends with "Signal 15: exiting"; before it the same warnings.
    assert mine[1] == deb[1]
    assert mine[2] == deb[2] == 0


UPSLOG_ERRORS = [
    [],
    ["-s", "fake@{H}"],
    ["-l", "-"],
    ["-s", "fake@127.0.0.1:", "-l", "-"],
    ["-s", "fake@[::1", "-l", "-"],
    ["-s"],
    ["-z"],
]


@interop
@pytest.mark.parametrize("args", UPSLOG_ERRORS, ids=[" ".join(a) or "(none)" for a in UPSLOG_ERRORS])
def test_upslog_errors(env: NutEnv, args: list[str]) -> None:
    compare(env, "upslog", expand(env, args))


@interop
def test_upslog_default_format(env: NutEnv) -> None:
    lines, err, rc = upslog_session(env, "nutlite", ["-s", f"dummy@127.0.0.1:{env.port}", "-l", "-"])
    assert lines[1] == f"logging status of dummy@127.0.0.1:{env.port} to - (30s intervals)"
    assert re.fullmatch(r"\d{8} \d{6} 87 230\.0 023 \[OL CHRG\] 31\.5 50\.0", lines[2]), lines[2]
    assert (err, rc) == ("Signal 15: exiting\n", 0)


@interop
def test_upslog_files_rotation_and_background(env: NutEnv, tmp_path: Path) -> None:
    """-m with two files, in the background (pid file), HUP reopens (rotation), USR1 logs, TERM ends."""
    log1, log2 = tmp_path / "one.log", tmp_path / "two.log"
    pidfile = Path(env.environ()["NUT_ALTPIDPATH"]) / "toolstest.pid"
    args = ["-m", f"fake@127.0.0.1:{env.port},{log1}", "-m", f"dummy@127.0.0.1:{env.port},{log2}",
            "-i", "30", "-f", "%UPSHOST% %VAR ups.status%", "-p", "toolstest", "-u", "root"]  # fmt: skip
    got = run_tool(env, "nutlite", "upslog", args)
    assert got.rc == 0, got
    assert got.out.splitlines()[1:] == [
        f"logging status of fake@127.0.0.1:{env.port} to {log1} (30s intervals)",
        f"logging status of dummy@127.0.0.1:{env.port} to {log2} (30s intervals)",
    ]

    def wait_for(cond: object, what: str) -> None:
        deadline = time.monotonic() + 10
        while not cond():  # type: ignore[operator]
            assert time.monotonic() < deadline, what
            time.sleep(0.02)

    def lines(p: Path) -> list[str]:
        return p.read_text().splitlines() if p.exists() else []

    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "pid file")
    pid = int(pidfile.read_text())
    wait_for(lambda: len(lines(log1)) == 1 and len(lines(log2)) == 1, "first lines")
    assert lines(log1) == [f"fake@127.0.0.1:{env.port} OL"]
    assert lines(log2) == [f"dummy@127.0.0.1:{env.port} OL CHRG"]
    log1.rename(tmp_path / "one.log.1")
    os.kill(pid, signal.SIGHUP)
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: len(lines(log1)) == 1 and len(lines(log2)) == 2, "lines after rotation")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pidfile.exists(), "pid file removed at exit")
    assert len(lines(log2)) == 3  # one last line at exit
    assert lines(tmp_path / "one.log.1") == [f"fake@127.0.0.1:{env.port} OL"]


@interop
@pytest.mark.parametrize("args", [["--help"], ["-h"], ["-x", "-h"], ["-hx"]])
def test_upslog_help(env: NutEnv, args: list[str]) -> None:
    """As Debian's: one banner line, then the help; a bad option before -h gives one complaint
    ("--help" is the bad option "-" followed by -h, which ends upslog before "e", "l", "p")."""
    deb = run_tool(env, "debian", "upslog", args)
    mine = run_tool(env, "nutlite", "upslog", args)
    assert (mine.rc, mine.err) == (deb.rc, deb.err)
    assert mine.out.splitlines()[0] == deb.out.splitlines()[0] == "Network UPS Tools upslog 2.8.0"
    assert mine.out.count("Network UPS Tools") == deb.out.count("Network UPS Tools") == 1
    assert "usage: upslog [OPTIONS]" in mine.out


@interop
@pytest.mark.skipif(os.geteuid() != 0, reason="upslog switches users only when started as root")
def test_upslog_runs_as_nut_without_u(env: NutEnv) -> None:
    """Started as root without -u, upslog logs as NUT's nut account; an unknown -u is a clear error."""
    import pwd

    nut = pwd.getpwnam("nut").pw_uid
    proc = start_upslog(env, "nutlite", ["-s", f"fake@127.0.0.1:{env.port}", "-l", "-", "-i", "30"])
    try:
        assert len(read_lines(proc, 3)) == 3  # banner, "logging status of ...", the first line
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert [int(x) for x in status.split("Uid:")[1].split()[:4]] == [nut] * 4
    finally:
        proc.kill()
        proc.communicate(timeout=15)
    got = run_tool(env, "nutlite", "upslog", ["-s", f"fake@127.0.0.1:{env.port}", "-l", "-", "-u", "nosuchuser"])
    assert got.rc == 1 and "user 'nosuchuser' does not exist" in got.err and "Traceback" not in got.err


@interop
def test_upslog_bad_tuple(env: NutEnv) -> None:
    got = run_tool(env, "nutlite", "upslog", ["-m", "fake@localhost"])
    assert got.rc == 1 and "-m <ups>,<logfile>" in got.err


# --------------------------------------------------------------------------------------------
# Helpers


def test_getopt() -> None:
    assert getopt(["-l", "x", "-c"], "lc") == ([("l", "")], ["x", "-c"])
    assert getopt(["-lc", "--", "-x"], "lc") == ([("l", ""), ("c", "")], ["-x"])
    assert getopt(["-uadmin", "-p", "pw", "u"], "u:p:") == ([("u", "admin"), ("p", "pw")], ["u"])
    errors: list[str] = []
    assert getopt(["-z", "-u"], "u:", errors) == ([], [])
    assert errors == ["invalid option -- 'z'", "option requires an argument -- 'u'"]
    # In command-line order, a bad option in its place: what upslog needs to stop at -h as NUT does.
    assert scan_options(["--help", "x"], "h") == ([("?", "invalid option -- '-'"), ("h", ""),
                                                   ("?", "invalid option -- 'e'"), ("?", "invalid option -- 'l'"),
                                                   ("?", "invalid option -- 'p'")], ["x"])


def test_tools_run_from_cli_entry_point() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "nutlite", "upsc", "-h"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert p.returncode == 0 and p.stdout.startswith("Network UPS Tools upsc 2.8.0 (nutlite ")
