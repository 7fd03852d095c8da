"""Which MIB mapping fits a device, found as NUT 2.8.0's snmp-ups finds it (SNMP-FACTS §2), sans IO.

``mibs=auto``: GET sysObjectID; the mappings whose entry point is exactly that OID are candidates, in
table order; a candidate with a check OID wins when that OID answers, one without wins outright. No
candidate left: the classic probe, where the first mapping in table order whose model OID answers wins.
NUT asks these one at a time (198 s against a dead address); here each step is one batched GET.
``mibs=NAME``: that mapping, if its model OID answers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from nutlite.snmp import values
from nutlite.snmp.mib import Mapping
from nutlite.snmp.types import Answer, Value

SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"


class Detector:
    def __init__(self, registry: ModuleType, mibs: str = "auto") -> None:
        self.names: tuple[str, ...] = registry.NAMES
        self._load: Callable[[str], Mapping] = registry.load
        self.mibs = mibs.strip()
        if self.mibs != "auto" and self.mibs not in self.names:
            raise ValueError(f"Unknown 'mibs' value '{self.mibs}': use auto or one of the names that "
                             f"mibs=--list prints")
        self.result: Mapping | None = None
        self.how = ""
        self.error: str | None = None
        self.sysoid = ""
        self.model = ""  # the model OID's answer, for the start-up line
        self._step = "start"
        self._candidates: list[Mapping] = []
        self._probe: list[Mapping] = []

    def next_oids(self) -> list[str] | None:
        if self.result is not None and self._step != "model" and not self.model and self.result.model_oid:
            self._step = "model"  # chosen by sysObjectID: read the model too (the start-up line, the scanner)
            return [self.result.model_oid]
        if self.result is not None or self.error is not None:
            return None
        if self._step == "start":
            if self.mibs != "auto":
                self._probe = [self._load(self.mibs)]
                self._step = "classic"
                return [self._probe[0].model_oid]
            self._step = "sysoid"
            return [SYS_OBJECT_ID]
        if self._step == "check":
            return list(dict.fromkeys(m.check for m in self._candidates if m.check))
        if self._step == "classic":
            return list(dict.fromkeys(m.model_oid for m in self._probe if m.model_oid))
        return None

    def feed(self, answers: dict[str, Answer]) -> None:
        if self._step == "model":
            self.model = _text(answers.get(self.result.model_oid) if self.result else None)
            return
        if self._step == "sysoid":
            got = answers.get(SYS_OBJECT_ID)
            self.sysoid = str(got.value) if isinstance(got, Value) and isinstance(got.value, str) else ""
            all_maps = [self._load(n) for n in self.names]
            self._candidates = [m for m in all_maps if self.sysoid and self.sysoid in m.entry_points]
            self._probe = all_maps
            for m in self._candidates:
                if not m.check:
                    self._choose(m, f"sysObjectID {self.sysoid}")
                    return
            self._step = "check" if self._candidates else "classic"
            if not self._candidates:
                return
            return
        if self._step == "check":
            for m in self._candidates:
                if isinstance(answers.get(m.check), Value):
                    self._choose(m, f"sysObjectID {self.sysoid} and check OID {m.check}")
                    return
            self._step = "classic"
            return
        if self._step == "classic":
            for m in self._probe:
                got = answers.get(m.model_oid)
                if isinstance(got, Value):
                    self.model = _text(got) or " "
                    self._choose(m, "mibs=" + m.name if self.mibs != "auto" else f"model OID {m.model_oid}")
                    return
            if self.mibs != "auto":
                self.error = (f"Requested 'mibs' value '{self.mibs}' did not match this device: no answer "
                              f"for its model OID {self._probe[0].model_oid}")
            else:
                tried = ", ".join(m.name for m in self._candidates) or "none matched"
                self.error = (f"No supported device detected: sysObjectID "
                              f"{'.' + self.sysoid if self.sysoid else '(no answer)'}, entry points: {tried}; "
                              f"none of the {len(self._probe)} mappings' model OIDs answered")

    def _choose(self, mapping: Mapping, how: str) -> None:
        self.result = mapping
        self.how = how


def _text(got: Answer | None) -> str:
    if not isinstance(got, Value):
        return ""
    try:
        return values.text(got)
    except values.WrongType:
        return ""
