"""When to look for a lost USB device again, and what to tell the user and upsd: a clock-driven core
without I/O (the caller passes ``now``, a monotonic time in seconds).

A driver calls ``connected(now, info)`` after opening the device, ``lost(now, reason)`` on the first
Disconnected (or other error that means the link is gone), then, while ``due(now)``, tries to open
``policy.matcher`` (the same device: its ids and strings, not its address) and reports the outcome
with ``connected`` or ``attempt_failed``. Each change of state -- connected, lost, back -- returns one
Transition: the single log line to write and the action for the driver's data ("stale" or "ok");
calls that change nothing return None.

Waits between attempts: ``waitbeforereconnect`` seconds (NUT's setting) or 1 s first, then doubled
after each failed attempt, up to 30 s (or the first wait when that is longer).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from .match import UsbConfigError, UsbDeviceInfo, UsbMatcher

DEFAULT_FIRST_WAIT = 1.0
DEFAULT_MAX_WAIT = 30.0


class Link(enum.Enum):
    NEVER = "never connected"
    CONNECTED = "connected"
    LOST = "lost"


@dataclass(frozen=True)
class Transition:
    """One change of the link: ``action`` is "ok" (data fresh again) or "stale" (mark the data stale);
    ``message`` is the one log line for it, at ``level``."""

    action: str
    message: str
    level: int
    state: Link


def _secs(x: float) -> str:
    return f"{x:g} s"


class ReconnectPolicy:
    """The reconnection state machine of one driver's USB device (see the module documentation)."""

    def __init__(self, matcher: UsbMatcher | None = None, *, first_wait: float = DEFAULT_FIRST_WAIT,
                 max_wait: float = DEFAULT_MAX_WAIT, name: str = "") -> None:
        if not first_wait > 0 or not max_wait > 0:
            raise ValueError("reconnect waits must be above 0 seconds")
        self.base_matcher = matcher or UsbMatcher()
        self.first_wait = float(first_wait)
        self.max_wait = max(float(max_wait), self.first_wait)
        self.name = name
        self.state = Link.NEVER
        self.device: UsbDeviceInfo | None = None
        self.lost_at: float | None = None
        self.last_error: str | None = None
        self.attempts = 0
        self._wait = self.first_wait
        self._next_at: float | None = None

    @classmethod
    def from_config(cls, values: Mapping[str, str | None], matcher: UsbMatcher | None = None,
                    where: str = "", name: str = "") -> ReconnectPolicy:
        """Read ``waitbeforereconnect`` (whole seconds, 0 or unset: the 1 s default) from a section."""
        raw = values.get("waitbeforereconnect")
        first = DEFAULT_FIRST_WAIT
        if raw is not None:
            try:
                n = int(str(raw).strip())
            except ValueError:
                n = -1
            if n < 0:
                raise UsbConfigError("waitbeforereconnect", str(raw), "expected a whole number of seconds (0 or more)",
                                     where)
            first = float(n) if n > 0 else DEFAULT_FIRST_WAIT
        return cls(matcher, first_wait=first, name=name)

    # ---- what to look for, and when

    @property
    def matcher(self) -> UsbMatcher:
        """What to open next: the lost device again (same ids and strings, any address) once one was
        connected, else the configured settings."""
        if self.device is None:
            return self.base_matcher
        return self.base_matcher.same_device(self.device)

    def due(self, now: float) -> bool:
        """True when the driver should try to open the device now."""
        return self.state is not Link.CONNECTED and (self._next_at is None or now >= self._next_at)

    def wait(self, now: float) -> float:
        """Seconds until the next attempt (0 when due, infinity while connected)."""
        if self.state is Link.CONNECTED:
            return math.inf
        if self._next_at is None:
            return 0.0
        return max(0.0, self._next_at - now)

    # ---- events

    def _who(self) -> str:
        return f"UPS [{self.name}]: " if self.name else ""

    def connected(self, now: float, info: UsbDeviceInfo) -> Transition | None:
        """The device is open. First time: "connected"; after a loss: "back" (data ok again)."""
        previous, was_lost_at = self.state, self.lost_at
        self.state = Link.CONNECTED
        self.device = info
        self.lost_at = None
        self._next_at = None
        self._wait = self.first_wait
        attempts, self.attempts, self.last_error = self.attempts, 0, None
        if previous is Link.CONNECTED:
            return None
        if previous is Link.NEVER:
            return Transition("ok", f"{self._who()}connected to USB device {info.describe()}", logging.INFO,
                              Link.CONNECTED)
        gone = "" if was_lost_at is None else f" after {_secs(round(now - was_lost_at, 1))}"
        tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        return Transition("ok", f"{self._who()}USB device {info.describe()} is back{gone}{tries}; data is fresh again",
                          logging.WARNING, Link.CONNECTED)

    def lost(self, now: float, reason: str) -> Transition | None:
        """The link is gone (Disconnected, or an error the driver treats as such). Only the first call
        after a connection returns a Transition ("stale"); the first attempt is due ``first_wait``
        seconds later."""
        if self.state is not Link.CONNECTED:
            self.last_error = reason
            return None
        self.state = Link.LOST
        self.lost_at = now
        self.last_error = reason
        self.attempts = 0
        self._next_at = now + self.first_wait
        self._wait = min(self.first_wait * 2, self.max_wait)
        what = self.device.describe() if self.device else "device"
        return Transition("stale", f"{self._who()}lost USB device {what}: {reason}; data is stale; looking for it "
                          f"again every {_secs(self.first_wait)} to {_secs(self.max_wait)}", logging.WARNING,
                          Link.LOST)

    def attempt_failed(self, now: float, reason: str) -> None:
        """An attempt to open the device failed (not found yet, busy, ...): wait longer before the
        next one (doubling up to ``max_wait``). No message: the loss was reported already; the
        driver may log ``reason`` at debug level."""
        if self.state is Link.CONNECTED:
            raise RuntimeError("attempt_failed while connected: call lost() first")
        self.attempts += 1
        self.last_error = reason
        self._next_at = now + self._wait
        self._wait = min(self._wait * 2, self.max_wait)

    def status(self, now: float) -> str:
        """One line for a debug log or a status query."""
        if self.state is Link.CONNECTED:
            return f"connected to {self.device.describe() if self.device else 'the device'}"
        since = f" for {_secs(round(now - self.lost_at, 1))}" if self.lost_at is not None else ""
        last = f"; last error: {self.last_error}" if self.last_error else ""
        return (f"{self.state.value}{since}, {self.attempts} attempt(s), next in "
                f"{_secs(round(self.wait(now), 1))}{last}")
