"""The exporter-toolkit web config file: TLS and basic auth for the exporter's HTTP endpoint.

Format (YAML, the one Prometheus exporters read with ``--web.config.file``)::

    tls_server_config:
      cert_file: /etc/nutlite/exporter.crt
      key_file: /etc/nutlite/exporter.key
      client_ca_file: /etc/nutlite/clients.pem     # optional: require client certificates
      client_auth_type: RequireAndVerifyClientCert  # optional
      min_version: TLS12                            # optional (TLS12 or TLS13)
    basic_auth_users:
      prometheus: $2y$10$...                        # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')

Only bcrypt hashes are accepted, as in exporter-toolkit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

KNOWN_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}
TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version",
            "cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans"}


class WebConfigError(ValueError):
    pass


@dataclass
class WebConfig:
    """The exporter's web configuration file (TLS and basic authentication)."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    users: dict[str, bytes] = field(default_factory=dict)
    _ok_cache: set[bytes] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext:
        from nutlite import lazyssl

        ssl = lazyssl.load()

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if self.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
        assert self.cert_file and self.key_file
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(self.client_ca_file)
        if self.client_auth_type in ("RequireAndVerifyClientCert", "RequireAnyClientCert"):
            ctx.verify_mode = ssl.CERT_REQUIRED
        elif self.client_auth_type in ("VerifyClientCertIfGiven", "RequestClientCert"):
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def check_auth(self, header: str | None) -> bool:
        """True if basic auth is off, or ``header`` (the Authorization value) names a user and password
        matching its bcrypt hash. Successful checks are cached (bcrypt is slow on purpose)."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        import base64  # here, not at the top: an exporter without basic auth never needs them
        import binascii
        import hashlib

        try:
            user, sep, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep or user not in self.users:
            return False
        hashed = self.users[user]
        key = hashlib.sha256(user.encode() + b"\0" + password.encode() + b"\0" + hashed).digest()
        with self._lock:
            if key in self._ok_cache:
                return True
        import bcrypt

        try:
            ok = bcrypt.checkpw(password.encode("utf-8"), hashed)
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                self._ok_cache.add(key)
        return ok


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check a web config file (relative cert/key paths are relative to the file)."""
    import yaml

    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise WebConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    cfg = WebConfig()
    tls = data.get("tls_server_config") or {}
    if not isinstance(tls, dict):
        raise WebConfigError(f"{path}: tls_server_config must be a mapping")
    bad = set(tls) - TLS_KEYS
    if bad:
        raise WebConfigError(f"{path}: unknown tls_server_config keys {', '.join(sorted(bad))}")
    if tls:
        if not tls.get("cert_file") or not tls.get("key_file"):
            raise WebConfigError(f"{path}: tls_server_config needs cert_file and key_file")
        cfg.cert_file = str(path.parent / tls["cert_file"])
        cfg.key_file = str(path.parent / tls["key_file"])
        if tls.get("client_ca_file"):
            cfg.client_ca_file = str(path.parent / tls["client_ca_file"])
        cfg.client_auth_type = str(tls.get("client_auth_type") or "NoClientCert")
        cfg.min_version = str(tls.get("min_version") or "TLS12")
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise WebConfigError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path}: the password of user {user!r} is not a bcrypt hash")
        cfg.users[str(user)] = hashed.encode()
    return cfg
