"""``nutlite scan --snmp``: address ranges, credentials and output as a user types and reads them, and
a scan of loopback agents that finds what NUT's nut-scanner finds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nutlite.snmp import scan as snmpscan
from nutlite.snmp.client import SnmpSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_ranges() -> None:
    assert snmpscan.expand("192.0.2.0/30") == ["192.0.2.1", "192.0.2.2"]
    assert len(snmpscan.expand("127.0.0.0/24")) == 254
    assert snmpscan.expand("192.0.2.5-192.0.2.7") == ["192.0.2.5", "192.0.2.6", "192.0.2.7"]
    assert snmpscan.expand("192.0.2.250-252") == ["192.0.2.250", "192.0.2.251", "192.0.2.252"]
    assert snmpscan.expand(" 2001:db8::1 ") == ["2001:db8::1"]
    assert snmpscan.expand("2001:db8::/126") == ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
    assert snmpscan.expand("192.0.2.9/32") == ["192.0.2.9"]
    assert snmpscan.between("192.0.2.1", "192.0.2.2") == ["192.0.2.1", "192.0.2.2"]
    assert snmpscan.between("192.0.2.1", "") == ["192.0.2.1"]


@pytest.mark.parametrize(("spec", "words"), [
    ("10.0.0.0/8", "scan at most 65536"),
    ("192.0.2.9-192.0.2.1", "from a first to a last address"),
    ("192.0.2.1-2001:db8::1", "of one family"),
    ("nas.lan", "not an address"),
    ("192.0.2.0/33", "not an address"),
])
def test_bad_ranges_are_named(spec: str, words: str) -> None:
    with pytest.raises(snmpscan.ScanError) as err:
        snmpscan.expand(spec)
    assert spec in str(err.value) and words in str(err.value)


def _found(**kw: object) -> snmpscan.Found:
    settings = SnmpSettings(host="192.0.2.5", **kw)  # type: ignore[arg-type]
    return snmpscan.Found("192.0.2.5", 161, settings, "apcc", 'Smart-UPS "X" 750', "1.3.6.1.4.1.318.1.3.27")


def test_sections_as_nut_scanner_prints_them() -> None:
    text = snmpscan.format_sections([_found(version="v1", community="public"),
                                     _found(version="v2c", community="private")], first=3)
    assert text == (
        '[nutdev3]\n\tdriver = "snmp-ups"\n\tport = "192.0.2.5"\n\tdesc = "Smart-UPS \\"X\\" 750"\n'
        '\tmibs = "apcc"\n\tcommunity = "public"\n'
        '[nutdev4]\n\tdriver = "snmp-ups"\n\tport = "192.0.2.5"\n\tdesc = "Smart-UPS \\"X\\" 750"\n'
        '\tmibs = "apcc"\n\tcommunity = "private"\n\tsnmp_version = "v2c"\n')
    v3 = _found(version="v3", sec_level="authPriv", sec_name="nut", auth_password="authpass1",
                auth_protocol="SHA", priv_password="privpass1", priv_protocol="AES")
    assert snmpscan.format_sections([v3], parsable=True) == (
        'SNMP:driver="snmp-ups",port="192.0.2.5",desc="Smart-UPS \\"X\\" 750",mibs="apcc",snmp_version="v3",'
        'secLevel="authPriv",secName="nut",authProtocol="SHA",authPassword="authpass1",privProtocol="AES",'
        'privPassword="privpass1"\n')
    other_port = snmpscan.Found("192.0.2.5", 16161, SnmpSettings(host="192.0.2.5"), "ietf", "", "1.3.6.1.2.1.33")
    assert '\tport = "192.0.2.5:16161"\n' in snmpscan.format_sections([other_port])


def test_rate_limit_spaces_the_starts() -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def run() -> None:
        pace = snmpscan.RateLimit(4, clock=lambda: now[0])
        orig = asyncio.sleep
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for _ in range(5):
                await pace.wait()
        finally:
            asyncio.sleep = orig  # type: ignore[assignment]

    asyncio.run(run())
    assert slept == [0.25, 0.25, 0.25, 0.25]


def scan_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", "scan", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


@pytest.mark.parametrize(("args", "words"), [
    (["-S"], "-S needs the addresses"),
    (["--snmp", "nas.lan"], "not an address"),
    (["--snmp", "127.0.0.1", "-t", "soon"], "-t (timeout)"),
    (["--snmp", "127.0.0.1", "-l", "authPriv", "-u", "nut"], "authPassword"),
    (["--snmp"], "requires an argument"),
    (["--bogus"], "unrecognized option '--bogus'"),
])
def test_bad_command_lines(args: list[str], words: str) -> None:
    r = scan_cli(*args)
    assert r.returncode == 1 and words in r.stderr and "Traceback" not in r.stderr, r
