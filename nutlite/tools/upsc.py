"""``upsc``: list the UPSes of a server, their variables, or the clients logged in to one.

Same options, output and messages as NUT's ``upsc``::

    upsc -l | -L [host[:port]]     UPS names (-L: with descriptions)
    upsc ups[@host[:port]] [var]   all variables as "name: value", or one value
    upsc -c ups[@host[:port]]      addresses of the clients logged in to the UPS
"""

from __future__ import annotations

import sys

from nutlite.client import AddressError, NutClient, NutClientError, split_hostport
from nutlite.tools.common import banner, err, finish_option, open_target, parse_options

TOOL = "upsc"


def usage() -> str:
    return f"""{banner(TOOL)}

usage: upsc -l | -L [<hostname>[:port]]
       upsc <ups> [<variable>]
       upsc -c <ups>

Show the status variables of UPSes served by a NUT server.

Listing the UPSes of a server:
  -l         - print the name of each UPS, one per line
  -L         - print each UPS name with its description (from ups.conf)
               <hostname>[:port] defaults to localhost

Showing variables:
  <ups>      - the UPS, as <upsname>[@<hostname>[:<port>]]
  <variable> - show only this variable (default: all, one "name: value" per line)

Listing clients:
  -c         - print the address of each client logged in to <ups>, one per line
  <ups>      - the UPS, as <upsname>[@<hostname>[:<port>]]
"""


def _fail(exc: NutClientError) -> int:
    err(f"Error: {exc.message}")
    return 1


def list_upses(target: str | None, verbose: bool) -> int:
    try:
        host, port = split_hostport(target if target is not None else "localhost")
    except AddressError as exc:
        err(f"{exc.where}: {exc.message}", "Error: invalid hostname.", "Required format: [hostname[:port]]")
        return 1
    client = NutClient(host, port)
    try:
        upses = client.list_ups()
    except NutClientError as exc:
        return _fail(exc)
    finally:
        client.close()
    for name, desc in upses.items():
        print(f"{name}: {desc}" if verbose else name)
    return 0


def list_clients(target: str | None) -> int:
    opened = open_target(target)
    if opened is None:
        return 1
    ups, client = opened
    try:
        clients = client.list_client(ups)
    except NutClientError as exc:
        return _fail(exc)
    finally:
        client.close()
    for address in clients:
        print(address)
    return 0


def show_vars(target: str | None, var: str | None) -> int:
    opened = open_target(target)
    if opened is None:
        return 1
    ups, client = opened
    try:
        client.connect()
        if var is not None:
            if "." not in var:
                err("Error: old-style variable names are not supported")
                return 1
            print(client.get_var(ups, var))
        else:
            for name, value in client.list_var(ups).items():
                print(f"{name}: {value}")
    except NutClientError as exc:
        return _fail(exc)
    finally:
        client.close()
    return 0


def main(argv: list[str]) -> int:
    parsed = parse_options(argv, "hlLcV", TOOL, usage)
    if isinstance(parsed, int):
        return parsed
    opts, args = parsed
    mode = ""
    verbose = False
    for opt, _ in opts:
        if (code := finish_option(opt, TOOL, usage)) is not None:
            return code
        if opt in "lL":
            mode = "list"
            verbose = verbose or opt == "L"
        elif opt == "c" and mode != "list":
            mode = "clients"
    target = args[0] if args else None
    try:
        if mode == "list":
            return list_upses(target, verbose)
        if mode == "clients":
            return list_clients(target)
        return show_vars(target, args[1] if len(args) > 1 else None)
    finally:
        sys.stdout.flush()
