"""Scraping NUT servers and turning what they say into Prometheus metric families.

One scrape of a server is one connection: ``LIST UPS`` (unless the UPS names are given) and then one
``LIST VAR <ups>`` per UPS -- no ``GET DESC`` per variable. Which variables are numbers, enums or
identifiers is decided by the tables in :mod:`nutlite.exporter.naming`; only a numeric-looking variable
that no table knows costs one ``GET TYPE``, once per exporter run (:class:`TypeCache`).

:func:`scrape` does the I/O (blocking sockets, a thread per server, with a per-request timeout and an
overall deadline; no asyncio, which would cost the exporter 2 MB of memory for nothing);
:func:`build_families` is pure: results in, metric families (:mod:`nutlite.exporter.exposition`) out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nutlite.client import AddressError, NutClient, NutClientError, NutError
from nutlite.exporter import naming
from nutlite.exporter.exposition import Family, render
from nutlite.exporter.targets import Target, parse_target
from nutlite.parseconf import parse_text

log = logging.getLogger("nutlite.exporter")

STALE_CODES = ("DATA-STALE", "DRIVER-NOT-CONNECTED")


# ------------------------------------------------------------------------------------------------
# Targets and credentials


@dataclass(frozen=True)
class Credentials:
    """The upsd login of a scrape (the password is never printed)."""

    username: str
    password: str = field(repr=False)


class CredentialsError(ValueError):
    pass


def load_credentials(path: str | Path) -> dict[str | None, Credentials]:
    """Read a credentials file: ``username``/``password`` lines (NUT quoting rules), first for every
    server (key None), then optionally in ``[host:port]`` sections for one server each.

    Raises CredentialsError naming file and line; the password itself never appears in a message.
    """
    text = Path(path).read_text()
    sections: dict[str | None, dict[str, str]] = {None: {}}
    current: str | None = None
    for line in parse_text(text):
        where = f"{path}:{line.lineno}"
        if line.error:
            raise CredentialsError(f"{where}: {line.error}")
        words = line.words
        if len(words) == 1 and words[0].startswith("[") and words[0].endswith("]"):
            try:
                current = str(parse_target(words[0][1:-1]))
            except AddressError as exc:
                raise CredentialsError(f"{where}: bad section {words[0]}: {exc.message}") from None
            sections.setdefault(current, {})
            continue
        if len(words) == 3 and words[1] == "=" and words[0].lower() in ("username", "password"):
            sections[current][words[0].lower()] = words[2]
            continue
        raise CredentialsError(f"{where}: expected 'username = NAME', 'password = SECRET' or '[host:port]'")
    out: dict[str | None, Credentials] = {}
    for key, values in sections.items():
        if not values:
            continue
        if "username" not in values or "password" not in values:
            raise CredentialsError(f"{path}: section {key or '(global)'} needs both username and password")
        out[key] = Credentials(values["username"], values["password"])
    return out


# ------------------------------------------------------------------------------------------------
# Options and results


@dataclass
class Options:
    """What the exporter publishes: names, variable filters and statuses."""

    names: naming.Names = field(default_factory=lambda: naming.names_for("nut_exporter"))
    include: Sequence[str] = ()  # globs; empty = every variable
    exclude: Sequence[str] = ()
    statuses: Sequence[str] = naming.STANDARD_STATUSES
    timeout: float = 5.0  # per request to NUT
    deadline: float = 10.0  # for a whole server
    credentials: dict[str | None, Credentials] = field(default_factory=dict)
    device_info: bool = True
    # The configured servers (--server): the only ones the section-less credentials are sent to.
    servers: Sequence[Target] = ()

    def wanted(self, var: str) -> bool:
        if var == "ups.status" and not self.exclude:
            return True
        if self.include and not naming.matches(var, self.include) and var != "ups.status":
            return False
        return not naming.matches(var, self.exclude)

    def credentials_for(self, target: Target) -> Credentials | None:
        """The login for ``target``: its own section's, else the section-less one if ``target`` is one
        of the configured servers, else none (a server named in a URL never gets another's password)."""
        for key, creds in self.credentials.items():
            if key is not None and Target.parse(key).same_server(target):
                return creds
        if any(s.same_server(target) for s in self.servers):
            return self.credentials.get(None)
        return None


@dataclass
class UpsResult:
    """What a scrape got for one UPS."""

    name: str
    variables: dict[str, str] | None = None
    strings: frozenset[str] = frozenset()  # variables that GET TYPE says are STRING
    error: str | None = None
    stale: bool = False
    duration: float = 0.0


@dataclass
class ServerResult:
    """What a scrape got from one upsd."""

    target: Target
    up: bool = False
    error: str | None = None
    upses: list[UpsResult] = field(default_factory=list)
    duration: float = 0.0


class TypeCache:
    """``GET TYPE`` answers (STRING or not) per server, UPS and variable, asked once per exporter run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._string: dict[tuple[Target, str, str], bool] = {}

    def get(self, target: Target, ups: str, var: str) -> bool | None:
        with self._lock:
            return self._string.get((target, ups, var))

    def set(self, target: Target, ups: str, var: str, is_string: bool) -> None:
        with self._lock:
            self._string[(target, ups, var)] = is_string


class KnownUpses:
    """UPS names seen on each server, so that a server that went away still yields ``up 0`` series."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Target, list[str]] = {}

    def get(self, target: Target) -> list[str]:
        with self._lock:
            return list(self._seen.get(target, []))

    def update(self, target: Target, names: Iterable[str]) -> None:
        with self._lock:
            seen = self._seen.setdefault(target, [])
            for n in names:
                if n not in seen:
                    seen.append(n)


# ------------------------------------------------------------------------------------------------
# I/O


def _string_vars(
    client: NutClient, target: Target, ups: str, variables: dict[str, str], types: TypeCache
) -> frozenset[str]:
    """Variables of ``ups`` that look numeric but are STRING for upsd (GET TYPE, cached)."""
    out = set()
    for var, value in variables.items():
        if not naming.needs_type_check(var, value):
            continue
        is_string = types.get(target, ups, var)
        if is_string is None:
            try:
                is_string = client.get_type(ups, var).string
            except NutError:
                is_string = False
            types.set(target, ups, var, is_string)
        if is_string:
            out.add(var)
    return frozenset(out)


def _scrape_upses(
    client: NutClient,
    target: Target,
    options: Options,
    upses: Sequence[str] | None,
    result: ServerResult,
    types: TypeCache | None,
) -> None:
    creds = options.credentials_for(target)
    client.connect()
    if creds is not None:
        try:
            client.username(creds.username)
            client.password(creds.password)
        except NutError as exc:
            log.warning("%s: login as %s refused (%s); going on without", target, creds.username, exc.code)
    names = list(upses) if upses else list(client.list_ups())
    result.up = True
    for name in names:
        start = time.monotonic()
        ups = UpsResult(name)
        try:
            ups.variables = client.list_var(name)
            if types is not None:
                ups.strings = _string_vars(client, target, name, ups.variables, types)
        except NutError as exc:
            ups.error = exc.code
            ups.stale = exc.code in STALE_CODES
        ups.duration = time.monotonic() - start
        result.upses.append(ups)


def scrape_server(
    target: Target,
    options: Options,
    upses: Sequence[str] | None = None,
    known: KnownUpses | None = None,
    deadline: float | None = None,
    types: TypeCache | None = None,
) -> ServerResult:
    """Scrape one server; never raises for NUT or network trouble (the result says what failed)."""
    start = time.monotonic()
    result = ServerResult(target)
    limit = options.deadline if deadline is None else min(deadline, options.deadline)
    client = NutClient(target.host, target.port, timeout=options.timeout, deadline=start + limit)
    try:
        _scrape_upses(client, target, options, upses, result, types)
    except NutClientError as exc:
        result.error = str(exc)
        if time.monotonic() >= start + limit:
            result.error = f"no complete answer within {limit:g} s"
    except OSError as exc:  # pragma: no cover - the client maps these, but be safe
        result.error = str(exc)
    finally:
        client.deadline = None
        client.timeout = min(client.timeout, 1.0)  # LOGOUT: wait briefly, the scrape is over
        client.close()
    if result.error is not None:
        result.up = False
        log.debug("%s: %s", target, result.error)
        done = {u.name for u in result.upses}
        # The server failed part-way or entirely: every other UPS it is known to have is down.
        for name in (upses or (known.get(target) if known else [])):
            if name not in done:
                result.upses.append(UpsResult(name, error=result.error))
    if known is not None:
        known.update(target, [u.name for u in result.upses if u.variables is not None])
    result.duration = time.monotonic() - start
    return result


def scrape(
    targets: Sequence[Target],
    options: Options,
    upses: Sequence[str] | None = None,
    known: KnownUpses | None = None,
    deadline: float | None = None,
    types: TypeCache | None = None,
) -> list[ServerResult]:
    """Scrape every target concurrently (one thread per server beyond the first)."""
    results: list[ServerResult | None] = [None] * len(targets)

    def one(i: int) -> None:
        results[i] = scrape_server(targets[i], options, upses, known, deadline, types)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(1, len(targets))]
    for t in threads:
        t.start()
    if targets:
        one(0)
    for t in threads:
        t.join()  # each server's client keeps to the deadline itself
    return [r for r in results if r is not None]


# ------------------------------------------------------------------------------------------------
# Metric families


class _Families:
    """Metric families by name; the first kind registered for a name wins (no duplicate families).

    Samples are kept as (labels, value) pairs, one :class:`Family` per name.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, Family] = {}
        self.owner: dict[str, str] = {}  # family name -> NUT variable (or "" for fixed series)

    def add(self, name: str, doc: str, labels: dict[str, str], value: float, owner: str = "") -> None:
        fam = self.by_name.get(name)
        if fam is None:
            fam = self.by_name[name] = Family(name, doc)
            self.owner[name] = owner
        elif self.owner[name] != owner:
            log.debug("series %s of %s clashes with %s; skipped", name, owner, self.owner[name])
            return
        fam.add(labels, value)

    def metrics(self) -> list[Family]:
        return list(self.by_name.values())


def build_families(
    results: Sequence[ServerResult],
    options: Options,
    server_label: bool = False,
    version: str = "",
) -> list[Family]:
    """The metric families for scrape ``results``."""
    return _build(results, options, server_label, version).metrics()


def render_results(
    results: Sequence[ServerResult],
    options: Options,
    server_label: bool = False,
    version: str = "",
) -> bytes:
    """The Prometheus text for scrape ``results``."""
    return render(_build(results, options, server_label, version).metrics())


def _build(results: Sequence[ServerResult], options: Options, server_label: bool, version: str) -> _Families:
    n = options.names
    fams = _Families()
    fams.add(
        "nutlite_exporter_build_info",
        "nutlite exporter version and name family",
        {"version": version, "names": n.family},
        1,
    )
    for res in results:
        base: dict[str, str] = {"server": str(res.target)} if server_label else {}
        fams.add(n.server_up, "1 if the NUT server answered LIST UPS / LIST VAR", base, 1 if res.up else 0)
        for ups in res.upses:
            labels = {**base, "ups": ups.name}
            ok = ups.variables is not None
            fams.add(n.up, "1 if the UPS's variables could be read from the NUT server", labels, 1 if ok else 0)
            fams.add(n.stale, "1 if upsd reports the UPS's data as stale or its driver as gone", labels,
                     1 if ups.stale else 0)
            fams.add(n.duration, "time taken to read the UPS's variables", labels, ups.duration)
            if ups.variables is not None:
                _ups_families(fams, n, options, labels, ups.variables, ups.strings)
    return fams


def _ups_families(
    fams: _Families,
    n: naming.Names,
    options: Options,
    labels: dict[str, str],
    variables: dict[str, str],
    strings: frozenset[str] = frozenset(),
) -> None:
    info: dict[str, str] = {}
    for var, value in variables.items():
        if var == "ups.status":
            if options.wanted(var):
                _status(fams, n, options, labels, value)
            continue
        label = n.info_label(var)
        if label is not None and options.device_info:
            info[label] = value
        if not options.wanted(var):
            continue
        states = naming.enum_states(var)
        if states is not None:
            _stateset(fams, n, labels, var, value, states)
            if n.family == "nut_exporter":
                onoff = naming.on_off(value)
                if onoff is not None:
                    fams.add(n.gauge(var)[0], f"{var} (1 = on/enabled, 0 = off/disabled)", labels, onoff, var)
            continue
        if naming.is_string_var(var) or var in strings:
            continue
        number = naming.parse_number(value)
        if number is None:
            if n.family == "nut_exporter":
                onoff = naming.on_off(value)
                if onoff is not None:
                    fams.add(n.gauge(var)[0], f"{var} (1 = on/enabled, 0 = off/disabled)", labels, onoff, var)
            continue
        name, scale = n.gauge(var)
        fams.add(name, f"NUT variable {var}", labels, number * scale, var)
    if options.device_info:
        for label, fallback in naming.INFO_FALLBACK.items():
            if label not in info and fallback in variables:
                info[label] = variables[fallback]
        fams.add(n.info, "UPS identity from device.* and ups.mfr/model/serial/firmware (always 1)",
                 {**labels, **info}, 1)


def _status(fams: _Families, n: naming.Names, options: Options, labels: dict[str, str], value: str) -> None:
    tokens = naming.status_tokens(value)
    doc = "1 if the token is present in ups.status, else 0"
    seen = set()
    for token in [*options.statuses, *tokens]:
        if token in seen:
            continue
        seen.add(token)
        fams.add(n.status, doc, {**labels, n.status_label: token}, 1 if token in tokens else 0, "ups.status")


def _stateset(
    fams: _Families, n: naming.Names, labels: dict[str, str], var: str, value: str, states: Sequence[str]
) -> None:
    current = " ".join(value.split())
    name = n.stateset(var)
    doc = f"{var}: 1 for the current state, 0 for the others"
    known = [s for s in states]
    if not any(s.lower() == current.lower() for s in known):
        known.append(current)
    for state in known:
        fams.add(name, doc, {**labels, "state": state}, 1 if state.lower() == current.lower() else 0, var)
