"""``upsrw``: show or set the writable variables of a UPS.

Same options, output and messages as NUT's ``upsrw``::

    upsrw [-l] ups[@host[:port]]                  every RW variable: description, type, value/options
    upsrw -s var[=value] [-u user] [-p password] [-w] [-t timeout] ups[@host[:port]]
"""

from __future__ import annotations

from nutlite.client import NutClient, NutClientError, NutError, VarType
from nutlite.tools.common import (
    ask_credentials,
    banner,
    err,
    finish_option,
    login_name,
    open_target,
    parse_options,
    read_line,
)
from nutlite.tools.upscmd import DEFAULT_WAIT, SendOptions, authenticate, send_tracked

TOOL = "upsrw"


def usage() -> str:
    return f"""{banner(TOOL)}

usage: upsrw [-h]
       upsrw [-s <variable>] [-u <username>] [-p <password>] [-w] [-t <timeout>] <ups>

Show or change the writable variables of a UPS.

  -h            show this help
  -s <variable> the variable to change; -s VAR=VALUE gives the new value,
                otherwise it is asked for
  -l            list the writable variables (also the default without -s)
  -u <username> username for upsd (asked for when missing)
  -p <password> password for upsd (asked for when missing)
  -w            wait until the driver reports the result of the change
                and print that result
  -t <timeout>  how long -w waits, in seconds (default: {DEFAULT_WAIT})

  <ups>         the UPS, as <upsname>[@<hostname>[:<port>]]
"""


def _atoi(text: str) -> int:
    """C atoi: leading integer, 0 if none."""
    text = text.strip()
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


class ValueUnavailable(Exception):
    """The current value of a variable could not be read (upsrw stops there, as NUT's does)."""


def type_block(var: str, vtype: VarType, client: NutClient, ups: str) -> list[str]:
    """The ``Type:`` line and what follows it (length, options or value) for one variable."""
    words = [w for w in vtype.words if w.upper() != "RW"]
    kind = "RANGE" if vtype.range else "ENUM" if vtype.enum else ""
    recognized = (
        vtype.range
        or vtype.enum
        or any(w.upper() == "NUMBER" or w.upper().startswith("STRING") for w in words)
    )
    if not recognized:
        return [f"Type: {' '.join(words)} (unrecognized)"]
    base = "STRING" if vtype.string else "NUMBER"
    lines = [f"Type: {kind + ' ' if kind else ''}{base}"]
    if vtype.string:
        lines.append(f"Maximum length: {vtype.maxlen if vtype.maxlen is not None else 0}")
    try:
        value = client.get_var(ups, var)
    except NutError:
        raise ValueUnavailable(f"do_{(kind or base).lower()}: can't get current value of {var}") from None
    if kind == "RANGE":
        current = _atoi(value)
        for low, high in client.list_range(ups, var):
            selected = " SELECTED" if _atoi(low) <= current <= _atoi(high) else ""
            lines.append(f'Option: "{low}-{high}"{selected}')
    elif kind == "ENUM":
        for option in client.list_enum(ups, var):
            selected = " SELECTED" if option == value else ""
            lines.append(f'Option: "{option}"{selected}')
    else:
        lines.append(f"Value: {value}")
    return lines


def print_rw(target: str) -> int:
    opened = open_target(target)
    if opened is None:
        return 1
    ups, client = opened
    try:
        rw = client.list_rw(ups)
        for var in rw:
            print(f"[{var}]")
            try:
                desc = client.get_desc(ups, var)
            except NutError:
                desc = "Description unavailable"
            print(desc)
            try:
                vtype = client.get_type(ups, var)
            except NutError:
                print("Unknown type\n")
                continue
            try:
                lines = type_block(var, vtype, client, ups)
            except ValueUnavailable as exc:
                err(str(exc))
                return 1
            print("\n".join(lines) + "\n")
    except NutClientError as exc:
        err(f"Error: {exc.message}")
        return 1
    finally:
        client.close()
    return 0


def set_variable(
    target: str, setting: str, user: str | None, password: str | None, wait: bool, timeout: int
) -> int:
    opened = open_target(target)
    if opened is None:
        return 1
    ups, client = opened
    var, sep, value = setting.partition("=")
    try:
        client.connect()
        if "." not in var:
            err("Error: old variable names are not supported")
            return 1
        user, password = ask_credentials(user, password, on_eof_user=login_name)
        if not sep:
            answer = read_line(f"Enter new value for {var}: ")
            if answer is None:
                err("Error reading from stdin!")
                return 1
            value = answer
        if not authenticate(client, user or "", password or ""):
            return 1
        return send_tracked(client, "set variable", lambda: client.set_var(ups, var, value), wait, timeout)
    except NutClientError as exc:
        err(f"Error: {exc.message}")
        return 1
    finally:
        client.close()


def main(argv: list[str]) -> int:
    parsed = parse_options(argv, "hls:p:t:u:wV", TOOL, usage)
    if isinstance(parsed, int):
        return parsed
    opts, args = parsed
    setting: str | None = None
    send = SendOptions()
    for opt, value in opts:
        if (code := finish_option(opt, TOOL, usage, banner_on_stderr=False)) is not None:
            return code
        if opt == "s":
            setting = value
        elif (code := send.take(opt, value)) is not None:
            return code
    if not args:
        print(usage(), end="")
        return 0
    if setting is not None:
        return set_variable(args[0], setting, send.user, send.password, send.wait, send.timeout)
    return print_rw(args[0])
