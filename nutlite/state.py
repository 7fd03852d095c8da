"""A UPS's state (variables, their flags/enums/ranges, instant commands) and the driver-socket messages
that describe it (NUT-FACTS §2).

One class serves both ends of the driver socket: a driver changes its :class:`DeviceState` through the
setters, each of which hands the message for that change to ``on_change`` (the driver broadcasts it);
upsd feeds every message it reads from the driver to :meth:`DeviceState.apply`. :meth:`dump_lines` is
the DUMPALL answer. Variable and command names are looked up case-insensitively, as NUT does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nutlite.parseconf import quote

KNOWN_FLAGS = ("RW", "STRING", "NUMBER")


@dataclass(slots=True)
class Var:
    """One variable of a UPS: its value, flags (RW, STRING, ...), maximum length, choices and ranges."""

    name: str
    value: str
    flags: set[str] = field(default_factory=set)
    aux: int = 0
    enums: list[str] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        return "RW" in self.flags

    @property
    def is_string(self) -> bool:
        return "STRING" in self.flags

    def type_words(self) -> list[str]:
        """The words of a ``GET TYPE`` reply after the names (NUT-FACTS §1.2)."""
        out = []
        if "RW" in self.flags:
            out.append("RW")
        if self.enums:
            out.append("ENUM")
        if self.ranges:
            out.append("RANGE")
        # NUT 2.8.0: STRING:<aux> for strings, and everything else is reported NUMBER.
        out.append(f"STRING:{self.aux}" if "STRING" in self.flags else "NUMBER")
        return out


class ProtocolError(ValueError):
    """A driver-socket message that cannot be applied (the text says what and why)."""


class DeviceState:
    """Variables and commands of one UPS."""

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self.vars: dict[str, Var] = {}  # key: lower-case name
        self.cmds: dict[str, str] = {}  # lower-case -> as added, in insertion order
        self.stale = False
        self.on_change = on_change
        self._sorted: list[Var] | None = None
        self.generation = 0  # bumped on every change, lets readers cache derived output

    # ---------------------------------------------------------------- reading

    def get(self, name: str) -> Var | None:
        return self.vars.get(name.lower())

    def value(self, name: str, default: str | None = None) -> str | None:
        v = self.vars.get(name.lower())
        return v.value if v is not None else default

    def sorted_vars(self) -> list[Var]:
        """Variables in NUT's order: case-insensitive by name."""
        if self._sorted is None:
            self._sorted = sorted(self.vars.values(), key=lambda v: v.name.lower())
        return self._sorted

    def has_cmd(self, name: str) -> bool:
        return name.lower() in self.cmds

    def cmd_list(self) -> list[str]:
        return list(self.cmds.values())

    # ---------------------------------------------------------------- changes

    def _changed(self, line: str | None) -> None:
        self.generation += 1
        if line is not None and self.on_change is not None:
            self.on_change(line)

    def setinfo(self, name: str, value: str) -> bool:
        key = name.lower()
        v = self.vars.get(key)
        if v is None:
            self.vars[key] = Var(name, value)
            self._sorted = None
        elif v.value == value:
            return False
        else:
            v.value = value
        self._changed(f"SETINFO {name} {quote(value)}")
        return True

    def delinfo(self, name: str) -> bool:
        if self.vars.pop(name.lower(), None) is None:
            return False
        self._sorted = None
        self._changed(f"DELINFO {name}")
        return True

    def _need(self, name: str) -> Var:
        v = self.vars.get(name.lower())
        if v is None:
            raise ProtocolError(f"variable '{name}' is not defined")
        return v

    def addenum(self, name: str, value: str) -> bool:
        v = self._need(name)
        if value in v.enums:
            return False
        v.enums.append(value)
        self._changed(f"ADDENUM {name} {quote(value)}")
        return True

    def delenum(self, name: str, value: str) -> bool:
        v = self._need(name)
        if value not in v.enums:
            return False
        v.enums.remove(value)
        self._changed(f"DELENUM {name} {quote(value)}")
        return True

    def addrange(self, name: str, lo: int, hi: int) -> bool:
        v = self._need(name)
        if (lo, hi) in v.ranges:
            return False
        v.ranges.append((lo, hi))
        self._changed(f"ADDRANGE {name} {lo} {hi}")
        return True

    def delrange(self, name: str, lo: int, hi: int) -> bool:
        v = self._need(name)
        if (lo, hi) not in v.ranges:
            return False
        v.ranges.remove((lo, hi))
        self._changed(f"DELRANGE {name} {lo} {hi}")
        return True

    def setaux(self, name: str, aux: int) -> bool:
        v = self._need(name)
        if v.aux == aux:
            return False
        v.aux = aux
        self._changed(f"SETAUX {name} {aux}")
        return True

    def setflags(self, name: str, flags: list[str] | set[str]) -> bool:
        v = self._need(name)
        new = {f.upper() for f in flags if f.upper() in KNOWN_FLAGS}
        if new == v.flags:
            return False
        v.flags = new
        self._changed(f"SETFLAGS {name} {' '.join(_flag_order(new))}".rstrip())
        return True

    def addcmd(self, name: str) -> bool:
        key = name.lower()
        if key in self.cmds:
            return False
        self.cmds[key] = name
        self._changed(f"ADDCMD {name}")
        return True

    def delcmd(self, name: str) -> bool:
        if self.cmds.pop(name.lower(), None) is None:
            return False
        self._changed(f"DELCMD {name}")
        return True

    def set_stale(self, stale: bool) -> bool:
        if self.stale == stale:
            return False
        self.stale = stale
        self._changed("DATASTALE" if stale else "DATAOK")
        return True

    def clear(self) -> None:
        """Forget everything (upsd does this when the driver socket is lost)."""
        self.vars.clear()
        self.cmds.clear()
        self._sorted = None
        self.stale = False
        self.generation += 1

    # ---------------------------------------------------------------- the socket protocol

    def apply(self, words: list[str]) -> str:
        """Apply one driver->upsd state message; return its (upper-case) keyword.

        Keywords that are not state changes (DUMPDONE, PONG, TRACKING, …) are returned untouched for the
        caller. Raise :class:`ProtocolError` for a malformed state message.
        """
        if not words:
            raise ProtocolError("empty message")
        cmd = words[0].upper()
        n = len(words)
        try:
            if cmd == "SETINFO":
                if n < 3:
                    raise ProtocolError("SETINFO needs a variable and a value")
                self.setinfo(words[1], words[2])
            elif cmd == "DELINFO":
                if n < 2:
                    raise ProtocolError("DELINFO needs a variable")
                self.delinfo(words[1])
            elif cmd == "ADDENUM" or cmd == "DELENUM":
                if n < 3:
                    raise ProtocolError(f"{cmd} needs a variable and a value")
                (self.addenum if cmd == "ADDENUM" else self.delenum)(words[1], words[2])
            elif cmd == "ADDRANGE" or cmd == "DELRANGE":
                if n < 4:
                    raise ProtocolError(f"{cmd} needs a variable, a minimum and a maximum")
                lo, hi = int(words[2]), int(words[3])
                (self.addrange if cmd == "ADDRANGE" else self.delrange)(words[1], lo, hi)
            elif cmd == "SETAUX":
                if n < 3:
                    raise ProtocolError("SETAUX needs a variable and a number")
                self.setaux(words[1], int(words[2]))
            elif cmd == "SETFLAGS":
                if n < 2:
                    raise ProtocolError("SETFLAGS needs a variable")
                self.setflags(words[1], words[2:])
            elif cmd == "ADDCMD":
                if n < 2:
                    raise ProtocolError("ADDCMD needs a command name")
                self.addcmd(words[1])
            elif cmd == "DELCMD":
                if n < 2:
                    raise ProtocolError("DELCMD needs a command name")
                self.delcmd(words[1])
            elif cmd == "DATAOK":
                self.set_stale(False)
            elif cmd == "DATASTALE":
                self.set_stale(True)
        except ValueError as exc:
            if isinstance(exc, ProtocolError):
                raise
            raise ProtocolError(f"{cmd}: expected a whole number ({exc})") from None
        return cmd

    def dump_lines(self) -> list[str]:
        """The answer to DUMPALL, in NUT's order, ending with DUMPDONE."""
        out = ["DATASTALE"] if self.stale else []
        for v in self.sorted_vars():
            out.append(f"SETINFO {v.name} {quote(v.value)}")
            for e in v.enums:
                out.append(f"ADDENUM {v.name} {quote(e)}")
            for lo, hi in v.ranges:
                out.append(f"ADDRANGE {v.name} {lo} {hi}")
            if v.aux:
                out.append(f"SETAUX {v.name} {v.aux}")
            if v.flags:
                out.append(f"SETFLAGS {v.name} {' '.join(_flag_order(v.flags))}")
        out.extend(f"ADDCMD {c}" for c in self.cmds.values())
        if not self.stale:
            out.append("DATAOK")
        out.append("DUMPDONE")
        return out


def _flag_order(flags: set[str]) -> list[str]:
    return [f for f in KNOWN_FLAGS if f in flags]
