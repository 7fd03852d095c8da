"""Differential conformance test: one scripted NUT protocol session, run against Debian's NUT 2.8.0
(``/lib/nut/upsd`` + ``/lib/nut/dummy-ups``) and against nutlite (upsd + dummy-ups driver), and against the
two cross-wired combinations; the replies must be identical line for line (after the few normalisations
listed in `normalise`).

Nothing is recorded on disk: the reference transcript is computed from Debian's daemons at test time.

Run only the reference side:      pytest tests/test_conformance.py -k reference
Run the comparison for nutlite:   pytest tests/test_conformance.py -k "nutlite-nutlite"

The session uses three UPSes:
* ``dummy``: dummy-ups on tests/data/conformance.dev (flavour under test);
* ``nodrv``: defined in ups.conf but no driver running (DRIVER-NOT-CONNECTED paths);
* ``fake``:  a scripted driver (tests/nutenv.FakeDriver) speaking the driver socket protocol, identical for
  both upsds; it declares ENUM / RANGE / STRING:n / read-only variables that dummy-ups cannot declare, and
  records what upsd forwards to the driver (SET / INSTCMD lines), which is compared too.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from nutenv import (
    DATA_DIR,
    FakeDriver,
    NutConnection,
    NutEnv,
    UpsSpec,
    dummy_ups,
    require_real_nut,
)

pytestmark = pytest.mark.interop

# --------------------------------------------------------------------------------------------------------
# Session steps


@dataclass
class Step:
    """One request. `kind`:
    * "cmd":   send `data`, record every reply line up to the reply to a marker request (see
               NutConnection.sync: a request rejected with a parse error gets no reply at all);
    * "close": send `data`, record every line until the server closes the connection (then "<closed>");
    * "send":  send `data` and pause (a request in pieces; nothing recorded);
    * "drop":  close the client side of the connection (nothing recorded);
    * "wait":  poll `data` on a fresh connection until the reply equals `expect` (nothing recorded);
    * "call":  run `fn(env, runner)` (nothing recorded unless fn returns lines);
    `{ID1}`, `{ID2}`... in `data` are replaced by the 1st, 2nd... TRACKING id seen in this session.
    `exact`: do not normalise the DESC/CMDDESC text of this step's replies.
    """

    conn: str
    data: bytes = b""
    kind: str = "cmd"
    label: str = ""
    expect: str = ""
    exact: bool = False
    fn: Callable[[NutEnv, SessionRunner], list[str] | None] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            self.label = f"[{self.conn}] {self.kind} {self.data.decode('latin-1')!r}"


def C(conn: str, line: str, exact: bool = False) -> Step:
    return Step(conn, line.encode("latin-1") + b"\n", exact=exact)


def RAW(conn: str, data: bytes) -> Step:
    return Step(conn, data)


def SEND(conn: str, data: bytes) -> Step:
    """Send `data` (part of a request) and pause 0.2 s, reading nothing."""
    return Step(conn, data, kind="send")


def BYE(conn: str, line: str) -> Step:
    return Step(conn, line.encode("latin-1") + b"\n", kind="close")


def DROP(conn: str) -> Step:
    return Step(conn, kind="drop")


def WAIT(line: str, expect: str) -> Step:
    return Step("wait", line.encode("latin-1"), kind="wait", expect=expect)


def CALL(label: str, fn: Callable[[NutEnv, SessionRunner], list[str] | None]) -> Step:
    return Step("call", kind="call", label=f"[call] {label}", fn=fn)


def LOGIN_AS(conn: str, user: str, password: str) -> list[Step]:
    return [C(conn, f"USERNAME {user}"), C(conn, f"PASSWORD {password}")]


# --------------------------------------------------------------------------------------------------------
# Runner

MARKER_UPS = "dummy"  # every request is followed by GET DESC dummy nutenv.sync.<n> (NutConnection.sync)
UUID_RE = re.compile(r"\b[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\b")


class SessionRunner:
    """Runs steps against one environment and returns the transcript [(label, reply lines)]."""

    def __init__(self, env: NutEnv) -> None:
        self.env = env
        self.conns: dict[str, NutConnection] = {}
        self.tracking_ids: list[str] = []

    def conn(self, name: str) -> NutConnection:
        if name not in self.conns:
            self.conns[name] = self.env.connect(timeout=10)
        return self.conns[name]

    def _subst(self, data: bytes) -> bytes:
        def repl(m: re.Match[bytes]) -> bytes:
            i = int(m.group(1)) - 1
            if i >= len(self.tracking_ids):
                return b"NO-SUCH-TRACKING-ID-YET"
            return self.tracking_ids[i].encode()

        return re.sub(rb"\{ID(\d+)\}", repl, data)

    def _note_ids(self, lines: list[str]) -> None:
        for line in lines:
            m = re.match(r"^OK TRACKING (\S+)$", line)
            if m and m.group(1) not in self.tracking_ids:
                self.tracking_ids.append(m.group(1))

    def run_step(self, step: Step) -> list[str] | None:
        if step.kind == "call":
            assert step.fn is not None
            return step.fn(self.env, self)
        if step.kind == "wait":
            return self._wait(step)
        if step.kind == "drop":
            c = self.conns.pop(step.conn, None)
            if c is not None:
                c.close()
            return None
        c = self.conn(step.conn)
        c.send_raw(self._subst(step.data))
        if step.kind == "send":
            time.sleep(0.2)
            return None
        if step.kind == "close":
            try:
                lines = c.read_until_eof(10) + ["<closed>"]
            except TimeoutError:
                lines = [*c.pending(0.1).decode("latin-1").splitlines(), "<still open after 10 s>"]
            c.close()
            del self.conns[step.conn]
        else:
            lines = c.sync(MARKER_UPS, step.label)
            if lines[-1:] == ["<closed>"]:
                c.close()
                del self.conns[step.conn]
        self._note_ids(lines)
        return lines

    def _wait(self, step: Step, timeout: float = 10.0) -> None:
        line = self._subst(step.data).decode("latin-1")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            with self.env.connect() as c:
                last = c.request(line)
            if last == step.expect:
                return None
            time.sleep(0.05)
        raise AssertionError(
            f"waited {timeout}s for {line!r} to answer {step.expect!r}; last reply {last!r} "
            f"(driver {self.env.driver_flavour}, upsd {self.env.upsd_flavour})"
        )

    def run(self, steps: list[Step]) -> list[tuple[str, list[str], bool]]:
        transcript: list[tuple[str, list[str], bool]] = []
        try:
            for step in steps:
                lines = self.run_step(step)
                if lines is not None:
                    transcript.append((step.label, lines, step.exact))
        finally:
            for c in self.conns.values():
                c.close()
            self.conns.clear()
        return transcript


# --------------------------------------------------------------------------------------------------------
# Normalisation: the ONLY differences allowed between Debian's and nutlite's replies.

VER_RE = re.compile(r"^Network UPS Tools upsd \S+ - \S+$")
# driver.version, driver.version.internal, .data, .usb: the driver's own version strings.
DRIVER_VERSION_RE = re.compile(r'^((?:VAR|RW) \S+ driver\.version(?:\.[a-z]+)?) "[^"]*"$', re.IGNORECASE)
# server.version / server.info are answered by upsd itself with its own version.
SERVER_VERSION_RE = re.compile(r'^(VAR \S+ server\.(?:version|info)) "[^"]*"$', re.IGNORECASE)
# GET DESC / GET CMDDESC: only the description text may differ (NUT's cmdvartab vs nutlite's texts).
DESC_RE = re.compile(r'^((?:DESC|CMDDESC) .*) "(?:[^"\\]|\\.)*"$')


def normalise(transcript: list[tuple[str, list[str], bool]]) -> list[tuple[str, list[str]]]:
    """Apply the allowed normalisations, each for a reason:

    * VER text: the version and URL differ by design; the shape ``Network UPS Tools upsd <v> - <url>``
      must stay (clients parse it), so only replies of that exact shape are normalised;
    * values of ``driver.version*``: the driver's version, differs by design;
    * values of ``server.version`` / ``server.info``: upsd's version, differs by design;
    * the quoted text of DESC / CMDDESC replies (descriptions are nutlite's own words), except in steps
      marked `exact` (e.g. "Description unavailable" for unknown names, which clients rely on);
    * TRACKING ids: random UUIDs; replaced by <UUID1>, <UUID2>... in order of first appearance (only
      upper-case 8-4-4-4-12 hex ids, which is Debian's format, are recognised);
    Nothing else: driver.parameter.*, driver.name, device.* etc. must be identical.
    """
    ids: dict[str, str] = {}

    def uuid(m: re.Match[str]) -> str:
        return ids.setdefault(m.group(0), f"<UUID{len(ids) + 1}>")

    out = []
    for label, lines, exact in transcript:
        norm = []
        for line in lines:
            if VER_RE.match(line):
                line = "Network UPS Tools upsd <VERSION> - <URL>"
            line = DRIVER_VERSION_RE.sub(r'\1 "<VERSION>"', line)
            line = SERVER_VERSION_RE.sub(r'\1 "<VERSION>"', line)
            if not exact:
                line = DESC_RE.sub(r'\1 "<TEXT>"', line)
            line = UUID_RE.sub(uuid, line)
            norm.append(line)
        out.append((label, norm))
    return out


# --------------------------------------------------------------------------------------------------------
# The environment of the session

DEV_FILE = DATA_DIR / "conformance.dev"

USERS = """\
# users for the conformance session
[admin]
  password = adminpw
  actions = SET
  actions = FSD
  instcmds = ALL

[nobody]
  password = nobodypw

[monpri]
  password = pripw
  upsmon primary

[monsec]
  password = secpw
  upsmon secondary

[legacy]
  password = "legacy pw"
  upsmon master

[limited]
  password = limpw
  actions = set
  instcmds = Test.Battery.Start
"""


def make_fake() -> FakeDriver:
    """The scripted driver for UPS ``fake`` (state identical in every run)."""
    fake = FakeDriver("/nonexistent")  # path set by NutEnv
    fake.apply_set = False  # keep values static: SET is only checked by upsd and forwarded
    fake.tracking_result = 0
    fake.setvar("ups.status", "OL")
    # names that show the sort order of LIST VAR (case-insensitive? which punctuation first?)
    for name, value in [("zeta", "1"), ("Alpha", "2"), ("beta", "3"), ("_under", "4"), ("a.b", "5"),
                        ("a_b", "6"), ("a-b", "7"), ("Z.upper", "8"), ("a", "9"), ("A.c", "10")]:
        fake.setvar(name, value)
    fake.setvar("out.mode", "eco", flags=("RW", "STRING"), aux=8, enums=["eco", "online", "two words"])
    fake.setvar("out.delay", "20", flags=("RW",), ranges=[(0, 60), (100, 200)])
    fake.setvar("out.name", "abc", flags=("RW", "STRING"), aux=5)
    fake.setvar("out.ro", "x")
    fake.setvar("out.rostr", "y", flags=("STRING",), aux=10)
    fake.setvar("out.str0", "x", flags=("RW", "STRING"))
    fake.setvar("out.both", "5", flags=("RW",), enums=["5", "7"], ranges=[(0, 3)])
    fake.setvar("out.quoted", 'say "hi" \\ #1', flags=("RW", "STRING"), aux=64)
    fake.setvar("out.empty", "", flags=("RW", "STRING"), aux=4)
    fake.setvar("out.long", "short", flags=("RW", "STRING"), aux=512)
    fake.addcmd("test.battery.start", "load.off", "beeper.toggle", "Cmd.Upper", "shutdown.return")
    return fake


def make_fake2() -> FakeDriver:
    """A second scripted driver, for requests that make Debian's upsd send garbage to the driver."""
    fake = FakeDriver("/nonexistent")
    fake.apply_set = False
    fake.setvar("ups.status", "OB")
    fake.setvar("out.long", "short", flags=("RW", "STRING"), aux=512)
    fake.setvar("out.long2", "short", flags=("RW", "STRING"), aux=511)
    return fake


def make_env(base: Path, driver_flavour: str, upsd_flavour: str) -> NutEnv:
    return NutEnv(
        base,
        [
            dummy_ups("dummy", desc='Conformance "test" UPS \\ #1'),
            UpsSpec("nodrv", driver="dummy-ups", port="nodrv.dev", launch="none"),
            UpsSpec("fake", driver="fakedrv", port="/dev/null", desc="", launch="fake", fake=make_fake()),
            UpsSpec("fake2", driver="fakedrv", port="/dev/null", launch="fake", fake=make_fake2()),
        ],
        driver_flavour=driver_flavour,
        upsd_flavour=upsd_flavour,
        users=USERS,
        files={"conformance.dev": DEV_FILE},
    )


def dev_var_names() -> list[str]:
    """Variable names defined in the .dev file (for GET TYPE / GET VAR / GET DESC of each)."""
    names = []
    for line in DEV_FILE.read_text().splitlines():
        m = re.match(r"^([a-z][a-z0-9._]*):", line)
        if m:
            names.append(m.group(1))
    return names


def driver_received(env: NutEnv, runner: SessionRunner) -> list[str]:
    """What upsd forwarded to the fake driver (waits until nothing new arrives for 0.5 s)."""
    fake = env.upses["fake"].fake
    assert fake is not None
    n, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        if len(fake.received) != n:
            n, stable_since = len(fake.received), time.monotonic()
        time.sleep(0.05)
    return list(fake.received)


def set_tracking_result(result: int | None) -> Callable[[NutEnv, SessionRunner], None]:
    def fn(env: NutEnv, runner: SessionRunner) -> None:
        fake = env.upses["fake"].fake
        assert fake is not None
        # first make sure the fake driver has handled the last tracked request (upsd answers the client
        # before the driver has read it)
        last = runner.tracking_ids[-1]
        deadline = time.monotonic() + 10
        while not any(last in line for line in fake.received):
            assert time.monotonic() < deadline, f"the fake driver never received TRACKING {last}"
            time.sleep(0.01)
        fake.tracking_result = result

    return fn


# --------------------------------------------------------------------------------------------------------
# The script


def script() -> list[Step]:
    s: list[Step] = []
    add = s.extend
    a = "anon"

    # --- version, help, unknown commands, framing
    add([C(a, "VER"), C(a, "NETVER"), C(a, "PROTVER"), C(a, "HELP"),
         C(a, "VER x"), C(a, "NETVER x"), C(a, "PROTVER x y"), C(a, "HELP x"),
         C(a, "ver"), C(a, "Help"), C(a, "netver"),
         C(a, "FOO"), C(a, "FOO BAR BAZ"), C(a, ""), C(a, "   "), C(a, "\t"), C(a, "# only a comment"),
         C(a, "MASTERS dummy"), C(a, "LIST CLIENTS"), C(a, "GETVAR dummy ups.status")])
    add([C("tls", "STARTTLS"), C("tls", "STARTTLS"), C("tls", "STARTTLS x"), C("tls", "VER")])

    # --- LIST UPS / UPSDESC
    add([C(a, "LIST UPS"), C(a, "list ups"), C(a, "LIST UPS extra"), C(a, "LIST"),
         C(a, "LIST FOO"), C(a, "LIST FOO dummy"),
         C(a, "GET UPSDESC dummy"), C(a, "GET UPSDESC DUMMY"), C(a, "GET UPSDESC nodrv"),
         C(a, "GET UPSDESC fake"), C(a, "GET UPSDESC nosuch"), C(a, "GET UPSDESC"),
         C(a, "GET UPSDESC dummy extra"), C(a, "GET"), C(a, "GET FOO"), C(a, "GET FOO dummy")])

    # --- LIST VAR / RW / CMD / ENUM / RANGE / CLIENT
    for ups in ("dummy", "DuMmY", "fake", "nodrv", "nosuch"):
        add([C(a, f"LIST VAR {ups}"), C(a, f"LIST RW {ups}"), C(a, f"LIST CMD {ups}")])
    add([C(a, "LIST VAR"), C(a, "LIST RW"), C(a, "LIST CMD"), C(a, "LIST VAR dummy extra"),
         C(a, "LIST RW fake extra"), C(a, "LIST CMD fake extra")])
    for sub in ("ENUM", "RANGE"):
        add([C(a, f"LIST {sub} fake out.mode"), C(a, f"LIST {sub} fake out.delay"),
             C(a, f"LIST {sub} FAKE OUT.MODE"), C(a, f"LIST {sub} Fake Out.Delay"),
             C(a, f"LIST {sub} fake out.both"), C(a, f"LIST {sub} fake ups.status"),
             C(a, f"LIST {sub} fake nosuch"), C(a, f"LIST {sub} dummy ups.mfr"),
             C(a, f"LIST {sub} nodrv ups.mfr"), C(a, f"LIST {sub} nosuch ups.mfr"),
             C(a, f"LIST {sub} fake"), C(a, f"LIST {sub}"), C(a, f"LIST {sub} fake out.mode extra"),
             C(a, f'LIST {sub} "fake" "out.mode"')])
    add([C(a, "LIST CLIENT dummy"), C(a, "LIST CLIENT nodrv"), C(a, "LIST CLIENT nosuch"),
         C(a, "LIST CLIENT"), C(a, "LIST CLIENT dummy extra"), C(a, "LIST CLIENT DUMMY")])

    # --- GET VAR / TYPE / DESC / CMDDESC / NUMLOGINS
    for name in [*dev_var_names(), "driver.name", "driver.parameter.port", "driver.parameter.pollinterval",
                 "driver.parameter.synchronous", "driver.parameter.mode", "driver.version",
                 "driver.version.internal", "device.mfr", "device.model", "device.serial", "device.type"]:
        add([C(a, f"GET VAR dummy {name}"), C(a, f"GET TYPE dummy {name}"), C(a, f"GET DESC dummy {name}")])
    for name in ["out.mode", "out.delay", "out.name", "out.ro", "out.rostr", "out.str0", "out.both",
                 "out.quoted", "out.empty", "zeta", "Alpha", "ups.status"]:
        add([C(a, f"GET VAR fake {name}"), C(a, f"GET TYPE fake {name}")])
    add([C(a, "GET VAR dummy ups.status"), C(a, "GET VAR DuMmY UPS.STATUS"), C(a, "get var dummy ups.status"),
         C(a, "GET var DUMMY Ups.Mfr"), C(a, "GET VAR FAKE ALPHA"), C(a, "GET VAR fake z.UPPER"),
         C(a, "GET VAR dummy nosuch.var"), C(a, "GET VAR nosuch ups.status"), C(a, "GET VAR nodrv ups.status"),
         C(a, "GET VAR nodrv nosuch"), C(a, "GET VAR nosuch nosuch"),
         C(a, "GET VAR"), C(a, "GET VAR dummy"), C(a, "GET VAR dummy ups.status extra"),
         C(a, "GET VAR dummy server.version"), C(a, "GET VAR dummy server.info"),
         C(a, "GET VAR nosuch server.version"), C(a, "GET VAR nodrv server.info"),
         C(a, "GET VAR dummy SERVER.VERSION"), C(a, "GET VAR dummy server.nosuch"),
         C(a, "GET VAR dummy server"),
         C(a, "GET TYPE dummy nosuch"), C(a, "GET TYPE nodrv ups.status"), C(a, "GET TYPE nosuch ups.status"),
         C(a, "GET TYPE dummy"), C(a, "GET TYPE"), C(a, "GET TYPE DUMMY UPS.MFR"),
         C(a, "GET DESC dummy nosuch.var", exact=True), C(a, "GET DESC nodrv ups.status"),
         C(a, "GET DESC nosuch ups.status"), C(a, "GET DESC dummy"), C(a, "GET DESC"),
         C(a, "GET DESC DUMMY UPS.MFR"), C(a, "GET DESC dummy upstream.ups.mfr"),
         C(a, 'GET DESC dummy "a b"', exact=True), C(a, 'GET DESC dummy "a\\"b"', exact=True),
         C(a, 'GET DESC dummy a\\\\b', exact=True),
         C(a, "GET CMDDESC dummy load.off"), C(a, "GET CMDDESC dummy LOAD.OFF"),
         C(a, "GET CMDDESC fake test.battery.start"), C(a, "GET CMDDESC fake Cmd.Upper", exact=True),
         C(a, "GET CMDDESC dummy nosuch.cmd", exact=True), C(a, "GET CMDDESC nodrv load.off"),
         C(a, "GET CMDDESC nosuch load.off"), C(a, "GET CMDDESC dummy"), C(a, "GET CMDDESC dummy "),
         C(a, "GET CMDDESC"),
         C(a, "GET NUMLOGINS dummy"), C(a, "GET NUMLOGINS Dummy"), C(a, "GET NUMLOGINS nodrv"),
         C(a, "GET NUMLOGINS nosuch"), C(a, "GET NUMLOGINS"), C(a, "GET NUMLOGINS dummy extra"),
         C(a, "GET TRACKING"), C(a, "GET TRACKING 12345678-1234-1234-1234-123456789012"),
         C(a, "GET TRACKING x y")])

    # --- tokenizer: quoting, escaping, comments, '=', control characters, line endings
    add([C(a, 'GET VAR dummy "ups.status"'), C(a, 'GET VAR "dummy" "ups.status"'),
         C(a, "GET VAR dummy ups.status # a comment"), C(a, "GET VAR dummy ups.status#comment"),
         C(a, "\tGET\tVAR\tdummy\tups.status\t"), C(a, "  GET   VAR  dummy   ups.status  "),
         C(a, "GET VAR dummy ups\\.status"), C(a, "GET VAR dummy ups\\ status"),
         C(a, 'GET VAR dummy ups.st"atus'), RAW(a, b'GET VAR dummy "ups.status""\n"\n'), C(a, 'GET VAR dummy ""'),
         C(a, 'GET VAR "" ups.status'), C(a, "GET VAR dummy 'ups.status'"),
         C(a, "GET=VAR dummy ups.status"), C(a, "GET VAR dummy=ups.status"), C(a, "GET VAR dummy ups=status"),
         C(a, "GET VAR dummy a#b"), C(a, 'GET VAR dummy "a\\#b"'),
         C(a, 'GET VAR dummy "a#b"'),  # parse error: no reply at all
         C(a, 'GET VAR dummy "ups#status" extra'),  # parse error
         C(a, 'GET DESC dummy "x#y'),  # parse error
         C(a, "VER"),
         RAW(a, b"GET VAR dummy ups.status\r\n"), RAW(a, b"GET VAR dummy ups.status\r\r\n"),
         RAW(a, b"\r\n"), RAW(a, b"GET VAR dummy ups.st\x01atus\n"), RAW(a, b"GET VAR dummy ups.st\x00atus\n"),
         RAW(a, b"GET VAR dummy ups.st\xffatus\n"), RAW(a, b"GET VAR dummy ups.st\x7fatus\n"),
         RAW(a, b"GET VAR dummy ups.st\x1batus\n"), RAW(a, b"\x00\n"), RAW(a, b"GET VAR dummy \xc3\xa9\n"),
         # line continuation: backslash-newline joins the next line
         RAW(a, b"GET VAR dummy ups.status\\\nVER\n"), RAW(a, b"GET VAR dummy \\\nups.status\n"),
         # a newline inside quotes does not end the request
         RAW(a, b'GET VAR dummy "ups.status\nVER\n"\n'), RAW(a, b'GET VAR "dummy\n" ups.status\n'),
         # two requests in one packet, and a request in pieces
         RAW(a, b"VER\nGET VAR dummy ups.status\n"), SEND(a, b"GET VAR dum"), SEND(a, b"my ups.sta"),
         RAW(a, b"tus\n"), SEND(a, b'GET VAR dummy "ups'), SEND(a, b"\\"), RAW(a, b'.status"\n'),
         # words longer than 512 characters are cut to 512 (non-echoing replies only: see the report)
         C(a, "GET VAR dummy " + "x" * 600), C(a, "GET TYPE fake out.long" + "x" * 600),
         C(a, "GET VAR nosuch" + "u" * 600 + " ups.status"),
         # more than 32 words: extra words ignored
         C(a, "GET VAR dummy ups.status " + " ".join(f"w{i}" for i in range(40))),
         C(a, "LIST UPS " + " ".join(f"w{i}" for i in range(40))),
         C(a, " ".join(["GET"] * 40)), C(a, "LIST " + " ".join(["VAR"] * 40))])

    # --- authentication and rights
    x = "auth1"
    add([C(x, "LOGIN dummy"), C(x, "PRIMARY dummy"), C(x, "MASTER dummy"), C(x, "FSD dummy"),
         C(x, "SET VAR dummy ups.mfr x"), C(x, "INSTCMD dummy load.off"), C(x, "SET TRACKING ON"),
         C(x, "USERNAME"), C(x, "USERNAME a b"), C(x, "PASSWORD"), C(x, "PASSWORD a b"),
         C(x, "PASSWORD adminpw"), C(x, "LOGIN dummy"), C(x, "SET VAR dummy ups.mfr x"),
         C(x, "USERNAME admin"), C(x, "USERNAME admin"), C(x, "USERNAME other"),
         C(x, "PASSWORD adminpw"), C(x, "LOGIN"), C(x, "LOGIN nosuch"), C(x, "LOGIN dummy"),
         C(x, "SET VAR fake out.mode online"), C(x, "INSTCMD fake load.off")])
    x = "auth2"  # username only
    add([C(x, "USERNAME admin"), C(x, "LOGIN dummy"), C(x, "PRIMARY dummy"), C(x, "FSD dummy"),
         C(x, "SET VAR dummy ups.mfr x"), C(x, "INSTCMD dummy load.off"), C(x, "SET TRACKING ON"),
         C(x, "INSTCMD"), C(x, "SET")])
    x = "auth3"  # wrong password
    add([*LOGIN_AS(x, "admin", "wrong"), C(x, "LOGIN dummy"), C(x, "PRIMARY dummy"), C(x, "MASTER dummy"),
         C(x, "FSD dummy"), C(x, "SET VAR dummy ups.mfr x"), C(x, "INSTCMD dummy load.off"),
         C(x, "INSTCMD dummy nosuch"), C(x, "SET VAR dummy nosuch x"), C(x, "SET TRACKING ON"),
         C(x, "GET TRACKING")])
    x = "auth4"  # unknown user
    add([*LOGIN_AS(x, "nosuchuser", "x"), C(x, "LOGIN dummy"), C(x, "SET VAR dummy ups.mfr x"),
         C(x, "INSTCMD dummy load.off"), C(x, "FSD dummy")])
    x = "auth5"  # user without rights
    add([*LOGIN_AS(x, "nobody", "nobodypw"), C(x, "LOGIN dummy"), C(x, "PRIMARY dummy"), C(x, "MASTER dummy"),
         C(x, "FSD dummy"), C(x, "FSD nosuch"), C(x, "SET VAR dummy ups.mfr x"), C(x, "SET VAR dummy nosuch x"),
         C(x, "SET VAR nosuch ups.mfr x"), C(x, "SET VAR nodrv ups.mfr x"), C(x, "SET VAR fake out.ro 1"),
         C(x, "INSTCMD dummy load.off"), C(x, "INSTCMD dummy nosuch"), C(x, "INSTCMD nosuch load.off"),
         C(x, "INSTCMD nodrv load.off"), C(x, "SET TRACKING ON"), C(x, "GET TRACKING"),
         C(x, "SET TRACKING OFF")])
    x = "auth6"  # password with a space, legacy "upsmon master"
    add([C(x, "USERNAME legacy"), C(x, 'PASSWORD "legacy pw"'), C(x, "MASTER dummy"), C(x, "PRIMARY dummy"),
         C(x, "LOGIN fake"), C(x, "GET NUMLOGINS fake"), C(x, "LIST CLIENT fake")])
    add([DROP(x), WAIT("GET NUMLOGINS fake", "NUMLOGINS fake 0"), C(a, "LIST CLIENT fake")])
    x = "auth7"  # limited rights: instcmds for one command (spelt differently), action "set" in lower case
    add([*LOGIN_AS(x, "limited", "limpw"), C(x, "INSTCMD fake test.battery.start"),
         C(x, "INSTCMD fake TEST.BATTERY.START"), C(x, "INSTCMD fake load.off"), C(x, "INSTCMD dummy load.off"),
         C(x, "SET VAR fake out.delay 10"), C(x, "FSD fake"), C(x, "LOGIN fake")])

    # --- upsmon roles, LOGIN / NUMLOGINS / LIST CLIENT / LOGOUT
    sec, pri, pri2 = "sec", "pri", "pri2"
    add([*LOGIN_AS(sec, "monsec", "secpw"), C(sec, "LOGIN dummy"), C(sec, "LOGIN dummy"),
         C(sec, "LOGIN fake"), C(sec, "PRIMARY dummy"), C(sec, "MASTER dummy"), C(sec, "FSD dummy"),
         C(sec, "SET VAR dummy ups.mfr x"), C(sec, "INSTCMD dummy load.off"),
         C(sec, "GET NUMLOGINS dummy"), C(sec, "LIST CLIENT dummy")])
    add([*LOGIN_AS(pri, "monpri", "pripw"), C(pri, "PRIMARY"), C(pri, "PRIMARY nosuch"),
         C(pri, "PRIMARY nodrv"), C(pri, "PRIMARY dummy"), C(pri, "PRIMARY DUMMY"), C(pri, "MASTER dummy"),
         C(pri, "MASTER"), C(pri, "PRIMARY dummy extra"), C(pri, "SET VAR dummy ups.mfr x"),
         C(pri, "INSTCMD dummy load.off"), C(pri, "LOGIN DUMMY"),
         C(pri, "GET NUMLOGINS dummy"), C(a, "GET NUMLOGINS DUMMY"), C(a, "LIST CLIENT dummy"),
         C(a, "LIST CLIENT Dummy")])
    add([*LOGIN_AS(pri2, "monpri", "pripw"), C(pri2, "LOGIN nodrv"), C(pri2, "LOGIN nodrv"),
         C(a, "LIST CLIENT nodrv"), C(a, "GET NUMLOGINS nodrv")])
    add([C(sec, "LOGOUT x"), BYE(sec, "LOGOUT"), WAIT("GET NUMLOGINS dummy", "NUMLOGINS dummy 1"),
         C(a, "LIST CLIENT dummy"), DROP(pri), WAIT("GET NUMLOGINS dummy", "NUMLOGINS dummy 0"),
         C(a, "LIST CLIENT dummy"), BYE(pri2, "logout"), C(a, "LIST CLIENT nodrv"),
         BYE("anon-bye", "LOGOUT")])

    # --- SET VAR and INSTCMD (admin)
    adm = "adm"
    add(LOGIN_AS(adm, "admin", "adminpw"))
    add([C(adm, 'SET VAR dummy ups.mfr "New Mfr"'), WAIT("GET VAR dummy ups.mfr", 'VAR dummy ups.mfr "New Mfr"'),
         C(adm, "GET VAR dummy ups.mfr"), C(adm, "GET VAR dummy device.mfr"),
         C(adm, "SET VAR dummy ups.mfr Unquoted"), WAIT("GET VAR dummy ups.mfr", 'VAR dummy ups.mfr "Unquoted"'),
         C(adm, "SET VAR dummy ups.mfr two words"), WAIT("GET VAR dummy ups.mfr", 'VAR dummy ups.mfr "two"'),
         C(adm, "SET VAR DUMMY UPS.MFR Upper"), WAIT("GET VAR dummy ups.mfr", 'VAR dummy ups.mfr "Upper"'),
         C(adm, "SET VAR dummy ups.mfr " + "m" * 32), WAIT("GET VAR dummy ups.mfr", f'VAR dummy ups.mfr "{"m" * 32}"'),
         C(adm, "SET VAR dummy ups.mfr " + "m" * 33), C(adm, "SET VAR dummy ups.mfr " + "m" * 600),
         # (no quotes, backslashes or '#' in values SET on dummy: Debian's dummy-ups 2.8.0 broadcasts
         # changed values without escaping them, so upsd would store "a" for a"b -- a driver bug)
         C(adm, 'SET VAR dummy ups.id "0123456789abcdef"'), C(adm, 'SET VAR dummy ups.id "0123456789abcdefg"'),
         C(adm, "SET VAR dummy battery.charge 42"), WAIT("GET VAR dummy battery.charge", 'VAR dummy battery.charge "42"'),
         C(adm, 'SET VAR dummy my.custom.var "changed  value"'),
         WAIT("GET VAR dummy my.custom.var", 'VAR dummy my.custom.var "changed  value"'),
         C(adm, 'SET VAR dummy ups.test.result ""'), WAIT("GET VAR dummy ups.test.result", "ERR VAR-NOT-SUPPORTED"),
         C(adm, "GET VAR dummy ups.test.result"), C(adm, "GET TYPE dummy ups.test.result"),
         C(adm, "SET VAR dummy driver.name x"), C(adm, "SET VAR dummy device.type x"),
         C(adm, "SET VAR dummy driver.version x"), C(adm, "SET VAR dummy nosuch.var x"),
         C(adm, "SET VAR dummy server.version x"), C(adm, "SET VAR nosuch ups.mfr x"),
         C(adm, "SET VAR nodrv ups.mfr x"), C(adm, "SET VAR dummy"), C(adm, "SET VAR dummy ups.mfr"),
         C(adm, "SET VAR"), C(adm, "SET"), C(adm, "SET FOO"), C(adm, "SET FOO bar baz"),
         C(adm, "SET VAR dummy ups.mfr x y z w v u")])
    add([C(adm, "SET VAR fake out.mode online"), C(adm, "SET VAR fake out.mode bogus"),
         C(adm, 'SET VAR fake out.mode "two words"'), C(adm, "SET VAR fake out.mode ECO"),
         C(adm, "SET VAR fake OUT.MODE eco"), C(adm, "SET VAR FAKE out.mode eco"),
         C(adm, "SET VAR fake out.mode eco junk"),
         C(adm, "SET VAR fake out.delay 0"), C(adm, "SET VAR fake out.delay 60"), C(adm, "SET VAR fake out.delay 61"),
         C(adm, "SET VAR fake out.delay 100"), C(adm, "SET VAR fake out.delay 200"),
         C(adm, "SET VAR fake out.delay 201"), C(adm, "SET VAR fake out.delay -1"),
         C(adm, "SET VAR fake out.delay abc"), C(adm, "SET VAR fake out.delay 5x"),
         C(adm, 'SET VAR fake out.delay " 5"'), C(adm, "SET VAR fake out.delay 99999999999"),
         C(adm, 'SET VAR fake out.delay ""'), C(adm, "SET VAR fake out.delay 1.5"),
         C(adm, "SET VAR fake out.name abcde"), C(adm, "SET VAR fake out.name abcdef"),
         C(adm, 'SET VAR fake out.name ""'), C(adm, 'SET VAR fake out.name "a\\"b"'),
         C(adm, 'SET VAR fake out.name "a\\\\b"'), C(adm, 'SET VAR fake out.name "\\#"'),
         C(adm, "SET VAR fake out.ro 1"), C(adm, "SET VAR fake out.rostr 1"), C(adm, "SET VAR fake out.str0 a"),
         C(adm, 'SET VAR fake out.str0 ""'),
         C(adm, "SET VAR fake out.both 5"), C(adm, "SET VAR fake out.both 7"), C(adm, "SET VAR fake out.both 2"),
         C(adm, 'SET VAR fake out.quoted "with \\"quotes\\" and \\\\ and \\#"'),
         C(adm, "SET VAR fake out.empty abcd"), C(adm, "SET VAR fake out.empty abcde"),
         # words are cut to 512 characters: a 600-character value fits STRING:512. (On fake2, whose
         # received lines are not compared: Debian's upsd cuts the forwarded "SET ..." line at 512 bytes
         # and drops its newline, so the driver sees it glued to the next message -- an upsd bug.)
         C(adm, "SET VAR fake2 out.long " + "y" * 512), C(adm, "SET VAR fake2 out.long " + "y" * 513),
         C(adm, "SET VAR fake2 out.long " + "z" * 600), C(adm, "SET VAR fake2 out.long2 " + "z" * 600),
         C(adm, 'SET VAR fake2 out.long "' + "q" * 508 + '\\"\\"\\""'),
         C(adm, "SET VAR fake out.long " + "y" * 494),
         C(adm, "SET VAR fake out.name " + " ".join(f"w{i}" for i in range(40)))])
    add([C(adm, "INSTCMD dummy load.off"), C(adm, "INSTCMD dummy load.off param"),
         C(adm, 'INSTCMD dummy load.off "param with space"'), C(adm, "INSTCMD dummy load.off a b"),
         C(adm, "INSTCMD dummy LOAD.OFF"), C(adm, "INSTCMD dummy nosuch.cmd"), C(adm, "INSTCMD dummy"),
         C(adm, "INSTCMD"), C(adm, "INSTCMD nosuch load.off"), C(adm, "INSTCMD nodrv load.off"),
         C(adm, "INSTCMD fake test.battery.start"), C(adm, "INSTCMD fake test.battery.start 10"),
         C(adm, "INSTCMD fake cmd.upper"), C(adm, "INSTCMD fake CMD.UPPER"), C(adm, 'INSTCMD fake load.off "x\\"y"'),
         C(adm, "INSTCMD fake shutdown.return 1 2 3")])

    # --- TRACKING
    t = "trk"
    add([*LOGIN_AS(t, "admin", "adminpw"), C(t, "GET TRACKING"), C(t, "SET TRACKING"), C(t, "SET TRACKING FOO"),
         C(t, "SET TRACKING on"), C(t, "GET TRACKING"), C(t, "SET TRACKING OFF"), C(t, "GET TRACKING"),
         C(t, "SET TRACKING ON x"), C(t, "GET TRACKING"), C(t, "GET TRACKING x"), C(t, "GET TRACKING x y"),
         C(t, "INSTCMD dummy load.off"),  # -> {ID1}; dummy-ups does not know load.off
         C(t, "SET VAR dummy battery.charge 55"),  # -> {ID2}
         WAIT("GET VAR dummy battery.charge", 'VAR dummy battery.charge "55"'),
         C(t, "INSTCMD fake test.battery.start"),  # -> {ID3}, fake answers 0
         C(t, "SET VAR fake out.mode online"),  # -> {ID4}
         CALL("fake: do not answer TRACKING", set_tracking_result(None)),
         C(t, "INSTCMD fake load.off"),  # -> {ID5}, never answered
         CALL("fake: answer 1 (unknown)", set_tracking_result(1)), C(t, "INSTCMD fake load.off"),  # {ID6}
         CALL("fake: answer 2 (invalid)", set_tracking_result(2)), C(t, "INSTCMD fake load.off"),  # {ID7}
         CALL("fake: answer 3 (failed)", set_tracking_result(3)), C(t, "SET VAR fake out.name abc"),  # {ID8}
         CALL("fake: answer 4 (conversion failed)", set_tracking_result(4)),
         C(t, "INSTCMD fake load.off"),  # {ID9}
         CALL("fake: answer 0", set_tracking_result(0)),
         C(t, "SET VAR fake out.mode bogus"), C(t, "INSTCMD fake nosuch.cmd"), C(t, "SET VAR fake out.ro 1")])
    for i in range(1, 10):
        if i == 5:
            continue
        add([Step("wait-tracking", f"GET TRACKING {{ID{i}}}".encode(), kind="call",
                  label=f"[wait] GET TRACKING {{ID{i}}} is not PENDING", fn=wait_not_pending(i))])
    add([C(t, f"GET TRACKING {{ID{i}}}") for i in range(1, 10)])
    add([C(t, "GET TRACKING {ID1} extra"), C(t, "GET TRACKING 00000000-0000-0000-0000-000000000000"),
         C(t, "GET TRACKING {ID5}")])
    # another connection without tracking: ids are per connection? (and its INSTCMD gets no id?)
    add([*LOGIN_AS("trk2", "admin", "adminpw"), C("trk2", "GET TRACKING"), C("trk2", "GET TRACKING {ID2}"),
         C("trk2", "INSTCMD fake test.battery.start"), C("trk2", "SET VAR fake out.delay 1"),
         C(a, "GET TRACKING {ID2}")])
    add([C(t, "SET TRACKING OFF"), C(t, "GET TRACKING"), C(t, "GET TRACKING {ID2}"),
         C(t, "INSTCMD fake test.battery.start")])

    # --- FSD and its latch (last: it lasts until upsd restarts)
    add([C(pri, "GET VAR dummy ups.status"), *LOGIN_AS(pri, "monpri", "pripw"), C(pri, "FSD"),
         C(pri, "FSD nosuch"), C(pri, "FSD nodrv"), C(pri, "FSD dummy extra"), C(pri, "FSD dummy"),
         C(pri, "FSD DUMMY"), C(a, "GET VAR dummy ups.status"), C(a, "GET VAR DUMMY UPS.STATUS"),
         C(a, "LIST VAR dummy"), C(a, "LIST RW dummy"), C(a, "GET VAR fake ups.status"),
         C(a, "GET VAR nodrv ups.status"), C(a, "GET TYPE dummy ups.status"),
         C(adm, 'SET VAR dummy ups.status "OB LB"'),
         WAIT("GET VAR dummy ups.status", 'VAR dummy ups.status "FSD OB LB"'),
         C(a, "GET VAR dummy ups.status"), C(a, "LIST RW dummy"),
         C(adm, "FSD fake"), C(a, "LIST VAR fake"), C(a, "GET VAR fake ups.status")])

    # --- what upsd forwarded to the fake driver
    add([CALL("lines received by the fake driver", driver_received)])
    return s


def wait_not_pending(i: int) -> Callable[[NutEnv, SessionRunner], None]:
    def fn(env: NutEnv, runner: SessionRunner) -> None:
        c = runner.conn("trk")
        line = f"GET TRACKING {runner.tracking_ids[i - 1]}" if i <= len(runner.tracking_ids) else "GET TRACKING x"
        deadline = time.monotonic() + 10
        reply = ""
        while time.monotonic() < deadline:
            reply = c.request(line)
            if reply != "PENDING":
                return None
            time.sleep(0.05)
        raise AssertionError(f"{line!r} still {reply!r} after 10 s")

    return fn


# --------------------------------------------------------------------------------------------------------
# Running and comparing


def run_session(base: Path, driver_flavour: str, upsd_flavour: str) -> list[tuple[str, list[str]]]:
    env = make_env(base, driver_flavour, upsd_flavour)
    try:
        env.start()
        raw = SessionRunner(env).run(script())
    finally:
        env.stop()
    if upsd_flavour == "nutlite":
        assert "Traceback" not in env.upsd_log(), f"nutlite's upsd logged a traceback:\n{env.upsd_log()}"
    if driver_flavour == "nutlite":
        log = env.driver_log("dummy")
        assert "Traceback" not in log, f"nutlite's dummy-ups logged a traceback:\n{log}"
    return normalise(raw)


def diff_report(ref: list[tuple[str, list[str]]], got: list[tuple[str, list[str]]], who: str) -> str:
    """Every step whose replies differ: the request and both replies (a diff for long replies)."""
    out: list[str] = []
    for (label, lines), (label2, lines2) in zip(ref, got, strict=False):
        assert label == label2, (label, label2)
        if lines == lines2:
            continue
        if max(len(lines), len(lines2)) <= 3:
            out.append(f"--- {label}\n    Debian : {lines!r}\n    {who}: {lines2!r}")
        else:
            diff = difflib.unified_diff(lines, lines2, "Debian", who, lineterm="", n=1)
            out.append(f"--- {label}\n" + "\n".join(f"    {d}" for d in diff))
    if len(ref) != len(got):
        out.append(f"transcript lengths differ: Debian {len(ref)} steps, {who} {len(got)} steps")
    return "\n".join(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, list[str]]]:
    require_real_nut()
    return run_session(tmp_path_factory.mktemp("reference"), "debian", "debian")


def test_reference_transcript(reference: list[tuple[str, list[str]]]) -> None:
    """Debian's own session completes and looks sane (guards the runner and the script)."""
    replies = {label: lines for label, lines in reference}
    assert replies["[anon] cmd 'VER\\n'"] == ["Network UPS Tools upsd <VERSION> - <URL>"]
    assert replies["[anon] cmd 'NETVER\\n'"] == ["1.3"]
    assert any(lines == ["<closed>"] or lines[-1:] == ["<closed>"] for lines in replies.values())
    # a request with a parse error gets no reply at all, and the connection survives it
    assert replies["[anon] cmd 'GET VAR dummy \"a#b\"\\n'"] == []
    # the FSD latch shows
    assert 'VAR dummy ups.status "FSD OB LB"' in replies["[anon] cmd 'GET VAR dummy ups.status\\n'"]


def test_reference_is_deterministic(reference: list[tuple[str, list[str]]], tmp_path: Path) -> None:
    """A second run of Debian's stack gives the same normalised transcript (the test can be trusted)."""
    again = run_session(tmp_path, "debian", "debian")
    report = diff_report(reference, again, "Debian again")
    assert not report, "Debian's transcript is not reproducible:\n" + report


@pytest.mark.parametrize(
    ("driver_flavour", "upsd_flavour"),
    [("nutlite", "nutlite"), ("debian", "nutlite"), ("nutlite", "debian")],
    ids=["nutlite-nutlite", "debian_driver-nutlite_upsd", "nutlite_driver-debian_upsd"],
)
def test_conformance(
    reference: list[tuple[str, list[str]]], tmp_path: Path, driver_flavour: str, upsd_flavour: str
) -> None:
    got = run_session(tmp_path, driver_flavour, upsd_flavour)
    who = f"{driver_flavour} driver + {upsd_flavour} upsd"
    report = diff_report(reference, got, who)
    assert not report, f"replies differ from Debian NUT 2.8.0 ({who}):\n" + report
