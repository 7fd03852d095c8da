"""Real NUT clients against the whole nutlite stack (nutlite driver + nutlite upsd).

Each client lists UPSes and variables, runs an instant command and sets a variable with the right
permissions, and fails with the right error without them. Every test also runs against Debian's own
upsd + dummy-ups, which proves the test itself: what passes there must pass here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nutenv import DATA_DIR, NutEnv, UpsSpec, require_real_nut

pytestmark = pytest.mark.interop

UPS = "dummy"


@pytest.fixture(params=["nutlite", "debian"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NutEnv]:
    require_real_nut()
    flavour = request.param
    env = NutEnv(tmp_path, [UpsSpec(UPS, port="conformance.dev", desc="Test UPS")],
                 driver_flavour=flavour, upsd_flavour=flavour,
                 files={"conformance.dev": DATA_DIR / "conformance.dev"})
    env.start()
    try:
        yield env
    finally:
        env.stop()


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)  # type: ignore[call-overload]


def value(env: NutEnv, var: str, expect: str | None = None, timeout: float = 3.0) -> str:
    """The variable's value; with ``expect``, wait up to ``timeout`` for the driver to apply a SET."""
    deadline = time.monotonic() + timeout
    while True:
        with env.connect() as c:
            reply = c.request(f"GET VAR {UPS} {var}")
        assert reply.startswith(f"VAR {UPS} {var} "), reply
        got = reply.split('"')[1]
        if expect is None or got == expect or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


# ------------------------------------------------------------------ Debian's nut-client tools


def test_debian_upsc(stack: NutEnv) -> None:
    host = f"127.0.0.1:{stack.port}"
    r = run(["upsc", "-l", host])
    assert r.returncode == 0 and r.stdout.split() == [UPS], r
    r = run(["upsc", "-L", host])
    assert r.stdout.strip() == f"{UPS}: Test UPS", r
    r = run(["upsc", f"{UPS}@{host}"])
    assert r.returncode == 0, r
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert lines["battery.charge"] == "87" and lines["ups.status"] == "OL CHRG"
    assert lines["input.sensitivity"] == 'say "hi"' and lines["ups.id"] == "hash # tag"
    r = run(["upsc", f"{UPS}@{host}", "ups.status"])
    assert r.stdout == "OL CHRG\n"
    r = run(["upsc", f"{UPS}@{host}", "no.such.var"])
    assert r.returncode == 1 and "Error: Variable not supported by UPS" in r.stderr
    r = run(["upsc", f"nope@{host}"])
    assert r.returncode == 1 and "Error: Unknown UPS" in r.stderr


def test_debian_upscmd(stack: NutEnv) -> None:
    target = f"{UPS}@127.0.0.1:{stack.port}"
    r = run(["upscmd", "-l", target])
    assert r.returncode == 0 and "load.off" in r.stdout, r
    r = run(["upscmd", "-u", "admin", "-p", "adminpw", target, "load.off"])
    assert r.returncode == 0 and (r.stdout + r.stderr).strip() == "OK", r  # Debian prints OK on stderr
    r = run(["upscmd", "-u", "nobody", "-p", "nobodypw", target, "load.off"])
    assert r.returncode != 0 and "ERR ACCESS-DENIED" in r.stderr, r
    r = run(["upscmd", "-u", "admin", "-p", "wrong", target, "load.off"])
    assert r.returncode != 0 and "ERR ACCESS-DENIED" in r.stderr, r
    r = run(["upscmd", "-u", "admin", "-p", "adminpw", target, "no.such.cmd"])
    assert r.returncode != 0 and "ERR CMD-NOT-SUPPORTED" in r.stderr, r


def test_debian_upsrw(stack: NutEnv) -> None:
    target = f"{UPS}@127.0.0.1:{stack.port}"
    r = run(["upsrw", target])
    assert r.returncode == 0 and "[ups.delay.shutdown]" in r.stdout, r
    r = run(["upsrw", "-s", "ups.delay.shutdown=45", "-u", "admin", "-p", "adminpw", target])
    assert r.returncode == 0 and (r.stdout + r.stderr).strip() == "OK", r
    assert value(stack, "ups.delay.shutdown", "45") == "45"
    r = run(["upsrw", "-s", "ups.delay.shutdown=60", "-u", "nobody", "-p", "nobodypw", target])
    assert r.returncode != 0 and "ERR ACCESS-DENIED" in r.stderr, r
    assert value(stack, "ups.delay.shutdown", "45") == "45"


# ------------------------------------------------------------------ PyNUT from python3-nut (Debian)

PYNUT_SCRIPT = r"""
import json, sys
sys.path.insert(0, "/usr/lib/python3/dist-packages")
import PyNUT
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {}
c = PyNUT.PyNUTClient(host="127.0.0.1", port=port, login=user, password=pw)
out["ups"] = {k.decode(): v.decode() for k, v in c.GetUPSList().items()}
out["vars"] = {k.decode(): v.decode() for k, v in c.GetUPSVars("dummy").items()}
out["cmds"] = sorted(k.decode() for k in c.GetUPSCommands("dummy"))
for name, call in (("cmd", lambda: c.RunUPSCommand("dummy", "load.off")),
                   ("set", lambda: c.SetRWVar("dummy", "ups.delay.shutdown", "33"))):
    try:
        out[name] = repr(call())
    except Exception as e:
        out[name] = "error: " + str(e)
print(json.dumps(out))
"""


def test_debian_pynut(stack: NutEnv) -> None:
    def pynut(user: str, pw: str) -> dict[str, object]:
        r = run(["/usr/bin/python3", "-c", PYNUT_SCRIPT, str(stack.port), user, pw])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    out = pynut("admin", "adminpw")
    assert out["ups"] == {UPS: "Test UPS"}
    assert out["vars"]["battery.charge"] == "87"  # type: ignore[index]
    assert out["cmds"] == ["load.off"]
    assert out["cmd"] == "'OK'" and out["set"] == "'OK'", out
    assert value(stack, "ups.delay.shutdown", "33") == "33"
    out = pynut("nobody", "nobodypw")
    assert "ACCESS-DENIED" in str(out["cmd"]) and "ACCESS-DENIED" in str(out["set"]), out


# ------------------------------------------------------------------ PyPI clients


def test_pynutclient(stack: NutEnv) -> None:
    from PyNUTClient import PyNUT

    c = PyNUT.PyNUTClient(host="127.0.0.1", port=stack.port, login="admin", password="adminpw")
    assert {k.decode(): v.decode() for k, v in c.GetUPSList().items()} == {UPS: "Test UPS"}
    vars_ = {k.decode(): v.decode() for k, v in c.GetUPSVars(UPS).items()}
    # (pynutclient splits replies on '"', so values with escaped quotes come out cut: not checked)
    assert vars_["ups.model"] == "Smart 1500" and vars_["ups.test.result"] == "Done and passed"
    assert [k.decode() for k in c.GetUPSCommands(UPS)] == ["load.off"]
    c.RunUPSCommand(UPS, "load.off")
    c.SetRWVar(UPS, "ups.delay.shutdown", "77")
    assert value(stack, "ups.delay.shutdown", "77") == "77"
    weak = PyNUT.PyNUTClient(host="127.0.0.1", port=stack.port, login="nobody", password="nobodypw")
    with pytest.raises(PyNUT.PyNUTError, match="ACCESS-DENIED"):
        weak.RunUPSCommand(UPS, "load.off")
    with pytest.raises(PyNUT.PyNUTError, match="ACCESS-DENIED"):
        weak.SetRWVar(UPS, "ups.delay.shutdown", "1")
    assert value(stack, "ups.delay.shutdown", "77") == "77"


def test_aionut(stack: NutEnv) -> None:
    from aionut import AIONUTClient, NUTError

    async def scenario() -> None:
        c = AIONUTClient(host="127.0.0.1", port=stack.port, username="admin", password="adminpw")
        try:
            assert await c.list_ups() == {UPS: "Test UPS"}
            vars_ = await c.list_vars(UPS)
            assert vars_["battery.charge"] == "87" and vars_["ups.status"] == "OL CHRG"
            assert set(await c.list_commands(UPS)) == {"load.off"}
            await c.run_command(UPS, "load.off")
            assert await c.description(UPS) == "Test UPS"
        finally:
            c.disconnect()
        weak = AIONUTClient(host="127.0.0.1", port=stack.port, username="nobody", password="nobodypw")
        try:
            with pytest.raises(NUTError):
                await weak.run_command(UPS, "load.off")
        finally:
            weak.disconnect()

    asyncio.run(scenario())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
