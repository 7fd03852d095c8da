"""NUT's tokenizer and encoder, shared by config files, the network protocol and the driver socket.

The rules are those of NUT's parseconf (NUT-FACTS §3.1):

* a line is split into words on spaces and tabs; a newline ends the line;
* ``#`` outside quotes starts a comment that runs to the end of the line;
* ``"..."`` makes one word, which may be empty; a ``"`` in the middle of an unquoted word is literal;
* ``\\`` takes the next character literally, inside and outside quotes; before a newline it joins lines;
* an unescaped ``#`` inside quotes is an error: what came before it on the line is rejected, and
  parsing goes on after it, outside quotes;
* ``=`` is always a word of its own, even without spaces around it (``a=b`` is ``a``, ``=``, ``b``);
* control characters and anything above 0x7F are dropped (DEL, 0x7F, is kept, as in NUT);
* at most 32 words of 512 characters: what is beyond is dropped.

The core is sans-IO: :class:`Tokenizer` takes text in any pieces and hands back whole lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_ARGS = 32
MAX_WORD = 512

# States of the character machine.
_NORMAL, _WORD, _WORD_ESC, _QUOTED, _QUOTED_ESC, _COMMENT = range(6)


class ParseError(ValueError):
    """A line that NUT's parser rejects (the message says why, ``lineno`` where)."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


@dataclass
class Line:
    """One logical line: its words, or the reason it was rejected, and where it started."""

    words: list[str]
    lineno: int = 0
    error: str | None = None
    dropped: list[str] = field(default_factory=list)  # notes about dropped characters/words


class Tokenizer:
    """Incremental NUT tokenizer: :meth:`feed` text in any pieces, get back completed lines."""

    def __init__(self, max_args: int = MAX_ARGS, max_word: int = MAX_WORD) -> None:
        self.max_args = max_args
        self.max_word = max_word
        self.lineno = 1  # physical line the next character belongs to
        self._reset()
        self._start = 1

    def _reset(self) -> None:
        self._state = _NORMAL
        self._words: list[str] = []
        self._cur: list[str] = []
        self._error: str | None = None
        self._notes: list[str] = []
        self._in_word = False
        self._overflow = False
        self._dropped_note = False

    @property
    def pending(self) -> bool:
        """True while a line has been started but not finished."""
        return bool(self._words or self._in_word or self._state != _NORMAL or self._error)

    def _end_word(self) -> None:
        word = "".join(self._cur)
        self._cur = []
        self._in_word = False
        if len(word) > self.max_word:
            self._notes.append(f"word longer than {self.max_word} characters truncated")
            word = word[: self.max_word]
        self._add_word(word)

    def _add_word(self, word: str) -> None:
        if len(self._words) < self.max_args:
            self._words.append(word)
        elif not self._overflow:
            self._overflow = True
            self._notes.append(f"words after the {self.max_args}th dropped")

    def _end_line(self) -> Line:
        if self._in_word:
            self._end_word()
        line = Line(self._words, self._start, self._error, self._notes)
        self._reset()
        self._start = self.lineno
        return line

    def feed(self, text: str) -> list[Line]:
        """Consume ``text``; return the lines it completed.

        A newline ends a line, except inside quotes or right after a backslash, where it is dropped
        like any other control character (so a quoted word can span lines, as in NUT).
        """
        out: list[Line] = []
        if self._idle() and text.endswith("\n") and not _SPECIAL.search(text):
            # fast path for the common case: whole plain lines (the network protocol's requests)
            for segment in text[:-1].split("\n"):
                out.append(Line(_limit(segment.split()), self._start))
                self.lineno += 1
                self._start = self.lineno
            return out
        pos = 0
        n = len(text)
        while pos < n:
            nl = text.find("\n", pos)
            end = n if nl < 0 else nl + 1
            if nl >= 0 and self._idle():
                segment = text[pos:nl]
                if not _SPECIAL.search(segment):  # fast path: a plain line
                    out.append(Line(_limit(segment.split()), self._start))
                    self.lineno += 1
                    self._start = self.lineno
                    pos = end
                    continue
            self._run(text, pos, end, out)
            pos = end
        return out

    def _idle(self) -> bool:
        return self._state == _NORMAL and not self._words and not self._in_word and self._error is None

    def _add(self, ch: str) -> None:
        """Add a character to the current word; NUT drops anything outside printable ASCII."""
        if " " <= ch <= "\x7f":
            self._cur.append(ch)
        elif ch != "\n" and not self._dropped_note:
            self._dropped_note = True
            self._notes.append(f"dropped non-printable character 0x{ord(ch):02x}")

    def _run(self, text: str, pos: int, end: int, out: list[Line]) -> None:
        for i in range(pos, end):
            ch = text[i]
            state = self._state
            if ch == "\n":
                self.lineno += 1
                if state in (_NORMAL, _WORD, _COMMENT):
                    out.append(self._end_line())
                    continue
                # inside quotes or after a backslash the newline is just dropped
                if state == _WORD_ESC:
                    self._state = _WORD
                elif state == _QUOTED_ESC:
                    self._state = _QUOTED
                continue
            if state == _NORMAL:
                if ch in _SPACE:
                    continue
                if ch == "#":
                    self._state = _COMMENT
                elif ch == '"':
                    self._state = _QUOTED
                    self._in_word = True
                elif ch == "\\":
                    self._state = _WORD_ESC
                    self._in_word = True
                elif ch == "=":
                    self._add_word("=")
                else:
                    self._state = _WORD
                    self._in_word = True
                    self._add(ch)
            elif state == _WORD:
                if ch in _SPACE:
                    self._end_word()
                    self._state = _NORMAL
                elif ch == "#":
                    self._end_word()
                    self._state = _COMMENT
                elif ch == "=":
                    self._end_word()
                    self._add_word("=")
                    self._state = _NORMAL
                elif ch == "\\":
                    self._state = _WORD_ESC
                else:
                    self._add(ch)
            elif state == _QUOTED:
                if ch == '"':
                    self._end_word()
                    self._state = _NORMAL
                elif ch == "\\":
                    self._state = _QUOTED_ESC
                elif ch == "#":
                    # NUT rejects what it has of the line, then carries on after the '#' as if a
                    # new line began there (outside quotes).
                    self._error = "Unbalanced word due to unescaped # in quotes"
                    self._cur = []
                    self._in_word = False
                    out.append(self._end_line())
                    self._start = self.lineno
                else:
                    self._add(ch)
            elif state == _WORD_ESC:
                self._add(ch)
                self._state = _WORD
            elif state == _QUOTED_ESC:
                self._add(ch)
                self._state = _QUOTED
            # _COMMENT: ignore everything up to the newline

    def finish(self) -> Line | None:
        """End of input: return the last line if it had no newline (None if nothing was pending)."""
        if not self.pending:
            return None
        if self._state in (_QUOTED, _QUOTED_ESC) and self._error is None:
            self._error = "Unbalanced word due to missing close quote"
        return self._end_line()


# Whitespace between words: what C's isspace() says, less the newline.
_SPACE = " \t\r\v\f"
# Lines with none of these characters split exactly like str.split() (the fast path): a quote, a
# backslash, "#", "=", a control character other than whitespace, anything beyond ASCII. Written as
# the complement of what is plain, because a class that spells out the range up to U+10FFFF takes
# 0.1 s to compile on a slow CPU, at every daemon's start.
_SPECIAL = re.compile(r'[^\t-\r !$-<>-\[\]-\x7f]')


def _limit(words: list[str]) -> list[str]:
    if len(words) > MAX_ARGS:
        words = words[:MAX_ARGS]
    for w in words:
        if len(w) > MAX_WORD:
            return [x[:MAX_WORD] for x in words]
    return words


def split_line(line: str) -> list[str]:
    """Tokenize one line (without its newline); raise :class:`ParseError` if NUT would reject it."""
    if not _SPECIAL.search(line):
        return _limit(line.split())
    tok = Tokenizer()
    lines = tok.feed(line.replace("\n", " "))
    last = tok.finish()
    if last is not None:
        lines.append(last)
    words: list[str] = []
    for ln in lines:
        if ln.error:
            raise ParseError(ln.error)
        words.extend(ln.words)
    return words


def parse_text(text: str) -> Iterator[Line]:
    """All logical lines of a config text, blank and comment-only lines left out.

    Rejected lines are returned with ``error`` set so the caller can report file and line.
    """
    tok = Tokenizer()
    for ln in tok.feed(text):
        if ln.words or ln.error:
            yield ln
    last = tok.finish()
    if last is not None and (last.words or last.error):
        yield last


def encode(value: str) -> str:
    """Escape a value for output as NUT's pconf_encode does: backslash before ``\\``, ``"`` and ``#``."""
    if "\\" not in value and '"' not in value and "#" not in value:
        return value
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#")


def quote(value: str) -> str:
    """``value`` encoded and in double quotes: one word for any tokenizer."""
    return '"' + encode(value) + '"'


def join_words(words: list[str]) -> str:
    """A request line for ``words``: plain words as they are, others quoted."""
    out = []
    for w in words:
        if w and not _NEEDS_QUOTE.search(w):
            out.append(w)
        else:
            out.append(quote(w))
    return " ".join(out)


_NEEDS_QUOTE = re.compile(r'[\s"\\#=]')
