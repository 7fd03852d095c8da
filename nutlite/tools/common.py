"""Helpers shared by the NUT client tools (upsc, upscmd, upsrw, upslog).

The tools take NUT's single-letter options with POSIX getopt rules (options end at the first
operand), print NUT's messages, and use nutlite.client for the protocol.
"""

from __future__ import annotations

import argparse
import getpass
import os
import pwd
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, TextIO

from nutlite import __version__

if TYPE_CHECKING:  # the daemons use this module for their help too: the client is imported when used
    from nutlite.client import NutClient, UpsAddress

NUT_VERSION = "2.8.0"  # the NUT release whose tools these behave like
UPS_FORMAT = "upsname[@hostname[:port]]"


def banner(tool: str) -> str:
    """First line of help and version output."""
    return f"Network UPS Tools {tool} {NUT_VERSION} (nutlite {__version__})"


def err(*lines: str) -> None:
    """Print lines on stderr."""
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()


class GetoptError(Exception):
    """A bad option; ``message`` is worded like glibc's getopt."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def scan_options(argv: list[str], optstring: str) -> tuple[list[tuple[str, str]], list[str]]:
    """POSIX getopt: ``-abc``, ``-u user``/``-uuser``, options stop at the first operand or ``--``.

    Returns the options in command-line order and the operands. A bad option is kept in its place
    as ``("?", complaint)``, the complaint worded like glibc's, so that a caller can act on the
    options one by one as C programs do (and stop at ``-h`` before a later complaint).
    """
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            ch = arg[j]
            pos = optstring.find(ch)
            if ch == ":" or pos < 0:
                opts.append(("?", f"invalid option -- '{ch}'"))
                j += 1
                continue
            if pos + 1 < len(optstring) and optstring[pos + 1] == ":":
                if j + 1 < len(arg):
                    opts.append((ch, arg[j + 1 :]))
                else:
                    i += 1
                    if i >= len(argv):
                        opts.append(("?", f"option requires an argument -- '{ch}'"))
                        break
                    opts.append((ch, argv[i]))
                break
            opts.append((ch, ""))
            j += 1
        i += 1
    return opts, argv[i:]


def getopt(
    argv: list[str], optstring: str, errors: list[str] | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """:func:`scan_options` without the bad options: the first raises :class:`GetoptError`, or, when
    an ``errors`` list is given, each is recorded there and skipped."""
    opts, rest = scan_options(argv, optstring)
    good: list[tuple[str, str]] = []
    for opt, value in opts:
        if opt != "?":
            good.append((opt, value))
        elif errors is None:
            raise GetoptError(value)
        else:
            errors.append(value)
    return good, rest


def invoked_as(tool: str) -> str:
    """The program name for usage lines: ``tool`` when started under that name (a link such as
    /sbin/upsmon), else ``nutlite tool``."""
    return tool if os.path.basename(sys.argv[0]) == tool else f"nutlite {tool}"


def terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` gives it (COLUMNS, then the terminal of
    stdout, else 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized by :func:`terminal_columns`: argparse itself imports shutil (and with
    it bz2, lzma) for the width, at the first add_argument; the daemons keep that out of memory."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


def scanner_sections(bus: str, sections: Sequence[Sequence[tuple[str, str]]], parsable: bool = False,
                     first: int = 1) -> str:
    """nut-scanner's output for ``sections`` (each a list of ups.conf settings): ``[nutdevN]`` with
    tab-indented ``key = "value"`` lines, or with ``parsable`` its ``BUS:key="value",...`` lines."""
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = []
    for n, items in enumerate(sections, first):
        if parsable:
            out.append(f"{bus}:" + ",".join(f"{k}={quote(v)}" for k, v in items))
        else:
            out.append(f"[nutdev{n}]")
            out.extend(f"\t{k} = {quote(v)}" for k, v in items)
    return "".join(line + "\n" for line in out)


def help_parser(tool: str, description: str = "", *, prog: str | None = None, usage: str | None = None,
                files: Sequence[str] = (), environment: Sequence[str] = (), epilog: str = "",
                help_flag: Literal["exit", "switch"] = "exit",
                help_text: str = "show this help and exit") -> argparse.ArgumentParser:
    """The argument parser of a nutlite program, in the one help style of every tool.

    The help shows the usage naming the program as invoked (``prog``, default :func:`invoked_as`),
    ``description`` (a short paragraph of plain prose), the options, then ``epilog`` and the sections
    Files: and Environment:, one given line an entry. The first option is ``-h``: with ``help_flag``
    "exit" it is ``-h, --help`` and prints the help and exits; with "switch" it only sets
    ``args.help``, for a program that shows its help itself (after other checks, or with more in it).
    """
    sections = [epilog] if epilog else []
    for title, lines in (("Files", files), ("Environment", environment)):
        if lines:
            sections.append("\n".join([f"{title}:", *(f"  {line}" for line in lines)]))
    p = argparse.ArgumentParser(prog=prog or invoked_as(tool), usage=usage, description=description or None,
                                epilog="\n\n".join(sections) or None, add_help=False,
                                formatter_class=HelpFormatter)
    if help_flag == "exit":
        p.add_argument("-h", "--help", action="help", help=help_text)
    else:
        p.add_argument("-h", dest="help", action="store_true", help=help_text)
    return p


def parse_options(argv: list[str], optstring: str, tool: str,
                  usage: Callable[[], str]) -> tuple[list[tuple[str, str]], list[str]] | int:
    """getopt as NUT's client tools use it: after a bad option they show the complaint and their help
    and exit 0 (the int returned)."""
    try:
        return getopt(argv, optstring)
    except GetoptError as exc:
        err(f"{tool}: {exc.message}")
        print(usage(), end="")
        return 0


def finish_option(opt: str, tool: str, usage: Callable[[], str], banner_on_stderr: bool = True) -> int | None:
    """``-h`` or ``-V``: print and return the exit code (0); None for any other option."""
    if opt == "h":
        print(usage(), end="")
        return 0
    if opt == "V":
        if banner_on_stderr:
            err(banner(tool))
        else:
            print(banner(tool))
        return 0
    return None


def split_ups(text: str | None) -> UpsAddress | None:
    """Parse ``upsname[@hostname[:port]]``; on error print NUT's messages and return None."""
    from nutlite.client import AddressError, parse_upsname

    try:
        if text is None:
            raise AddressError("")
        return parse_upsname(text)
    except AddressError as exc:
        if exc.message:
            err(f"{exc.where}: {exc.message}")
        err("Error: invalid UPS definition.", f"Required format: {UPS_FORMAT}")
        return None


def open_target(text: str | None) -> tuple[str, NutClient] | None:
    """``upsname[@hostname[:port]]`` -> (the UPS name, a not yet connected client for its server); on
    error print NUT's messages and return None."""
    from nutlite.client import NutClient

    addr = split_ups(text)
    if addr is None:
        return None
    return addr.upsname or "", NutClient(addr.host, addr.port)


def login_name() -> str:
    """The name of the user running the tool (the default for the username prompt)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER", "")


def read_line(prompt: str, stream: TextIO | None = None) -> str | None:
    """Show ``prompt`` on ``stream`` (stdout) and read one line from stdin; None at end of input."""
    out = stream or sys.stdout
    out.write(prompt)
    out.flush()
    line = sys.stdin.readline()
    if not line:
        return None
    return line.rstrip("\r\n")


def _have_tty() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def read_password(prompt: str = "Password: ") -> str | None:
    """Read a password without echo from the terminal; without one, from stdin (prompt on stderr)."""
    if _have_tty():
        try:
            return getpass.getpass(prompt)
        except EOFError:
            return None
    return read_line(prompt, sys.stderr)


def ask_credentials(
    user: str | None, password: str | None, on_eof_user: Callable[[], str | None]
) -> tuple[str | None, str | None]:
    """Prompt for what is missing of username and password, as NUT's tools do.

    The username prompt offers the login name as default (an empty answer takes it);
    ``on_eof_user`` decides what end of input at that prompt means (None = give up).
    """
    if user is None:
        answer = read_line(f"Username ({login_name()}): ")
        if answer is None:
            answer = on_eof_user()
            if answer is None:
                return None, None
        user = answer or login_name()
    if password is None:
        password = read_password()
        if password is None:
            password = ""
    return user, password
