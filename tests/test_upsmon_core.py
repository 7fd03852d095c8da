"""upsmon's decision logic (nutlite.upsmon.core) driven by a fake clock, and its notifications."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutlite.upsmon.core import (
    MAGIC,
    InsufficientPower,
    Log,
    MonitorSpec,
    Notify,
    Phase,
    SetFsd,
    Settings,
    Shutdown,
    UpsmonCore,
    WaitSecondaries,
    check_power,
    seconds_until,
)
from nutlite.upsmon.notify import (
    DEFAULT_FLAGS,
    DEFAULT_MESSAGES,
    Notifications,
    command_argv,
    format_message,
    needs_shell,
)

A = "ups@host"
B = "other@host:3493"


def make(*specs: MonitorSpec, now: float = 0.0, **kw: float) -> UpsmonCore:
    defaults = dict(minsupplies=1, pollfreq=5, pollfreqalert=1, hostsync=15, deadtime=15,
                    rbwarntime=100, nocommwarntime=30, finaldelay=5)
    defaults.update(kw)
    return UpsmonCore(Settings(**defaults), specs or (MonitorSpec(A, 1, True),), now)  # type: ignore[arg-type]


def primary(name: str = A, pv: int = 1) -> MonitorSpec:
    return MonitorSpec(name, pv, True)


def secondary(name: str = A, pv: int = 1) -> MonitorSpec:
    return MonitorSpec(name, pv, False)


def events(actions: list) -> list[str]:
    return [a.type for a in actions if isinstance(a, Notify)]


def step(core: UpsmonCore, t: float, **statuses: str | None) -> list:
    """One poll round at time t: name=status (None = poll failed), then evaluate."""
    out: list = []
    for key, status in statuses.items():
        name = {"a": A, "b": B}[key]
        if status is None:
            out += core.poll_failed(name, t, "Data stale")
        else:
            out += core.poll_ok(name, status, t)
    return out + core.evaluate(t)


def started_shutdown(actions: list) -> bool:
    return any(isinstance(a, Log) and a.text.startswith("forced shutdown") for a in actions)


# ------------------------------------------------------------------------------------ line state


def test_initial_ol_and_commok_are_silent() -> None:
    core = make()
    assert step(core, 0, a="OL") == []
    assert step(core, 5, a="OL CHRG") == []
    assert core.ups(A).line == "OL" and core.ups(A).comm_ok


def test_initial_ob_is_announced() -> None:
    core = make(secondary())
    assert events(step(core, 0, a="OB DISCHRG")) == ["ONBATT"]


def test_ob_then_ol_notifies_once_each() -> None:
    core = make(secondary())
    got: list[str] = []
    for t, s in enumerate(["OL", "OB", "OB DISCHRG", "OB", "OL CHRG", "OL", "OL"]):
        got += events(step(core, t, a=s))
    assert got == ["ONBATT", "ONLINE"]
    assert core.phase is Phase.MONITORING


def test_status_tokens_are_case_insensitive_and_unknown_ones_ignored() -> None:
    core = make(secondary())
    assert events(step(core, 0, a="ol chrg HB TRIM BOOST xyz")) == []
    assert events(step(core, 1, a="ob dischrg lb")) == ["ONBATT", "LOWBATT"]


def test_lowbatt_once_per_appearance() -> None:
    core = make(secondary(), hostsync=1000)
    got: list[str] = []
    for t, s in enumerate(["OL LB", "OL LB", "OL", "OL LB"]):
        got += events(step(core, t, a=s))
    assert got == ["LOWBATT", "LOWBATT"]


def test_poll_interval_follows_battery_state() -> None:
    core = make(secondary(), pollfreq=5, pollfreqalert=1)
    assert core.poll_interval() == 5
    step(core, 0, a="OB")
    assert core.poll_interval() == 1
    step(core, 1, a=None)  # a failed poll changes nothing
    assert core.poll_interval() == 1
    step(core, 2, a="OL")
    assert core.poll_interval() == 5


@pytest.mark.parametrize(("token", "on", "off"), [
    ("CAL", "CAL", "NOTCAL"), ("OFF", "OFF", "NOTOFF"), ("BYPASS", "BYPASS", "NOTBYPASS"),
    ("ALARM", "ALARM", "NOTALARM"), ("OVER", "OVER", "NOTOVER"),
])
def test_paired_flags(token: str, on: str, off: str) -> None:
    core = make(secondary())
    assert events(step(core, 0, a="OL")) == []
    assert events(step(core, 1, a=f"OL {token}")) == [on]
    assert events(step(core, 2, a=f"OL {token}")) == []
    assert events(step(core, 3, a="OL")) == [off]
    # present from the start: announced; absent from the start: nothing
    core2 = make(secondary())
    assert events(step(core2, 0, a=f"OL {token}")) == [on]


def test_replbatt_repeats_every_rbwarntime() -> None:
    core = make(secondary(), rbwarntime=100)
    assert events(step(core, 0, a="OL RB")) == ["REPLBATT"]
    assert events(step(core, 50, a="OL RB")) == []
    assert events(step(core, 99, a="OL RB")) == []
    assert events(step(core, 100, a="OL RB")) == ["REPLBATT"]
    assert events(step(core, 150, a="OL")) == []
    assert events(step(core, 160, a="OL RB")) == []  # still within RBWARNTIME of the last warning
    assert events(step(core, 200, a="OL RB")) == ["REPLBATT"]


# ------------------------------------------------------------------------------------ communication


def test_commbad_then_nocomm_every_nocommwarntime_then_commok() -> None:
    core = make(secondary(), nocommwarntime=30, deadtime=15)
    step(core, 0, a="OL")
    assert events(step(core, 5, a=None)) == ["COMMBAD"]
    assert events(step(core, 10, a=None)) == []
    assert events(step(core, 34, a=None)) == []
    assert events(step(core, 35, a=None)) == ["NOCOMM"]
    assert events(step(core, 40, a=None)) == []
    assert events(step(core, 65, a=None)) == ["NOCOMM"]
    assert events(step(core, 70, a="OL")) == ["COMMOK"]
    assert events(step(core, 75, a="OL")) == []
    # a new outage starts a new cycle
    assert events(step(core, 80, a=None)) == ["COMMBAD"]
    assert events(step(core, 110, a=None)) == ["NOCOMM"]
    assert core.phase is Phase.MONITORING  # no shutdown while last seen on line


def test_first_poll_failing_is_commbad() -> None:
    core = make(secondary())
    assert events(step(core, 0, a=None)) == ["COMMBAD"]
    assert events(step(core, 1, a="OL")) == ["COMMOK"]


def test_failure_reason_is_logged() -> None:
    core = make(secondary())
    out = core.poll_failed(A, 0, "Driver not connected")
    assert any(isinstance(a, Log) and "Driver not connected" in a.text for a in out)


def test_data_stale_is_not_a_line_change() -> None:
    core = make(secondary())
    step(core, 0, a="OB")
    assert events(step(core, 1, a=None)) == ["COMMBAD"]
    assert core.ups(A).line == "OB"
    assert events(step(core, 2, a="OB")) == ["COMMOK"]  # no second ONBATT
    assert events(step(core, 3, a=None)) == ["COMMBAD"]
    assert events(step(core, 4, a="OL")) == ["COMMOK", "ONLINE"]


def test_empty_status_counts_as_failed_poll() -> None:
    core = make(secondary())
    step(core, 0, a="OL")
    assert events(step(core, 1, a="  ")) == ["COMMBAD"]


def test_wait_is_no_outage_and_no_news() -> None:
    core = make(secondary())
    step(core, 0, a="OL")
    assert events(step(core, 1, a="WAIT")) == []
    assert core.ups(A).line == "OL"
    step(core, 2, a=None)
    # upsd answers again, but only WAIT: communication is back, the line state is unchanged
    assert events(step(core, 3, a="WAIT")) == ["COMMOK"]
    assert core.ups(A).line == "OL"
    assert events(step(core, 4, a="OL")) == []


def test_wait_does_not_refresh_data_for_deadtime() -> None:
    core = make(primary(), deadtime=15)
    step(core, 0, a="OB")
    for t in range(1, 16):
        assert not started_shutdown(step(core, t, a="WAIT"))
    assert started_shutdown(step(core, 16, a="WAIT"))


def test_wait_does_not_clear_flags() -> None:
    core = make(secondary(), hostsync=1000)
    step(core, 0, a="OB LB")
    assert events(step(core, 1, a="WAIT")) == []
    assert events(step(core, 2, a="OB LB")) == []  # no second LOWBATT
    assert core.ups(A).lowbatt


# ------------------------------------------------------------------------------------ criticality


def test_ob_lb_on_primary_is_critical_at_once() -> None:
    core = make(primary(), finaldelay=5)
    step(core, 0, a="OL")
    step(core, 1, a="OB")
    out = step(core, 2, a="OB LB")
    assert events(out) == ["LOWBATT"]
    assert SetFsd(A) in out
    assert out[-1] == WaitSecondaries((A,))
    assert core.phase is Phase.SYNCING
    assert core.shutdown_reason is not None and "MINSUPPLIES" in core.shutdown_reason


def test_ob_alone_or_lb_alone_is_not_critical() -> None:
    core = make(primary())
    for t, s in enumerate(["OB", "OL LB", "OB DISCHRG", "OL", "LB", "OL"]):
        assert not started_shutdown(step(core, t, a=s)), s
    assert core.phase is Phase.MONITORING


def test_calibration_is_not_critical() -> None:
    core = make(primary())
    out = step(core, 0, a="OB LB CAL")
    assert not started_shutdown(out)
    assert not core.is_critical(A, 0)
    assert started_shutdown(step(core, 1, a="OB LB"))


def test_fsd_alone_is_critical_even_on_line() -> None:
    core = make(secondary(), finaldelay=0)
    step(core, 0, a="OL")
    out = step(core, 1, a="FSD OL")
    assert events(out) == ["FSD", "SHUTDOWN"]
    assert out[-1] == Shutdown()
    assert not any(isinstance(a, SetFsd) for a in out)  # a secondary never sends FSD
    assert core.phase is Phase.DONE


def test_secondary_waits_hostsync_for_the_primary() -> None:
    core = make(secondary(), hostsync=15)
    step(core, 0, a="OB")
    step(core, 10, a="OB")  # the last poll that was not OB+LB
    for t in (11, 20, 25):
        assert not started_shutdown(step(core, t, a="OB LB")), t
    out = step(core, 25.5, a="OB LB")
    assert started_shutdown(out)
    assert any(isinstance(a, Log) and "no FSD from its primary" in a.text for a in out)
    assert events(out) == ["SHUTDOWN"]


def test_secondary_acts_at_once_on_fsd_within_hostsync() -> None:
    core = make(secondary(), hostsync=15, finaldelay=2)
    step(core, 0, a="OB LB")
    out = step(core, 3, a="FSD OB LB")
    assert events(out) == ["FSD", "SHUTDOWN"]
    assert core.phase is Phase.FINALDELAY
    assert core.tick(4.9) == []
    assert core.tick(5) == [Shutdown()]
    assert core.phase is Phase.DONE


def test_secondary_hostsync_restarts_after_a_non_critical_poll() -> None:
    core = make(secondary(), hostsync=10)
    step(core, 0, a="OB LB")
    step(core, 8, a="OB")  # LB went away: not critical at 8
    step(core, 9, a="OB LB")
    assert not started_shutdown(step(core, 17, a="OB LB"))
    assert started_shutdown(step(core, 18.5, a="OB LB"))


def test_secondary_started_during_outage_still_waits_hostsync() -> None:
    core = make(secondary(), hostsync=15, now=100)
    assert not started_shutdown(step(core, 100, a="OB LB"))
    assert not started_shutdown(step(core, 115, a="OB LB"))
    assert started_shutdown(step(core, 116, a="OB LB"))


# ------------------------------------------------------------------------------------ DEADTIME


def test_dead_while_on_battery_counts_as_ob_lb() -> None:
    core = make(primary(), deadtime=15)
    step(core, 0, a="OB")
    assert events(step(core, 1, a=None)) == ["COMMBAD"]
    for t in (5, 10, 15):
        assert not started_shutdown(step(core, t, a=None)), t
    out = step(core, 15.5, a=None)
    assert any(isinstance(a, Log) and "DEADTIME" in a.text for a in out)
    assert started_shutdown(out)
    assert SetFsd(A) in out


def test_dead_while_on_line_never_shuts_down() -> None:
    core = make(primary(), deadtime=15, nocommwarntime=30)
    step(core, 0, a="OL")
    got: list[str] = []
    for t in range(1, 200, 5):
        out = step(core, t, a=None)
        assert not started_shutdown(out)
        got += events(out)
    assert got[0] == "COMMBAD" and set(got[1:]) == {"NOCOMM"}
    assert core.phase is Phase.MONITORING


def test_never_heard_ups_is_healthy_and_never_dead() -> None:
    core = make(primary(), deadtime=5)
    for t in range(0, 100, 5):
        assert not started_shutdown(step(core, t, a=None))


def test_dead_secondary_waits_for_hostsync_too() -> None:
    core = make(secondary(), deadtime=5, hostsync=20)
    step(core, 0, a="OB")
    for t in (1, 6, 10, 20):
        assert not started_shutdown(step(core, t, a=None)), t
    assert started_shutdown(step(core, 20.5, a=None))


def test_recovered_ups_is_no_longer_dead() -> None:
    core = make(MonitorSpec(A, 1, True), MonitorSpec(B, 1, True), minsupplies=2, deadtime=10)
    step(core, 0, a="OB", b="OL")
    step(core, 5, a=None, b="OL")
    assert core.is_critical(A, 10.5)
    out = step(core, 10.2, a="OB", b="OL")  # answers just in time
    assert not started_shutdown(out)
    assert not core.is_critical(A, 10.5)


# ------------------------------------------------------------------------------------ MINSUPPLIES


def test_minsupplies_one_of_two() -> None:
    """Two supplies worth 1 each, MINSUPPLIES 1: one critical leaves 1 >= 1; both leave 0 < 1."""
    core = make(primary(A), primary(B), minsupplies=1)
    step(core, 0, a="OL", b="OL")
    assert not started_shutdown(step(core, 1, a="OB LB", b="OL"))
    assert core.healthy_power(1) == 1
    assert not started_shutdown(step(core, 2, a="OB LB", b="OB"))
    out = step(core, 3, a="OB LB", b="OB LB")
    assert started_shutdown(out)
    assert [a for a in out if isinstance(a, SetFsd)] == [SetFsd(A), SetFsd(B)]


def test_minsupplies_two_of_two() -> None:
    core = make(primary(A), primary(B), minsupplies=2)
    step(core, 0, a="OL", b="OL")
    assert started_shutdown(step(core, 1, a="OB LB", b="OL"))


def test_minsupplies_zero_never_shuts_down() -> None:
    core = make(primary(), minsupplies=0)
    assert not started_shutdown(step(core, 0, a="FSD OB LB"))


def test_power_value_weights() -> None:
    core = make(primary(A, 2), primary(B, 1), minsupplies=2)
    step(core, 0, a="OL", b="OL")
    assert not started_shutdown(step(core, 1, a="OL", b="OB LB"))  # 2 left
    assert started_shutdown(step(core, 2, a="OB LB", b="OL"))  # 1 left


def test_monitor_only_ups_never_matters() -> None:
    core = make(primary(A, 1), secondary(B, 0), minsupplies=1)
    step(core, 0, a="OL", b="OL")
    assert not started_shutdown(step(core, 1, a="OL", b="FSD OB LB"))
    assert core.phase is Phase.MONITORING


def test_fsd_goes_to_every_primary_ups_not_only_critical_ones() -> None:
    core = make(primary(A), primary(B), secondary("third@h"), minsupplies=3)
    core.poll_ok("third@h", "OL", 0)
    out = step(core, 0, a="OB LB", b="OL")
    assert [a for a in out if isinstance(a, SetFsd)] == [SetFsd(A), SetFsd(B)]


def test_check_power() -> None:
    check_power([primary(A, 1)], 1)
    check_power([], 0)
    with pytest.raises(InsufficientPower, match="add up to 1.*MINSUPPLIES is 2"):
        check_power([primary(A, 1)], 2)
    with pytest.raises(InsufficientPower):
        check_power([primary(A, 0)], 1)


# ------------------------------------------------------------------------------------ forced shutdown


def test_primary_waits_for_secondaries_then_shuts_down() -> None:
    core = make(primary(), hostsync=15, finaldelay=5)
    step(core, 0, a="OB LB")
    assert core.phase is Phase.SYNCING
    assert core.sync_update({A: 3}, 0.25) == []
    assert core.sync_update({A: 2}, 0.5) == []
    out = core.sync_update({A: 1}, 0.75)
    assert events(out) == ["SHUTDOWN"]
    assert core.phase is Phase.FINALDELAY and core.next_deadline() == 5.75
    assert core.tick(5) == []
    assert core.tick(5.75) == [Shutdown()]
    assert core.tick(6) == []


def test_primary_gives_up_after_hostsync() -> None:
    core = make(primary(), hostsync=2, finaldelay=0)
    step(core, 10, a="OB LB")
    assert core.next_deadline() == 12
    assert core.sync_update({A: 2}, 11.9) == []
    out = core.sync_update({A: 2}, 12)
    assert any(isinstance(a, Log) and "HOSTSYNC" in a.text for a in out)
    assert events(out) == ["SHUTDOWN"] and out[-1] == Shutdown()


def test_hostsync_expiry_also_by_tick() -> None:
    core = make(primary(), hostsync=2, finaldelay=1)
    step(core, 0, a="OB LB")
    assert core.tick(1) == []
    assert events(core.tick(2)) == ["SHUTDOWN"]
    assert core.tick(3) == [Shutdown()]


def test_unanswered_numlogins_counts_as_nobody() -> None:
    core = make(primary(), hostsync=15, finaldelay=0)
    step(core, 0, a="OB LB")
    assert core.sync_update({A: None}, 0.1)[-1] == Shutdown()


def test_max_over_several_primary_upses() -> None:
    core = make(primary(A), primary(B), hostsync=15, finaldelay=0, minsupplies=2)
    step(core, 0, a="OB LB", b="OL")
    assert core.sync_update({A: 1, B: 2}, 1) == []
    assert core.sync_update({A: 1, B: 1}, 2)[-1] == Shutdown()


def test_pure_secondary_skips_the_wait() -> None:
    core = make(secondary(), hostsync=0, finaldelay=3)
    out = step(core, 0, a="FSD OB LB")
    assert events(out) == ["ONBATT", "LOWBATT", "FSD", "SHUTDOWN"]
    assert core.phase is Phase.FINALDELAY


def test_shutdown_notice_comes_before_finaldelay_and_shutdown_last() -> None:
    core = make(primary(), finaldelay=0)
    out = step(core, 0, a="OB LB") + core.sync_update({A: 1}, 0.25)
    kinds = [type(a).__name__ for a in out if not isinstance(a, Log)]
    # ONBATT, LOWBATT, FSD ups, wait, SHUTDOWN, shutdown
    assert kinds == ["Notify", "Notify", "SetFsd", "WaitSecondaries", "Notify", "Shutdown"]


def test_a_started_shutdown_is_not_called_off() -> None:
    core = make(primary(), finaldelay=5)
    step(core, 0, a="OB LB")
    assert step(core, 1, a="OL") == []
    assert core.user_fsd(1) == []
    assert core.poll_failed(A, 2) == []
    assert core.phase is Phase.SYNCING
    core.sync_update({A: 1}, 2)
    assert core.phase is Phase.FINALDELAY


def test_user_fsd_on_primary() -> None:
    core = make(primary(A), secondary(B), minsupplies=1)
    step(core, 0, a="OL", b="OL")
    out = core.user_fsd(1)
    assert [a for a in out if isinstance(a, SetFsd)] == [SetFsd(A)]
    assert core.phase is Phase.SYNCING
    assert "upsmon -c fsd" in (core.shutdown_reason or "")


def test_user_fsd_on_secondary() -> None:
    core = make(secondary(), finaldelay=0)
    out = core.user_fsd(0)
    assert events(out) == ["SHUTDOWN"] and out[-1] == Shutdown()


def test_seconds_until() -> None:
    assert seconds_until(None, 5) == float("inf")
    assert seconds_until(3, 5) == 0
    assert seconds_until(7.5, 5) == 2.5


# ------------------------------------------------------------------------------------ misc events


def test_noparent_once() -> None:
    core = make()
    out = core.parent_gone()
    assert events(out) == ["NOPARENT"]
    assert [a.ups for a in out if isinstance(a, Notify)] == [None]
    assert core.parent_gone() == []


def test_reconfigure_keeps_known_state() -> None:
    core = make(secondary(A), hostsync=100)
    step(core, 0, a="OB")
    core.reconfigure(Settings(minsupplies=1, pollfreq=2, pollfreqalert=2, hostsync=100),
                     [primary(A), secondary(B)], 1)
    assert core.ups(A).line == "OB" and core.ups(A).spec.primary
    assert core.ups(B).line is None
    assert events(step(core, 2, a="OB", b="OL")) == []
    assert core.poll_interval() == 2
    with pytest.raises(ValueError):
        core.reconfigure(Settings(), [primary(A), primary(A)], 3)


def test_duplicate_monitor_rejected() -> None:
    with pytest.raises(ValueError):
        UpsmonCore(Settings(), [primary(A), secondary(A)], 0)


def test_magic_string() -> None:
    assert MAGIC == "upsmon-shutdown-file"


# ------------------------------------------------------------------------------------ properties

STATUSES = ["OL", "OB", "OL CHRG", "OB DISCHRG", "WAIT", None, "OL RB", "OB CAL", "OL LB"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(STATUSES), max_size=60))
def test_without_lb_or_fsd_a_secondary_never_shuts_down(seq: list[str | None]) -> None:
    """A DEADTIME longer than the run: only OB+LB or FSD could shut down, and neither occurs
    together; ONBATT/ONLINE alternate, starting with ONBATT; COMMBAD/COMMOK alternate too."""
    core = make(secondary(), deadtime=10_000, hostsync=0)
    line: list[str] = []
    comm: list[str] = []
    for t, s in enumerate(seq):
        out = step(core, t, a=s)
        assert not started_shutdown(out)
        line += [e for e in events(out) if e in ("ONBATT", "ONLINE")]
        comm += [e for e in events(out) if e in ("COMMBAD", "COMMOK")]
    assert line == ["ONBATT", "ONLINE"] * (len(line) // 2) + ["ONBATT"] * (len(line) % 2)
    assert comm == ["COMMBAD", "COMMOK"] * (len(comm) // 2) + ["COMMBAD"] * (len(comm) % 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["OL", "OB", "OB LB", "FSD OB LB", "WAIT", None]),
                          st.floats(min_value=0.1, max_value=20)), max_size=40))
def test_shutdown_starts_at_most_once_and_only_when_critical(seq: list[tuple[str | None, float]]) -> None:
    core = make(primary(), deadtime=15, hostsync=5, finaldelay=3)
    t = 0.0
    starts = 0
    for status, dt in seq:
        t += dt
        was_monitoring = core.phase is Phase.MONITORING
        critical_before = False
        if status is not None and was_monitoring:
            out = core.poll_ok(A, status, t)
        else:
            out = core.poll_failed(A, t)
        critical_before = core.is_critical(A, t)
        out += core.evaluate(t)
        if started_shutdown(out):
            starts += 1
            assert was_monitoring and critical_before
        out += core.tick(t)
        assert out.count(Shutdown()) <= 1
    assert starts <= 1


# ------------------------------------------------------------------------------------ notifications


def test_format_message() -> None:
    assert format_message("UPS %s on battery", "ups@h") == "UPS ups@h on battery"
    assert format_message("100%% sure: %s", "x") == "100% sure: x"
    assert format_message("%s and %s", "a") == "a and"
    assert format_message("no placeholder", "a") == "no placeholder"
    assert format_message("odd %d %", "a") == "odd %d %"


def test_default_messages_and_flags() -> None:
    n = Notifications(wall=None)
    assert n.flags("ONBATT") == set(DEFAULT_FLAGS) == {"SYSLOG", "WALL"}
    assert n.message("ONBATT", "u@h") == "UPS u@h is running on battery"
    assert "%s" not in n.message("SHUTDOWN", None)
    for t, text in DEFAULT_MESSAGES.items():
        assert n.message(t, "u@h"), t
        assert "%s" not in n.message(t, "u@h")
        assert text.isascii()


def test_notifymsg_and_ignore() -> None:
    n = Notifications(notifymsg={"ONBATT": "power out on %s!"}, notifyflag={"ONLINE": set()}, wall=None)
    assert n.message("ONBATT", "x") == "power out on x!"
    assert n.flags("ONLINE") == set()


def test_needs_shell_and_argv() -> None:
    assert not needs_shell("/usr/sbin/upssched")
    assert not needs_shell("/usr/bin/logger -t ups")
    for cmd in ("echo x | logger", "a > b", "a; b", "$HOME/x", "a && b", "'quoted'", "x `y`"):
        assert needs_shell(cmd), cmd
    assert command_argv("/usr/bin/logger -t ups", "msg with $x") == ["/usr/bin/logger", "-t", "ups", "msg with $x"]
    argv = command_argv("cat >> /tmp/f", "m")
    assert argv[:2] == ["/bin/sh", "-c"] and argv[2].endswith('"$1"') and argv[-1] == "m"


def _wait_file(path: Path, lines: int, timeout: float = 5.0) -> list[str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            got = path.read_text().splitlines()
            if len(got) >= lines:
                return got
        time.sleep(0.02)
    raise AssertionError(f"{path}: expected {lines} lines, got {path.read_text() if path.exists() else 'nothing'}")


def test_exec_runs_notifycmd_without_shell(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "n.py"
    script.write_text(
        "import os, sys\n"
        f"open({str(out)!r}, 'a').write('|'.join([os.environ['NOTIFYTYPE'], os.environ.get('UPSNAME', '-'),"
        " str(len(sys.argv) - 1), sys.argv[1]]) + '\\n')\n"
    )
    n = Notifications(notifycmd=f"{sys.executable} {script}", notifyflag={"ONBATT": {"EXEC"}, "SHUTDOWN": {"EXEC"}},
                      notifymsg={"ONBATT": "it's $HOME; `x` \"%s\""}, wall=None)
    os.environ["UPSNAME"] = "leak"
    try:
        n.notify("ONBATT", "u@h")
        n.notify("SHUTDOWN", None)
    finally:
        del os.environ["UPSNAME"]
    got = sorted(_wait_file(out, 2))
    assert got == ["ONBATT|u@h|1|it's $HOME; `x` \"u@h\"", f"SHUTDOWN|-|1|{DEFAULT_MESSAGES['SHUTDOWN']}"]
    for p in n.children:
        p.wait(5)
    n.reap()
    assert n.children == []


def test_exec_through_shell_keeps_message_literal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    n = Notifications(notifycmd=f"printf '%s\\n' >> {out}", notifyflag={"LOWBATT": {"EXEC"}},
                      notifymsg={"LOWBATT": f"$(touch {tmp_path}/pwned) %s"}, wall=None)
    n.notify("LOWBATT", "u@h")
    assert _wait_file(out, 1) == [f"$(touch {tmp_path}/pwned) u@h"]
    assert not (tmp_path / "pwned").exists()


def test_notify_never_blocks_on_a_slow_command(tmp_path: Path) -> None:
    n = Notifications(notifycmd="/bin/sleep", notifyflag={"ONBATT": {"EXEC"}}, notifymsg={"ONBATT": "5"},
                      wall=None)
    t = time.monotonic()
    n.notify("ONBATT", "u@h")
    assert time.monotonic() - t < 1
    for p in n.children:
        p.kill()
        p.wait()


def test_missing_notifycmd_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    n = Notifications(notifycmd="/nonexistent/notify", notifyflag={"ONBATT": {"EXEC", "SYSLOG"}}, wall=None)
    n.notify("ONBATT", "u@h")
    assert "cannot run /nonexistent/notify" in caplog.text
    assert "u@h is running on battery" in caplog.text


def test_wall_gets_the_message_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "wall.out"
    fake = tmp_path / "wall"
    fake.write_text(f"#!/bin/sh\ncat > {out}\n")
    fake.chmod(0o755)
    n = Notifications(notifyflag={"ONBATT": {"WALL"}}, wall=str(fake))
    n.notify("ONBATT", "u@h")
    assert _wait_file(out, 1) == ["UPS u@h is running on battery"]
