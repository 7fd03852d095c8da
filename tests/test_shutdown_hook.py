"""The late-shutdown hook systemd/nutshutdown, run end to end as systemd-shutdown would run it.

Each test builds a private NUT setup in a tmp dir (nut.conf, ups.conf, upsmon.conf with a
POWERDOWNFLAG in the tmp dir, a statepath) and runs the hook as a subprocess with
``NUT_CONFPATH``/``NUT_STATEPATH`` pointing there. ``NUTLITE_BIN`` is a small wrapper that runs this
checkout's real ``python -m nutlite`` (and logs each call), ``NUTLITE_REBOOT_CMD`` a script that records
that it was called, ``NUTLITE_CONSOLE`` a file instead of /dev/console.

The UPS is a `FakeDriver` serving the driver socket ``<statepath>/dummy-ups-ups1`` and recording what
it is sent: ``nutlite upsdrvctl shutdown`` must ask it for ``INSTCMD driver.killpower``. One test has no
driver running at all (as at a real late shutdown, when every daemon is dead): then upsdrvctl falls back
to ``nutlite driver -a ups1 -k`` on a dummy-ups ``.dev`` file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nutenv import REPO_ROOT, FakeDriver

HOOK = REPO_ROOT / "systemd" / "nutshutdown"
MAGIC = "upsmon-shutdown-file"


@dataclass
class HookSetup:
    base: Path
    conf: Path
    state: Path
    flag: Path
    marker: Path
    console: Path
    calls: Path
    reboots: Path
    fake: FakeDriver
    bin: Path

    def nut_conf(self, text: str) -> None:
        (self.conf / "nut.conf").write_text(text)

    def set_flag(self, content: str = MAGIC) -> None:
        self.flag.write_text(content)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NUT", "POWEROFF"))}
        env.update(
            NUT_CONFPATH=str(self.conf),
            NUT_STATEPATH=str(self.state),
            NUTLITE_BIN=str(self.bin / "nutlite"),
            NUTLITE_REBOOT_CMD=f"{self.bin / 'reboot'} --force --force",
            NUTLITE_CONSOLE=str(self.console),
        )
        env.update(extra)
        return env

    def run(self, verb: str = "poweroff", timeout: float = 30.0, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run the hook like systemd-shutdown does (one argument: the verb); its whole process group
        is killed if it outlives `timeout`."""
        proc = subprocess.Popen([str(HOOK), verb], env=self.env(**extra), cwd=self.base, text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"the hook did not finish within {timeout} s\n{out}{err}\n{self.console_text()}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    # -- what happened
    def console_text(self) -> str:
        return self.console.read_text() if self.console.exists() else ""

    def nutlite_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def reboot_calls(self) -> list[str]:
        return self.reboots.read_text().splitlines() if self.reboots.exists() else []

    def killpower_sent(self) -> bool:
        return any(line.startswith("INSTCMD driver.killpower") for line in self.fake.received)


def write_script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[HookSetup]:
    conf, state, data, bin_ = (tmp_path / d for d in ("etc", "state", "data", "bin"))
    for d in (conf, state, data, bin_):
        d.mkdir()
    flag = state / "killpower"
    # As root, a driver started for `-k` switches to the account "nut", which could not read this
    # root-only tmp dir; keep it root (NutEnv passes -u root for the same reason).
    user = "  user = root\n" if os.geteuid() == 0 else ""
    (conf / "ups.conf").write_text("[ups1]\n  driver = dummy-ups\n  port = ups1.dev\n" + user)
    (conf / "ups1.dev").write_text("ups.status: OB LB\nbattery.charge: 5\n")
    (conf / "upsmon.conf").write_text(
        "MONITOR ups1@localhost 1 monpri pripw primary\n"
        'SHUTDOWNCMD "/bin/true"\n'
        f"POWERDOWNFLAG {flag}\n"
    )
    calls = tmp_path / "nutlite-calls.log"
    reboots = tmp_path / "reboot-calls.log"
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    write_script(bin_ / "nutlite",
                 f'echo "$*" >> {shlex.quote(str(calls))}\n'
                 f"PYTHONPATH={shlex.quote(pythonpath)}; export PYTHONPATH\n"
                 f'exec {shlex.quote(sys.executable)} -m nutlite "$@"\n')
    write_script(bin_ / "reboot", f'echo "reboot $*" >> {shlex.quote(str(reboots))}\n')
    fake = FakeDriver(state / "dummy-ups-ups1")
    fake.setvar("ups.status", "OB LB")
    fake.setvar("battery.charge", "5")
    fake.addcmd("driver.killpower", "shutdown.return")
    fake.start()
    setup = HookSetup(tmp_path, conf, state, flag, data / "powerfail", tmp_path / "console.log",
                      calls, reboots, fake, bin_)
    try:
        yield setup
    finally:
        fake.stop()


STANDALONE = "MODE=standalone\n"


def marker_line(hook: HookSetup) -> str:
    return f"BOOTGUARD_MARKER={hook.marker}\n"


# --------------------------------------------------------------------------------------------- acting


def test_flag_set_killpower_then_reboot_after_poweroff_wait(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1\n" + marker_line(hook))
    hook.set_flag()
    started = time.monotonic()
    res = hook.run()
    took = time.monotonic() - started
    console = hook.console_text()
    assert res.returncode == 0, res.stderr + console
    # upsmon -K said yes, then upsdrvctl shutdown asked the running driver to kill the power.
    assert hook.nutlite_calls() == ["upsmon -K", "upsdrvctl shutdown"], console
    assert any(line.startswith('SET driver.flag.allow_killpower "1"') for line in hook.fake.received)
    assert hook.killpower_sent(), hook.fake.received
    # Power race: after POWEROFF_WAIT the machine reboots, forced.
    assert hook.reboot_calls() == ["reboot --force --force"]
    assert took >= 1.0
    # The power-fail marker for the boot guard.
    assert hook.marker.exists()
    assert "power-fail" in hook.marker.read_text()
    assert "power-fail shutdown (poweroff)" in console
    assert "the running driver sent the shutdown" in console  # upsdrvctl's output reaches the console
    assert "waiting 1 s" in console and "rebooting" in console
    assert res.stdout == "" and res.stderr == ""  # everything went to the console


def test_flag_set_without_poweroff_wait_does_not_reboot(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + marker_line(hook))
    hook.set_flag()
    res = hook.run()
    assert res.returncode == 0
    assert hook.killpower_sent()
    assert hook.reboot_calls() == []
    assert hook.marker.exists()


def test_no_driver_running_falls_back_to_driver_k(hook: HookSetup) -> None:
    """At a real late shutdown every daemon is dead: upsdrvctl runs `driver -a ups1 -k` itself."""
    hook.fake.stop()
    hook.nut_conf(STANDALONE + marker_line(hook))
    hook.set_flag()
    res = hook.run()
    console = hook.console_text()
    assert res.returncode == 0
    assert hook.nutlite_calls() == ["upsmon -K", "upsdrvctl shutdown"]
    assert "simulated UPS shutdown" in console  # dummy-ups' shutdown routine ran
    assert "the UPS accepted the shutdown command" in console


def test_netclient_only_waits_and_reboots(hook: HookSetup) -> None:
    """A netclient has no UPS of its own (ups.conf is not used): no killpower, but the power-race
    reboot still applies to this machine."""
    hook.nut_conf("MODE=netclient\nPOWEROFF_WAIT=1\n" + marker_line(hook))
    hook.set_flag()
    res = hook.run()
    assert res.returncode == 0
    assert hook.nutlite_calls() == ["upsmon -K"]
    assert hook.fake.received == []
    assert hook.reboot_calls() == ["reboot --force --force"]
    assert hook.marker.exists()
    assert "MODE=netclient" in hook.console_text()


def test_quiet_prints_nothing_but_still_acts(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1\nPOWEROFF_QUIET=true\n" + marker_line(hook))
    hook.set_flag()
    res = hook.run()
    assert res.returncode == 0
    assert hook.killpower_sent()
    assert hook.reboot_calls() == ["reboot --force --force"]
    assert hook.console_text() == ""
    assert res.stdout == "" and res.stderr == ""


def test_poweroff_wait_is_cut_to_the_budget(hook: HookSetup) -> None:
    """systemd-shutdown stops waiting for hooks after 90 s: a longer POWEROFF_WAIT would never
    reach the reboot, so the hook shortens it."""
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1h\nNUTLITE_SHUTDOWN_BUDGET=3\n" + marker_line(hook))
    hook.set_flag()
    started = time.monotonic()
    res = hook.run(timeout=20)
    assert res.returncode == 0
    assert time.monotonic() - started < 10
    assert hook.reboot_calls() == ["reboot --force --force"]
    assert "does not fit" in hook.console_text()


def test_nut_conf_is_read_not_executed(hook: HookSetup) -> None:
    """Quotes, export, blanks and comments as a shell would read them; command substitutions in the
    file are never run."""
    witness = hook.base / "executed"
    hook.nut_conf(
        "# MODE=none\n"
        "MODE=none\n"
        ' export MODE = "standalone"   # the last one wins\n'
        f"POWEROFF_WAIT='1' ; touch {witness}\n"
        f"X=$(touch {witness})\n"
        + marker_line(hook)
    )
    hook.set_flag()
    res = hook.run()
    assert res.returncode == 0
    assert hook.killpower_sent()
    assert hook.reboot_calls() == ["reboot --force --force"]
    assert not witness.exists()


def test_marker_that_cannot_be_written_does_not_stop_the_killpower(hook: HookSetup) -> None:
    missing = hook.base / "not-mounted" / "powerfail"
    hook.nut_conf(STANDALONE + f"BOOTGUARD_MARKER={missing}\n")
    hook.set_flag()
    res = hook.run()
    assert res.returncode == 0
    assert hook.killpower_sent()
    assert not missing.exists()
    assert "could not write the power-fail marker" in hook.console_text()


def test_existing_marker_is_left_alone(hook: HookSetup) -> None:
    """nutlite-powerfail-marker.service wrote it earlier in the shutdown; keep that one."""
    hook.marker.write_text("written earlier\n")
    hook.nut_conf(STANDALONE + marker_line(hook))
    hook.set_flag()
    assert hook.run().returncode == 0
    assert hook.killpower_sent()
    assert hook.marker.read_text() == "written earlier\n"


def test_a_hanging_shutdown_is_bounded(hook: HookSetup) -> None:
    """Whatever hangs, the hook finishes within its budget (here a stub upsdrvctl that never returns)."""
    write_script(hook.bin / "stuck",
                 'case "$1" in upsmon) exit 0 ;; upsdrvctl) exec sleep 300 ;; esac\nexit 1\n')
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1\nNUTLITE_SHUTDOWN_BUDGET=4\n" + marker_line(hook))
    started = time.monotonic()
    res = hook.run(timeout=30, NUTLITE_BIN=str(hook.bin / "stuck"))
    assert res.returncode == 0
    assert time.monotonic() - started < 8
    assert "upsdrvctl shutdown failed" in hook.console_text()
    assert hook.reboot_calls() == ["reboot --force --force"]


# --------------------------------------------------------------------------------------------- not acting


def test_no_flag_does_nothing(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1\n" + marker_line(hook))
    res = hook.run()
    assert res.returncode == 0
    assert hook.nutlite_calls() == ["upsmon -K"]
    assert not hook.killpower_sent()
    assert hook.fake.received == []
    assert hook.reboot_calls() == []
    assert not hook.marker.exists()


def test_flag_with_foreign_content_does_nothing(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1\n" + marker_line(hook))
    hook.set_flag("something else\n")
    assert hook.run().returncode == 0
    assert hook.nutlite_calls() == ["upsmon -K"]
    assert not hook.killpower_sent()
    assert hook.reboot_calls() == []


def test_mode_none_does_nothing_even_with_the_flag(hook: HookSetup) -> None:
    """NUT issue #2935: a leftover flag must not power the UPS off once NUT is switched off."""
    hook.nut_conf("MODE=none\nPOWEROFF_WAIT=1\n" + marker_line(hook))
    hook.set_flag()
    res = hook.run()
    assert res.returncode == 0
    assert hook.nutlite_calls() == []
    assert hook.fake.received == []
    assert hook.reboot_calls() == []
    assert not hook.marker.exists()
    assert hook.console_text() == ""


@pytest.mark.parametrize("nut_conf", [None, "POWEROFF_WAIT=1\n"], ids=["no-nut.conf", "no-MODE"])
def test_mode_unset_means_none(hook: HookSetup, nut_conf: str | None) -> None:
    if nut_conf is not None:
        hook.nut_conf(nut_conf)
    hook.set_flag()
    assert hook.run().returncode == 0
    assert hook.nutlite_calls() == []
    assert hook.fake.received == []
    assert hook.reboot_calls() == []
    assert "leaving the UPS alone" in hook.console_text()


def test_missing_nutlite_program(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + "POWEROFF_WAIT=1\n")
    hook.set_flag()
    res = hook.run(NUTLITE_BIN=str(hook.base / "no-such-nutlite"))
    assert res.returncode == 0
    assert hook.reboot_calls() == []
    assert "cannot find the nutlite program" in hook.console_text()


def test_messages_go_to_stderr_without_a_console(hook: HookSetup) -> None:
    hook.nut_conf(STANDALONE + marker_line(hook))
    hook.set_flag()
    res = hook.run(NUTLITE_CONSOLE=str(hook.base / "no-such-dir" / "console"))
    assert res.returncode == 0
    assert hook.killpower_sent()
    assert "nutshutdown: power-fail shutdown" in res.stderr
