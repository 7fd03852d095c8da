"""NUT's tokenizer rules (NUT-FACTS §3.1) and the encoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nutlite.parseconf import (
    MAX_ARGS,
    MAX_WORD,
    ParseError,
    Tokenizer,
    encode,
    join_words,
    parse_text,
    quote,
    split_line,
)

printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=80)
ascii_any = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=80)


@pytest.mark.parametrize(
    "line, words",
    [
        ("GET VAR ups ups.status", ["GET", "VAR", "ups", "ups.status"]),
        ("  lots\tof   \t space  ", ["lots", "of", "space"]),
        ('SET VAR ups x "two words"', ["SET", "VAR", "ups", "x", "two words"]),
        ('""', [""]),
        ('a "" b', ["a", "", "b"]),
        ("a=b", ["a", "=", "b"]),
        ("x = dummy=ups", ["x", "=", "dummy", "=", "ups"]),
        ('port = "a=b"', ["port", "=", "a=b"]),
        (r"a\ b", ["a b"]),
        (r"a\\b", ["a\\b"]),
        (r"a\"b", ['a"b']),
        (r"a\#b", ["a#b"]),
        (r'"with \"quote\" and \\ and \#"', ['with "quote" and \\ and #']),
        ('mid"dle', ['mid"dle']),
        ("word # a comment", ["word"]),
        ("word# glued comment", ["word"]),
        ("# only a comment", []),
        ("", []),
        ("'single'  'quotes are'", ["'single'", "'quotes", "are'"]),
        ("CRLF line\r", ["CRLF", "line"]),
        ("c\rd", ["c", "d"]),  # \r separates words, like a space (C isspace)
        ('"tab\tin quotes"', ["tabin quotes"]),  # control characters in quotes are dropped
        ("a\\\tb", ["ab"]),
        ("ctrl\x01chars\xe9dropped", ["ctrlcharsdropped"]),
        ("del\x7fkept", ["del\x7fkept"]),  # Debian's upsd keeps 0x7F
        ("\x01 y", ["", "y"]),  # a control character still starts a word
    ],
)
def test_split_line(line: str, words: list[str]) -> None:
    assert split_line(line) == words


@pytest.mark.parametrize(
    "line, message",
    [
        ('port = "file#1.dev"', "unescaped # in quotes"),
        ('unclosed "quote', "missing close quote"),
    ],
)
def test_rejected_lines(line: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        split_line(line)


def test_limits_drop_extra_words_and_characters() -> None:
    words = split_line(" ".join(f"w{i}" for i in range(40)))
    assert len(words) == MAX_ARGS and words[-1] == f"w{MAX_ARGS - 1}"
    assert split_line("x" * 600) == ["x" * MAX_WORD]
    # the slow path (quotes) applies the same limits
    assert split_line('"' + "y" * 600 + '"') == ["y" * MAX_WORD]
    assert len(split_line(" ".join(['"q"'] * 40))) == MAX_ARGS


def test_continuation_and_line_numbers() -> None:
    # As Debian's upsd reads ups.conf: a backslash before the newline joins the lines, and when the
    # backslash began a word, that word is empty.
    text = 'first line\nsecond \\\n  continued\nglu\\\ned\n# comment\nbad "a#b"\nlast = "x"'
    lines = list(parse_text(text))
    assert [(ln.lineno, ln.words) for ln in lines if not ln.error] == [
        (1, ["first", "line"]),
        (2, ["second", "", "continued"]),
        (4, ["glued"]),
        (7, ['b"']),  # after the rejected part, NUT carries on behind the '#', outside quotes
        (8, ["last", "=", "x"]),
    ]
    bad = [ln for ln in lines if ln.error]
    assert len(bad) == 1 and bad[0].lineno == 7 and bad[0].words == ["bad"]


def test_open_quote_runs_over_newlines() -> None:
    # Debian's upsd: an unclosed quote swallows the following lines (their newlines dropped) up to the
    # next quote; the rest of that line goes on as usual.
    text = 'desc = "open\n[next]\n driver = x\n desc = "tail word\nafter\n'
    assert [ln.words for ln in parse_text(text)] == [["desc", "=", "open[next] driver = x desc = ", "tail", "word"], ["after"]]
    tok = Tokenizer()
    assert tok.feed('x "never closed\n') == [] and tok.pending
    last = tok.finish()
    assert last is not None and last.error and "missing close quote" in last.error


def test_backslash_newline_inside_quotes_joins() -> None:
    assert [ln.words for ln in parse_text('a "one\\\ntwo"\n')] == [["a", "onetwo"]]


@given(printable)
def test_encode_roundtrips_any_printable_ascii(value: str) -> None:
    assert split_line(quote(value)) == [value]
    assert split_line(f"VAR ups x {quote(value)}") == ["VAR", "ups", "x", value]


@given(ascii_any)
def test_any_ascii_value_roundtrips_minus_control_characters(value: str) -> None:
    # NUT's parser drops control characters: what is left of the value comes back unchanged.
    if "\n" in value:
        value = value.replace("\n", "")
    kept = "".join(c for c in value if 0x20 <= ord(c) <= 0x7F)  # tabs too: inside quotes NUT drops them
    assert split_line(quote(value)) == [kept]


@given(st.lists(printable, max_size=6))
def test_join_words_roundtrips(words: list[str]) -> None:
    assert split_line(join_words(words)) == words


@given(printable)
def test_fast_path_agrees_with_the_character_machine(line: str) -> None:
    tok = Tokenizer()
    lines = tok.feed(line)
    last = tok.finish()
    lines += [last] if last is not None else []
    if not lines:
        assert split_line(line) == []
        return
    assert len(lines) == 1
    if lines[0].error:
        with pytest.raises(ParseError):
            split_line(line)
    else:
        assert split_line(line) == lines[0].words


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=200),
       st.lists(st.integers(min_value=1, max_value=20), max_size=30))
def test_feeding_in_pieces_equals_feeding_at_once(text: str, cuts: list[int]) -> None:
    whole = Tokenizer()
    expected = [(ln.words, ln.error, ln.lineno) for ln in whole.feed(text)]
    pieces = Tokenizer()
    got = []
    pos = 0
    for c in cuts:
        got += [(ln.words, ln.error, ln.lineno) for ln in pieces.feed(text[pos:pos + c])]
        pos += c
    got += [(ln.words, ln.error, ln.lineno) for ln in pieces.feed(text[pos:])]
    assert got == expected


def test_encode() -> None:
    assert encode('a"b\\c#d') == 'a\\"b\\\\c\\#d'
    assert encode("plain value") == "plain value"
    assert quote("") == '""'


def test_fast_path_leaves_exactly_the_plain_characters() -> None:
    """Only lines of plain characters take the str.split() fast path: every quote, backslash, "#",
    "=", non-whitespace control character and non-ASCII character goes through the full parser."""
    from nutlite.parseconf import _SPECIAL

    def special(c: int) -> bool:
        return chr(c) in '"\\#=' or c <= 0x08 or 0x0E <= c <= 0x1F or c >= 0x80

    wrong = [hex(c) for c in range(0x110000) if bool(_SPECIAL.search(chr(c))) != special(c)]
    assert wrong == []
