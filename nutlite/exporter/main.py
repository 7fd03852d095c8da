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
import html
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from nutlite import __version__
from nutlite.client import AddressError, split_hostport
from nutlite.daemon import Notifier, drop_privileges, resolve_user, setup_logging, trim_memory, tune_malloc
from nutlite.exporter import configstatus, naming
from nutlite.exporter.collector import (
    CredentialsError,
    KnownUpses,
    Options,
    Target,
    TypeCache,
    load_credentials,
    render_results,
    scrape,
)
from nutlite.exporter.targets import AllowList, TargetPatternError, parse_target
from nutlite.exporter.web import WebConfig, WebConfigError, load_web_config
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


def make_handler(exporter: Exporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"nutlite-exporter/{__version__}"
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            self.request.settimeout(30)
            if hasattr(self.request, "do_handshake"):  # TLS: handshake here, in the request's thread
                self.request.do_handshake()
            super().setup()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if not exporter.web.check_auth(self.headers.get("Authorization")):
                self._send(HTTPStatus.UNAUTHORIZED, b"Unauthorized\n",
                           headers={"WWW-Authenticate": 'Basic realm="nutlite exporter"'})
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            try:
                if url.path == "/metrics":
                    self._metrics(exporter.targets, query, own_page=True)
                elif url.path == "/probe":
                    targets = query.get("target")
                    if not targets or not targets[0]:
                        raise ValueError("the 'target' parameter is missing (target=host[:port])")
                    target = parse_target(targets[0])
                    exporter.check_allowed([target])
                    self._metrics([target], query)
                elif url.path == "/ups_metrics":
                    self._ups_metrics(query)
                elif url.path == "/-/healthy":
                    self._send(HTTPStatus.OK, b"OK\n")
                elif url.path == "/":
                    self._index()
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"Not found\n")
            except Refused as exc:
                self._refuse(url.path, exc.target)
            except (ValueError, AddressError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, f"{getattr(exc, 'message', exc)}\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception:  # nothing may take the exporter down
                log.exception("error answering %s", url.path)
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")

        def _refuse(self, path: str, target: Target) -> None:
            log.warning("refused %s target %s asked by %s: not a configured server nor allowed by "
                        "--allow-target", path, target, self.client_address[0])
            body = (f"target {target} refused: this exporter scrapes only its --server targets, the "
                    f"servers of its credentials file and what --allow-target allows; start it with "
                    f"--allow-target {target} (or a network such as 10.0.0.0/24, or '*') to allow it\n")
            self._send(HTTPStatus.FORBIDDEN, body.encode())

        def _deadline(self) -> float | None:
            # Prometheus tells how long it will wait; answer a little before that.
            header = self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
            try:
                return max(0.2, float(header) - 0.5) if header else None
            except ValueError:
                return None

        def _options(self, query: dict[str, list[str]]) -> Options:
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

        def _metrics(self, targets: Sequence[Target], query: dict[str, list[str]],
                     server_label: bool | None = None, own_page: bool = False) -> None:
            opts = self._options(query)
            upses = _split_list(query.get("ups"))
            if not upses and targets is exporter.targets:
                upses = exporter.upses
            body = exporter.collect(targets, opts, upses or None, self._deadline(), server_label)
            if own_page:  # the appliance's own state: on /metrics only
                body += exporter.config_status.render()
            self._send(HTTPStatus.OK, body, CONTENT_TYPE)
            if len(body) > TRIM_AFTER:
                del body
                trim_memory()

        def _ups_metrics(self, query: dict[str, list[str]]) -> None:
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
            self._metrics(targets, query)

        def _index(self) -> None:
            servers = ", ".join(html.escape(str(t)) for t in exporter.targets)
            body = (
                "<html><head><title>nutlite exporter</title></head><body><h1>nutlite exporter</h1>"
                f"<p>NUT servers: {servers}; names: {html.escape(exporter.options.names.family)}</p>"
                '<ul><li><a href="/metrics">/metrics</a></li>'
                "<li>/probe?target=host[:port]</li>"
                "<li>/ups_metrics?server=host&amp;ups=name</li></ul>"
                f"<p>Targets a URL may name: {html.escape(exporter.allow.describe())}</p></body></html>\n"
            ).encode()
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")

    return Handler


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], web: WebConfig) -> None:
        host = addr[0]
        if ":" in host or host == "":
            self.address_family = socket.AF_INET6
        self._web = web
        super().__init__(addr if host else ("::", addr[1]), handler, bind_and_activate=False)
        if self.address_family == socket.AF_INET6:
            # ":PORT" means every address, IPv4 included.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "" else 1)
        try:
            self.server_bind()
            self.server_activate()
        except OSError:
            self.server_close()
            raise
        if web.tls:
            self._ctx = web.ssl_context()

    notifier: Notifier | None = None
    _next_ping = 0.0

    def service_actions(self) -> None:
        """Called by serve_forever at each turn of its accept loop (every poll interval): ping systemd's
        watchdog from there, so a hung accept loop stops the pings and gets the service restarted."""
        n = self.notifier
        if n is not None and n.watchdog_interval and time.monotonic() >= self._next_ping:
            n.watchdog()
            self._next_ping = time.monotonic() + n.watchdog_interval

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("HTTP connection from %s failed", client_address, exc_info=True)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self._web.tls:
            # The handshake runs in the request's thread, at the first read.
            sock = self._ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("nutlite-exporter", args.debug)
    tune_malloc()
    try:
        host, port = parse_listen(args.listen)
        targets = [Target.parse(s) for s in _split_list(args.server)] or [Target("127.0.0.1", 3493)]
        names = naming.names_for(args.names, args.prefix)
        creds = load_credentials(args.credentials_file) if args.credentials_file else {}
        web = load_web_config(args.web_config_file) if args.web_config_file else WebConfig()
        patterns = [p.strip() for v in args.allow_target or () for p in v.split(",")]  # "" is an error
        allow = default_allow_list(targets, Options(credentials=creds), patterns)
    except TargetPatternError as exc:
        print(f"nutlite exporter: {exc}", file=sys.stderr)
        return 2
    except (ValueError, AddressError, OSError) as exc:
        msg = getattr(exc, "message", None) or str(exc)
        print(f"nutlite exporter: {msg}", file=sys.stderr)
        return 2
    except (CredentialsError, WebConfigError) as exc:  # pragma: no cover - subclasses of ValueError
        print(f"nutlite exporter: {exc}", file=sys.stderr)
        return 2
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
            server = _Server((host, port), make_handler(exporter), web)
        except OSError:
            if host != "":
                raise
            server = _Server(("0.0.0.0", port), make_handler(exporter), web)  # no IPv6 here
    except OSError as exc:
        print(f"nutlite exporter: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
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
    bound = server.server_address
    log.info("listening on %s:%s (%s) for %s; names %s; /probe and /ups_metrics may name %s", bound[0] or "*",
             bound[1], "https" if web.tls else "http", ", ".join(map(str, targets)), names.family,
             allow.describe())
    server.notifier = Notifier()
    server.notifier.ready(f"serving {len(targets)} NUT server(s)")
    start = time.monotonic()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    log.info("stopped after %.0f s", time.monotonic() - start)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
