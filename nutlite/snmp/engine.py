"""The sans-IO core of snmp-ups: what to ask a device, and what its answers publish.

``Engine(mapping, options)`` plans passes over a :class:`~nutlite.snmp.mib.Mapping`. A pass is a short
conversation: ``next_oids()`` says what to GET (``None``: done), ``feed(answers)`` takes the answers,
``result()`` gives the NUT variables to publish and the problems to log. The first pass reads the count
variables (outlets, phases) first, then every entry and every command OID; later passes read what is
not static. The shell (``nutlite.drivers.programs.snmp_ups``) sends the GETs, batched.

NUT's rules kept here: entries are read in table order and the last one that answered sets the
variable; OIDs that do not answer in the first pass are not asked again; ``ups.status`` tokens come in
entry order, duplicates kept, and an empty status is published as an empty string; a command is
offered when a GET of its OID gets a reply without an error (so v2c lists it even for noSuchInstance,
v1 drops it on noSuchName).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from nutlite.snmp import values as fmt
from nutlite.snmp.mib import ALARM, CONST, LOOKUP, NUM, STATUS, TEXT, Command, Entry, Mapping
from nutlite.snmp.types import INTEGER, OCTETS, TIMETICKS, Answer, Missing, Value

#: at most this many outlets / groups / phases per count (a count beyond it is reported and capped)
MAX_COUNT = 256
#: symmetrathreephase: NUT's factor for an APC Symmetra's line-to-line transfer limits (253 V -> 178.87)
SYMMETRA_FACTOR = 0.707
#: NUT keeps this many characters of ups.alarm
MAX_ALARM = 254
#: variables the quick pass (every pollinterval) reads besides ups.status and ups.alarm
QUICK_VARS = frozenset({"battery.charge", "battery.runtime", "input.voltage", "output.voltage", "ups.load"})
_REPLIES = (Missing.NO_SUCH_OBJECT, Missing.NO_SUCH_INSTANCE, Missing.END_OF_MIB)


@dataclass
class Result:
    """What one pass published, removed and found wrong."""

    values: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # wrong types, bad counts (warnings, once per OID)
    absent: list[str] = field(default_factory=list)  # OIDs the device lacks (once each)


@dataclass(frozen=True, slots=True)
class RwInfo:
    """A writable variable: its type for ``upsrw``."""

    name: str
    kind: str  # "string" or "number"
    length: int = 0
    enums: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Item:
    """One entry made concrete: %i and %d replaced."""

    entry: Entry
    var: str
    oid: str


class Pass:
    """One read of the device; see the module text."""

    def __init__(self, engine: Engine, first: bool, quick: bool = False, semistatic: bool = False) -> None:
        self.engine = engine
        self.first = first
        self.quick = quick
        self.semistatic = semistatic
        self.answers: dict[str, Answer] = {}
        self._items: list[_Item] | None = None  # chosen when the pass starts (after the counts are known)
        self._stage = 0 if first else 1
        self._result = Result()

    def next_oids(self) -> list[str] | None:
        if self._stage == 0:
            self._stage = 1
            oids = self.engine._count_oids()
            if oids:
                return oids
        if self._stage == 1:
            self._stage = 2
            if self._items is None:
                self._items = self.engine._items(self.first or self.semistatic, self.quick)
            oids = [it.oid for it in self._items if it.oid and it.oid not in self.answers]
            oids += [it.entry.aux.replace("%d", "0") for it in self._items if it.entry.aux]
            if self.first:
                oids += [c.oid for c in self.engine._all_commands() if c.oid and c.oid not in self.answers]
            oids = list(dict.fromkeys(oids))
            if oids:
                return oids
        return None

    def feed(self, answers: dict[str, Answer]) -> None:
        self.answers.update(answers)
        if self._stage == 1:
            self.engine._learn_counts(self.answers, self._result)

    def result(self) -> Result:
        assert self._items is not None, "result() before the pass ran"
        return self.engine._evaluate(self._items, self.answers, self.first, self._result)


class Engine:
    def __init__(self, mapping: Mapping, options: dict[str, object] | None = None) -> None:
        self.mapping = mapping
        self.options = dict(options or {})
        self.counts: dict[str, int] = {}
        self.bases: dict[str, int] = {}
        self.dead: set[str] = set()
        self._reported: set[str] = set()
        self._offered: list[str] = []
        self._later: dict[bool, list[_Item]] = {}  # the item lists of later passes (quick or not)
        self._has_status = any(e.kind == STATUS or (e.kind == CONST and e.var == "ups.status")
                               for e in mapping.entries)
        self._count_vars = sorted({e.each for e in mapping.entries if e.each}
                                  | {e.phase_of for e in mapping.entries if e.phase_of}
                                  | {c.each for c in mapping.commands if c.each})
        self._count_entries = [e for e in mapping.entries if e.var in self._count_vars and e.oid]
        skip_transfer = bool(self.options.get("notransferoids"))
        entries = [e for e in mapping.entries if not (skip_transfer and e.var.startswith("input.transfer."))]
        if self.options.get("symmetrathreephase") and mapping.name == "apcc":
            # a three-phase Symmetra reports its transfer limits line to line: NUT scales them by 0.707
            entries = [replace(e, kind=NUM, scale=e.scale * SYMMETRA_FACTOR) if e.kind in (NUM, TEXT) and
                       e.var in ("input.transfer.high", "input.transfer.low") else e for e in entries]
        self._entries = tuple(entries)

    # ---- passes

    def first_pass(self) -> Pass:
        return Pass(self, first=True)

    def full_pass(self, semistatic: bool = False) -> Pass:
        return Pass(self, first=False, semistatic=semistatic)

    def quick_pass(self) -> Pass:
        return Pass(self, first=False, quick=True)

    # ---- the parts of a pass

    def _count_oids(self) -> list[str]:
        oids = [e.oid.replace("%d", "0") for e in self._count_entries]
        for var in self._count_vars:  # index base probe: does the template answer at index 0?
            probe = self._first_template(var)
            if probe is not None:
                oids.append(probe.replace("%i", "0").replace("%d", "0"))
        return list(dict.fromkeys(oids))

    def _first_template(self, count_var: str) -> str | None:
        for e in self._entries:
            if e.each == count_var and "%i" in e.oid and not e.phase_of:
                return e.oid
        return None

    def _learn_counts(self, answers: dict[str, Answer], result: Result) -> None:
        for e in self._count_entries:
            oid = e.oid.replace("%d", "0")
            got = answers.get(oid)
            if isinstance(got, Value):
                try:
                    n = fmt.integer(got)
                except fmt.WrongType as exc:
                    self._problem(result, oid, f"{e.var} ({oid}): {exc}")
                    continue
                if n < 0 or n > MAX_COUNT:
                    self._problem(result, oid, f"{e.var} ({oid}): {n} is out of range 0..{MAX_COUNT}; "
                                                f"using {max(0, min(n, MAX_COUNT))}")
                    n = max(0, min(n, MAX_COUNT))
                self.counts[e.var] = n
        for var in self._count_vars:
            probe = self._first_template(var)
            if probe is not None:
                got = answers.get(probe.replace("%i", "0").replace("%d", "0"))
                # NUT's test: a reply without an error status (v2c noSuchInstance is one) means base 0
                self.bases[var] = 0 if (isinstance(got, Value) or got in _REPLIES) and \
                    var not in self.mapping.one_based else 1

    def _indices(self, count_var: str) -> range:
        base = self.bases.get(count_var, 1)
        return range(base, base + self.counts.get(count_var, 0))

    def _expand(self, entries: Iterable[Entry]) -> Iterator[_Item]:
        for e in entries:
            if e.phase_of and self.counts.get(e.phase_of, 1) != e.phases:
                continue
            oid = e.oid.replace("%d", "0")
            if e.each and "%i" in (e.var + oid):
                for i in self._indices(e.each):
                    yield _Item(e, e.var.replace("%i", str(i)), oid.replace("%i", str(i)))
            else:
                yield _Item(e, e.var, oid)

    def _items(self, first: bool, quick: bool) -> list[_Item]:
        """The concrete entries of a pass. Later passes reuse their lists: counts and dead OIDs are
        settled by the first pass (which empties the cache)."""
        if not first and quick in self._later:
            return self._later[quick]
        if first:
            chosen: Iterable[Entry] = self._entries
        elif quick:
            chosen = [e for e in self._entries if not e.static and e.kind != CONST
                      and (e.kind in (STATUS, ALARM) or e.var in QUICK_VARS)]
        else:
            chosen = [e for e in self._entries if not e.static and e.kind != CONST]
        items = [it for it in self._expand(chosen) if not (it.oid in self.dead and not first)]
        if not first:
            self._later[quick] = items
        return items

    def _all_commands(self) -> list[Command]:
        out: list[Command] = []
        for c in self.mapping.commands:
            if c.each and "%i" in c.name + c.oid:
                out += [Command(c.name.replace("%i", str(i)), c.oid.replace("%i", str(i)).replace("%d", "0"),
                                c.value) for i in self._indices(c.each)]
            else:
                out.append(Command(c.name, c.oid.replace("%d", "0"), c.value))
        return out

    def _evaluate(self, items: list[_Item], answers: dict[str, Answer], first: bool, result: Result) -> Result:
        tokens: list[str] = []
        alarms: dict[str, list[str]] = {}
        status_read = False
        for it in items:
            e = it.entry
            if e.kind == CONST:
                if e.var == "ups.status":
                    status_read = True
                else:
                    result.values[it.var] = e.value
                continue
            got = answers.get(it.oid)
            if not isinstance(got, Value):
                if first and got is not None:
                    self.dead.add(it.oid)
                    if e.default:
                        result.values[it.var] = e.default
                if got is not None and it.oid not in self._reported:
                    self._reported.add(it.oid)
                    result.absent.append(f"{it.var} ({it.oid}): {got.value}")
                if e.kind == STATUS:
                    status_read = True
                continue
            try:
                if e.convert:
                    aux = answers.get(e.aux.replace("%d", "0")) if e.aux else None
                    out = fmt.convert(e.convert, got, aux if isinstance(aux, Value) else None)
                    if out is not None:
                        result.values[it.var] = out
                elif e.kind == NUM:
                    result.values[it.var] = fmt.scaled(fmt.number(got), e.scale, e.decimals)
                elif e.kind == TEXT:
                    result.values[it.var] = fmt.text(got)
                elif e.kind == LOOKUP and not e.unmatched:
                    if got.tag in (OCTETS, TIMETICKS):
                        result.values[it.var] = fmt.text(got)  # not a code: as text (NUT)
                    elif (k := fmt.integer(got)) in e.enum:
                        result.values[it.var] = e.enum[k]
                elif e.kind == LOOKUP:
                    k = int(fmt.number(got))
                    result.values[it.var] = e.enum[k] if k in e.enum else fmt.scaled(k, e.unmatched)
                elif e.kind == STATUS:
                    status_read = True
                    tokens += e.enum.get(fmt.integer(got), "").split()
                elif e.kind == ALARM:  # every alarm entry (ups.alarm, L1.alarm, ...) adds to ups.alarm
                    alarms.setdefault("ups.alarm", [])
                    if text := e.enum.get(fmt.integer(got), ""):
                        alarms["ups.alarm"].append(text)
            except fmt.WrongType as exc:
                if e.kind == STATUS:
                    status_read = True
                self._problem(result, it.oid, f"{it.var} ({it.oid}): {exc}")
        if any(alarms.values()) and self.mapping.device_type == "ups":
            tokens.insert(0, "ALARM")  # NUT 2.8.0 flags a UPS's present alarm in its status too
        if self._has_status and (status_read or first):
            result.values["ups.status"] = " ".join(tokens)
        for var, texts in alarms.items():
            if texts:
                result.values[var] = " ".join(texts)[:MAX_ALARM].rstrip()
            else:
                result.removed.append(var)
        if self.mapping.device_type == "ups":
            for what in ("mfr", "model", "serial"):
                if f"ups.{what}" in result.values and not any(e.var == f"device.{what}" for e in self._entries):
                    result.values[f"device.{what}"] = result.values[f"ups.{what}"]
        if first:
            self._later.clear()
            for var, n in self.counts.items():
                if not any(e.var == var and e.oid for e in self._entries if e.oid):
                    result.values.setdefault(var, str(n))
            self._offered = [c.name for c in self._all_commands() if not c.oid
                             or isinstance(answers.get(c.oid), Value) or answers.get(c.oid) in _REPLIES]
        return result

    def _problem(self, result: Result, oid: str, message: str) -> None:
        if oid not in self._reported:
            self._reported.add(oid)
            result.problems.append(message)

    # ---- commands and writable variables

    def commands(self) -> list[str]:
        return list(self._offered)

    def writable(self) -> list[RwInfo]:
        out: list[RwInfo] = []
        for w in self.mapping.writable:
            entry = self._entry_for(w.var)
            template = next((e for e in self._entries if e.var == w.var and e.each), None)
            names = [w.var.replace("%i", str(i)) for i in self._indices(template.each)] if template else [w.var]
            for name in names:
                if entry is not None and entry.kind == LOOKUP:
                    out.append(RwInfo(name, "string" if w.length else "number", w.length,
                                      tuple(v for v in entry.enum.values() if v)))
                elif w.length:
                    out.append(RwInfo(name, "string", w.length))
                else:
                    out.append(RwInfo(name, "number"))
        return out

    def _entry_for(self, var: str) -> Entry | None:
        """The last entry that feeds ``var`` (a template's concrete name too) and answered."""
        found = None
        for it in self._expand(self._entries):
            if it.var == var and it.oid and it.oid not in self.dead:
                found = it.entry
        if found is None:
            found = next((e for e in reversed(self._entries) if e.var == var and e.oid), None)
        return found

    def _oid_for(self, var: str) -> str:
        oid = ""
        for it in self._expand(self._entries):
            if it.var == var and it.oid and it.oid not in self.dead:
                oid = it.oid
        return oid

    def instcmd(self, name: str, arg: str | None = None) -> list[tuple[str, Value]]:
        """The SET for a command; KeyError if the device does not offer it, ValueError (clear text) if
        it cannot be sent as asked."""
        if name not in self._offered:
            raise KeyError(name)
        c = next(c for c in self._all_commands() if c.name == name)
        if not c.oid:
            raise ValueError("NUT 2.8.0 offers this command for the mapping but sends nothing for it; "
                             "nutlite does not know which SET it stands for")
        value = c.value
        if value is None:
            if arg is None or not arg.strip().lstrip("-").isdigit():
                raise ValueError("the mapping gives no value to SET for this command (NUT 2.8.0 fails "
                                 "the same way): give the integer the device expects, as in "
                                 f"upscmd UPS {name} VALUE")
            value = int(arg)
        data = Value(OCTETS, value.encode()) if isinstance(value, str) else Value(INTEGER, value)
        return [(c.oid, data)]

    def setvar(self, name: str, value: str) -> list[tuple[str, Value]]:
        """The SET for ``upsrw``; KeyError if not writable, ValueError (clear text) for a bad value."""
        info = next((w for w in self.writable() if w.name == name), None)
        entry = self._entry_for(name)
        oid = self._oid_for(name)
        if info is None or entry is None or not oid:
            raise KeyError(name)
        if entry.kind == LOOKUP:
            for k, label in entry.enum.items():
                if label == value:
                    return [(oid, Value(INTEGER, k))]
            raise ValueError(f"'{value}' is not one of: {', '.join(entry.enum.values())}")
        if info.kind == "string" and entry.kind != NUM:
            raw = value.encode("utf-8")
            if len(raw) > info.length:
                raise ValueError(f"longer than {info.length} bytes")
            return [(oid, Value(OCTETS, raw))]
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a number") from None
        if info.kind == "string" and len(value) > info.length:
            raise ValueError(f"longer than {info.length} characters")
        return [(oid, Value(INTEGER, round(number / (entry.scale or 1))))]
