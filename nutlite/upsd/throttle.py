"""Slowing down password guessing, per client address, without any I/O (clock in, answer time out).

NUT's upsd answers a wrong password as fast as a right one, so one address can try thousands a second.
nutlite's upsd counts the *wrong guesses* of each address: a session whose USERNAME and PASSWORD do not
match upsd.users (unknown user, user without a password, wrong password) when a LOGIN, PRIMARY/MASTER,
FSD, SET VAR or INSTCMD checks them (ERR ACCESS-DENIED). A session sets its PASSWORD once, so it is
one guess however many commands it tries; a right password without the right asked for is no guess.

* The first ``free`` failures (5) cost nothing: a client with a typo, a reconnecting upsmon secondary or
  Home Assistant never notice.
* From then on *every* credential-checked answer to that address waits -- a right guess as long as a
  wrong one, or the timing would tell which guess was right -- ``first_delay`` seconds, growing by
  ``growth`` per further failure, up to ``max_delay`` (30 s).
* The waits of one address are serialized: each answer is due ``delay`` after the previous one to that
  address, so parallel connections queue behind each other instead of multiplying the rate.
* Other addresses are never slowed; successes do not count (nor forgive: an attacker who knows one
  account's password cannot reset its counter with it).
* ``forgive_after`` seconds (10 minutes) without a failure forget the address.
* At most ``max_addresses`` addresses are tracked; the one whose last failure is oldest goes first.

One warning is logged per burst, naming the address, when its answers start being slowed; and one info
line when it is forgiven.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

log = logging.getLogger("nutlite.upsd")

FREE_FAILURES = 5
FIRST_DELAY = 0.1  # seconds, for the first slowed answer
GROWTH = 1.5  # each further failure multiplies the delay by this
MAX_DELAY = 30.0
FORGIVE_AFTER = 600.0  # seconds without a failure that forget an address
MAX_ADDRESSES = 10000


class _Record:
    __slots__ = ("failures", "last_failure", "next_due", "logged")

    def __init__(self) -> None:
        self.failures = 0
        self.last_failure = 0.0
        self.next_due = 0.0  # when the last slowed answer to this address is (was) due
        self.logged = False


class LoginThrottle:
    """Failed credential checks per client address, and when each answer to it may be sent."""

    def __init__(self, free: int = FREE_FAILURES, first_delay: float = FIRST_DELAY, growth: float = GROWTH,
                 max_delay: float = MAX_DELAY, forgive_after: float = FORGIVE_AFTER,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.free = free
        self.first_delay = first_delay
        self.growth = growth
        self.max_delay = max_delay
        self.forgive_after = forgive_after
        self.max_addresses = max_addresses
        self._table: OrderedDict[str, _Record] = OrderedDict()  # oldest last failure first

    def __len__(self) -> int:
        return len(self._table)

    def failures(self, addr: str) -> int:
        """Failed credential checks of ``addr`` in its current burst."""
        rec = self._table.get(addr)
        return rec.failures if rec is not None else 0

    def delay_for(self, failures: int) -> float:
        """How long a credential-checked answer waits when its address has ``failures`` failures."""
        over = failures - self.free
        if over < 0:
            return 0.0
        return min(self.max_delay, self.first_delay * self.growth ** min(over, 1000))

    def checked(self, addr: str, failed: bool, now: float) -> float:
        """One credential check for ``addr`` was answered at ``now`` (``failed``: a wrong guess).

        Return the time the answer may be sent: ``now`` unless the address is being slowed down.
        """
        table = self._table
        rec = table.get(addr)
        if rec is not None and now - rec.last_failure >= self.forgive_after:
            self._forget(addr, rec)
            rec = None
        if rec is None:
            if not failed:
                return now
            rec = _Record()
            table[addr] = rec
            if len(table) > self.max_addresses:
                table.popitem(last=False)
        due = now
        if rec.failures >= self.free:
            due = max(now, rec.next_due) + self.delay_for(rec.failures)
            rec.next_due = due
        if failed:
            rec.failures += 1
            rec.last_failure = now
            table.move_to_end(addr)
            if rec.failures >= self.free and not rec.logged:
                rec.logged = True
                log.warning("%d failed logins from %s: slowing down its answers to logins and privileged "
                            "commands (up to %g s each) until it has had no failure for %g s",
                            rec.failures, addr, self.max_delay, self.forgive_after)
        return due

    def expire(self, now: float) -> int:
        """Forget the addresses without a failure for ``forgive_after`` seconds; return how many went."""
        table = self._table
        n = 0
        while table:
            addr, rec = next(iter(table.items()))
            if now - rec.last_failure < self.forgive_after:
                break
            self._forget(addr, rec)
            n += 1
        return n

    def _forget(self, addr: str, rec: _Record) -> None:
        del self._table[addr]
        if rec.logged:
            log.info("No failed login from %s for %g s: its answers are no longer slowed down "
                     "(%d failures in that burst)", addr, self.forgive_after, rec.failures)
