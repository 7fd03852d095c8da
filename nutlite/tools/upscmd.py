"""``upscmd``: list or run the instant commands of a UPS.

Same options, output and messages as NUT's ``upscmd``::

    upscmd -l ups[@host[:port]]
    upscmd [-u user] [-p password] [-w] [-t timeout] ups[@host[:port]] command [value]

With ``-w`` the command is tracked (``SET TRACKING ON``) and its result from the driver is
polled with ``GET TRACKING`` once a second for up to ``-t`` seconds (default 10).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass

from nutlite.client import NutClient, NutClientError, NutError, tracking_outcome
from nutlite.tools.common import (
    ask_credentials,
    banner,
    err,
    finish_option,
    open_target,
    parse_options,
)

TOOL = "upscmd"
DEFAULT_WAIT = 10


def usage() -> str:
    return f"""{banner(TOOL)}

usage: upscmd [-h]
       upscmd [-l <ups>]
       upscmd [-u <username>] [-p <password>] [-w] [-t <timeout>] <ups> <command> [<value>]

Run an instant command on a UPS, or list the commands it supports.

  -h            show this help
  -l <ups>      list the instant commands of <ups> with their descriptions
  -u <username> username for upsd (asked for when missing)
  -p <password> password for upsd (asked for when missing)
  -w            wait until the driver reports the result of the command
                and print that result
  -t <timeout>  how long -w waits, in seconds (default: {DEFAULT_WAIT})

  <ups>         the UPS, as <upsname>[@<hostname>[:<port>]]
  <command>     an instant command name, e.g. test.battery.start
  [<value>]     an optional parameter for the command, e.g. a delay in seconds
"""


def parse_timeout(text: str) -> int | None:
    """A ``-t`` value: a whole number of seconds; None (after a message) if it is not one."""
    if text.strip().isdigit():
        return int(text)
    err(
        f"Could not convert the provided value for timeout ('-t' option) to unsigned int: {os.strerror(errno.EINVAL)}"
    )
    return None


def list_commands(target: str) -> int:
    opened = open_target(target)
    if opened is None:
        return 1
    ups, client = opened
    try:
        cmds = client.list_cmd(ups)
        descs = [_cmddesc(client, ups, cmd) for cmd in cmds]
    except NutClientError as exc:
        err(f"Error: {exc.message}")
        return 1
    finally:
        client.close()
    print(f"Instant commands supported on UPS [{ups}]:\n")
    for cmd, desc in zip(cmds, descs, strict=True):
        print(cmd if desc is None else f"{cmd} - {desc}")
    return 0


def _cmddesc(client: NutClient, ups: str, cmd: str) -> str | None:
    try:
        return client.get_cmddesc(ups, cmd)
    except NutError:
        return None


def authenticate(client: NutClient, user: str, password: str) -> bool:
    """USERNAME and PASSWORD. Like NUT's tools, an ERR answer is left for the command to report
    (an empty value is not sent: upsd would refuse it anyway); only a broken connection stops here."""
    for label, send, value in (("username", client.username, user), ("password", client.password, password)):
        if not value:
            continue
        try:
            send(value)
        except NutError:
            pass
        except NutClientError as exc:
            err(f"Set {label} failed: {exc.message}")
            return False
    return True


def wait_result(client: NutClient, tracking_id: str, timeout: int) -> int:
    """Poll the tracking result, print it; 1 if none came in time."""
    try:
        status = client.wait_tracking(tracking_id, timeout=timeout)
    except NutError as exc:
        err(exc.reply)
        return 0
    except NutClientError as exc:
        err(f"Can't receive status tracking information: {exc.message}")
        return 1
    if status == "PENDING":
        err("Can't receive status tracking information: timeout")
        return 1
    err(tracking_outcome(status))
    return 0


def send_tracked(client: NutClient, what: str, send: Callable[[], str | None], wait: bool, timeout: int) -> int:
    """Send an INSTCMD or SET (``send``), with tracking when ``wait``; print the outcome as NUT's tools do."""
    if wait:
        try:
            client.set_tracking(True)
        except NutError as exc:
            err(f"Enabling {what} status tracking failed. upsd answered: {exc.reply}")
            return 1
    try:
        tracking_id = send()
    except NutError as exc:
        err(f"Unexpected response from upsd: {exc.reply}")
        return 1
    if wait and tracking_id is not None:
        return wait_result(client, tracking_id, timeout)
    err("OK")
    return 0


def run_command(
    target: str, cmd: str, param: str | None, user: str | None, password: str | None, wait: bool, timeout: int
) -> int:
    opened = open_target(target)
    if opened is None:
        return 1
    ups, client = opened
    try:
        client.connect()
        if "." not in cmd:
            err("Error: old command names are not supported")
            return 1
        user, password = ask_credentials(user, password, on_eof_user=lambda: None)
        if user is None or password is None:
            err("Error reading from stdin!")
            return 1
        if not authenticate(client, user, password):
            return 1
        return send_tracked(client, "command", lambda: client.instcmd(ups, cmd, param), wait, timeout)
    except NutClientError as exc:
        err(f"Error: {exc.message}")
        return 1
    finally:
        client.close()


@dataclass
class SendOptions:
    """``-u``, ``-p``, ``-w`` and ``-t``, as upscmd and upsrw both take them."""

    user: str | None = None
    password: str | None = None
    wait: bool = False
    timeout: int = DEFAULT_WAIT

    def take(self, opt: str, value: str) -> int | None:
        """Record one of the four; return an exit code if its value is bad."""
        if opt == "u":
            self.user = value
        elif opt == "p":
            self.password = value
        elif opt == "w":
            self.wait = True
        elif opt == "t":
            parsed = parse_timeout(value)
            if parsed is None:
                return 1
            self.timeout = parsed
        return None


def main(argv: list[str]) -> int:
    parsed = parse_options(argv, "lhu:p:t:wV", TOOL, usage)
    if isinstance(parsed, int):
        return parsed
    opts, args = parsed
    listing = False
    send = SendOptions()
    for opt, value in opts:
        if (code := finish_option(opt, TOOL, usage)) is not None:
            return code
        if opt == "l":
            listing = True
        elif (code := send.take(opt, value)) is not None:
            return code
    if listing and args:
        return list_commands(args[0])
    if len(args) < 2:
        print(usage(), end="")
        return 0
    return run_command(args[0], args[1], args[2] if len(args) > 2 else None, send.user, send.password,
                       send.wait, send.timeout)
