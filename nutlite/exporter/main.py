"""``nutlite exporter``: a Prometheus exporter for the local upsd and remote NUT servers.

Endpoints:

* ``/metrics``: every UPS of the configured servers (``--server``, default the local upsd);
* ``/probe?target=host[:port]``: every UPS of one server (multi-target pattern; optional ``ups``);
* ``/ups_metrics?server=host&serverport=port&ups=name&variables=a,b&statuses=OL,OB``:
  DRuggeri/nut_exporter's endpoint and parameters;
* ``/-/healthy``: liveness; ``/``: a short page with links.

The servers a URL may name are limited (:mod:`nutlite.exporter.targets`): the configured ones unless
``--allow-target`` widens it; any other gets 403 and no connection. NUT credentials come only from
``--credentials-file`` and go only to the server they are for (the section-less ones to the
``--server`` targets); requests carrying ``username``/``password`` parameters are refused. TLS and
basic auth for HTTP come from ``--web-config-file``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

from nutlite import __version__
from nutlite.client import AddressError, split_hostport
from nutlite.daemon import Notifier, drop_privileges, resolve_user, setup_logging, trim_memory, tune_malloc
from nutlite.exporter import configstatus, httpd, naming
from nutlite.exporter.collector import (
    KnownUpses,
    Options,
    Target,
    TypeCache,
    load_credentials,
    render_results,
    scrape,
)
from nutlite.exporter.targets import AllowList, parse_target
from nutlite.exporter.web import WebConfig, load_web_config
from nutlite.tools.common import help_parser

log = logging.getLogger("nutlite.exporter")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_LISTEN = ":9199"
TRIM_AFTER = 64 * 1024  # after a larger answer (several UPSes), give the freed memory back


def _split_list(values: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


class Refused(Exception):
    """A URL named a target the allow list does not hold."""

    def __init__(self, target: Target) -> None:
        super().__init__(str(target))
        self.target = target


class Exporter:
    """Everything a request needs: targets, options, the memory of UPS names per server.

    ``targets`` are the configured servers (--server): /metrics scrapes them, and they are the only
    ones the credentials file's section-less login goes to. ``allow`` says which servers /probe and
    /ups_metrics may name (default: ``targets`` and the credentials file's sections).
    """

    def __init__(
        self,
        targets: Sequence[Target],
        options: Options,
        web: WebConfig | None = None,
        upses: Sequence[str] = (),
        allow: AllowList | None = None,
        config_status: configstatus.ConfigStatus | None = None,
    ) -> None:
        self.targets = list(targets)
        self.config_status = config_status or configstatus.ConfigStatus(None)
        self.upses = list(upses)  # default UPS names for /metrics (empty: whatever LIST UPS says)
        options.servers = tuple(self.targets)
        self.options = options
        self.allow = allow if allow is not None else default_allow_list(self.targets, options)
        self.web = web or WebConfig()
        self.known = KnownUpses()
        self.types = TypeCache()

    def collect(
        self,
        targets: Sequence[Target],
        options: Options,
        upses: Sequence[str] | None = None,
        deadline: float | None = None,
        server_label: bool | None = None,
    ) -> bytes:
        results = scrape(targets, options, upses, self.known, deadline, self.types)
        label = len(targets) > 1 if server_label is None else server_label
        return render_results(results, options, label, __version__)

    def check_allowed(self, targets: Sequence[Target]) -> None:
        """Raises Refused for the first of ``targets`` (named in a URL) that may not be scraped."""
        for t in targets:
            if not self.allow.allows(t):
                raise Refused(t)


def default_allow_list(servers: Sequence[Target], options: Options, patterns: Sequence[str] = ()) -> AllowList:
    """The configured servers and the credentials file's sections, plus ``patterns`` (--allow-target)."""
    known = [*servers, *(Target.parse(k) for k in options.credentials if k is not None)]
    return AllowList.parse(known, patterns)


def make_app(exporter: Exporter) -> httpd.App:
    """The exporter's answer to each HTTP request."""

    def answer(req: httpd.Request) -> httpd.Response:
        if not exporter.web.check_auth(req.header("Authorization")):
            return httpd.Response(401, b"Unauthorized\n",
                                  headers={"WWW-Authenticate": 'Basic realm="nutlite exporter"'})
        url = urlsplit(req.target)
        query = parse_qs(url.query)
        try:
            if url.path == "/metrics":
                return _metrics(req, exporter.targets, query, own_page=True)
            if url.path == "/probe":
                targets = query.get("target")
                if not targets or not targets[0]:
                    raise ValueError("the 'target' parameter is missing (target=host[:port])")
                target = parse_target(targets[0])
                exporter.check_allowed([target])
                return _metrics(req, [target], query)
            if url.path == "/ups_metrics":
                return _ups_metrics(req, query)
            if url.path == "/-/healthy":
                return httpd.Response(200, b"OK\n")
            if url.path == "/":
                return _index()
            return httpd.Response(404, b"Not found\n")
        except Refused as exc:
            return _refuse(req, url.path, exc.target)
        except (ValueError, AddressError) as exc:
            return httpd.Response(400, f"{getattr(exc, 'message', exc)}\n".encode())
        except Exception:  # nothing may take the exporter down
            log.exception("error answering %s", url.path)
            return httpd.Response(500, b"internal error\n")

    def _refuse(req: httpd.Request, path: str, target: Target) -> httpd.Response:
        log.warning("refused %s target %s asked by %s: not a configured server nor allowed by "
                    "--allow-target", path, target, req.client)
        body = (f"target {target} refused: this exporter scrapes only its --server targets, the "
                f"servers of its credentials file and what --allow-target allows; start it with "
                f"--allow-target {target} (or a network such as 10.0.0.0/24, or '*') to allow it\n")
        return httpd.Response(403, body.encode())

    def _deadline(req: httpd.Request) -> float | None:
        # Prometheus tells how long it will wait; answer a little before that.
        header = req.header("X-Prometheus-Scrape-Timeout-Seconds")
        try:
            return max(0.2, float(header) - 0.5) if header else None
        except ValueError:
            return None

    def _options(query: dict[str, list[str]]) -> Options:
        if "username" in query or "password" in query:
            raise ValueError("NUT credentials are not taken from URLs; use --credentials-file")
        opts = Options(**{**exporter.options.__dict__})
        variables = _split_list(query.get("variables"))
        if variables:
            opts.include = variables
        statuses = _split_list(query.get("statuses"))
        if statuses:
            opts.statuses = [s.upper() for s in statuses]
        return opts

    def _metrics(req: httpd.Request, targets: Sequence[Target], query: dict[str, list[str]],
                 own_page: bool = False) -> httpd.Response:
        opts = _options(query)
        upses = _split_list(query.get("ups"))
        if not upses and targets is exporter.targets:
            upses = exporter.upses
        body = exporter.collect(targets, opts, upses or None, _deadline(req))
        if own_page:  # the appliance's own state: on /metrics only
            body += exporter.config_status.render()
        return httpd.Response(200, body, CONTENT_TYPE)

    def _ups_metrics(req: httpd.Request, query: dict[str, list[str]]) -> httpd.Response:
        servers = _split_list(query.get("server"))
        port = query.get("serverport", [""])[0]
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("serverport must be a number from 1 to 65535")
        if servers:
            default = int(port) if port else 3493
            targets = [parse_target(s, default) for s in servers]
        elif port:
            targets = [Target(t.host, int(port)) for t in exporter.targets]
        else:
            targets = exporter.targets
        if targets is not exporter.targets:
            exporter.check_allowed(targets)
        return _metrics(req, targets, query)

    def _index() -> httpd.Response:
        servers = ", ".join(_escape(str(t)) for t in exporter.targets)
        body = (
            "<html><head><title>nutlite exporter</title></head><body><h1>nutlite exporter</h1>"
            f"<p>NUT servers: {servers}; names: {_escape(exporter.options.names.family)}</p>"
            '<ul><li><a href="/metrics">/metrics</a></li>'
            "<li>/probe?target=host[:port]</li>"
            "<li>/ups_metrics?server=host&amp;ups=name</li></ul>"
            f"<p>Targets a URL may name: {_escape(exporter.allow.describe())}</p></body></html>\n"
        ).encode()
        return httpd.Response(200, body, "text/html; charset=utf-8")

    return answer


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``:PORT`` (every address) or ``[v6]:PORT``."""
    if text.startswith(":"):
        host, port = "", text[1:]
    else:
        try:
            h, p = split_hostport(text, default_port=9199)
        except AddressError as exc:
            raise ValueError(f"bad --listen {text!r}: {exc.message}") from None
        return h, p
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad --listen {text!r}: expected ADDR:PORT")
    return host, int(port)


class Watchdog:
    """Pings systemd's watchdog from the HTTP accept loop (each turn of it, at most once per interval), so
    a hung accept loop stops the pings and gets the service restarted."""

    def __init__(self, notifier: Notifier | None) -> None:
        self.notifier = notifier
        self.last_turn = time.monotonic()
        self._next_ping = 0.0

    def __call__(self) -> None:
        now = self.last_turn = time.monotonic()
        n = self.notifier
        if n is not None and n.watchdog_interval and now >= self._next_ping:
            n.watchdog()
            self._next_ping = now + n.watchdog_interval


def _after_send(length: int) -> None:
    if length > TRIM_AFTER:  # after a large answer (several UPSes), give the freed memory back
        trim_memory()


def make_server(addr: tuple[str, int], exporter: Exporter, turn: Callable[[], None] | None = None) -> httpd.Server:
    """The HTTP server of ``exporter`` listening on ``addr`` (TLS when its web config says so)."""
    web = exporter.web
    tls = web.ssl_context() if web.tls else None
    return httpd.Server(addr, make_app(exporter), f"nutlite-exporter/{__version__}", tls, turn, _after_send)


HELP_DESCRIPTION = """\
Prometheus exporter for NUT servers: serves the variables of the UPSes of the
local upsd, or of remote NUT servers, as Prometheus metrics over HTTP."""

HELP_EPILOG = """\
Endpoints:
  /metrics                    every UPS of every --server
  /probe?target=HOST[:PORT]   every UPS of one NUT server (multi-target pattern)
  /ups_metrics?server=HOST&serverport=PORT&ups=NAME
                              DRuggeri/nut_exporter's endpoint and parameters
  /-/healthy                  liveness

Multi-target security:
  /probe and /ups_metrics may name only the --server targets and the servers of the
  credentials file's sections, unless --allow-target widens it; any other target gets
  HTTP 403 and no connection. Host names are not resolved: a name matches only that
  name, a network only targets written as an address. The credentials file's
  section-less login is sent only to the --server targets.

See docs/exporter.md for the credentials and web config file formats."""


def build_parser() -> argparse.ArgumentParser:
    p = help_parser("exporter", HELP_DESCRIPTION, epilog=HELP_EPILOG)
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT",
                   help=f"HTTP address (default {DEFAULT_LISTEN}: every address, port 9199)")
    p.add_argument("--server", action="append", metavar="HOST[:PORT]",
                   help="NUT server to scrape for /metrics (repeatable; default 127.0.0.1:3493)")
    p.add_argument("--allow-target", action="append", metavar="PATTERN",
                   help="let /probe and /ups_metrics scrape more servers than the configured ones: HOST "
                        "(any port), HOST:PORT, [IPv6]:PORT, a network such as 10.0.0.0/24 or 2001:db8::/32, "
                        "or '*' for every server (repeatable, comma-separated)")
    p.add_argument("--ups", action="append", metavar="NAME",
                   help="read only these UPSes from the --server(s) (repeatable, comma-separated); they get "
                        "'up 0' series even when their server is down from the start")
    p.add_argument("--names", choices=naming.FAMILIES, default="nut_exporter",
                   help="metric names: DRuggeri/nut_exporter's network_ups_tools_* (default) or "
                        "Prometheus-convention nut_* with base units")
    p.add_argument("--prefix", help="metric name prefix (default network_ups_tools or nut)")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="export only NUT variables matching GLOB (repeatable, comma-separated; "
                        "ups.status is always kept)")
    p.add_argument("--exclude", action="append", metavar="GLOB",
                   help="do not export NUT variables matching GLOB (repeatable, comma-separated)")
    p.add_argument("--statuses", metavar="LIST",
                   help="ups.status tokens always exported as 0/1 (default: every standard token)")
    p.add_argument("--no-device-info", action="store_true", help="leave out the info series")
    p.add_argument("--credentials-file", metavar="FILE",
                   help="NUT username/password (lines 'username = X', 'password = Y'; [host:port] sections)")
    p.add_argument("--web-config-file", metavar="FILE",
                   help="TLS and basic auth for HTTP (exporter-toolkit web config format)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="seconds to wait for each NUT reply (5)")
    p.add_argument("--scrape-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="seconds for all of one server's UPSes (10); a Prometheus scrape timeout header "
                        "lowers it")
    p.add_argument("--config-status", default=configstatus.DEFAULT_PATH, metavar="FILE",
                   help="the appliance's config status file, published on /metrics as nutlite_config_file_ok "
                        f"(default {configstatus.DEFAULT_PATH}; a missing file gives no series; '' turns it off)")
    p.add_argument("-u", dest="user", metavar="USER",
                   help="run as USER when started as root (default: nut, after opening the listening socket)")
    p.add_argument("-D", dest="debug", action="count", default=0, help="debug logging")
    return p


class StartError(Exception):
    """The exporter cannot start: ``message`` for the user, ``code`` the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def configure(args: argparse.Namespace) -> tuple[Exporter, httpd.Server]:
    """The exporter the parsed ``args`` describe, listening (raises StartError)."""
    try:
        host, port = parse_listen(args.listen)
        targets = [Target.parse(s) for s in _split_list(args.server)] or [Target("127.0.0.1", 3493)]
        names = naming.names_for(args.names, args.prefix)
        creds = load_credentials(args.credentials_file) if args.credentials_file else {}
        web = load_web_config(args.web_config_file) if args.web_config_file else WebConfig()
        patterns = [p.strip() for v in args.allow_target or () for p in v.split(",")]  # "" is an error
        allow = default_allow_list(targets, Options(credentials=creds), patterns)
    except (ValueError, AddressError, OSError) as exc:  # TargetPatternError, CredentialsError, WebConfigError
        raise StartError(getattr(exc, "message", None) or str(exc), 2) from None
    options = Options(
        names=names,
        include=_split_list(args.include),
        exclude=_split_list(args.exclude),
        statuses=[s.upper() for s in _split_list([args.statuses])] if args.statuses else naming.STANDARD_STATUSES,
        timeout=args.timeout,
        deadline=args.scrape_timeout,
        credentials=creds,
        device_info=not args.no_device_info,
    )
    exporter = Exporter(targets, options, web, _split_list(args.ups), allow,
                        configstatus.ConfigStatus(args.config_status or None))
    try:
        try:
            server = make_server((host, port), exporter)
        except OSError:
            if host != "":
                raise
            server = make_server(("0.0.0.0", port), exporter)  # no IPv6 here
    except OSError as exc:
        raise StartError(f"cannot listen on {args.listen}: {exc.strerror or exc}", 1) from None
    return exporter, server


def _describe(exporter: Exporter, server: httpd.Server) -> str:
    bound = server.server_address
    return (f"listening on {bound[0] or '*'}:{bound[1]} ({'https' if exporter.web.tls else 'http'}) for "
            f"{', '.join(map(str, exporter.targets))}; names {exporter.options.names.family}; /probe and "
            f"/ups_metrics may name {exporter.allow.describe()}")


class Embedded:
    """The exporter serving from a thread of another daemon (``nutlite upsd --with-exporter``).

    It scrapes its servers over the NUT protocol as the standalone exporter does (the local upsd
    through TCP 3493 like any client); it only saves the memory of a second interpreter.
    """

    STALL = 10.0  # seconds without a turn of the accept loop (it turns every 0.5 s) that count as hung

    def __init__(self, exporter: Exporter, server: httpd.Server) -> None:
        self.exporter = exporter
        self.server = server
        self.turns = Watchdog(None)
        server.turn = self.turns
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                       name="exporter", daemon=True)

    @classmethod
    def from_args(cls, text: str, default_server: str) -> Embedded:
        """``text``: the exporter's command line (as one string, shell-quoted); without ``--server`` it
        scrapes ``default_server`` (the host daemon's own address). Raises StartError."""
        import shlex

        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise StartError(f"--with-exporter {text!r}: {exc}", 2) from None
        args = build_parser().parse_args(argv)  # --help and bad options exit as the exporter's do
        if args.user or args.debug:
            raise StartError("--with-exporter: -u and -D are the host daemon's own options", 2)
        args.server = args.server or [default_server]
        tune_malloc()
        return cls(*configure(args))

    def start(self) -> None:
        self.thread.start()
        log.info("exporter %s", _describe(self.exporter, self.server))

    def healthy(self) -> bool:
        return self.thread.is_alive() and time.monotonic() - self.turns.last_turn < self.STALL

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("nutlite-exporter", args.debug)
    tune_malloc()
    try:
        exporter, server = configure(args)
    except StartError as exc:
        print(f"nutlite exporter: {exc.message}", file=sys.stderr)
        return exc.code
    try:
        drop_privileges(resolve_user(args.user))
    except (SystemExit, OSError) as exc:
        print(f"nutlite exporter: {exc}", file=sys.stderr)
        server.server_close()
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("%s", _describe(exporter, server))
    notifier = Notifier()
    server.turn = Watchdog(notifier)
    notifier.ready(f"serving {len(exporter.targets)} NUT server(s)")
    start = time.monotonic()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    log.info("stopped after %.0f s", time.monotonic() - start)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
