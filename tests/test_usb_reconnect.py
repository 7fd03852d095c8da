"""The USB reconnection policy (nutlite.usb.reconnect), driven by a fake clock: one message and one
stale/ok action per change of state, bounded backoff, waitbeforereconnect, the same device again."""

from __future__ import annotations

import logging
import math

import pytest

from nutlite.usb.match import UsbConfigError, UsbDeviceInfo, UsbMatcher
from nutlite.usb.reconnect import Link, ReconnectPolicy

UPS = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=2, port_path=(1,), vendor="American Power Conversion",
                    product="Back-UPS 500", serial="AB0427")
REPLUGGED = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=3, port_path=(1,), vendor="American Power Conversion",
                          product="Back-UPS 500", serial="AB0427")
TWIN = UsbDeviceInfo(0x051D, 0x0002, bus=1, address=4, vendor="American Power Conversion",
                     product="Back-UPS 500", serial="OTHER")


def attempt_times(policy: ReconnectPolicy, start: float, until: float, step: float = 0.25) -> list[float]:
    """Run the clock from ``start`` to ``until``; every due attempt fails. Returns the attempt times."""
    times = []
    t = start
    while t <= until:
        if policy.due(t):
            times.append(t)
            policy.attempt_failed(t, "no matching device")
        t += step
    return times


def test_connected_lost_back_each_give_one_message_and_one_action():
    p = ReconnectPolicy(UsbMatcher.from_config({"vendorid": "051d"}), name="myups")
    events = []

    def record(ev):
        if ev is not None:
            events.append(ev)

    record(p.connected(0.0, UPS))
    record(p.connected(1.0, UPS))                      # no change: nothing
    record(p.lost(10.0, "USB device 051d:0002: the device is gone"))
    record(p.lost(10.5, "again"))                      # still lost: nothing
    for t in (11.0, 13.0, 17.0):
        assert p.due(t)
        p.attempt_failed(t, "no matching device")
        record(p.lost(t, "no matching device"))
    record(p.connected(25.0, REPLUGGED))
    record(p.connected(26.0, REPLUGGED))
    assert [(e.action, e.state) for e in events] == [("ok", Link.CONNECTED), ("stale", Link.LOST),
                                                      ("ok", Link.CONNECTED)]
    first, lost, back = (e.message for e in events)
    assert first == 'UPS [myups]: connected to USB device 051d:0002 "American Power Conversion" ' \
                    '"Back-UPS 500" at bus 001 device 002 (port 1-1)'
    assert lost.startswith('UPS [myups]: lost USB device 051d:0002 "American Power Conversion" "Back-UPS 500" '
                           'at bus 001 device 002 (port 1-1): USB device 051d:0002: the device is gone; data is stale')
    assert lost.endswith("looking for it again every 1 s to 30 s")
    assert back == 'UPS [myups]: USB device 051d:0002 "American Power Conversion" "Back-UPS 500" at bus 001 ' \
                   'device 003 (port 1-1) is back after 15 s, 3 attempts; data is fresh again'
    assert events[0].level == logging.INFO and events[1].level == logging.WARNING


def test_backoff_doubles_from_one_second_up_to_thirty():
    p = ReconnectPolicy()
    p.connected(0.0, UPS)
    p.lost(100.0, "gone")
    assert not p.due(100.0) and p.wait(100.0) == 1.0
    times = attempt_times(p, 100.0, 300.0)
    gaps = [b - a for a, b in zip([100.0, *times], times, strict=False)]
    assert gaps[:7] == [1, 2, 4, 8, 16, 30, 30]
    assert all(g == 30 for g in gaps[5:])


def test_waitbeforereconnect_is_the_first_wait():
    p = ReconnectPolicy.from_config({"waitbeforereconnect": "5"})
    assert p.first_wait == 5
    p.connected(0.0, UPS)
    tr = p.lost(0.0, "gone")
    assert tr is not None and "every 5 s to 30 s" in tr.message
    times = attempt_times(p, 0.0, 80.0)
    assert times[:4] == [5.0, 15.0, 35.0, 65.0]       # 5, 10, 20, 30


def test_a_long_waitbeforereconnect_is_also_the_cap():
    p = ReconnectPolicy.from_config({"waitbeforereconnect": "60"})
    p.connected(0.0, UPS)
    p.lost(0.0, "gone")
    assert attempt_times(p, 0.0, 200.0, 1.0) == [60.0, 120.0, 180.0]


@pytest.mark.parametrize("value", [None, "0"])
def test_waitbeforereconnect_unset_or_zero_is_one_second(value):
    values = {} if value is None else {"waitbeforereconnect": value}
    assert ReconnectPolicy.from_config(values).first_wait == 1.0


@pytest.mark.parametrize("value", ["-1", "soon", "2.5", ""])
def test_bad_waitbeforereconnect_names_the_setting(value):
    with pytest.raises(UsbConfigError) as e:
        ReconnectPolicy.from_config({"waitbeforereconnect": value}, where="ups.conf [myups]")
    assert str(e.value) == (f"ups.conf [myups]: waitbeforereconnect = '{value}': expected a whole number "
                            "of seconds (0 or more)")


def test_backoff_starts_over_after_a_reconnection():
    p = ReconnectPolicy()
    p.connected(0.0, UPS)
    p.lost(0.0, "gone")
    attempt_times(p, 0.0, 40.0)
    p.connected(41.0, REPLUGGED)
    assert not p.due(41.0) and p.wait(41.0) == math.inf
    p.lost(50.0, "gone again")
    assert attempt_times(p, 50.0, 58.0) == [51.0, 53.0, 57.0]


def test_the_same_device_is_looked_for_again_not_the_address():
    configured = UsbMatcher.from_config({"vendorid": "051d", "device": "002"})
    p = ReconnectPolicy(configured)
    assert p.matcher is configured
    assert not p.matcher.matches(REPLUGGED)
    p.connected(0.0, UPS)
    p.lost(1.0, "gone")
    assert p.matcher.matches(REPLUGGED)       # new address, same UPS
    assert not p.matcher.matches(TWIN)        # same model, other serial


def test_startup_retries_are_due_at_once_then_back_off():
    p = ReconnectPolicy()
    assert p.state is Link.NEVER and p.due(0.0) and p.wait(0.0) == 0.0
    p.attempt_failed(0.0, "no matching device")
    assert p.lost(0.0, "no matching device") is None  # not connected yet: nothing to report as lost
    assert not p.due(0.5) and p.due(1.0)
    p.attempt_failed(1.0, "busy")
    assert p.wait(1.0) == 2.0
    tr = p.connected(3.0, UPS)
    assert tr is not None and tr.action == "ok" and "connected to USB device" in tr.message


def test_attempt_failed_while_connected_is_a_programming_error():
    p = ReconnectPolicy()
    p.connected(0.0, UPS)
    with pytest.raises(RuntimeError):
        p.attempt_failed(1.0, "x")


def test_status_line():
    p = ReconnectPolicy()
    p.connected(0.0, UPS)
    assert p.status(0.0).startswith("connected to 051d:0002")
    p.lost(10.0, "gone")
    p.attempt_failed(11.0, "no matching device")
    assert p.status(12.0) == "lost for 2 s, 1 attempt(s), next in 1 s; last error: no matching device"


def test_waits_must_be_positive():
    with pytest.raises(ValueError):
        ReconnectPolicy(first_wait=0)
