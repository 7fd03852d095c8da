"""Unit tests of upsd's sans-IO protocol core (nutlite.upsd.core), rule by rule (NUT-FACTS §1).

The expected replies were taken from Debian's upsd 2.8.0 answering the same requests.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutlite.config import load_ups_conf, load_upsd_conf, load_upsd_users
from nutlite.upsd import core
from nutlite.upsd.core import LineReader, ParseFailure, Server, atoi, new_tracking_id, reply_line

USERS = """
[admin]
  password = secret
  actions = SET FSD
  instcmds = ALL
[mon]
  password = pw
  upsmon primary
[sec]
  password = pw
  upsmon secondary
[cmduser]
  password = c
  instcmds = load.off
[nopw]
  actions = SET
"""

NOW = 1000.0


def make_server() -> Server:
    srv = Server(maxage=15)
    ups_conf = load_ups_conf("ups.conf", text="""
[zeta]
  driver = fake
  port = x
[Alpha]
  driver = fake
  port = x
  desc = "with \\"quote\\" and \\\\ back"
[mid]
  driver = dummy-ups
  port = x
""")
    srv.configure(ups_conf, load_upsd_conf("upsd.conf", text="MAXAGE 15\n"), load_upsd_users("u", text=USERS))
    for name in ("zeta", "Alpha"):
        e = srv.get_ups(name)
        assert e is not None
        assert srv.driver_connected(e, NOW) == "DUMPALL"
        feed_driver(srv, name, DUMP)
    return srv


DUMP = """\
SETINFO ups.status "OL"
SETINFO Zeta.var "z"
SETINFO alpha.var "a \\"q\\" \\\\ \\#"
SETINFO mid.Var "m"
SETINFO input.transfer.low "100"
ADDRANGE input.transfer.low 90 110
ADDRANGE input.transfer.low 120 130
SETFLAGS input.transfer.low RW NUMBER
SETINFO ups.beeper.status "enabled"
ADDENUM ups.beeper.status "enabled"
ADDENUM ups.beeper.status "dis\\"abled"
ADDENUM ups.beeper.status "b"
SETFLAGS ups.beeper.status RW STRING
SETAUX ups.beeper.status 8
SETINFO ups.id "abc"
SETFLAGS ups.id RW STRING
SETINFO ro.var "x"
SETFLAGS ro.var STRING
SETAUX ro.var 5
ADDCMD test.battery.start
ADDCMD beeper.enable
ADDCMD Load.Off
ADDCMD shutdown.return
DATAOK
DUMPDONE
"""


def feed_driver(srv: Server, ups: str, text: str, now: float = NOW) -> None:
    e = srv.get_ups(ups)
    assert e is not None
    srv.driver_data(e, text.encode(), now)


@pytest.fixture
def srv() -> Server:
    return make_server()


def ask(srv: Server, *lines: str, session: core.Session | None = None, now: float = NOW) -> list[str]:
    """Send lines in one piece; return the reply lines."""
    s = session or srv.connect("127.0.0.1", now)
    data = "".join(line + "\n" for line in lines).encode("latin-1")
    out = srv.feed(s, data, now).decode("latin-1")
    return out.split("\n")[:-1] if out.endswith("\n") else out.split("\n")


def one(srv: Server, line: str, session: core.Session | None = None, now: float = NOW) -> str:
    r = ask(srv, line, session=session, now=now)
    assert len(r) == 1, r
    return r[0]


def login(srv: Server, user: str, pw: str) -> core.Session:
    s = srv.connect("127.0.0.1", NOW)
    assert ask(srv, f"USERNAME {user}", f"PASSWORD {pw}", session=s) == ["OK", "OK"]
    return s


# ----------------------------------------------------------------------------------------- tokenizer


def words_of(data: bytes) -> list:
    r = LineReader()
    return [w.message if isinstance(w, ParseFailure) else w for w in r.feed(data)]


@pytest.mark.parametrize("data,expected", [
    (b"GET VAR ups ups.status\n", [["GET", "VAR", "ups", "ups.status"]]),
    (b"GET\tVAR\rdummy\x01 ups.status\r\r\n", [["GET", "VAR", "dummy", "ups.status"]]),
    (b"a\x0bb\x0cc\n", [["a", "b", "c"]]),
    (b'a "b c" d\n', [["a", "b c", "d"]]),
    (b'a "" d\n', [["a", "", "d"]]),
    (b"x=y =z w=\n", [["x", "=", "y", "=", "z", "w", "="]]),
    (b'"a=b" a\\=b\n', [["a=b", "a=b"]]),
    (b'x"y "ab"cd\n', [['x"y', "ab", "cd"]]),
    (b"a#b c\n", [["a"]]),
    (b'"x\\#y" a\\\\b "a\\\\b\\"c"\n', [["x#y", "a\\b", 'a\\b"c']]),
    (b"a \\\n b\n", [["a", "", "b"]]),  # backslash-newline: an empty word, the line goes on
    (b'"a\\\nb"\n', [["ab"]]),
    (b"dum\xe9my\n", [["dummy"]]),
    (b"a\x7fb \x1bc\n", [["a\x7fb", "c"]]),  # DEL is kept, other control characters dropped
    (b"\n   \n", [[], []]),
    (b"VER", []),
    (b'GET VAR x "open\nGET VAR y z"\n', [["GET", "VAR", "x", "openGET VAR y z"]]),
])
def test_tokenizer(data: bytes, expected: list) -> None:
    assert words_of(data) == expected


def test_tokenizer_hash_in_quotes_is_an_error_dropping_the_rest_of_the_read() -> None:
    assert words_of(b'GET VAR "a#" x\nVER\n') == ["Unbalanced word due to unescaped # in quotes"]
    # upsd reads 512 bytes at a time: what follows the error in the same 512-byte block is lost
    data = b'GET VAR "a#"\n' + b"VER\n" * 300
    items = words_of(data)
    assert items[0] == "Unbalanced word due to unescaped # in quotes"
    assert items[1] == []  # block 2 starts with the newline of a cut VER
    assert items[2:] == [["VER"]] * 175
    data = b"VER\n" * 200 + b'GET VAR "a#"\n' + b"VER\n" * 300
    assert len(words_of(data)) == 200 + 1 + 1 + 247


def test_tokenizer_lines_split_across_feeds() -> None:
    r = LineReader()
    assert r.feed(b"GET VA") == []
    assert not r.idle
    assert r.feed(b'R ups "a b') == []
    assert r.feed(b'"\nVER\n') == [["GET", "VAR", "ups", "a b"], ["VER"]]
    assert r.idle


def test_tokenizer_limits() -> None:
    words = words_of(b"w " * 40 + b"\n")[0]
    assert len(words) == 32
    (long,) = words_of(b"a" * 700 + b"\n")[0]
    assert long == "a" * 512
    assert words_of(b'"' + b"b" * 700 + b'" x\n')[0] == ["b" * 512, "x"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_tokenizer_never_crashes_and_chunking_is_invisible_without_errors(data: bytes, cut: int) -> None:
    whole = LineReader().feed(data)
    r = LineReader()
    pieces = r.feed(data[:cut]) + r.feed(data[cut:])
    if not any(isinstance(x, ParseFailure) for x in whole + pieces):
        assert pieces == whole
    for item in whole:
        if not isinstance(item, ParseFailure):
            assert all(re.fullmatch(r"[ -\x7f]*", w) for w in item)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["GET", "VAR", "LIST", "zeta", "ups.status", '"', "#", "=", "\\", " ", "\n",
                                 "\r", "\t", "x", "SET", "INSTCMD", "USERNAME", "LOGIN", "\x00", "\xff"]),
                max_size=40))
def test_server_survives_any_input(pieces: list[str]) -> None:
    srv = make_server()
    s = srv.connect("127.0.0.1", NOW)
    out = srv.feed(s, "".join(pieces).encode("latin-1"), NOW)
    assert isinstance(out, bytes)
    for line in out.decode("latin-1").split("\n"):
        assert "Traceback" not in line


# ----------------------------------------------------------------------------------------- simple commands


def test_ver_netver_help(srv: Server) -> None:
    assert ask(srv, "VER", "NETVER", "PROTVER", "HELP") == [
        "Network UPS Tools upsd 2.8.0 - http://www.networkupstools.org/",
        "1.3",
        "1.3",
        "Commands: HELP VER GET LIST SET INSTCMD LOGIN LOGOUT USERNAME PASSWORD STARTTLS",
    ]
    assert ask(srv, "VER x", "NETVER x", "PROTVER x", "HELP x") == ["ERR INVALID-ARGUMENT"] * 4


def test_commands_are_case_insensitive(srv: Server) -> None:
    assert one(srv, "ver").startswith("Network UPS Tools upsd")
    assert one(srv, "get var ZETA UPS.Status") == 'VAR ZETA UPS.Status "OL"'


def test_unknown_and_empty(srv: Server) -> None:
    assert ask(srv, "", "   ", "foo", "LIST CLIENTS") == [
        "ERR UNKNOWN-COMMAND", "ERR UNKNOWN-COMMAND", "ERR UNKNOWN-COMMAND", "ERR INVALID-ARGUMENT"]


def test_reply_lines_are_cut_at_512_bytes(srv: Server) -> None:
    r = srv.feed(srv.connect("x", NOW), b"GET VAR " + b"a" * 600 + b" server.info\n", NOW)
    assert len(r) == 512 and not r.endswith(b"\n")
    assert reply_line("x" * 511) == b"x" * 511 + b"\n"
    assert reply_line("x" * 512) == b"x" * 512


def test_parse_error_sends_nothing(srv: Server) -> None:
    assert srv.feed(srv.connect("x", NOW), b'GET VAR "zeta#" x\nVER\n', NOW) == b""


def test_starttls_without_certificate(srv: Server) -> None:
    assert ask(srv, "STARTTLS", "STARTTLS", "STARTTLS x") == ["ERR FEATURE-NOT-CONFIGURED"] * 3


def test_starttls_with_certificate(srv: Server) -> None:
    srv.tls_available = True
    s = srv.connect("x", NOW)
    # the rest of the data after STARTTLS is not plain text any more: dropped
    assert ask(srv, "STARTTLS", "VER", session=s) == ["OK STARTTLS"]
    assert s.start_tls
    s.start_tls = False
    s.tls = True
    assert one(srv, "STARTTLS", session=s) == "ERR ALREADY-SSL-MODE"


def test_logout(srv: Server) -> None:
    s = srv.connect("x", NOW)
    assert one(srv, "LOGOUT x", session=s) == "ERR INVALID-ARGUMENT"
    assert not s.close_after
    assert one(srv, "LOGOUT", session=s) == "OK Goodbye"
    assert s.close_after
    # like upsd: another line in the same read keeps the connection open
    s2 = srv.connect("x", NOW)
    assert ask(srv, "LOGOUT", "VER", session=s2)[0] == "OK Goodbye"
    assert not s2.close_after
    s3 = srv.connect("x", NOW)
    assert ask(srv, "LOGOUT", 'GET "#"', session=s3) == ["OK Goodbye"]
    assert s3.close_after


# ----------------------------------------------------------------------------------------- GET


def test_get_var(srv: Server) -> None:
    assert ask(srv, "GET VAR zeta ups.status", "GET VAR ZETA UPS.STATUS", "GET VAR zeta alpha.var",
               "GET VAR zeta ZETA.VAR", "GET VAR zeta nope", "GET VAR nope x", "GET VAR zeta ups.status extra") == [
        'VAR zeta ups.status "OL"',
        'VAR ZETA UPS.STATUS "OL"',
        'VAR zeta alpha.var "a \\"q\\" \\\\ \\#"',
        'VAR zeta ZETA.VAR "z"',
        "ERR VAR-NOT-SUPPORTED",
        "ERR UNKNOWN-UPS",
        'VAR zeta ups.status "OL"',
    ]


def test_get_var_server_vars_for_any_ups_name(srv: Server) -> None:
    assert ask(srv, "GET VAR nope server.info", "GET VAR x SERVER.VERSION", "GET VAR zeta server.x") == [
        'VAR nope server.info "Network UPS Tools upsd 2.8.0 - http://www.networkupstools.org/"',
        'VAR x server.version "2.8.0"',
        "ERR VAR-NOT-SUPPORTED",
    ]


def test_get_arity(srv: Server) -> None:
    assert ask(srv, "GET", "GET FOO", "GET FOO a", "GET FOO a b", "GET VAR", "GET VAR zeta", "GET UPSDESC",
               "GET TYPE zeta", "GET DESC zeta", "GET CMDDESC zeta") == ["ERR INVALID-ARGUMENT"] * 10


def test_get_upsdesc(srv: Server) -> None:
    assert ask(srv, "GET UPSDESC alpha", "GET UPSDESC zeta", "GET UPSDESC nope") == [
        'UPSDESC alpha "with \\"quote\\" and \\\\ back"', 'UPSDESC zeta "Unavailable"', "ERR UNKNOWN-UPS"]


def test_get_type(srv: Server) -> None:
    assert ask(srv, "GET TYPE zeta input.transfer.low", "GET TYPE zeta ups.beeper.status", "GET TYPE zeta ups.id",
               "GET TYPE zeta ro.var", "GET TYPE zeta ups.status", "GET TYPE zeta nope", "GET TYPE nope x") == [
        "TYPE zeta input.transfer.low RW RANGE NUMBER",
        "TYPE zeta ups.beeper.status RW ENUM STRING:8",
        "TYPE zeta ups.id RW STRING:0",
        "TYPE zeta ro.var STRING:5",
        "TYPE zeta ups.status NUMBER",
        "ERR VAR-NOT-SUPPORTED",
        "ERR UNKNOWN-UPS",
    ]


def test_get_desc_and_cmddesc(srv: Server) -> None:
    r = ask(srv, "GET DESC zeta UPS.STATUS", "GET DESC zeta foo.bar", "GET CMDDESC zeta LOAD.OFF",
            "GET CMDDESC zeta foo", "GET DESC nope x", "GET CMDDESC nope x", "GET DESC zeta outlet.2.status")
    assert r[0].startswith('DESC zeta UPS.STATUS "') and "unavailable" not in r[0]
    assert r[1] == 'DESC zeta foo.bar "Description unavailable"'
    assert r[2].startswith('CMDDESC zeta LOAD.OFF "') and "unavailable" not in r[2]
    assert r[3] == 'CMDDESC zeta foo "Description unavailable"'
    assert r[4:6] == ["ERR UNKNOWN-UPS", "ERR UNKNOWN-UPS"]
    assert "unavailable" not in r[6]


def test_empty_cmddesc_name_is_an_error_not_a_crash(srv: Server) -> None:
    # pynut2 sends "GET CMDDESC ups " after an empty LIST CMD: that is a 3-word GET
    assert one(srv, "GET CMDDESC zeta ") == "ERR INVALID-ARGUMENT"


def test_get_numlogins(srv: Server) -> None:
    assert one(srv, "GET NUMLOGINS ZETA") == "NUMLOGINS ZETA 0"
    assert one(srv, "GET NUMLOGINS nope") == "ERR UNKNOWN-UPS"


# ----------------------------------------------------------------------------------------- LIST


def test_list_ups(srv: Server) -> None:
    assert ask(srv, "LIST UPS extra") == [
        "BEGIN LIST UPS",
        'UPS zeta "Description unavailable"',
        'UPS Alpha "with \\"quote\\" and \\\\ back"',
        'UPS mid "Description unavailable"',
        "END LIST UPS",
    ]


def test_list_var_sorted_case_insensitively_with_the_clients_spelling(srv: Server) -> None:
    assert ask(srv, "LIST VAR ZETA extra") == [
        "BEGIN LIST VAR ZETA",
        'VAR ZETA alpha.var "a \\"q\\" \\\\ \\#"',
        'VAR ZETA input.transfer.low "100"',
        'VAR ZETA mid.Var "m"',
        'VAR ZETA ro.var "x"',
        'VAR ZETA ups.beeper.status "enabled"',
        'VAR ZETA ups.id "abc"',
        'VAR ZETA ups.status "OL"',
        'VAR ZETA Zeta.var "z"',
        "END LIST VAR ZETA",
    ]


def test_list_var_cache_follows_changes(srv: Server) -> None:
    first = ask(srv, "LIST VAR zeta")
    assert ask(srv, "LIST VAR zeta") == first
    feed_driver(srv, "zeta", 'SETINFO ups.status "OB"\nSETINFO new.var "1"\n')
    r = ask(srv, "LIST VAR zeta")
    assert 'VAR zeta ups.status "OB"' in r and 'VAR zeta new.var "1"' in r
    assert ask(srv, "LIST VAR Zeta")[0] == "BEGIN LIST VAR Zeta"


def test_list_rw_cmd_enum_range(srv: Server) -> None:
    assert ask(srv, "LIST RW zeta") == [
        "BEGIN LIST RW zeta",
        'RW zeta input.transfer.low "100"',
        'RW zeta ups.beeper.status "enabled"',
        'RW zeta ups.id "abc"',
        "END LIST RW zeta",
    ]
    assert ask(srv, "LIST CMD Zeta") == [  # upsd sorts commands case-insensitively
        "BEGIN LIST CMD Zeta", "CMD Zeta beeper.enable", "CMD Zeta Load.Off", "CMD Zeta shutdown.return",
        "CMD Zeta test.battery.start", "END LIST CMD Zeta"]
    assert ask(srv, "LIST ENUM zeta UPS.BEEPER.STATUS") == [
        "BEGIN LIST ENUM zeta UPS.BEEPER.STATUS",
        'ENUM zeta UPS.BEEPER.STATUS "enabled"',
        'ENUM zeta UPS.BEEPER.STATUS "dis\\"abled"',
        'ENUM zeta UPS.BEEPER.STATUS "b"',
        "END LIST ENUM zeta UPS.BEEPER.STATUS",
    ]
    assert ask(srv, "LIST RANGE zeta input.transfer.low", "LIST RANGE zeta ups.status") == [
        "BEGIN LIST RANGE zeta input.transfer.low",
        'RANGE zeta input.transfer.low "90" "110"',
        'RANGE zeta input.transfer.low "120" "130"',
        "END LIST RANGE zeta input.transfer.low",
        "BEGIN LIST RANGE zeta ups.status",
        "END LIST RANGE zeta ups.status",
    ]
    assert ask(srv, "LIST ENUM zeta nope", "LIST RANGE nope x") == ["ERR VAR-NOT-SUPPORTED", "ERR UNKNOWN-UPS"]


def test_list_arity(srv: Server) -> None:
    assert ask(srv, "LIST", "LIST VAR", "LIST FOO zeta", "LIST FOO", "LIST ENUM zeta", "LIST CLIENT",
               "LIST FOO a b") == ["ERR INVALID-ARGUMENT"] * 7
    assert ask(srv, "LIST VAR nope", "LIST RW nope", "LIST CMD nope", "LIST CLIENT nope") == ["ERR UNKNOWN-UPS"] * 4


# ----------------------------------------------------------------------------------------- availability


def test_driver_not_connected(srv: Server) -> None:
    r = ask(srv, "GET VAR mid ups.status", "GET TYPE mid x", "GET DESC mid x", "GET CMDDESC mid x",
            "GET NUMLOGINS mid", "LIST VAR mid", "LIST RW mid", "LIST CMD mid", "LIST ENUM mid x",
            "LIST RANGE mid x")
    assert r == ["ERR DRIVER-NOT-CONNECTED"] * 10
    # no availability check for these
    assert ask(srv, "GET UPSDESC mid", "LIST CLIENT mid", "GET VAR mid server.info")[0:3] == [
        'UPSDESC mid "Unavailable"', "BEGIN LIST CLIENT mid", "END LIST CLIENT mid"]
    s = login(srv, "admin", "secret")
    assert ask(srv, "FSD mid", "SET VAR mid x y", "INSTCMD mid x", session=s) == [
        "OK FSD-SET", "ERR DRIVER-NOT-CONNECTED", "ERR DRIVER-NOT-CONNECTED"]


def test_wait_until_the_dump_arrives(srv: Server) -> None:
    e = srv.get_ups("mid")
    assert e is not None
    srv.driver_connected(e, NOW)
    assert ask(srv, "GET VAR mid ups.status", "LIST VAR mid", "GET TYPE mid ups.status", "LIST CMD mid") == [
        'VAR mid ups.status "WAIT"', "BEGIN LIST VAR mid", 'VAR mid ups.status "WAIT"', "END LIST VAR mid",
        "TYPE mid ups.status NUMBER", "BEGIN LIST CMD mid", "END LIST CMD mid"]
    feed_driver(srv, "mid", 'SETINFO ups.status "OL"\nDATAOK\nDUMPDONE\n')
    assert one(srv, "GET VAR mid ups.status") == 'VAR mid ups.status "OL"'


def test_driver_reported_stale_counts_only_after_the_dump(srv: Server) -> None:
    e = srv.get_ups("mid")
    assert e is not None
    srv.driver_connected(e, NOW)
    feed_driver(srv, "mid", "DATASTALE\n")
    assert one(srv, "GET VAR mid ups.status") == 'VAR mid ups.status "WAIT"'
    feed_driver(srv, "mid", "DUMPDONE\n")
    assert one(srv, "GET VAR mid ups.status") == "ERR DATA-STALE"
    assert one(srv, "LIST VAR mid") == "ERR DATA-STALE"
    feed_driver(srv, "mid", "DATAOK\n")
    assert one(srv, "GET VAR mid ups.status") == 'VAR mid ups.status "WAIT"'


def test_silent_driver_goes_stale_after_maxage_plus_one(srv: Server) -> None:
    e = srv.get_ups("zeta")
    assert e is not None
    assert one(srv, "GET VAR zeta ups.status", now=NOW + 15.9) == 'VAR zeta ups.status "OL"'
    assert one(srv, "GET VAR zeta ups.status", now=NOW + 16.1) == "ERR DATA-STALE"
    assert srv.check_stale(e, NOW + 16.1) is True
    assert srv.check_stale(e, NOW + 17) is None
    feed_driver(srv, "zeta", "PONG\n", now=NOW + 17)
    assert one(srv, "GET VAR zeta ups.status", now=NOW + 17) == 'VAR zeta ups.status "OL"'
    assert srv.check_stale(e, NOW + 17) is False


def test_unknown_driver_messages_do_not_count_as_heard(srv: Server) -> None:
    e = srv.get_ups("zeta")
    assert e is not None
    feed_driver(srv, "zeta", "BOGUS\nSETINFO x\n", now=NOW + 10)
    assert e.last_heard == NOW
    feed_driver(srv, "zeta", "SETINFO x.y 1\n", now=NOW + 10)
    assert e.last_heard == NOW + 10


def test_ping_after_a_third_of_maxage(srv: Server) -> None:
    e = srv.get_ups("zeta")
    assert e is not None
    assert not srv.ping_due(e, NOW + 4.9)
    assert srv.ping_due(e, NOW + 5.1)
    assert not srv.ping_due(e, NOW + 6)  # not again right away
    assert srv.ping_due(e, NOW + 10.2)


def test_driver_loss_forgets_everything(srv: Server) -> None:
    e = srv.get_ups("zeta")
    assert e is not None
    srv.driver_lost(e)
    assert one(srv, "GET VAR zeta ups.status") == "ERR DRIVER-NOT-CONNECTED"
    srv.driver_connected(e, NOW)
    assert ask(srv, "LIST VAR zeta") == ["BEGIN LIST VAR zeta", 'VAR zeta ups.status "WAIT"', "END LIST VAR zeta"]


def test_malformed_driver_messages_are_ignored(srv: Server) -> None:
    feed_driver(srv, "zeta", 'SETFLAGS ups.id\nADDENUM nope "x"\nADDRANGE ups.id 1 x\nDELINFO\nSETINFO "a#"\n')
    assert one(srv, "GET TYPE zeta ups.id") == "TYPE zeta ups.id RW STRING:0"


# ----------------------------------------------------------------------------------------- users


def test_username_password(srv: Server) -> None:
    s = srv.connect("x", NOW)
    assert ask(srv, "LOGIN zeta", "USERNAME", "USERNAME a b", "USERNAME admin", "USERNAME admin", "LOGIN zeta",
               "PASSWORD", "PASSWORD wrong", "PASSWORD x", session=s) == [
        "ERR USERNAME-REQUIRED", "ERR INVALID-ARGUMENT", "ERR INVALID-ARGUMENT", "OK", "ERR ALREADY-SET-USERNAME",
        "ERR PASSWORD-REQUIRED", "ERR INVALID-ARGUMENT", "OK", "ERR ALREADY-SET-PASSWORD"]
    # a wrong password is only found out when something needs it
    assert ask(srv, "LOGIN zeta", "PRIMARY zeta", "FSD zeta", "SET VAR zeta ups.id x", "INSTCMD zeta load.off",
               "SET TRACKING ON", session=s) == ["ERR ACCESS-DENIED"] * 5 + ["OK"]


@pytest.mark.parametrize("cmd", ["LOGIN zeta", "PRIMARY zeta", "MASTER zeta", "FSD zeta", "SET TRACKING ON",
                                 "SET VAR zeta x y", "INSTCMD zeta x"])
def test_privileged_commands_need_username_then_password(srv: Server, cmd: str) -> None:
    s = srv.connect("x", NOW)
    assert one(srv, cmd, session=s) == "ERR USERNAME-REQUIRED"
    one(srv, "USERNAME nobody", session=s)
    assert one(srv, cmd, session=s) == "ERR PASSWORD-REQUIRED"


def test_user_names_are_case_sensitive_and_users_need_a_password(srv: Server) -> None:
    assert one(srv, "FSD zeta", session=login(srv, "ADMIN", "secret")) == "ERR ACCESS-DENIED"
    assert one(srv, "SET VAR zeta ups.id x", session=login(srv, "nopw", "\"\"")) == "ERR ACCESS-DENIED"


def test_login_numlogins_list_client(srv: Server) -> None:
    a = login(srv, "mon", "pw")
    assert ask(srv, "LOGIN", "LOGIN nope", "LOGIN zeta x", "LOGIN Zeta", "LOGIN zeta", session=a) == [
        "ERR INVALID-ARGUMENT", "ERR UNKNOWN-UPS", "ERR INVALID-ARGUMENT", "OK", "ERR ALREADY-LOGGED-IN"]
    b = srv.connect("127.0.0.3", NOW)
    ask(srv, "USERNAME sec", "PASSWORD pw", "LOGIN ZETA", session=b)
    assert one(srv, "GET NUMLOGINS zeta") == "NUMLOGINS zeta 2"
    # newest connection first; the UPS name as in ups.conf
    assert ask(srv, "LIST CLIENT ZETA") == [
        "BEGIN LIST CLIENT ZETA", "CLIENT zeta 127.0.0.3", "CLIENT zeta 127.0.0.1", "END LIST CLIENT ZETA"]
    assert ask(srv, "LIST CLIENT alpha") == ["BEGIN LIST CLIENT alpha", "END LIST CLIENT alpha"]
    srv.disconnect(b)
    srv.disconnect(b)
    assert one(srv, "GET NUMLOGINS zeta") == "NUMLOGINS zeta 1"


def test_login_needs_an_upsmon_role(srv: Server) -> None:
    assert one(srv, "LOGIN zeta", session=login(srv, "admin", "secret")) == "ERR ACCESS-DENIED"


def test_primary_master_fsd(srv: Server) -> None:
    pri = login(srv, "mon", "pw")
    assert ask(srv, "PRIMARY Zeta", "MASTER zeta", "PRIMARY nope", "PRIMARY", "MASTER a b", session=pri) == [
        "OK PRIMARY-GRANTED", "OK MASTER-GRANTED", "ERR UNKNOWN-UPS", "ERR INVALID-ARGUMENT",
        "ERR INVALID-ARGUMENT"]
    sec = login(srv, "sec", "pw")
    assert ask(srv, "PRIMARY zeta", "MASTER zeta", "FSD zeta", session=sec) == ["ERR ACCESS-DENIED"] * 3
    assert ask(srv, "FSD", "FSD nope", "FSD ZETA", session=pri) == [
        "ERR INVALID-ARGUMENT", "ERR UNKNOWN-UPS", "OK FSD-SET"]
    # the latch: ups.status is shown with FSD in front, in GET VAR and LIST VAR but not LIST RW
    assert one(srv, "GET VAR zeta UPS.STATUS") == 'VAR zeta UPS.STATUS "FSD OL"'
    assert 'VAR zeta ups.status "FSD OL"' in ask(srv, "LIST VAR zeta")
    feed_driver(srv, "zeta", 'SETINFO ups.status "OB LB"\nSETFLAGS ups.status RW\n')
    assert one(srv, "GET VAR zeta ups.status") == 'VAR zeta ups.status "FSD OB LB"'
    assert 'RW zeta ups.status "OB LB"' in ask(srv, "LIST RW zeta")
    assert one(srv, "GET VAR alpha ups.status") == 'VAR alpha ups.status "OL"'


# ----------------------------------------------------------------------------------------- SET / INSTCMD


def test_set_var_checks_in_upsd_order(srv: Server) -> None:
    s = login(srv, "admin", "secret")
    assert ask(srv, "SET", "SET VAR", "SET VAR zeta", "SET VAR zeta x", "SET FOO a b", "SET VAR nope x 1",
               "SET VAR zeta nope 1", "SET VAR zeta ro.var x", "SET VAR zeta ups.id abc",
               "SET VAR zeta ups.beeper.status enabledX", 'SET VAR zeta ups.beeper.status "dis\\"abled"',
               "SET VAR zeta ups.beeper.status disabled", "SET VAR zeta input.transfer.low 115",
               "SET VAR zeta input.transfer.low abc", session=s) == [
        "ERR INVALID-ARGUMENT", "ERR INVALID-ARGUMENT", "ERR INVALID-ARGUMENT", "ERR INVALID-ARGUMENT",
        "ERR INVALID-ARGUMENT", "ERR UNKNOWN-UPS", "ERR VAR-NOT-SUPPORTED", "ERR READONLY", "ERR SET-FAILED",
        "ERR INVALID-VALUE", "ERR TOO-LONG", "ERR INVALID-VALUE", "ERR INVALID-VALUE", "ERR INVALID-VALUE"]
    assert srv.sent == []
    feed_driver(srv, "zeta", "SETAUX ups.id 10\n")
    assert ask(srv, "SET VAR zeta ups.beeper.status b", "SET VAR zeta input.transfer.low 125abc",
               "SET VAR zeta Input.Transfer.Low 95 extra", 'SET VAR zeta ups.id "a\\"b\\#"',
               session=s) == ["OK"] * 4
    assert srv.sent == [("zeta", 'SET ups.beeper.status "b"'), ("zeta", 'SET input.transfer.low "125abc"'),
                        ("zeta", 'SET Input.Transfer.Low "95"'), ("zeta", 'SET ups.id "a\\"b\\#"')]


def test_set_needs_the_set_action(srv: Server) -> None:
    assert one(srv, "SET VAR zeta ups.id x", session=login(srv, "mon", "pw")) == "ERR ACCESS-DENIED"
    # unknown UPS comes first, then availability, then access
    assert one(srv, "SET VAR nope x y", session=login(srv, "mon", "pw")) == "ERR UNKNOWN-UPS"
    assert one(srv, "SET VAR mid x y", session=login(srv, "mon", "pw")) == "ERR DRIVER-NOT-CONNECTED"


def test_instcmd(srv: Server) -> None:
    s = login(srv, "admin", "secret")
    assert ask(srv, "INSTCMD", "INSTCMD zeta", "INSTCMD nope x", "INSTCMD zeta nope", session=s) == [
        "ERR INVALID-ARGUMENT", "ERR INVALID-ARGUMENT", "ERR UNKNOWN-UPS", "ERR CMD-NOT-SUPPORTED"]
    assert ask(srv, "INSTCMD zeta LOAD.off", "INSTCMD zeta load.off 10", 'INSTCMD zeta load.off "a\\"b\\#"',
               'INSTCMD zeta load.off "a b"', 'INSTCMD zeta load.off "x=y"', 'INSTCMD zeta load.off ""',
               "INSTCMD zeta load.off 1 2", session=s) == ["OK"] * 7
    # like upsd 2.8.0 the parameter is escaped but not quoted -- unless that would break it
    assert srv.sent == [("zeta", "INSTCMD LOAD.off"), ("zeta", "INSTCMD load.off 10"),
                        ("zeta", 'INSTCMD load.off a\\"b\\#'), ("zeta", 'INSTCMD load.off "a b"'),
                        ("zeta", 'INSTCMD load.off "x=y"'), ("zeta", 'INSTCMD load.off ""'),
                        ("zeta", "INSTCMD load.off")]


def test_instcmd_permissions(srv: Server) -> None:
    c = login(srv, "cmduser", "c")
    assert ask(srv, "INSTCMD zeta LOAD.OFF", "INSTCMD zeta beeper.enable", "INSTCMD zeta nope", session=c) == [
        "OK", "ERR ACCESS-DENIED", "ERR CMD-NOT-SUPPORTED"]
    assert one(srv, "INSTCMD zeta load.off", session=login(srv, "mon", "pw")) == "ERR ACCESS-DENIED"


def test_write_failure(srv: Server) -> None:
    srv.send_driver = lambda ups, line: False
    s = login(srv, "admin", "secret")
    assert ask(srv, "INSTCMD zeta load.off", "SET VAR zeta ups.id x", session=s) == [
        "ERR INSTCMD-FAILED", "ERR SET-FAILED"]
    srv.send_driver = lambda ups, line: True
    feed_driver(srv, "zeta", "SETAUX ups.id 3\n")
    assert one(srv, "SET VAR zeta ups.id x", session=s) == "OK"


# ----------------------------------------------------------------------------------------- TRACKING

UUID4 = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}")


def test_tracking_ids() -> None:
    ids = {new_tracking_id() for _ in range(100)}
    assert len(ids) == 100 and all(UUID4.fullmatch(i) for i in ids)


def test_tracking(srv: Server) -> None:
    s = login(srv, "admin", "secret")
    assert ask(srv, "GET TRACKING", "GET TRACKING abc", "SET TRACKING", "SET TRACKING maybe", "SET TRACKING on",
               "GET TRACKING", "GET TRACKING abc", session=s) == [
        "OFF", "ERR FEATURE-NOT-CONFIGURED", "ERR INVALID-ARGUMENT", "ERR INVALID-ARGUMENT", "OK", "ON",
        "ERR UNKNOWN"]
    ids = []
    for _ in range(7):
        r = one(srv, "INSTCMD zeta load.off", session=s)
        assert r.startswith("OK TRACKING ")
        ids.append(r.split()[2])
        assert UUID4.fullmatch(ids[-1])
    assert srv.sent[0] == ("zeta", f"INSTCMD load.off TRACKING {ids[0]}")
    r = one(srv, "SET VAR zeta ups.beeper.status b", session=s)
    sid = r.split()[2]
    assert srv.sent[-1] == ("zeta", f'SET ups.beeper.status "b" TRACKING {sid}')
    assert one(srv, f"GET TRACKING {sid}", session=s) == "PENDING"
    results = ["0", "1", "2", "3", "4", "-1", "x"]
    feed_driver(srv, "zeta", "".join(f"TRACKING {i} {n}\n" for i, n in zip(ids, results, strict=True)))
    assert [one(srv, f"GET TRACKING {i.lower()} extra", session=s) for i in ids] == [
        "SUCCESS", "ERR UNKNOWN", "ERR INVALID-ARGUMENT", "ERR FAILED", "ERR UNKNOWN", "PENDING", "SUCCESS"]
    # another connection without tracking enabled
    assert one(srv, f"GET TRACKING {ids[0]}") == "ERR FEATURE-NOT-CONFIGURED"
    assert ask(srv, "SET TRACKING OFF", "GET TRACKING", "INSTCMD zeta load.off", session=s) == ["OK", "OFF", "OK"]
    # purged after TRACKINGDELAY
    srv.trackingdelay = 10
    assert srv.purge_tracking(NOW + 5) == 0
    assert srv.purge_tracking(NOW + 11) == 8
    one(srv, "SET TRACKING ON", session=s)
    assert one(srv, f"GET TRACKING {ids[0]}", session=s) == "ERR UNKNOWN"


def test_tracking_needs_a_user(srv: Server) -> None:
    s = srv.connect("x", NOW)
    assert ask(srv, "SET TRACKING ON", "USERNAME x", "SET TRACKING ON", "GET TRACKING", session=s) == [
        "ERR USERNAME-REQUIRED", "OK", "ERR PASSWORD-REQUIRED", "OFF"]


# ----------------------------------------------------------------------------------------- sessions, reload


def test_idle_sessions(srv: Server) -> None:
    a = srv.connect("a", NOW)
    b = srv.connect("b", NOW)
    srv.feed(b, b"VER", NOW + 50)  # no whole line: not heard
    srv.feed(a, b"VER\n", NOW + 50)
    assert srv.idle_sessions(NOW + 61) == [b]
    assert srv.idle_sessions(NOW + 111) == [a, b]


def test_reconfigure_keeps_connections_latch_and_logins(srv: Server) -> None:
    pri = login(srv, "mon", "pw")
    ask(srv, "LOGIN zeta", "FSD zeta", session=pri)
    zeta = srv.get_ups("zeta")
    ups_conf = load_ups_conf("ups.conf", text="""
[zeta]
  driver = fake
  port = x
  desc = "now described"
[Alpha]
  driver = other
  port = x
[new]
  driver = dummy-ups
  port = y
""")
    added, removed, changed = srv.configure(ups_conf, None, load_upsd_users("u", text="[x]\npassword=y\nupsmon primary\n"))
    assert [e.name for e in added] == ["new"]
    assert [e.name for e in removed] == ["mid"]
    assert [e.name for e in changed] == ["Alpha"]
    assert srv.get_ups("zeta") is zeta
    assert one(srv, "GET VAR zeta ups.status") == 'VAR zeta ups.status "FSD OL"'
    assert one(srv, "GET UPSDESC zeta") == 'UPSDESC zeta "now described"'
    assert one(srv, "GET NUMLOGINS zeta") == "NUMLOGINS zeta 1"
    assert one(srv, "GET VAR mid ups.status") == "ERR UNKNOWN-UPS"
    assert one(srv, "GET VAR new ups.status") == "ERR DRIVER-NOT-CONNECTED"
    assert [line.split()[1] for line in ask(srv, "LIST UPS")[1:-1]] == ["zeta", "Alpha", "new"]
    # changed users apply to the next privileged command
    assert one(srv, "PRIMARY zeta", session=pri) == "ERR ACCESS-DENIED"
    assert one(srv, "PRIMARY zeta", session=login(srv, "x", "y")) == "OK PRIMARY-GRANTED"


def test_atoi() -> None:
    assert [atoi(x) for x in ("12", " -3x", "+7", "abc", "", "-", "125abc")] == [12, -3, 7, 0, 0, 0, 125]


def test_get_var_reply_cache_follows_every_change(srv: Server) -> None:
    s = srv.connect("x", NOW)
    req = b"GET VAR zeta ups.status\n"
    assert srv.feed(s, req, NOW) == b'VAR zeta ups.status "OL"\n'
    assert srv.feed(s, req, NOW) == b'VAR zeta ups.status "OL"\n'  # from the cache
    feed_driver(srv, "zeta", 'SETINFO ups.status "OB"\n')
    assert srv.feed(s, req, NOW) == b'VAR zeta ups.status "OB"\n'
    pri = login(srv, "mon", "pw")
    one(srv, "FSD zeta", session=pri)
    assert srv.feed(s, req, NOW) == b'VAR zeta ups.status "FSD OB"\n'
    assert srv.feed(s, req, NOW + 16.5) == b"ERR DATA-STALE\n"
    feed_driver(srv, "zeta", "DATASTALE\n")
    assert srv.feed(s, req, NOW) == b"ERR DATA-STALE\n"
    feed_driver(srv, "zeta", "DATAOK\n")
    assert srv.feed(s, req, NOW) == b'VAR zeta ups.status "FSD OB"\n'
    e = srv.get_ups("zeta")
    assert e is not None
    srv.driver_lost(e)
    assert srv.feed(s, req, NOW) == b"ERR DRIVER-NOT-CONNECTED\n"
    srv.driver_connected(e, NOW)
    assert srv.feed(s, req, NOW) == b'VAR zeta ups.status "FSD WAIT"\n'
    # a request that completes a line begun earlier is not answered from the cache
    assert srv.feed(s, b"GET VAR zeta ", NOW) == b""
    assert srv.feed(s, req, NOW) == b"ERR VAR-NOT-SUPPORTED\n"
    # the UPS removed by a reload
    srv.configure(load_ups_conf("ups.conf", text="[other]\n driver = d\n port = p\n"))
    assert srv.feed(s, req, NOW) == b"ERR UNKNOWN-UPS\n"
    # the idle timer sees the request
    srv.feed(s, b"GET VAR other server.info\n", NOW + 30)
    assert s.last_heard == NOW + 30
