"""Request lines and reply lines as upsd cuts them (see :mod:`nutlite.upsd.core`)."""

from __future__ import annotations

import re

from nutlite.parseconf import Tokenizer

REPLY_MAX = 512  # upsd's answer buffer: longer reply lines are cut (and lose their newline)
READ_CHUNK = 512  # upsd reads 512 bytes at a time; a parse error drops the rest of that read


def reply_line(text: str) -> bytes:
    """One reply line, cut to upsd's 512-byte answer buffer like upsd does."""
    if len(text) < REPLY_MAX:
        return (text + "\n").encode("latin-1", "replace")
    return text.encode("latin-1", "replace")[:REPLY_MAX]


def atoi(text: str) -> int:
    """C's atoi: optional blanks and sign, then digits up to the first non-digit; 0 if none."""
    m = _ATOI.match(text)
    return int(m.group(1)) if m and m.group(1) not in ("", "+", "-") else 0


_ATOI = re.compile(r"[ \t\n\r\x0b\x0c]*([+-]?\d*)")


class ParseFailure:
    """Marks a request line that NUT's parser rejected (the message says why)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class LineReader:
    """Request lines from a client's byte stream, by NUT's tokenizer (:class:`nutlite.parseconf.Tokenizer`).

    :meth:`feed` returns, for each finished line, its words or a :class:`ParseFailure`. What is particular
    to upsd: after a rejected line it also drops the rest of the 512-byte read the error was in, so we
    drop up to the next 512-byte boundary of the data received.
    """

    __slots__ = ("_tok",)

    def __init__(self) -> None:
        self._tok = Tokenizer()

    @property
    def idle(self) -> bool:
        """True between lines (nothing of a new line seen yet)."""
        return not self._tok.pending

    def feed(self, data: bytes) -> list[list[str] | ParseFailure]:
        text = data.decode("latin-1")
        if "#" not in text:  # only an unescaped '#' inside quotes makes a line fail
            return [ln.words for ln in self._tok.feed(text)]
        out: list[list[str] | ParseFailure] = []
        for pos in range(0, len(text), READ_CHUNK):
            for ln in self._tok.feed(text[pos:pos + READ_CHUNK]):
                if ln.error is None:
                    out.append(ln.words)
                    continue
                out.append(ParseFailure(ln.error))
                self._tok = Tokenizer()  # the rest of this block is dropped
                break
        return out
