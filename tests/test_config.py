"""Config parsers: typed results, NUT's messy cases, errors that name file and line, Debian's samples,
and Debian's own upsd as the oracle for how ups.conf values tokenize."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest
from nutenv import STAY_ROOT

from nutlite.config import (
    ConfigError,
    confpath,
    load_nut_conf,
    load_ups_conf,
    load_upsd_conf,
    load_upsd_users,
    load_upsmon_conf,
    load_upssched_conf,
    split_system,
    statepath,
)
from nutlite.parseconf import quote

MESSY_UPS_CONF = r"""
# globals first, some with odd spacing and quoting
maxretry=3
  retrydelay =   2
user = "nut"
nowait

[dummy1]
	driver = dummy-ups
	port = "dummy.dev"
	desc = "A \"quoted\" \\ description with \# hash"
	nolock
	override.battery.charge.low = 30

[with-equals]
	driver=dummy-ups
	port="ups=with=equals.dev"
	desc = "x = y"

[hash-in-quotes]
	driver = dummy-ups
	port = "file#1.dev"

[unquoted]
	driver = dummy-ups
	port = unquoted=thing
	sdorder = -1
	default.input.voltage = "230"
	ignorelb
"""


def test_messy_ups_conf() -> None:
    conf = load_ups_conf("messy/ups.conf", text=MESSY_UPS_CONF)
    assert conf.globals == {"maxretry": "3", "retrydelay": "2", "user": "nut"}
    assert conf.global_flags == ["nowait"]
    d1 = conf.ups["dummy1"]
    assert d1.driver == "dummy-ups" and d1.port == "dummy.dev"
    assert d1.desc == 'A "quoted" \\ description with # hash'
    assert d1.flags == ["nolock"] and d1.maxretry == 3 and d1.retrydelay == 2
    assert d1.values["override.battery.charge.low"] == "30"
    assert conf.ups["with-equals"].port == "ups=with=equals.dev"
    assert conf.ups["with-equals"].desc == "x = y"
    # NUT rejects the quoted '#' line: the section then has no port and is left out, with a warning
    assert "hash-in-quotes" not in conf.ups
    assert any(":22: line ignored: Unbalanced word due to unescaped # in quotes" in w for w in conf.warnings)
    with pytest.raises(ConfigError, match=r"messy/ups.conf:20: section \[hash-in-quotes\] has no 'port'"):
        conf.require("hash-in-quotes")
    un = conf.ups["unquoted"]
    assert un.port == "unquoted"  # '=' splits: the rest are extra words, as in NUT
    assert any("extra words" in w and ":26:" in w for w in conf.warnings)
    assert un.sdorder == -1 and un.has_flag("ignorelb")
    assert conf.find("UNQUOTED") is un
    with pytest.raises(ConfigError, match="no section \\[nope\\]"):
        conf.require("nope")


@pytest.mark.parametrize(
    "loader, text, message",
    [
        (load_ups_conf, "[a]\n driver = x\n port = y\n sdorder = soon\n", r"f:4: \[a\] sdorder: expected a whole number, got 'soon'"),
        (load_ups_conf, "[a]\n driver=x\n port=y\n[a]\n driver=x\n port=y\n", r"f:4: section \[a\] defined twice"),
        (load_ups_conf, "[default]\n driver=x\n", "f:1: section name 'default' is reserved"),
        (load_upsd_conf, "MAXAGE abc\n", "f:1: MAXAGE: expected a whole number, got 'abc'"),
        (load_upsd_conf, "LISTEN 127.0.0.1 70000\n", "f:1: LISTEN: port 70000 is out of range"),
        (load_upsd_conf, "\n\nLISTEN\n", "f:3: LISTEN: expected 'LISTEN <address> \\[<port>\\]'"),
        (load_upsd_conf, "ALLOW_NO_DEVICE maybe\n", "f:1: ALLOW_NO_DEVICE: expected yes/no"),
        (load_upsd_users, "[u]\n upsmon boss\n", "f:2: upsmon: expected primary or secondary"),
        (load_upsmon_conf, "MONITOR ups@h 1 u p\n", "f:1: MONITOR: expected 'MONITOR <ups>"),
        (load_upsmon_conf, "MONITOR ups@h x u p primary\n", "f:1: MONITOR power value: expected a whole number"),
        (load_upsmon_conf, "NOTIFYFLAG ONBATT SYSLOG+LOUD\n", "f:1: NOTIFYFLAG: unknown flag"),
        (load_upsmon_conf, "POLLFREQ 0\n", "f:1: POLLFREQ: expected a number >= 1"),
        (load_upssched_conf, "AT ONBATT * LAUNCH x\n", "f:1: AT: expected START-TIMER"),
        (load_nut_conf, "# c\nMODE=sometimes\n", "f:2: MODE: expected one of none, standalone"),
    ],
)
def test_errors_name_file_line_and_expectation(loader, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        loader("f", text=text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ups.conf: file not found"):
        load_ups_conf(tmp_path / "ups.conf")
    assert load_upsd_conf(tmp_path / "upsd.conf").listen_addresses() == [("127.0.0.1", 3493), ("::1", 3493)]


def test_missing_ups_conf_suggests_a_driver_of_this_build(tmp_path: Path) -> None:
    """The example section in the message works as given: its driver is one nutlite has."""
    import re

    from nutlite.drivers.main import available_drivers

    with pytest.raises(ConfigError) as info:
        load_ups_conf(tmp_path / "ups.conf")
    m = re.search(r"'driver = ([^']+)'", str(info.value))
    assert m is not None, str(info.value)
    assert m.group(1) in available_drivers(), str(info.value)


def test_upsd_conf_values() -> None:
    conf = load_upsd_conf("f", text="LISTEN 0.0.0.0 3493\nLISTEN ::1\nMAXAGE 25\nmaxconn 10\nACL x y\nSTATEPATH /s\n"
                          "CERTFILE /c.pem\nDISABLE_WEAK_SSL on\nBOGUS 1\n")
    assert conf.listen == [("0.0.0.0", 3493), ("::1", 3493)]
    assert (conf.maxage, conf.maxconn, conf.statepath, conf.certfile, conf.disable_weak_ssl) == (25, 10, "/s", "/c.pem", True)
    assert any("f:5: ACL is obsolete" in w for w in conf.warnings)
    assert any("f:9: unknown directive 'BOGUS'" in w for w in conf.warnings)


def test_upsd_users_roles_and_rights() -> None:
    conf = load_upsd_users("f", text="""
[admin]
    password = "s3cret#x\\"y"
    actions = SET
    actions = fsd
    instcmds = ALL
[mon]
    password = pw
    upsmon master
[sec]
    password = pw
    upsmon = slave
[cmduser]
    password = pw
    instcmds = test.battery.start load.off
""".replace('#', '\\#'))
    admin = conf.users["admin"]
    assert admin.password == 's3cret#x"y'
    assert admin.can("set") and admin.can("FSD") and admin.can_instcmd("anything.at.all")
    mon = conf.users["mon"]
    assert mon.upsmon == "primary" and mon.can("LOGIN") and mon.can("FSD") and mon.can("MASTER")
    assert conf.users["sec"].upsmon == "secondary" and not conf.users["sec"].can("FSD")
    c = conf.users["cmduser"]
    assert c.can_instcmd("LOAD.OFF") and not c.can_instcmd("load.on") and not c.can("SET")


def test_upsmon_conf_values() -> None:
    conf = load_upsmon_conf("f", text="""
MONITOR myups@nas:3494 1 monuser "pass word" primary
MONITOR other@[::1]:3493 0 u p slave
MONITOR local 2 u p secondary
MINSUPPLIES 2
SHUTDOWNCMD "/sbin/shutdown -h +0"
NOTIFYCMD /usr/sbin/upssched
POLLFREQ 3
POLLFREQALERT 1
POWERDOWNFLAG /run/nut/killpower
NOTIFYMSG ONBATT "On battery: %s"
NOTIFYFLAG ONBATT SYSLOG+WALL+EXEC
NOTIFYFLAG LOWBATT IGNORE
FINALDELAY 0
RUN_AS_USER nut
""")
    m = conf.monitors
    assert (m[0].upsname, m[0].host, m[0].port, m[0].password, m[0].role) == ("myups", "nas", 3494, "pass word", "primary")
    assert (m[1].host, m[1].port, m[1].powervalue, m[1].role) == ("::1", 3493, 0, "secondary")
    assert (m[2].host, m[2].port) == ("localhost", 3493)
    assert conf.minsupplies == 2 and conf.shutdowncmd == "/sbin/shutdown -h +0"
    assert conf.pollfreq == 3 and conf.pollfreqalert == 1 and conf.finaldelay == 0
    assert conf.notifymsg["ONBATT"] == "On battery: %s"
    assert conf.notifyflag == {"ONBATT": {"SYSLOG", "WALL", "EXEC"}, "LOWBATT": set()}
    assert conf.powerdownflag == "/run/nut/killpower" and conf.run_as_user == "nut"


def test_split_system() -> None:
    assert split_system("ups") == ("ups", "localhost", 3493)
    assert split_system("ups@host") == ("ups", "host", 3493)
    assert split_system("ups@10.0.0.1:1234") == ("ups", "10.0.0.1", 1234)
    assert split_system("ups@[fe80::1]:99") == ("ups", "fe80::1", 99)
    assert split_system("ups@fe80::1") == ("ups", "fe80::1", 3493)


def test_nut_conf() -> None:
    conf = load_nut_conf("f", text="# sample\nMODE=netserver\nPOWEROFF_WAIT=\"15m\"\nUPSD_OPTIONS='-D'\n")
    assert conf.mode == "netserver" and conf.poweroff_wait == "15m" and conf.values["UPSD_OPTIONS"] == "-D"
    assert load_nut_conf("f", text="").mode == "none"


def test_paths_follow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUT_CONFPATH", "/x/conf")
    monkeypatch.delenv("NUT_STATEPATH", raising=False)
    assert confpath() == Path("/x/conf")
    ups = load_ups_conf("f", text="statepath = /from/ups\n")
    upsd = load_upsd_conf("f", text="STATEPATH /from/upsd\n")
    assert statepath(ups, upsd) == Path("/from/ups")
    assert statepath(None, upsd) == Path("/from/upsd")
    assert statepath() == Path("/run/nut")
    monkeypatch.setenv("NUT_STATEPATH", "/from/env")
    assert statepath(ups, upsd) == Path("/from/env")


SAMPLE_DIRS = [Path("/etc/nut"), Path("/usr/share/nut")]
LOADERS = {
    "ups.conf": load_ups_conf, "upsd.conf": load_upsd_conf, "upsd.users": load_upsd_users,
    "upsmon.conf": load_upsmon_conf, "upssched.conf": load_upssched_conf, "nut.conf": load_nut_conf,
}


def _debian_samples() -> list[Path]:
    found = []
    for d in SAMPLE_DIRS:
        if d.is_dir():
            found += sorted(p for p in d.iterdir() if p.is_file())
    return found


@pytest.mark.interop
def test_debian_sample_files(real_nut: None) -> None:
    samples = _debian_samples()
    assert samples, "Debian's nut packages ship sample files in /etc/nut and /usr/share/nut"
    for path in samples:
        loader = LOADERS.get(path.name)
        if loader is not None:
            conf = loader(path)
            assert not [w for w in conf.warnings if "line ignored" in w], (path, conf.warnings)
        else:  # cmdvartab, driver.list: same tokenizer, no line rejected
            from nutlite.parseconf import parse_text

            rejected = [ln for ln in parse_text(path.read_text("latin-1")) if ln.error]
            assert not rejected, (path, rejected[:3])


# ------------------------------------------------------------ Debian's parser as the oracle

TRICKY_VALUES = [
    'plain', 'two words', 'with "quotes"', 'back\\slash', 'hash # inside', 'equals=inside', "tab\there",
    "trailing space ", " leading", "", "'single'", 'mixed "q" \\ # =', "x" * 100,
]


def _tricky_desc_lines(rng: random.Random) -> list[str]:
    """Raw `desc = ...` right-hand sides, quoted and unquoted, some NUT rejects."""
    raw = [quote(v) for v in TRICKY_VALUES]
    raw += ['unquoted', 'two words unquoted', 'a\\ b', 'mid"quote', 'x=y', '"unclosed', '"bad # hash"',
            'word # comment', '"a"b', '\\"start']
    alphabet = 'ab "\\#=\t'
    for _ in range(30):
        raw.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
    return raw


@pytest.mark.interop
def test_ups_conf_tokenizes_like_debian_upsd(tmp_path: Path, real_nut: None) -> None:
    """Write many tricky `desc` values; Debian's upsd LIST UPS must show what we parsed."""
    rng = random.Random(2466)
    rhs = _tricky_desc_lines(rng)
    lines = []
    for i, r in enumerate(rhs):
        lines.append(f"[u{i:03d}]\n\tdriver = dummy-ups\n\tport = u{i}.dev\n\tdesc = {r}\n")
    conf_dir, state_dir = tmp_path / "conf", tmp_path / "state"
    conf_dir.mkdir()
    state_dir.mkdir()
    (conf_dir / "ups.conf").write_text("".join(lines))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (conf_dir / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {port}\n")
    (conf_dir / "upsd.users").write_text("")
    env = dict(os.environ, NUT_CONFPATH=str(conf_dir), NUT_STATEPATH=str(state_dir))
    args = ["/lib/nut/upsd", "-F", *STAY_ROOT]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        reply = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    c.sendall(b"LIST UPS\n")
                    while not reply.endswith(b"END LIST UPS\n"):
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        reply += chunk
                break
            except OSError:
                time.sleep(0.05)
        theirs = reply.decode("ascii").splitlines()
    finally:
        proc.terminate()
        proc.wait(5)
    ours_conf = load_ups_conf(conf_dir / "ups.conf")
    ours = ["BEGIN LIST UPS"]
    for name in sorted(ours_conf.ups):
        desc = ours_conf.ups[name].desc
        ours.append(f"UPS {name} {quote(desc) if desc is not None else chr(34) + 'Description unavailable' + chr(34)}")
    ours.append("END LIST UPS")
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    assert not missing and not extra, f"ours only: {missing}\ntheirs only: {extra}"
    assert len(theirs) > 40  # most sections survived; the rejected ones are left out by both
