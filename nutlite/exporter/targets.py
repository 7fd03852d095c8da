"""Which NUT servers the exporter may be asked to scrape, and how a target is compared with another.

The multi-target endpoints (/probe, /ups_metrics) take the server from the URL. Without a limit,
anyone who reaches the exporter could make it open connections anywhere. An AllowList says which
targets a URL may name: by default the configured servers (--server, the credentials file's
sections); --allow-target patterns widen it.

Matching never resolves a name and never opens a connection:

* a host name matches only the same name as written (case-insensitive, a trailing dot ignored),
  not an address it resolves to, and not another name for the same host;
* an address (10.0.0.5, ::1) matches the same address in any spelling Python's ipaddress module
  reads (an IPv4-mapped IPv6 address counts as the IPv4 address); a CIDR network matches a target
  written as an address inside it, never a name;
* a pattern without a port matches every port of its host; host:port only that port.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nutlite.client import DEFAULT_PORT, AddressError, split_hostport

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A host name as DNS and /etc/hosts know them: dot-separated labels of letters, digits, '-' and '_'.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


class TargetPatternError(ValueError):
    """A --allow-target value that is not a host, host:port, CIDR network or '*'."""


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an IP address (IPv4-mapped IPv6 turned into IPv4), or None if it is a name."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def host_key(host: str) -> tuple[str, str]:
    """What two spellings of one host have in common: ("ip", canonical address) or ("name", name)."""
    addr = parse_address(host)
    if addr is not None:
        return ("ip", str(addr))
    return ("name", host.lower().removesuffix("."))


def valid_host(host: str) -> bool:
    """True for an IP address or a syntactically valid host name (at most 253 characters)."""
    return parse_address(host) is not None or (len(host) <= 254 and bool(_HOSTNAME.match(host)))


@dataclass(frozen=True)
class Target:
    """A NUT server."""

    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_PORT) -> Target:
        host, port = split_hostport(text.strip(), default_port)
        return cls(host or "127.0.0.1", port)

    @property
    def key(self) -> tuple[tuple[str, str], int]:
        """Equal for two spellings of the same host and port (no name is resolved)."""
        return host_key(self.host), self.port

    def same_server(self, other: Target) -> bool:
        return self.key == other.key

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> Target:
    """A target named in a request. Raises ValueError (AddressError) for a malformed one."""
    target = Target.parse(text, default_port)
    if not valid_host(target.host):
        raise AddressError("not a host name or IP address")
    return target


@dataclass(frozen=True)
class TargetPattern:
    """One --allow-target value: ``*``, a CIDR network, a host, or host:port."""

    text: str
    any: bool = False
    network: IPNetwork | None = None
    host: tuple[str, str] | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> TargetPattern:
        raw = text.strip()

        def bad(why: str) -> TargetPatternError:
            return TargetPatternError(f"bad --allow-target {text!r}: {why}")

        if not raw:
            raise bad("empty (expected a host, host:port, a CIDR network such as 10.0.0.0/24, or '*')")
        if raw == "*":
            return cls(raw, any=True)
        if "*" in raw:
            raise bad("'*' allows every target and must stand alone; use a CIDR network for a range")
        if "/" in raw:
            try:
                net = ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise bad("not a CIDR network (expected ADDRESS/PREFIX, such as 10.0.0.0/24 or "
                          "2001:db8::/32; names and ports cannot be given with a prefix)") from None
            mapped = getattr(net.network_address, "ipv4_mapped", None)
            if mapped is not None and net.prefixlen >= 96:  # ::ffff:10.0.0.0/120 is 10.0.0.0/24
                net = ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}")
            return cls(raw, network=net)
        if parse_address(raw) is not None:  # a bare IPv6 address (or IPv4): no port
            return cls(raw, host=host_key(raw))
        if raw.startswith("["):
            end = raw.find("]")
            host, rest = (raw[1:end], raw[end + 1:]) if end > 0 else ("", "")
            if not _is_ipv6(host) or "[" in rest or "]" in rest:
                raise bad("brackets hold an IPv6 address: [2001:db8::1] or [2001:db8::1]:3493")
            if rest and not rest.startswith(":"):
                raise bad("expected ':PORT' after the bracketed address")
            portstr = rest[1:] if rest else None
        else:
            if raw.count(":") > 1:
                raise bad("an IPv6 address with a port goes in brackets: [2001:db8::1]:3493")
            host, sep, portstr = raw.partition(":")
            portstr = portstr if sep else None
            if not valid_host(host):
                raise bad(f"{host!r} is not a host name or IP address")
        port = None
        if portstr is not None:
            if not portstr.isdigit() or not 0 < int(portstr) < 65536:
                raise bad(f"port {portstr!r} is not a number from 1 to 65535")
            port = int(portstr)
        return cls(raw, host=host_key(host), port=port)

    @classmethod
    def for_server(cls, target: Target) -> TargetPattern:
        """The pattern that allows exactly ``target`` (a configured server)."""
        return cls(str(target), host=host_key(target.host), port=target.port)

    def matches(self, target: Target) -> bool:
        if self.any:
            return True
        if self.network is not None:
            addr = parse_address(target.host)
            return addr is not None and addr.version == self.network.version and addr in self.network
        if self.port is not None and self.port != target.port:
            return False
        return self.host == host_key(target.host)


class AllowList:
    """The targets a URL may name: the configured servers plus the --allow-target patterns."""

    def __init__(self, servers: Iterable[Target] = (), patterns: Sequence[TargetPattern] = ()) -> None:
        self.servers = [TargetPattern.for_server(t) for t in servers]
        self.patterns = list(patterns)

    @classmethod
    def parse(cls, servers: Iterable[Target], texts: Iterable[str]) -> AllowList:
        """Raises TargetPatternError naming the option and the bad value."""
        return cls(servers, [TargetPattern.parse(t) for t in texts])

    @property
    def everything(self) -> bool:
        return any(p.any for p in self.patterns)

    def allows(self, target: Target) -> bool:
        return any(p.matches(target) for p in (*self.servers, *self.patterns))

    def describe(self) -> str:
        """For the start-up log line."""
        extra = ", ".join(p.text for p in self.patterns)
        return f"the configured servers and {extra}" if extra else "the configured servers only"
