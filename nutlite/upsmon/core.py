"""upsmon's decision logic: a pure state machine over poll results and a clock.

Nothing here touches a socket, a file or the real time. The shell (:mod:`nutlite.upsmon.main`)
feeds it what it observed and executes the actions it returns:

* :meth:`UpsmonCore.poll_ok` / :meth:`UpsmonCore.poll_failed` -- one poll of one UPS
  (``GET VAR <ups> ups.status`` answered, or not);
* :meth:`UpsmonCore.evaluate` -- after every poll round: who is critical, are enough supplies left;
* :meth:`UpsmonCore.user_fsd` -- ``upsmon -c fsd``;
* :meth:`UpsmonCore.sync_update` -- while a primary waits for its secondaries (``GET NUMLOGINS``);
* :meth:`UpsmonCore.tick` -- the clock moved (ends FINALDELAY).

Actions: :class:`Notify` (a NOTIFY event), :class:`SetFsd` (send ``FSD <ups>``),
:class:`WaitSecondaries` (start the ``GET NUMLOGINS`` rounds), :class:`Shutdown` (write POWERDOWNFLAG and
run SHUTDOWNCMD), :class:`Log` (something worth a log line).

The rules, as NUT's upsmon applies them (observed on Debian's 2.8.0 where its documentation is vague):

* A UPS is *critical* when its status has ``FSD``, or it is on battery with a low battery (``OB LB``)
  and not calibrating (``CAL``). A primary acts on ``OB LB`` at once; a secondary gives the primary
  HOSTSYNC seconds (counted from the last poll that was not ``OB LB``) to set FSD before it decides
  on its own.
* A UPS whose last real status is older than DEADTIME and that was last seen on battery is taken to
  be ``OB LB`` (its battery may run out while we cannot see it).
* The power values of all UPSes that are not critical are added up (a UPS never heard from counts
  as healthy); a sum below MINSUPPLIES starts the forced shutdown.
* A failed poll (no connection, ``ERR DATA-STALE``, ``ERR DRIVER-NOT-CONNECTED``, an empty status)
  is a communication problem and never an OL/OB change: COMMBAD once, then NOCOMM every
  NOCOMMWARNTIME while it lasts, COMMOK when the UPS answers again. ``WAIT`` (upsd waiting for the
  driver's first dump) means upsd is reachable but knows nothing yet: no event, no status change,
  and it does not count as fresh data for DEADTIME.
* The first OL and the first successful poll after start are not announced; an initial OB is.
  LOWBATT, FSD, CAL, OFF, BYPASS, ALARM and OVER are announced when they appear (also at start),
  NOTCAL/NOTOFF/NOTBYPASS/NOTALARM/NOTOVER when they go. REPLBATT repeats every RBWARNTIME while
  ``RB`` stays.
* Forced shutdown: ``FSD`` to every UPS we are primary for; if we are primary for any, wait until
  each has at most one login left (ours) or HOSTSYNC passed; then the SHUTDOWN event, FINALDELAY
  seconds, and the shutdown itself. A pure secondary goes straight to the SHUTDOWN event. Once
  started, a forced shutdown is not called off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Union

from nutlite.upsmon.parent import MAGIC as MAGIC  # what POWERDOWNFLAG holds

if TYPE_CHECKING:
    from nutlite.config import Monitor, UpsmonConf


SYNC_INTERVAL = 0.25  # seconds between GET NUMLOGINS rounds while waiting for secondaries

# status token -> (event when it appears, event when it goes away)
PAIRED_FLAGS: dict[str, tuple[str, str]] = {
    "CAL": ("CAL", "NOTCAL"),
    "OFF": ("OFF", "NOTOFF"),
    "BYPASS": ("BYPASS", "NOTBYPASS"),
    "ALARM": ("ALARM", "NOTALARM"),
    "OVER": ("OVER", "NOTOVER"),
}


class Phase(Enum):
    MONITORING = "monitoring"
    SYNCING = "syncing"  # primary: FSD sent, waiting for secondaries to log out
    FINALDELAY = "finaldelay"  # SHUTDOWN announced, waiting FINALDELAY seconds
    DONE = "done"  # Shutdown action emitted


# ------------------------------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Notify:
    """A NOTIFY event; ``ups`` is the MONITOR system name (None for SHUTDOWN, NOPARENT)."""

    type: str
    ups: str | None = None


@dataclass(frozen=True)
class SetFsd:
    """Send ``FSD <ups>`` on the connection of MONITOR ``ups``."""

    ups: str


@dataclass(frozen=True)
class WaitSecondaries:
    """Start polling ``GET NUMLOGINS`` on these UPSes every SYNC_INTERVAL (feed :meth:`sync_update`)."""

    upses: tuple[str, ...]


@dataclass(frozen=True)
class Shutdown:
    """Write POWERDOWNFLAG and run SHUTDOWNCMD (done by the privileged parent)."""


@dataclass(frozen=True)
class Log:
    """A decision worth a log line (``level`` is a :mod:`logging` level)."""

    level: int
    text: str


Action = Union[Notify, SetFsd, WaitSecondaries, Shutdown, Log]  # noqa: UP007 - a runtime alias


# ------------------------------------------------------------------------------------------ config


@dataclass
class Settings:
    """The upsmon.conf values the decisions depend on (seconds as floats)."""

    minsupplies: int = 1
    pollfreq: float = 5
    pollfreqalert: float = 5
    hostsync: float = 15
    deadtime: float = 15
    rbwarntime: float = 43200
    nocommwarntime: float = 300
    finaldelay: float = 5

    @classmethod
    def from_conf(cls, conf: UpsmonConf) -> Settings:
        return cls(
            minsupplies=conf.minsupplies,
            pollfreq=conf.pollfreq,
            pollfreqalert=conf.pollfreqalert,
            hostsync=conf.hostsync,
            deadtime=conf.deadtime,
            rbwarntime=conf.rbwarntime,
            nocommwarntime=conf.nocommwarntime,
            finaldelay=conf.finaldelay,
        )


@dataclass(frozen=True)
class MonitorSpec:
    """One MONITOR line as the core sees it: its name, power value and role."""

    name: str  # ups@host[:port] as written in upsmon.conf
    powervalue: int = 1
    primary: bool = False

    @classmethod
    def from_monitor(cls, m: Monitor) -> MonitorSpec:
        return cls(m.system, m.powervalue, m.role == "primary")


class InsufficientPower(ValueError):
    """The MONITOR power values can never reach MINSUPPLIES (NUT refuses to start)."""


def check_power(monitors: Iterable[MonitorSpec], minsupplies: int) -> None:
    """Raise :class:`InsufficientPower` if all power values together stay below MINSUPPLIES."""
    total = sum(m.powervalue for m in monitors)
    if total < minsupplies:
        raise InsufficientPower(
            f"insufficient power configured: the MONITOR power values add up to {total}, "
            f"but MINSUPPLIES is {minsupplies} (change MINSUPPLIES or the power values in upsmon.conf)"
        )


# ------------------------------------------------------------------------------------------ state


@dataclass
class UpsState:
    """What the core knows about one monitored UPS."""

    spec: MonitorSpec
    created: float
    line: str | None = None  # "OL" / "OB" / None (not known yet)
    lowbatt: bool = False
    fsd: bool = False
    flags: set[str] = field(default_factory=set)  # the PAIRED_FLAGS tokens present
    status: str | None = None  # last status text received (not WAIT)
    comm_ok: bool = True  # assumed until a poll fails
    comm_known: bool = False  # at least one poll result arrived
    last_ok: float = 0.0  # last poll with real status data
    last_noncrit: float = 0.0  # last poll in which the UPS was not OB+LB
    lost_since: float | None = None
    last_nocomm: float | None = None
    last_rbwarn: float | None = None
    dead_logged: bool = False
    giveup_logged: bool = False

    def __post_init__(self) -> None:
        self.last_ok = self.created
        self.last_noncrit = self.created

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def onbatt(self) -> bool:
        return self.line == "OB"

    def is_dead(self, now: float, deadtime: float) -> bool:
        """No real status for longer than DEADTIME while last seen on battery."""
        return self.onbatt and now - self.last_ok > deadtime


# ------------------------------------------------------------------------------------------ core


class UpsmonCore:
    """The state machine; see the module docstring for the rules."""

    def __init__(self, settings: Settings, monitors: Iterable[MonitorSpec], now: float) -> None:
        self.settings = settings
        self.upses: dict[str, UpsState] = {}
        for spec in monitors:
            if spec.name in self.upses:
                raise ValueError(f"UPS {spec.name} is monitored twice")
            self.upses[spec.name] = UpsState(spec, now)
        self.phase = Phase.MONITORING
        self.sync_started: float | None = None
        self.final_at: float | None = None
        self.shutdown_reason: str | None = None
        self.noparent_sent = False

    # -------------------------------------------------------------- inspection

    def ups(self, name: str) -> UpsState:
        return self.upses[name]

    @property
    def primaries(self) -> list[str]:
        """The UPSes we are primary for (they get FSD and are waited on)."""
        return [n for n, st in self.upses.items() if st.spec.primary]

    def poll_interval(self) -> float:
        """POLLFREQALERT while any UPS is on battery, POLLFREQ otherwise."""
        if any(st.onbatt for st in self.upses.values()):
            return self.settings.pollfreqalert
        return self.settings.pollfreq

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next (FINALDELAY end, HOSTSYNC expiry)."""
        if self.phase is Phase.FINALDELAY:
            return self.final_at
        if self.phase is Phase.SYNCING and self.sync_started is not None:
            return self.sync_started + self.settings.hostsync
        return None

    def is_critical(self, name: str, now: float) -> bool:
        st = self.upses[name]
        return self._critical(st, now, [])

    def healthy_power(self, now: float) -> int:
        return sum(st.spec.powervalue for st in self.upses.values() if not self._critical(st, now, []))

    # -------------------------------------------------------------- poll results

    def poll_ok(self, name: str, status: str, now: float) -> list[Action]:
        """``ups.status`` of UPS ``name`` was read."""
        st = self.upses[name]
        if self.phase is not Phase.MONITORING:
            return []
        tokens = [t.upper() for t in status.split()]
        if not tokens:
            return self.poll_failed(name, now, "empty status")
        out: list[Action] = []
        if not st.comm_ok:
            st.comm_ok = True
            out.append(Notify("COMMOK", name))
        st.comm_known = True
        st.lost_since = None
        st.last_nocomm = None
        if "WAIT" in tokens and "OL" not in tokens and "OB" not in tokens:
            # upsd is waiting for the driver: nothing is known about the UPS yet.
            return out
        st.last_ok = now
        st.status = status
        if st.dead_logged:
            st.dead_logged = False
            out.append(Log(logging.INFO, f"UPS {name} reports its status again"))

        if "OB" in tokens:
            if st.line != "OB":
                st.line = "OB"
                out.append(Notify("ONBATT", name))
        elif "OL" in tokens:
            if st.line != "OL":
                was_ob = st.line == "OB"
                st.line = "OL"
                if was_ob:
                    out.append(Notify("ONLINE", name))

        lb = "LB" in tokens
        if lb and not st.lowbatt:
            out.append(Notify("LOWBATT", name))
        st.lowbatt = lb

        if "RB" in tokens and (st.last_rbwarn is None or now - st.last_rbwarn >= self.settings.rbwarntime):
            st.last_rbwarn = now
            out.append(Notify("REPLBATT", name))

        for token, (on, off) in PAIRED_FLAGS.items():
            present = token in tokens
            if present and token not in st.flags:
                st.flags.add(token)
                out.append(Notify(on, name))
            elif not present and token in st.flags:
                st.flags.discard(token)
                out.append(Notify(off, name))

        fsd = "FSD" in tokens
        if fsd and not st.fsd:
            out.append(Notify("FSD", name))
        st.fsd = fsd

        if not (st.onbatt and st.lowbatt):
            st.last_noncrit = now
            st.giveup_logged = False
        return out

    def poll_failed(self, name: str, now: float, reason: str = "") -> list[Action]:
        """UPS ``name`` could not be read (connection, login, ERR reply, empty status)."""
        st = self.upses[name]
        if self.phase is not Phase.MONITORING:
            return []
        st.comm_known = True
        if st.comm_ok:
            st.comm_ok = False
            st.lost_since = now
            st.last_nocomm = None
            suffix = f": {reason}" if reason else ""
            return [Log(logging.WARNING, f"poll of UPS {name} failed{suffix}"), Notify("COMMBAD", name)]
        since = st.lost_since if st.last_nocomm is None else st.last_nocomm
        if since is None:
            since = now
            st.lost_since = now
        if now - since >= self.settings.nocommwarntime:
            st.last_nocomm = now
            return [Notify("NOCOMM", name)]
        return []

    # -------------------------------------------------------------- decisions

    def _critical(self, st: UpsState, now: float, out: list[Action]) -> bool:
        if st.fsd:
            return True
        dead = st.is_dead(now, self.settings.deadtime)
        if not (st.onbatt and (st.lowbatt or dead)):
            return False
        if "CAL" in st.flags:
            return False
        if st.spec.primary:
            return True
        if now - st.last_noncrit > self.settings.hostsync:
            if not st.giveup_logged:
                st.giveup_logged = True
                out.append(Log(logging.WARNING,
                               f"UPS {st.name}: no FSD from its primary within HOSTSYNC "
                               f"({self.settings.hostsync:g} s): acting on its own"))
            return True
        return False

    def evaluate(self, now: float) -> list[Action]:
        """After a poll round: promote dead UPSes, add up the healthy supplies, maybe shut down."""
        if self.phase is not Phase.MONITORING:
            return []
        out: list[Action] = []
        healthy = 0
        critical: list[str] = []
        for st in self.upses.values():
            if st.is_dead(now, self.settings.deadtime) and not st.dead_logged:
                st.dead_logged = True
                out.append(Log(logging.WARNING,
                               f"UPS {st.name}: no status for {now - st.last_ok:.0f} s (DEADTIME "
                               f"{self.settings.deadtime:g}) while on battery: treating it as low battery"))
            if self._critical(st, now, out):
                critical.append(st.name)
            else:
                healthy += st.spec.powervalue
        if healthy < self.settings.minsupplies:
            reason = (f"power supplies left: {healthy} < MINSUPPLIES {self.settings.minsupplies} "
                      f"(critical: {', '.join(critical) or 'none'})")
            out.extend(self._force_shutdown(now, reason))
        return out

    def user_fsd(self, now: float) -> list[Action]:
        """``upsmon -c fsd``: a simulated outage (FSD on our primary UPSes, then shut down)."""
        if self.phase is not Phase.MONITORING:
            return []
        return self._force_shutdown(now, "forced shutdown requested (upsmon -c fsd)")

    def _force_shutdown(self, now: float, reason: str) -> list[Action]:
        self.shutdown_reason = reason
        out: list[Action] = [Log(logging.CRITICAL, f"forced shutdown: {reason}")]
        primaries = self.primaries
        out.extend(SetFsd(n) for n in primaries)
        if primaries:
            self.phase = Phase.SYNCING
            self.sync_started = now
            out.append(Log(logging.INFO, f"primary for {', '.join(primaries)}: waiting up to "
                                         f"{self.settings.hostsync:g} s for the secondaries to log out"))
            out.append(WaitSecondaries(tuple(primaries)))
            return out
        return out + self._begin_final(now)

    def sync_update(self, logins: Mapping[str, int | None], now: float) -> list[Action]:
        """One ``GET NUMLOGINS`` round while waiting for the secondaries (None = no answer)."""
        if self.phase is not Phase.SYNCING:
            return []
        counts = [n for n in logins.values() if n is not None]
        most = max(counts, default=0)
        if most <= 1:
            return [Log(logging.INFO, "all secondaries have logged out")] + self._begin_final(now)
        return self.tick(now)

    def tick(self, now: float) -> list[Action]:
        """Time passed: end the HOSTSYNC wait or FINALDELAY when due."""
        if self.phase is Phase.SYNCING:
            assert self.sync_started is not None
            if now - self.sync_started >= self.settings.hostsync:
                return [Log(logging.WARNING, f"HOSTSYNC ({self.settings.hostsync:g} s) expired with "
                                             "secondaries still logged in: shutting down anyway"),
                        *self._begin_final(now)]
            return []
        if self.phase is Phase.FINALDELAY:
            assert self.final_at is not None
            if now >= self.final_at:
                self.phase = Phase.DONE
                return [Shutdown()]
        return []

    def _begin_final(self, now: float) -> list[Action]:
        out: list[Action] = [Log(logging.CRITICAL, "executing automatic power-fail shutdown"),
                             Notify("SHUTDOWN", None)]
        self.final_at = now + self.settings.finaldelay
        if self.settings.finaldelay <= 0:
            self.phase = Phase.DONE
            out.append(Shutdown())
        else:
            self.phase = Phase.FINALDELAY
        return out

    # -------------------------------------------------------------- other events

    def parent_gone(self) -> list[Action]:
        """The privileged parent died: say once that this host can no longer be shut down."""
        if self.noparent_sent:
            return []
        self.noparent_sent = True
        return [Log(logging.CRITICAL, "the privileged parent process died: shutdown impossible"),
                Notify("NOPARENT", None)]

    def reconfigure(self, settings: Settings, monitors: Iterable[MonitorSpec], now: float) -> None:
        """A reloaded upsmon.conf: keep what is known about UPSes that stay, forget removed ones."""
        specs = list(monitors)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError("a UPS is monitored twice")
        self.settings = settings
        upses: dict[str, UpsState] = {}
        for spec in specs:
            st = self.upses.get(spec.name)
            if st is None:
                st = UpsState(spec, now)
            else:
                st.spec = spec
            upses[spec.name] = st
        self.upses = upses


def seconds_until(deadline: float | None, now: float) -> float:
    """Non-negative wait time until ``deadline`` (``inf`` for None)."""
    if deadline is None:
        return math.inf
    return max(0.0, deadline - now)


def specs_of(conf: UpsmonConf) -> list[MonitorSpec]:
    """One :class:`MonitorSpec` per MONITOR line of ``conf``."""
    return [MonitorSpec.from_monitor(m) for m in conf.monitors]
