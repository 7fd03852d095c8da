"""``nutlite bootguard``: after a power-fail shutdown, hold the boot back until the UPS has recharged.

NUT FAQ #56: when the last shutdown was a power-fail shutdown, the UPS battery is probably nearly
empty at the next boot. If the power fails again soon, there is not enough capacity left for upsmon
to shut everything down cleanly. The FAQ's advice is to "sleep it off" early in the boot, before the
services that draw from the UPS start.

On a read-only image the POWERDOWNFLAG lives in ``/run`` and is gone after the reboot, so the fact
"the last shutdown was a power failure" is kept in a *marker* file on persistent storage
(``BOOTGUARD_MARKER``, default ``/var/lib/nutlite/powerfail``: the image's writable data partition).
It is written during the power-fail shutdown, while that storage is still mounted
(``nutlite bootguard mark --if-powerdownflag``, run by ``nutlite-powerfail-marker.service`` when it
stops) and, as a last resort, by the late-shutdown hook ``nutshutdown``.

At boot ``nutlite-boot-guard.service`` (ordered after upsd, before ``multi-user.target`` and before any
service told to wait for it) runs ``nutlite bootguard``:

* no marker, or the guard is switched off -> exit 0 at once;
* marker present -> ask upsd for ``battery.charge`` (and ``ups.status``) of each guarded UPS every
  ``BOOTGUARD_INTERVAL`` seconds until every one reports at least ``BOOTGUARD_MIN_CHARGE`` percent and
  is not on battery; then remove the marker and exit 0;
* ``BOOTGUARD_TIMEOUT`` seconds without that -> log it; ``BOOTGUARD_ON_TIMEOUT=continue`` (default)
  removes the marker and exits 0 (the boot goes on), ``fail`` keeps the marker and exits 1 (units that
  ``Requires=`` the guard do not start).

Settings are read from ``nut.conf`` (in ``$NUT_CONFPATH``), next to ``POWEROFF_WAIT``::

    BOOTGUARD_MIN_CHARGE=50          # percent; unset, empty or 0 = guard off
    BOOTGUARD_TIMEOUT=1800           # seconds
    BOOTGUARD_INTERVAL=5             # seconds between polls
    BOOTGUARD_MARKER=/var/lib/nutlite/powerfail
    BOOTGUARD_UPS="ups1 ups2@nas:3493"  # default: every ups.conf section (else upsmon.conf's MONITORs)
    BOOTGUARD_ON_TIMEOUT=continue    # or fail

Command-line options override them (see ``nutlite bootguard -h``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nutlite import daemon
from nutlite.client import (
    DEFAULT_PORT,
    AddressError,
    NutClient,
    NutClientError,
    NutError,
    UpsAddress,
    parse_upsname,
)
from nutlite.config import (
    ConfigError,
    NutConf,
    load_nut_conf,
    load_ups_conf,
    load_upsd_conf,
    load_upsmon_conf,
)
from nutlite.parseconf import parse_text
from nutlite.tools.common import help_parser

PROG = "bootguard"
log = logging.getLogger("nutlite.bootguard")

DEFAULT_MARKER = "/var/lib/nutlite/powerfail"
DEFAULT_TIMEOUT = 1800.0
DEFAULT_INTERVAL = 5.0
QUERY_TIMEOUT = 5.0  # bounds every connect and reply, so one poll can never hang
PROGRESS_EVERY = 60.0  # an unchanged reading is logged again after this long
ON_TIMEOUT = ("continue", "fail")

EXIT_OK = 0
EXIT_TIMEOUT = 1
EXIT_CONFIG = 2


# --------------------------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """What the guard waits for; see the module docstring for the nut.conf keys."""

    min_charge: float | None  # None: the guard is off
    timeout: float = DEFAULT_TIMEOUT
    interval: float = DEFAULT_INTERVAL
    marker: Path | None = Path(DEFAULT_MARKER)  # None: no marker configured (BOOTGUARD_MARKER=)
    upses: list[UpsAddress] = field(default_factory=list)
    on_timeout: str = "continue"
    mode: str = "none"


class _Source:
    """Where a setting comes from, for error messages that name file and line."""

    def __init__(self, nut: NutConf, args: argparse.Namespace | None) -> None:
        self.nut = nut
        self.args = args
        self.lines: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for ln in parse_text(Path(nut.path).read_bytes().decode("latin-1")):
                if ln.words:
                    self.lines[ln.words[0]] = ln.lineno  # the last assignment wins, as in a shell

    def get(self, key: str, attr: str) -> str | None:
        opt = getattr(self.args, attr, None) if self.args is not None else None
        if opt is not None:
            return opt if isinstance(opt, str) else str(opt)
        return self.nut.values.get(key)

    def error(self, key: str, attr: str, message: str) -> ConfigError:
        if self.args is not None and getattr(self.args, attr, None) is not None:
            return ConfigError("command line", None, f"--{attr.replace('_', '-')}: {message}")
        return ConfigError(self.nut.path, self.lines.get(key), f"{key}: {message}")

    def number(self, key: str, attr: str, default: float, minimum: float = 0.0) -> float:
        text = self.get(key, attr)
        if text in (None, ""):
            return default
        try:
            value = float(text)
        except ValueError:
            raise self.error(key, attr, f"expected a number, got '{text}'") from None
        if not math.isfinite(value) or value < minimum:
            raise self.error(key, attr, f"expected a number >= {minimum:g}, got '{text}'")
        return value


def local_server() -> tuple[str, int]:
    """Where the local upsd listens: the first LISTEN of upsd.conf (a wildcard means loopback)."""
    try:
        upsd = load_upsd_conf()
    except ConfigError:
        return "127.0.0.1", DEFAULT_PORT
    host, port = upsd.listen_addresses()[0]
    if host in ("0.0.0.0", "*", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def default_upses(mode: str) -> list[UpsAddress]:
    """Every ups.conf section at the local upsd; in netclient mode (or without ups.conf) the MONITOR
    lines of upsmon.conf."""
    if mode != "netclient":
        try:
            ups_conf = load_ups_conf()
        except ConfigError:
            ups_conf = None
        if ups_conf is not None and ups_conf.ups:
            host, port = local_server()
            return [UpsAddress(name, host, port) for name in ups_conf.ups]
    try:
        mon = load_upsmon_conf()
    except ConfigError:
        return []
    return [UpsAddress(m.upsname, m.host, m.port) for m in mon.monitors]


def parse_ups_list(text: str, conf_path: str = "nut.conf") -> list[UpsAddress]:
    """``"ups1 ups2@host:port, ups3"`` -> addresses; a bare name means the local upsd."""
    out: list[UpsAddress] = []
    host, port = None, DEFAULT_PORT
    for word in text.replace(",", " ").split():
        if "@" not in word and host is None:
            host, port = local_server()
        try:
            out.append(parse_upsname(word, host or "127.0.0.1", port))
        except AddressError as exc:
            raise ConfigError(conf_path, None, f"BOOTGUARD_UPS: cannot parse '{word}': {exc}") from None
    return out


def load_settings(nut: NutConf | None = None, args: argparse.Namespace | None = None) -> Settings:
    """Settings from nut.conf, overridden by command-line options."""
    nut = nut if nut is not None else load_nut_conf()
    src = _Source(nut, args)
    min_charge: float | None = src.number("BOOTGUARD_MIN_CHARGE", "min_charge", 0.0)
    if min_charge is not None and min_charge > 100:
        raise src.error("BOOTGUARD_MIN_CHARGE", "min_charge",
                        f"expected a percentage 0-100, got '{src.get('BOOTGUARD_MIN_CHARGE', 'min_charge')}'")
    if min_charge == 0:
        min_charge = None
    timeout = src.number("BOOTGUARD_TIMEOUT", "timeout", DEFAULT_TIMEOUT)
    interval = src.number("BOOTGUARD_INTERVAL", "interval", DEFAULT_INTERVAL, 0.05)
    raw_marker = src.get("BOOTGUARD_MARKER", "marker")
    marker = Path(DEFAULT_MARKER) if raw_marker is None else (Path(raw_marker) if raw_marker else None)
    on_timeout = (src.get("BOOTGUARD_ON_TIMEOUT", "on_timeout") or "continue").lower()
    if on_timeout not in ON_TIMEOUT:
        raise src.error("BOOTGUARD_ON_TIMEOUT", "on_timeout", f"expected continue or fail, got '{on_timeout}'")
    cli_upses = getattr(args, "ups", None) if args is not None else None
    if cli_upses:
        upses = parse_ups_list(" ".join(cli_upses), "command line")
    elif nut.values.get("BOOTGUARD_UPS"):
        upses = parse_ups_list(nut.values["BOOTGUARD_UPS"], nut.path)
    else:
        upses = default_upses(nut.mode)
    return Settings(min_charge, timeout, interval, marker, upses, on_timeout, nut.mode)


# --------------------------------------------------------------------------------------------- marker


def marker_present(path: Path | None) -> bool:
    return path is not None and (path.exists() or path.is_symlink())


def write_marker(path: Path, reason: str = "power-fail shutdown") -> bool:
    """Record a power-fail shutdown in ``path`` (synced to disk: the power may go any moment)."""
    text = (f"nutlite {reason}\n"
            f"time={time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
            f"pid={os.getpid()}\n")
    try:
        daemon.write_synced(path, text.encode(), sync_folder=True)
    except OSError as exc:
        log.error("cannot write the power-fail marker %s: %s", path, exc.strerror or exc)
        return False
    log.info("power-fail marker %s written", path)
    return True


def clear_marker(path: Path | None) -> bool:
    """Remove the marker; True if it is gone afterwards."""
    if path is None:
        return True
    try:
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.error("cannot remove the power-fail marker %s: %s", path, exc.strerror or exc)
        return False
    log.info("power-fail marker %s removed", path)
    return True


def powerdownflag_set() -> bool:
    """What ``upsmon -K`` answers: POWERDOWNFLAG of upsmon.conf exists and holds upsmon's magic."""
    from nutlite.upsmon.shutdown import flag_is_set

    try:
        conf = load_upsmon_conf()
    except ConfigError as exc:
        log.warning("%s", exc)
        return False
    return bool(conf.powerdownflag) and flag_is_set(conf.powerdownflag)


# --------------------------------------------------------------------------------------------- waiting


@dataclass
class Reading:
    """One poll of one UPS."""

    ups: str
    charge: float | None = None
    status: str | None = None
    error: str | None = None  # why there is no usable reading
    no_charge: bool = False  # the UPS does not report battery.charge at all

    def ok(self, min_charge: float) -> bool:
        """Charged enough and not running on battery. A UPS without battery.charge cannot be judged
        and does not hold the boot back (its status must still not be on battery)."""
        if self.error is not None:
            return False
        if self.status is not None and "OB" in self.status.split():
            return False
        if self.no_charge:
            return True
        return self.charge is not None and self.charge >= min_charge

    def describe(self, min_charge: float) -> str:
        if self.error is not None:
            return f"{self.ups}: {self.error}"
        status = f", status {self.status}" if self.status else ""
        if self.no_charge:
            return f"{self.ups}: does not report battery.charge, cannot judge it{status}"
        return f"{self.ups}: battery.charge {self.charge:g}% (need {min_charge:g}%){status}"


def read_ups(addr: UpsAddress, timeout: float = QUERY_TIMEOUT) -> Reading:
    """Ask upsd for the UPS's battery.charge and ups.status (one short connection per poll, so a
    restarting upsd does not matter)."""
    name = str(addr)
    try:
        with NutClient(addr.host, addr.port, timeout=timeout) as c:
            status: str | None
            try:
                status = c.get_var(addr.upsname or "", "ups.status")
            except NutError as exc:
                if exc.code != "VAR-NOT-SUPPORTED":
                    return Reading(name, error=f"ups.status: {exc.message} ({exc.code})")
                status = None
            if status is not None and status.strip() in ("", "WAIT"):
                # upsd has not got the driver's data yet: battery.charge would look unsupported.
                return Reading(name, status=status, error="upsd is still waiting for the driver's data")
            try:
                raw = c.get_var(addr.upsname or "", "battery.charge")
            except NutError as exc:
                if exc.code == "VAR-NOT-SUPPORTED":
                    return Reading(name, status=status, no_charge=True)
                return Reading(name, status=status, error=f"battery.charge: {exc.message} ({exc.code})")
    except NutClientError as exc:
        return Reading(name, error=f"upsd at {addr.hostport}: {exc}")
    try:
        charge = float(raw)
    except ValueError:
        return Reading(name, status=status, error=f"battery.charge is not a number: {raw!r}")
    return Reading(name, charge=charge, status=status)


def wait_for_charge(
    settings: Settings,
    read: Callable[[UpsAddress], Reading] = read_ups,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll until every UPS of ``settings`` is charged enough (True) or the timeout passes (False)."""
    assert settings.min_charge is not None
    need = settings.min_charge
    start = clock()
    deadline = start + settings.timeout
    last_logged: dict[str, tuple[str, float]] = {}
    while True:
        readings = [read(addr) for addr in settings.upses]
        now = clock()
        logged = False
        for r in readings:
            text = r.describe(need)
            prev = last_logged.get(r.ups)
            if prev is None or prev[0] != text or now - prev[1] >= PROGRESS_EVERY:
                log.info("%s", text)
                last_logged[r.ups] = (text, now)
                logged = True
        waiting = [r.ups for r in readings if not r.ok(need)]
        if not waiting:
            log.info("every UPS is charged to at least %g%% after %.0f s", need, now - start)
            return True
        left = deadline - now
        if left <= 0:
            log.warning("timed out after %.0f s waiting for %s to reach %g%% battery charge",
                        now - start, ", ".join(waiting), need)
            return False
        if logged:
            log.info("waiting for %s (at most %.0f s more)", ", ".join(waiting), left)
        sleep(min(settings.interval, left))


def guard(settings: Settings, read: Callable[[UpsAddress], Reading] = read_ups,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """The boot-time check; returns the exit code."""
    if settings.mode == "none":
        log.info("MODE=none in nut.conf: NUT is not in use, nothing to wait for")
        return EXIT_OK
    if not marker_present(settings.marker):
        log.info("no power-fail marker%s: the last shutdown was not a power-fail shutdown",
                 f" {settings.marker}" if settings.marker else " configured (BOOTGUARD_MARKER is empty)")
        return EXIT_OK
    if settings.min_charge is None:
        log.info("power-fail marker %s found, but BOOTGUARD_MIN_CHARGE is not set: not waiting", settings.marker)
        clear_marker(settings.marker)
        return EXIT_OK
    if not settings.upses:
        log.warning("power-fail marker %s found, but there is no UPS to watch (no ups.conf section, no "
                    "MONITOR line, no BOOTGUARD_UPS): not waiting", settings.marker)
        clear_marker(settings.marker)
        return EXIT_OK
    names = ", ".join(str(u) for u in settings.upses)
    log.info("the last shutdown was a power-fail shutdown (%s): waiting up to %.0f s for %s to recharge "
             "to %g%%", settings.marker, settings.timeout, names, settings.min_charge)
    if wait_for_charge(settings, read, clock, sleep):
        clear_marker(settings.marker)
        return EXIT_OK
    if settings.on_timeout == "fail":
        log.error("BOOTGUARD_ON_TIMEOUT=fail: keeping the marker and failing, so units that require "
                  "nutlite-boot-guard.service stay stopped")
        return EXIT_TIMEOUT
    log.warning("BOOTGUARD_ON_TIMEOUT=continue: going on with the boot anyway")
    clear_marker(settings.marker)
    return EXIT_OK


# --------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = help_parser(
        PROG,
        "After a power-fail shutdown, hold the boot back until the UPS battery has\n"
        "recharged (NUT FAQ #56): a marker file written during the power-fail shutdown\n"
        "makes the next boot wait for BOOTGUARD_MIN_CHARGE percent, for at most\n"
        "BOOTGUARD_TIMEOUT seconds. The options override the settings in nut.conf.",
        files=["nut.conf in $NUT_CONFPATH (default /etc/nut): the BOOTGUARD_* settings",
               "the marker, BOOTGUARD_MARKER (default /var/lib/nutlite/powerfail)"],
    )
    p.add_argument("action", nargs="?", default="wait", choices=("wait", "mark", "clear", "status"),
                   metavar="ACTION", help="wait (the default): the boot-time guard; mark: record a power-fail shutdown; "
                        "clear: forget it; status: show the marker and the UPS readings")
    p.add_argument("--if-powerdownflag", action="store_true",
                   help="with mark: only if upsmon's POWERDOWNFLAG is set (what 'upsmon -K' checks)")
    p.add_argument("--min-charge", type=float, metavar="PERCENT",
                   help="battery charge to wait for, 0 = no guard (BOOTGUARD_MIN_CHARGE)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="longest wait (BOOTGUARD_TIMEOUT)")
    p.add_argument("--interval", type=float, metavar="SECONDS",
                   help="time between two readings of the UPS (BOOTGUARD_INTERVAL)")
    p.add_argument("--marker", metavar="PATH", help="the power-fail marker file (BOOTGUARD_MARKER)")
    p.add_argument("--ups", action="append", metavar="UPS[@HOST[:PORT]]",
                   help="a UPS to wait for, repeatable (BOOTGUARD_UPS)")
    p.add_argument("--on-timeout", choices=ON_TIMEOUT,
                   help="what a timeout does: continue the boot, or fail the unit (BOOTGUARD_ON_TIMEOUT)")
    p.add_argument("-D", dest="debug", action="count", default=0, help="raise the debug level (more output)")
    return p


def status(settings: Settings) -> int:
    present = marker_present(settings.marker)
    print(f"marker: {settings.marker or '(none configured)'}: {'present' if present else 'absent'}")
    if settings.min_charge is None:
        print("guard: off (BOOTGUARD_MIN_CHARGE not set)")
        return EXIT_OK
    print(f"guard: wait for {settings.min_charge:g}% for at most {settings.timeout:g} s, "
          f"then {settings.on_timeout}")
    for addr in settings.upses:
        r = read_ups(addr)
        print(f"  {r.describe(settings.min_charge)} -> {'ok' if r.ok(settings.min_charge) else 'would wait'}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    daemon.setup_logging(PROG, args.debug, foreground=True)
    try:
        settings = load_settings(args=args)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    if args.action == "mark":
        if settings.marker is None:
            log.info("BOOTGUARD_MARKER is empty: no marker to write")
            return EXIT_OK
        if args.if_powerdownflag and not powerdownflag_set():
            log.info("POWERDOWNFLAG is not set: not a power-fail shutdown, no marker written")
            return EXIT_OK
        return EXIT_OK if write_marker(settings.marker) else 1
    if args.action == "clear":
        return EXIT_OK if clear_marker(settings.marker) else 1
    if args.action == "status":
        return status(settings)
    return guard(settings)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
