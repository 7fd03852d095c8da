"""The one exception the HID parser and report codec raise."""

from __future__ import annotations


class HidError(ValueError):
    """A malformed or truncated HID report descriptor or report.

    ``offset`` is the byte offset in the descriptor or report where the problem was found (None when
    the problem is not at one place, e.g. a value that does not fit a field).
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        self.reason = message
        super().__init__(message if offset is None else f"byte {offset}: {message}")
