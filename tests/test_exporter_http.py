"""The exporter's own text format and HTTP server: byte for byte what prometheus_client would render,
and an HTTP/1.1 server that answers scrapes, keeps connections alive and refuses bad requests clearly."""

from __future__ import annotations

import contextlib
import io
import math
import random
import socket
import threading
from collections.abc import Iterator

import pytest
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest

from nutlite.exporter import httpd
from nutlite.exporter.exposition import Family, format_value, render

VALUES = [0, 1, -1, 0.5, 1e-7, 2.5e-12, 12.34, 230.0, 999999.0, 1000000.0, 1234567.0, 123456789.5, 1e15,
          1e16, 1e22, 4294967295.0, -1234567.0, float("inf"), float("-inf"), float("nan"), 257698037760.0]


class _One:
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> list[Metric]:
        return [self.metric]


def reference(fam: Family) -> bytes:
    m = Metric(fam.name, fam.doc, fam.kind)
    for labels, value in fam.samples:
        m.add_sample(fam.name, labels, value)
    return generate_latest(_One(m))  # type: ignore[arg-type]


def test_values_as_prometheus_client_prints_them() -> None:
    for v in VALUES:
        fam = Family("x", "d", samples=[({}, v)])
        assert render([fam]) == reference(fam), v
    assert format_value(1234567.0) == "1.234567e+06"
    assert format_value(float("nan")) == "NaN" and format_value(float("-inf")) == "-Inf"


def test_random_families_match_prometheus_client() -> None:
    rnd = random.Random(7)
    alphabet = 'ab\\"\n{}=, é€'
    for _ in range(300):
        fam = Family(rnd.choice(["nut_battery_charge", "network_ups_tools_ups_status", "a:b_c"]),
                     "".join(rnd.choice(alphabet + "help ") for _ in range(rnd.randrange(0, 12))))
        for _ in range(rnd.randrange(0, 4)):
            labels = {rnd.choice(["ups", "flag", "server", "a", "zz"]) + str(i):
                      "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 6)))
                      for i in range(rnd.randrange(0, 4))}
            value = rnd.choice(VALUES + [rnd.uniform(-1e9, 1e9), rnd.randrange(10**12)])
            fam.add(labels, value)
        assert render([fam]) == reference(fam)


def test_render_concatenates_families() -> None:
    a = Family("a", "first", samples=[({"ups": "x"}, 1)])
    b = Family("b", "second", samples=[({}, math.pi)])
    assert render([a, b]) == reference(a) + reference(b)


# ------------------------------------------------------------------------------------------------
# the HTTP parser


def parse(raw: bytes) -> httpd.Request | None:
    return httpd.read_request(io.BytesIO(raw))


def test_request_parsing() -> None:
    req = parse(b"\r\nGET /probe?target=a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
    assert req is not None and req.method == "GET" and req.target == "/probe?target=a"
    assert req.header("X-A") == "1, 2" and req.keep_alive
    assert not parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive  # type: ignore[union-attr]
    assert not parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive  # type: ignore[union-attr]
    assert parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive  # type: ignore[union-attr]
    assert parse(b"") is None


@pytest.mark.parametrize(("raw", "status", "words"), [
    (b"GET /\r\n\r\n", 400, "malformed request line"),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400, "malformed"),
    (b"GET / HTTX/1.1\r\n\r\n", 400, "bad HTTP version"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "not supported"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, "request line longer"),
    (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "malformed header"),
    (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "folded"),
    (b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 101 + b"\r\n", 431, "more than 100"),
    (b"GET / HTTP/1.1\r\nA: " + b"b" * 9000 + b"\r\n\r\n", 431, "header line longer"),
    (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "Content-Length"),
    (b"GET / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n", 413, "request body"),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "transfer coding"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", 400, "closed inside the headers"),
])
def test_bad_requests_are_named(raw: bytes, status: int, words: str) -> None:
    with pytest.raises(httpd.HttpError) as err:
        parse(raw)
    assert err.value.status == status and words in err.value.message


def test_http_date_is_imf_fixdate() -> None:
    assert httpd.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert httpd.http_date(1796601600) == "Mon, 07 Dec 2026 00:00:00 GMT"


# ------------------------------------------------------------------------------------------------
# the server


@contextlib.contextmanager
def server(app: httpd.App) -> Iterator[int]:
    srv = httpd.Server(("127.0.0.1", 0), app, "test/1")
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def echo(req: httpd.Request) -> httpd.Response:
    if req.target == "/boom":
        raise RuntimeError("app failure")
    return httpd.Response(200, f"{req.method} {req.target}\n".encode(), headers={"X-Seen": req.version})


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_keep_alive_answers_requests_in_turn() -> None:
    with server(echo) as port:
        out = exchange(port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n"
                             b"Connection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n")
    answers = out.split(b"HTTP/1.1 ")[1:]
    assert [a.split(b"\r\n")[0] for a in answers] == [b"200 OK"] * 3
    assert answers[0].endswith(b"\r\n\r\nGET /a\n") and b"Content-Length: 7\r\n" in answers[0]
    assert answers[1].endswith(b"\r\n\r\n") and b"Content-Length: 8\r\n" in answers[1]  # HEAD: no body
    assert b"Connection: close" in answers[2] and b"/never" not in out
    assert b"Server: test/1\r\n" in answers[0] and b"X-Seen: HTTP/1.1" in answers[0]


def test_bad_request_and_unknown_method_get_an_answer() -> None:
    with server(echo) as port:
        bad = exchange(port, b"GET / HTTP/2.0\r\n\r\n")
        post = exchange(port, b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /y HTTP/1.0\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 505 ") and b"Connection: close" in bad
    assert post.startswith(b"HTTP/1.1 501 ") and b"Allow: GET, HEAD" in post and post.endswith(b"GET /y\n")


def test_app_failure_closes_only_that_connection() -> None:
    with server(echo) as port:
        assert exchange(port, b"GET /boom HTTP/1.1\r\n\r\n") == b""
        assert exchange(port, b"GET /ok HTTP/1.0\r\n\r\n").endswith(b"GET /ok\n")


def test_urllib_reads_it() -> None:
    import urllib.request

    with server(echo) as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/u?x=1", timeout=5) as resp:
            assert resp.status == 200 and resp.read() == b"GET /u?x=1\n"
