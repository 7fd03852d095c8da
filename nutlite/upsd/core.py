"""The NUT network protocol as upsd serves it, without any I/O (NUT-FACTS §1, INTEROP.md part 0).

:class:`Server` holds the UPS table (one :class:`UpsEntry` per ups.conf section: its driver state, the
connection/dump/staleness flags, the FSD latch, the login count), the users, and the tracking table.
Each client connection is a :class:`Session`. The I/O shell hands the bytes a client sent to
:meth:`Server.feed` and writes back the bytes it returns (a whole reply in one piece); the flags
``Session.close_after`` / ``Session.start_tls`` ask the shell to close the connection once the reply is
written or to start TLS on it. Lines for drivers go through ``Server.send_driver`` (the shell sets it;
by default they are collected in ``Server.sent``). Bytes read from a driver socket go to
:meth:`Server.driver_data`. Time is always passed in (``now``, monotonic seconds).

Behaviour follows Debian's upsd 2.8.0, checked against it reply by reply:

* requests are tokenised like NUT's parseconf, fed character by character: whitespace is space, tab,
  CR, VT and FF; an unclosed quote swallows the newline and goes on; an unescaped ``#`` inside quotes is
  a parse error, which upsd logs and answers with nothing -- and it drops the rest of the 512-byte read
  the error was in (so we drop up to the next 512-byte boundary of the data received);
* every reply line is cut to 512 bytes (upsd formats into a 512-byte buffer);
* UPS names, variable names, command and sub-command words are matched case-insensitively, and every
  reply echoes the client's spelling;
* ``LOGOUT`` answers, then the connection closes -- unless more lines came in the same read: they are
  answered too, and (as in upsd) the connection then stays open.

Differences on purpose: TRACKING ids are random UUIDv4s (Debian's 2.8.0 upsd hands out the same
sequence after every start); an INSTCMD parameter that upsd 2.8.0 would forward to the driver broken
(with spaces or '=', or empty) is quoted. Password guessing is slowed down per client address
(:mod:`nutlite.upsd.throttle`): the reply is then due later, ``Session.answer_at``.

Speed: ``LIST VAR`` bodies are cached per UPS and spelling of its name, and replies to a repeated
one-line ``GET VAR`` request are cached by the request bytes; both caches are keyed on the UPS state's
``generation`` and the FSD latch, and the staleness rules are checked on every hit.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nutlite.config import UpsConf, UpsdConf, User, UsersConf
from nutlite.parseconf import encode, quote
from nutlite.state import DeviceState, ProtocolError
from nutlite.upsd.descriptions import cmd_desc, var_desc
from nutlite.upsd.lines import LineReader, ParseFailure, atoi, reply_line
from nutlite.upsd.throttle import LoginThrottle

log = logging.getLogger("nutlite.upsd")

NUT_VERSION = "2.8.0"  # the NUT release whose protocol and replies nutlite's upsd reproduces
SERVER_INFO = f"Network UPS Tools upsd {NUT_VERSION} - http://www.networkupstools.org/"
PROTOCOL_VERSION = "1.3"
HELP_TEXT = "Commands: HELP VER GET LIST SET INSTCMD LOGIN LOGOUT USERNAME PASSWORD STARTTLS"
IDLE_TIMEOUT = 60.0  # upsd drops clients it has not heard a whole line from for this long

# Tracking results from the driver (TRACKING <id> <n>) as GET TRACKING shows them.
TRACKING_TEXT = {-1: "PENDING", 0: "SUCCESS", 1: "ERR UNKNOWN", 2: "ERR INVALID-ARGUMENT", 3: "ERR FAILED"}
TRACKING_PENDING = -1


def _err(code: str) -> bytes:
    return f"ERR {code}\n".encode()


ERR_ACCESS_DENIED = _err("ACCESS-DENIED")
ERR_UNKNOWN_UPS = _err("UNKNOWN-UPS")
ERR_VAR_NOT_SUPPORTED = _err("VAR-NOT-SUPPORTED")
ERR_CMD_NOT_SUPPORTED = _err("CMD-NOT-SUPPORTED")
ERR_INVALID_ARGUMENT = _err("INVALID-ARGUMENT")
ERR_INSTCMD_FAILED = _err("INSTCMD-FAILED")
ERR_SET_FAILED = _err("SET-FAILED")
ERR_READONLY = _err("READONLY")
ERR_TOO_LONG = _err("TOO-LONG")
ERR_FEATURE_NOT_CONFIGURED = _err("FEATURE-NOT-CONFIGURED")
ERR_ALREADY_SSL_MODE = _err("ALREADY-SSL-MODE")
ERR_DRIVER_NOT_CONNECTED = _err("DRIVER-NOT-CONNECTED")
ERR_DATA_STALE = _err("DATA-STALE")
ERR_ALREADY_LOGGED_IN = _err("ALREADY-LOGGED-IN")
ERR_ALREADY_SET_PASSWORD = _err("ALREADY-SET-PASSWORD")
ERR_ALREADY_SET_USERNAME = _err("ALREADY-SET-USERNAME")
ERR_USERNAME_REQUIRED = _err("USERNAME-REQUIRED")
ERR_PASSWORD_REQUIRED = _err("PASSWORD-REQUIRED")
ERR_UNKNOWN_COMMAND = _err("UNKNOWN-COMMAND")
ERR_INVALID_VALUE = _err("INVALID-VALUE")
OK = b"OK\n"


def new_tracking_id() -> str:
    """A random UUID version 4 in upper case, as upsd hands out for tracked commands."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --------------------------------------------------------------------------------------------- state


@dataclass
class TrackingEntry:
    """The result of one tracked SET or INSTCMD, and when it was made."""

    status: int
    created: float


class UpsEntry:
    """One UPS of ups.conf as upsd sees it."""

    def __init__(self, name: str, driver: str, desc: str | None) -> None:
        self.name = name
        self.driver = driver
        self.desc = desc
        self.state = DeviceState()
        self.connected = False
        self.dumpdone = False
        self.last_heard = 0.0
        self.last_ping = 0.0
        self.fsd = False  # latched by the FSD command until upsd stops or the UPS leaves ups.conf
        self.numlogins = 0
        self.reported_stale = False  # staleness as last logged
        self.reader = LineReader()
        self._list_cache: dict[str, tuple[int, bool, bytes]] = {}
        self._cmds_cache: tuple[int, list[str]] | None = None

    @property
    def sockname(self) -> str:
        """File name of the driver socket in STATEPATH."""
        return f"{self.driver}-{self.name}"

    def list_var(self, spelled: str) -> bytes:
        """The whole ``LIST VAR`` reply for a client that wrote the UPS name as ``spelled`` (cached)."""
        gen = self.state.generation
        hit = self._list_cache.get(spelled)
        if hit is not None and hit[0] == gen and hit[1] == self.fsd:
            return hit[2]
        parts = [reply_line(f"BEGIN LIST VAR {spelled}")]
        for v in self.state.sorted_vars():
            val = encode(v.value)
            if self.fsd and v.name.lower() == "ups.status":
                val = "FSD " + val
            parts.append(reply_line(f'VAR {spelled} {v.name} "{val}"'))
        parts.append(reply_line(f"END LIST VAR {spelled}"))
        body = b"".join(parts)
        if len(self._list_cache) >= 8:
            self._list_cache.clear()
        self._list_cache[spelled] = (gen, self.fsd, body)
        return body

    def sorted_cmds(self) -> list[str]:
        """Instant commands in upsd's order (case-insensitive by name)."""
        gen = self.state.generation
        if self._cmds_cache is None or self._cmds_cache[0] != gen:
            self._cmds_cache = (gen, sorted(self.state.cmds.values(), key=str.lower))
        return self._cmds_cache[1]


class Session:
    """One client connection."""

    __slots__ = ("addr", "username", "password", "login", "tracking", "tls", "reader", "last_heard",
                 "close_after", "start_tls", "answer_at", "guessed", "transport")

    def __init__(self, addr: str, now: float = 0.0) -> None:
        self.addr = addr
        self.username: str | None = None
        self.password: str | None = None
        self.login: UpsEntry | None = None  # the UPS this client did LOGIN to
        self.tracking = False
        self.tls = False
        self.reader = LineReader()
        self.last_heard = now
        self.close_after = False  # close the connection once the reply is written (LOGOUT)
        self.start_tls = False  # start TLS once the reply is written (STARTTLS)
        # Send the reply to the last feed() not before this (monotonic) time: set when the address is
        # being slowed down for failed logins (nutlite.upsd.throttle). A time already past means at
        # once: the shell holds a reply (and reads nothing more from the client) until then.
        self.answer_at = 0.0
        self.guessed = False  # this session's wrong credentials were counted as a failed guess
        self.transport: object = None  # for the I/O shell


class Server:
    """The upsd state and the request handlers."""

    def __init__(self, maxage: float = 15, trackingdelay: float = 3600, tls_available: bool = False,
                 throttle: LoginThrottle | None = None) -> None:
        self.maxage = maxage
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self._checked: bool | None = None  # set by _user(): were the session's credentials right?
        self.trackingdelay = trackingdelay
        self.tls_available = tls_available
        self.upses: dict[str, UpsEntry] = {}  # lower-case name -> entry, in ups.conf order
        self.users: dict[str, User] = {}
        self.tracking: dict[str, TrackingEntry] = {}
        self.sessions: dict[Session, None] = {}  # in connection order
        self.sent: list[tuple[str, str]] = []  # (ups name, line) when no send_driver is set
        # GET VAR replies by request bytes: (ups, generation, fsd, reply); see feed()
        self._var_cache: dict[bytes, tuple[UpsEntry, int, bool, bytes]] = {}
        self._var_hit: UpsEntry | None = None
        self.send_driver: Callable[[UpsEntry, str], bool] = self._collect_driver_line
        self._handlers: dict[str, Callable[[Session, list[str], float], bytes]] = {
            "VER": self._ver, "NETVER": self._netver, "PROTVER": self._netver, "HELP": self._help,
            "STARTTLS": self._starttls, "GET": self._get, "LIST": self._list,
            "USERNAME": self._username, "PASSWORD": self._password, "LOGOUT": self._logout,
        }
        self._user_handlers: dict[str, Callable[[Session, list[str], float], bytes]] = {
            "LOGIN": self._login, "PRIMARY": self._primary, "MASTER": self._master, "FSD": self._fsd,
            "SET": self._set, "INSTCMD": self._instcmd,
        }

    def _collect_driver_line(self, ups: UpsEntry, line: str) -> bool:
        self.sent.append((ups.name, line))
        return ups.connected

    # ------------------------------------------------------------------------- configuration

    def configure(self, ups_conf: UpsConf | None = None, upsd_conf: UpsdConf | None = None,
                  users: UsersConf | dict[str, User] | None = None
                  ) -> tuple[list[UpsEntry], list[UpsEntry], list[UpsEntry]]:
        """Apply (re-read) configuration; return the UPS entries (added, removed, redefined).

        Entries that stay keep their driver connection, data, FSD latch and logins. A redefined entry
        (other driver program, so another socket) must be reconnected by the shell.
        """
        added: list[UpsEntry] = []
        removed: list[UpsEntry] = []
        changed: list[UpsEntry] = []
        if upsd_conf is not None:
            self.maxage = upsd_conf.maxage
            self.trackingdelay = upsd_conf.trackingdelay
        if users is not None:
            self.users = dict(users.users if isinstance(users, UsersConf) else users)
        if ups_conf is not None:
            old = {e.name: e for e in self.upses.values()}
            new: dict[str, UpsEntry] = {}
            for name, sec in ups_conf.ups.items():
                entry = old.pop(name, None)
                if entry is None:
                    entry = UpsEntry(name, sec.driver, sec.desc)
                    added.append(entry)
                else:
                    entry.desc = sec.desc
                    if entry.driver != sec.driver:
                        entry.driver = sec.driver
                        changed.append(entry)
                new.setdefault(name.lower(), entry)  # like upsd, the first of two same-named wins
            removed = list(old.values())
            self.upses = new
            self._var_cache.clear()
        return added, removed, changed

    def add_ups(self, name: str, driver: str = "dummy-ups", desc: str | None = None) -> UpsEntry:
        """Add one UPS (for tests and embedding)."""
        entry = UpsEntry(name, driver, desc)
        self.upses.setdefault(name.lower(), entry)
        return entry

    def get_ups(self, name: str) -> UpsEntry | None:
        return self.upses.get(name.lower())

    # ------------------------------------------------------------------------- clients

    def connect(self, addr: str, now: float) -> Session:
        s = Session(addr, now)
        self.sessions[s] = None
        return s

    def disconnect(self, s: Session) -> None:
        if s in self.sessions:
            del self.sessions[s]
            if s.login is not None:
                s.login.numlogins -= 1
                s.login = None

    def idle_sessions(self, now: float) -> list[Session]:
        """Sessions that sent no whole line for IDLE_TIMEOUT seconds (the shell closes them)."""
        limit = now - IDLE_TIMEOUT
        return [s for s in self.sessions if s.last_heard < limit]

    def feed(self, s: Session, data: bytes, now: float) -> bytes:
        """Handle the bytes a client sent; return the whole reply to write (maybe empty)."""
        hit = self._var_cache.get(data)
        if hit is not None:
            # The same one-line GET VAR as before: same reply while the UPS data has not changed.
            ups = hit[0]
            if (ups.state.generation == hit[1] and ups.fsd == hit[2] and ups.connected
                    and now - ups.last_heard <= self.maxage + 1 and not (ups.dumpdone and ups.state.stale)
                    and s.reader.idle):
                s.last_heard = now
                return hit[3]
        idle = s.reader.idle
        items = s.reader.feed(data)
        if not items:
            return b""
        if len(items) == 1:
            words = items[0]
            if isinstance(words, ParseFailure):
                log.info("Parse error on sock: %s", words.message)
                return b""
            s.last_heard = now
            self._var_hit = None
            r = self.handle(s, words, now)
            ups = self._var_hit
            if ups is not None and idle and s.reader.idle and len(data) < 256:
                if len(self._var_cache) >= 4096:
                    self._var_cache.clear()
                self._var_cache[data] = (ups, ups.state.generation, ups.fsd, r)
            return r
        out = []
        for words in items:
            if isinstance(words, ParseFailure):
                log.info("Parse error on sock: %s", words.message)
                continue
            s.last_heard = now
            # upsd closes after LOGOUT by marking the client as not heard from for ages; any later
            # line in the same read counts as heard, and the connection stays open.
            s.close_after = False
            r = self.handle(s, words, now)
            if r:
                out.append(r)
            if s.start_tls:  # the rest is to be TLS; plain-text leftovers are dropped
                break
        return b"".join(out)

    def handle(self, s: Session, words: list[str], now: float) -> bytes:
        """Answer one request (its words, as the tokenizer split it)."""
        if not words:
            return ERR_UNKNOWN_COMMAND
        cmd = words[0].upper()
        h = self._handlers.get(cmd)
        if h is None:
            h = self._user_handlers.get(cmd)
            if h is None:
                return ERR_UNKNOWN_COMMAND
            if s.username is None:
                return ERR_USERNAME_REQUIRED
            if s.password is None:
                return ERR_PASSWORD_REQUIRED
            self._checked = None
            r = self._call(h, s, words, now)
            if self._checked is not None:  # credentials looked at: count a wrong guess, maybe wait
                failed = not self._checked and not s.guessed  # one guess per session (its one PASSWORD)
                s.guessed = s.guessed or failed
                due = self.throttle.checked(s.addr, failed, now)
                if due > s.answer_at:
                    s.answer_at = due
            return r
        return self._call(h, s, words, now)

    @staticmethod
    def _call(h: Callable[[Session, list[str], float], bytes], s: Session, words: list[str], now: float
              ) -> bytes:
        try:
            return h(s, words, now)
        except Exception:  # a bug must not take the connection (or upsd) down
            log.exception("internal error handling %r", words[0])
            return b""

    # ------------------------------------------------------------------------- helpers

    def available(self, ups: UpsEntry, now: float) -> bytes | None:
        """None if the UPS data can be served, else the ERR reply (DRIVER-NOT-CONNECTED / DATA-STALE)."""
        if not ups.connected:
            return ERR_DRIVER_NOT_CONNECTED
        if (ups.dumpdone and ups.state.stale) or now - ups.last_heard > self.maxage + 1:
            return ERR_DATA_STALE
        return None

    def is_stale(self, ups: UpsEntry, now: float) -> bool:
        return self.available(ups, now) is not None

    def _user(self, s: Session) -> User | None:
        """The session's user if USERNAME and PASSWORD match upsd.users (case-sensitive), else None."""
        if s.username is None or s.password is None:
            return None
        u = self.users.get(s.username)
        if u is None or u.password is None or u.password != s.password:
            self._checked = False
            return None
        self._checked = True
        return u

    def _can(self, s: Session, *actions: str) -> bool:
        u = self._user(s)
        return u is not None and any(a in u.actions for a in actions)

    # ------------------------------------------------------------------------- simple commands

    def _ver(self, s: Session, w: list[str], now: float) -> bytes:
        return ERR_INVALID_ARGUMENT if len(w) != 1 else _VER

    def _netver(self, s: Session, w: list[str], now: float) -> bytes:
        return ERR_INVALID_ARGUMENT if len(w) != 1 else _NETVER

    def _help(self, s: Session, w: list[str], now: float) -> bytes:
        return ERR_INVALID_ARGUMENT if len(w) != 1 else _HELP

    def _starttls(self, s: Session, w: list[str], now: float) -> bytes:
        if s.tls:
            return ERR_ALREADY_SSL_MODE
        if not self.tls_available:
            return ERR_FEATURE_NOT_CONFIGURED
        s.start_tls = True
        return b"OK STARTTLS\n"

    def _username(self, s: Session, w: list[str], now: float) -> bytes:
        if len(w) != 2:
            return ERR_INVALID_ARGUMENT
        if s.username is not None:
            log.info("Client %s tried to set a username twice", s.addr)
            return ERR_ALREADY_SET_USERNAME
        s.username = w[1]
        return OK

    def _password(self, s: Session, w: list[str], now: float) -> bytes:
        if len(w) != 2:
            return ERR_INVALID_ARGUMENT
        if s.password is not None:
            log.info("Client %s@%s tried to set a password twice", s.username, s.addr)
            return ERR_ALREADY_SET_PASSWORD
        s.password = w[1]
        return OK

    def _logout(self, s: Session, w: list[str], now: float) -> bytes:
        if len(w) != 1:
            return ERR_INVALID_ARGUMENT
        if s.login is not None:
            log.info("User %s@%s logged out from UPS [%s]", s.username, s.addr, s.login.name)
        s.close_after = True
        return b"OK Goodbye\n"

    # ------------------------------------------------------------------------- GET

    def _get(self, s: Session, w: list[str], now: float) -> bytes:
        n = len(w) - 1
        if n < 1:
            return ERR_INVALID_ARGUMENT
        sub = w[1].upper()
        if sub == "TRACKING":
            if n < 2:
                return b"ON\n" if s.tracking else b"OFF\n"
            if not s.tracking:
                return ERR_FEATURE_NOT_CONFIGURED
            entry = self.tracking.get(w[2].upper())
            text = "ERR UNKNOWN" if entry is None else TRACKING_TEXT.get(entry.status, "ERR UNKNOWN")
            return (text + "\n").encode()
        if n < 2:
            return ERR_INVALID_ARGUMENT
        if sub == "VAR":
            if n < 3:
                return ERR_INVALID_ARGUMENT
            return self._get_var(w[2], w[3], now)
        upsname = w[2]
        ups = self.upses.get(upsname.lower())
        if sub == "UPSDESC":
            if ups is None:
                return ERR_UNKNOWN_UPS
            if ups.desc is None:
                return reply_line(f'UPSDESC {upsname} "Unavailable"')
            return reply_line(f'UPSDESC {upsname} "{encode(ups.desc)}"')
        if sub == "NUMLOGINS":
            if ups is None:
                return ERR_UNKNOWN_UPS
            return self.available(ups, now) or reply_line(f"NUMLOGINS {upsname} {ups.numlogins}")
        if n < 3:
            return ERR_INVALID_ARGUMENT
        name = w[3]
        if sub == "TYPE":
            if ups is None:
                return ERR_UNKNOWN_UPS
            err = self.available(ups, now)
            if err:
                return err
            v = ups.state.vars.get(name.lower())
            if v is None:
                return ERR_VAR_NOT_SUPPORTED
            return reply_line(f"TYPE {upsname} {name} {' '.join(v.type_words())}")
        if sub == "DESC":
            if ups is None:
                return ERR_UNKNOWN_UPS
            return self.available(ups, now) or reply_line(f'DESC {upsname} {name} "{var_desc(name)}"')
        if sub == "CMDDESC":
            if ups is None:
                return ERR_UNKNOWN_UPS
            return self.available(ups, now) or reply_line(f'CMDDESC {upsname} {name} "{cmd_desc(name)}"')
        return ERR_INVALID_ARGUMENT

    def _get_var(self, upsname: str, name: str, now: float) -> bytes:
        low = name.lower()
        if low.startswith("server."):  # answered by upsd itself, whatever the UPS name
            if low == "server.info":
                return reply_line(f'VAR {upsname} server.info "{SERVER_INFO}"')
            if low == "server.version":
                return reply_line(f'VAR {upsname} server.version "{NUT_VERSION}"')
            return ERR_VAR_NOT_SUPPORTED
        ups = self.upses.get(upsname.lower())
        if ups is None:
            return ERR_UNKNOWN_UPS
        if not ups.connected:
            return ERR_DRIVER_NOT_CONNECTED
        if (ups.dumpdone and ups.state.stale) or now - ups.last_heard > self.maxage + 1:
            return ERR_DATA_STALE
        v = ups.state.vars.get(low)
        if v is None:
            return ERR_VAR_NOT_SUPPORTED
        val = encode(v.value)
        if ups.fsd and low == "ups.status":
            val = "FSD " + val
        self._var_hit = ups
        return reply_line(f'VAR {upsname} {name} "{val}"')

    # ------------------------------------------------------------------------- LIST

    def _list(self, s: Session, w: list[str], now: float) -> bytes:
        n = len(w) - 1
        if n < 1:
            return ERR_INVALID_ARGUMENT
        sub = w[1].upper()
        if sub == "UPS":
            parts = [b"BEGIN LIST UPS\n"]
            for e in self.upses.values():
                desc = "Description unavailable" if e.desc is None else encode(e.desc)
                parts.append(reply_line(f'UPS {e.name} "{desc}"'))
            parts.append(b"END LIST UPS\n")
            return b"".join(parts)
        if n < 2:
            return ERR_INVALID_ARGUMENT
        upsname = w[2]
        ups = self.upses.get(upsname.lower())
        if sub == "VAR":
            if ups is None:
                return ERR_UNKNOWN_UPS
            return self.available(ups, now) or ups.list_var(upsname)
        if sub == "RW":
            if ups is None:
                return ERR_UNKNOWN_UPS
            err = self.available(ups, now)
            if err:
                return err
            lines = [f"BEGIN LIST RW {upsname}"]
            lines += [f'RW {upsname} {v.name} "{encode(v.value)}"' for v in ups.state.sorted_vars() if v.writable]
            lines.append(f"END LIST RW {upsname}")
            return b"".join(reply_line(x) for x in lines)
        if sub == "CMD":
            if ups is None:
                return ERR_UNKNOWN_UPS
            err = self.available(ups, now)
            if err:
                return err
            lines = [f"BEGIN LIST CMD {upsname}"]
            lines += [f"CMD {upsname} {c}" for c in ups.sorted_cmds()]
            lines.append(f"END LIST CMD {upsname}")
            return b"".join(reply_line(x) for x in lines)
        if sub == "CLIENT":
            if ups is None:
                return ERR_UNKNOWN_UPS
            lines = [f"BEGIN LIST CLIENT {upsname}"]
            # upsd keeps its clients newest first
            lines += [f"CLIENT {ups.name} {c.addr}" for c in reversed(self.sessions) if c.login is ups]
            lines.append(f"END LIST CLIENT {upsname}")
            return b"".join(reply_line(x) for x in lines)
        if n < 3:
            return ERR_INVALID_ARGUMENT
        name = w[3]
        if sub == "ENUM" or sub == "RANGE":
            if ups is None:
                return ERR_UNKNOWN_UPS
            err = self.available(ups, now)
            if err:
                return err
            v = ups.state.vars.get(name.lower())
            if v is None:
                return ERR_VAR_NOT_SUPPORTED
            lines = [f"BEGIN LIST {sub} {upsname} {name}"]
            if sub == "ENUM":
                lines += [f'ENUM {upsname} {name} "{encode(e)}"' for e in v.enums]
            else:
                lines += [f'RANGE {upsname} {name} "{lo}" "{hi}"' for lo, hi in v.ranges]
            lines.append(f"END LIST {sub} {upsname} {name}")
            return b"".join(reply_line(x) for x in lines)
        return ERR_INVALID_ARGUMENT

    # ------------------------------------------------------------------------- privileged commands

    def _login(self, s: Session, w: list[str], now: float) -> bytes:
        if len(w) != 2:
            return ERR_INVALID_ARGUMENT
        if s.login is not None:
            log.info("Client %s@%s tried to login twice", s.username, s.addr)
            return ERR_ALREADY_LOGGED_IN
        ups = self.upses.get(w[1].lower())
        if ups is None:
            return ERR_UNKNOWN_UPS
        if not self._can(s, "LOGIN"):
            return ERR_ACCESS_DENIED
        ups.numlogins += 1
        s.login = ups
        log.info("User %s@%s logged into UPS [%s]%s", s.username, s.addr, ups.name, " (SSL)" if s.tls else "")
        return OK

    def _primary_check(self, s: Session, w: list[str], reply: bytes) -> bytes:
        if len(w) != 2:
            return ERR_INVALID_ARGUMENT
        if self.upses.get(w[1].lower()) is None:
            return ERR_UNKNOWN_UPS
        if not self._can(s, "PRIMARY", "MASTER"):
            return ERR_ACCESS_DENIED
        return reply

    def _primary(self, s: Session, w: list[str], now: float) -> bytes:
        return self._primary_check(s, w, b"OK PRIMARY-GRANTED\n")

    def _master(self, s: Session, w: list[str], now: float) -> bytes:
        return self._primary_check(s, w, b"OK MASTER-GRANTED\n")

    def _fsd(self, s: Session, w: list[str], now: float) -> bytes:
        if len(w) != 2:
            return ERR_INVALID_ARGUMENT
        ups = self.upses.get(w[1].lower())
        if ups is None:
            return ERR_UNKNOWN_UPS
        if not self._can(s, "FSD"):
            return ERR_ACCESS_DENIED
        log.warning("Client %s@%s set FSD on UPS [%s]", s.username, s.addr, ups.name)
        ups.fsd = True
        return b"OK FSD-SET\n"

    def _set(self, s: Session, w: list[str], now: float) -> bytes:
        n = len(w) - 1
        if n < 2:
            return ERR_INVALID_ARGUMENT
        sub = w[1].upper()
        if sub == "VAR":
            if n < 4:
                return ERR_INVALID_ARGUMENT
            return self._set_var(s, w[2], w[3], w[4], now)
        if sub == "TRACKING":
            mode = w[2].upper()
            if mode == "ON":
                s.tracking = True
            elif mode == "OFF":
                s.tracking = False
            else:
                return ERR_INVALID_ARGUMENT
            return OK
        return ERR_INVALID_ARGUMENT

    def _set_var(self, s: Session, upsname: str, name: str, value: str, now: float) -> bytes:
        ups = self.upses.get(upsname.lower())
        if ups is None:
            return ERR_UNKNOWN_UPS
        err = self.available(ups, now)
        if err:
            return err
        if not self._can(s, "SET"):
            return ERR_ACCESS_DENIED
        v = ups.state.vars.get(name.lower())
        if v is None:
            return ERR_VAR_NOT_SUPPORTED
        if not v.writable:
            return ERR_READONLY
        if v.is_string:
            if v.aux < 1:
                log.warning("UPS [%s]: auxdata for %s is invalid", ups.name, name)
                return ERR_SET_FAILED
            if len(value) > v.aux:
                return ERR_TOO_LONG
        if v.enums and value not in v.enums:
            return ERR_INVALID_VALUE
        if v.ranges:
            iv = atoi(value)
            if not any(lo <= iv <= hi for lo, hi in v.ranges):
                return ERR_INVALID_VALUE
        tid = new_tracking_id() if s.tracking else None
        line = f"SET {name} {quote(value)}" + (f" TRACKING {tid}" if tid else "")
        log.info("Set variable: %s@%s set %s on %s to %s%s", s.username, s.addr, name, ups.name, value,
                 f" (tracking ID: {tid})" if tid else "")
        if not self.send_driver(ups, line):
            log.info("Set command send failed")
            return ERR_SET_FAILED
        return self._tracked(tid, now)

    def _instcmd(self, s: Session, w: list[str], now: float) -> bytes:
        n = len(w) - 1
        if n < 2:
            return ERR_INVALID_ARGUMENT
        upsname, cmd = w[1], w[2]
        param = w[3] if n == 3 else None  # like upsd, four or more arguments mean no parameter
        ups = self.upses.get(upsname.lower())
        if ups is None:
            return ERR_UNKNOWN_UPS
        err = self.available(ups, now)
        if err:
            return err
        if not ups.state.has_cmd(cmd):
            return ERR_CMD_NOT_SUPPORTED
        u = self._user(s)
        if u is None or not u.can_instcmd(cmd):
            return ERR_ACCESS_DENIED
        tid = new_tracking_id() if s.tracking else None
        line = f"INSTCMD {cmd}"
        if param is not None:
            # upsd 2.8.0 sends the parameter escaped but not quoted; where that would split or lose it
            # (spaces, '=', empty) we quote it
            line += " " + (encode(param) if param and not _NEEDS_QUOTE.search(param) else quote(param))
        if tid:
            line += f" TRACKING {tid}"
        log.info("Instant command: %s@%s did %s%s on %s%s", s.username, s.addr, cmd,
                 f' with value "{param}"' if param is not None else "", ups.name,
                 f" (tracking ID: {tid})" if tid else "")
        if not self.send_driver(ups, line):
            log.info("Instant command send failed")
            return ERR_INSTCMD_FAILED
        return self._tracked(tid, now)

    def _tracked(self, tid: str | None, now: float) -> bytes:
        if tid is None:
            return OK
        self.tracking[tid] = TrackingEntry(TRACKING_PENDING, now)
        return f"OK TRACKING {tid}\n".encode()

    def purge_tracking(self, now: float) -> int:
        """Forget tracking results older than TRACKINGDELAY; return how many went."""
        if not self.tracking:
            return 0
        limit = now - self.trackingdelay
        old = [k for k, e in self.tracking.items() if e.created < limit]
        for k in old:
            del self.tracking[k]
        return len(old)

    # ------------------------------------------------------------------------- driver side

    def driver_connected(self, ups: UpsEntry, now: float) -> str:
        """The driver socket is connected: forget everything, show WAIT; return the line to send."""
        ups.connected = True
        ups.dumpdone = False
        ups.state.clear()
        ups.state.setinfo("ups.status", "WAIT")
        ups.reader = LineReader()
        ups.last_heard = now
        ups.last_ping = now
        ups.reported_stale = False
        return "DUMPALL"

    def driver_lost(self, ups: UpsEntry) -> None:
        """The driver socket is gone: never serve its old data."""
        ups.connected = False
        ups.dumpdone = False
        ups.state.clear()
        ups.reader = LineReader()

    def driver_data(self, ups: UpsEntry, data: bytes, now: float) -> None:
        """Bytes read from a driver socket."""
        for words in ups.reader.feed(data):
            if isinstance(words, ParseFailure):
                log.info("Parse error on sock: %s", words.message)
                continue
            if self.driver_message(ups, words):
                ups.last_heard = now

    def driver_message(self, ups: UpsEntry, words: list[str]) -> bool:
        """Apply one driver message; False if upsd does not know it (then it does not count as heard)."""
        if not words:
            return False
        cmd = words[0].upper()
        n = len(words)
        if cmd == "PONG":
            return True
        if cmd == "DUMPDONE":
            ups.dumpdone = True
            return True
        if cmd == "DATAOK" or cmd == "DATASTALE":
            ups.state.apply(words)
            return True
        if cmd == "TRACKING":
            if n < 3:
                return False
            entry = self.tracking.get(words[1].upper())
            if entry is not None:
                entry.status = atoi(words[2])
            return True
        need = _DRIVER_ARGS.get(cmd)
        if need is None or n < need:
            log.debug("UPS [%s]: unknown or short message %r", ups.name, words)
            return False
        try:
            ups.state.apply(words)
        except ProtocolError as exc:
            log.debug("UPS [%s]: %s", ups.name, exc)
        return True

    def ping_due(self, ups: UpsEntry, now: float) -> bool:
        """True (and the ping time noted) if the driver has been silent long enough to be PINGed."""
        third = self.maxage / 3
        if ups.connected and now - ups.last_heard > third and now - ups.last_ping > third:
            ups.last_ping = now
            return True
        return False

    def check_stale(self, ups: UpsEntry, now: float) -> bool | None:
        """Log staleness changes; return the new staleness if it changed, else None."""
        if not ups.connected:
            return None
        stale = self.is_stale(ups, now)
        if stale == ups.reported_stale:
            return None
        ups.reported_stale = stale
        if stale:
            log.warning("Data for UPS [%s] is stale - check driver", ups.name)
        else:
            log.info("UPS [%s] data is no longer stale", ups.name)
        return stale

    def entries(self) -> Iterable[UpsEntry]:
        return self.upses.values()


# Minimum word counts of the driver messages upsd applies (shorter ones are ignored, as upsd does).
_DRIVER_ARGS = {"ADDCMD": 2, "DELCMD": 2, "DELINFO": 2, "SETFLAGS": 3, "SETINFO": 3, "ADDENUM": 3,
                "DELENUM": 3, "SETAUX": 3, "ADDRANGE": 4, "DELRANGE": 4}
_NEEDS_QUOTE = re.compile(r"[\s=]")
_VER = reply_line(SERVER_INFO)
_NETVER = reply_line(PROTOCOL_VERSION)
_HELP = reply_line(HELP_TEXT)
