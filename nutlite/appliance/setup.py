"""The steps of ``nutlite appliance setup``, in order (see docs/appliance.md)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from nutlite.appliance import ssh, units
from nutlite.appliance.configs import FILES, Importer
from nutlite.appliance.files import (
    Context,
    Fatal,
    describe_error,
    make_dir,
    normalize,
    write_file,
    write_in_place,
)

MACHINE_ID = re.compile(r"[0-9a-f]{32}\n")
PASSWORD = re.compile(r"[A-Za-z0-9_-]{24,}")
LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
DEFAULT_HOSTNAME = "nutlite"
HOSTS_DEFAULT = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"


def data_partition(ctx: Context) -> None:
    """Step 1: can generated things be kept across reboots?"""
    data = ctx.paths.data
    if data.is_dir() and os.access(data, os.W_OK):
        probe = data / ".nutlite-write-test"
        try:
            probe.write_bytes(b"")
            probe.unlink()
            return
        except OSError as exc:
            why = describe_error(exc)
    else:
        why = "not a folder" if data.exists() else "not there"
    ctx.persistent = False
    ctx.say(f"the data partition {data} cannot be written ({why}): the generated password, machine id and "
            f"SSH host keys last only until the next boot")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="latin-1")
    except OSError:
        return None


def machine_id(ctx: Context) -> None:
    """Step 2: the same machine id at every boot (so DHCP gives the same address)."""
    saved, etc = ctx.paths.data / "machine-id", ctx.paths.etc / "machine-id"
    kept, current = _read(saved), _read(etc)
    try:
        if ctx.persistent and kept is not None and MACHINE_ID.fullmatch(kept):
            if current != kept:
                write_in_place(etc, kept, 0o444)
        elif current is not None and MACHINE_ID.fullmatch(current):
            if ctx.persistent:
                write_file(saved, current, 0o444)
        else:
            ctx.say(f"{etc} holds no machine id: none saved")
    except OSError as exc:
        ctx.say(f"cannot keep the machine id ({describe_error(exc)})")


def upsmon_password(ctx: Context) -> str:
    """Step 3: the local upsmon's password, generated once and kept."""
    folder = ctx.store / "credentials"
    path = folder / "upsmon.password"
    old = _read(path)
    if old is not None and PASSWORD.fullmatch(old.strip()):
        return old.strip()
    password = secrets.token_urlsafe(24)  # 32 characters
    try:
        make_dir(folder, 0o700, 0 if ctx.as_root else None)
        write_file(path, password + "\n", 0o600, 0 if ctx.as_root else None)
    except OSError as exc:
        ctx.say(f"cannot keep the upsmon password in {path}: {describe_error(exc)}")
        return password
    if old is not None:
        ctx.say(f"{path} held no usable password: a new one was generated")
    return password


def configs(ctx: Context, password: str) -> tuple[bool, Importer]:
    """Steps 4 and 5; True when the installed ups.conf is not the one that was there before."""
    nut = ctx.paths.nut_dir
    try:
        make_dir(nut, 0o755, ctx.nut_group())
    except OSError as exc:
        raise Fatal(f"cannot create {nut}: {describe_error(exc)}") from None
    before = _read(nut / "ups.conf")
    probe = nut / ".nutlite-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise Fatal(f"cannot write into {nut}: {describe_error(exc)}") from None
    importer = Importer(ctx, password)
    importer.run()
    return _read(nut / "ups.conf") != before, importer


def write_status(ctx: Context, importer: Importer) -> None:
    path = ctx.paths.run / "config-status.json"
    files = {name: importer.status[name].as_json() for name in FILES if name in importer.status}
    text = json.dumps({"files": files, "time": int(time.time())}, indent=1) + "\n"
    try:
        make_dir(ctx.paths.run, 0o755)
        write_file(path, text, 0o644)
    except OSError as exc:
        ctx.say(f"cannot write {path}: {describe_error(exc)}")


def valid_hostname(name: str) -> bool:
    return 0 < len(name) <= 253 and all(LABEL.fullmatch(label) for label in name.split("."))


def hostname(ctx: Context) -> None:
    """Step 6: the host name from the boot partition, else nutlite."""
    src = ctx.paths.user_dir / "hostname"
    name = DEFAULT_HOSTNAME
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        ctx.say(f"{src}: cannot read it: {describe_error(exc)}; the host name is {DEFAULT_HOSTNAME}")
        data = None
    if data is not None:
        lines = [ln.strip() for ln in normalize(data).split("\n") if ln.strip() and not ln.strip().startswith("#")]
        wanted = lines[0] if len(lines) == 1 else None
        if wanted is not None and valid_hostname(wanted):
            name = wanted
        else:
            shown = " | ".join(lines)[:80]
            ctx.say(f"{src}: expected one host name (letters, digits and hyphens, at most 63 characters "
                    f"between dots, not starting or ending with a hyphen), got {shown!r}; the host name is "
                    f"{DEFAULT_HOSTNAME}")
    etc = ctx.paths.etc
    try:
        write_file(etc / "hostname", name + "\n", 0o644)
        hosts = _read(etc / "hosts")
        kept = [ln for ln in (hosts if hosts is not None else HOSTS_DEFAULT).split("\n")
                if ln.strip() and not ln.split()[0] == "127.0.1.1"]
        write_file(etc / "hosts", "\n".join([*kept, f"127.0.1.1\t{name}"]) + "\n", 0o644)
    except OSError as exc:
        ctx.say(f"cannot write the host name into {etc}: {describe_error(exc)}")
    if ctx.as_root and etc == Path("/etc"):
        try:
            socket.sethostname(name)
        except OSError as exc:
            ctx.say(f"cannot set the host name to {name}: {describe_error(exc)}")


def _step(ctx: Context, what: str, run: Callable[[], object]) -> None:
    """Run one of the later steps; a file problem it did not expect is one line, and the boot goes on."""
    try:
        run()
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        ctx.say(f"{what}: {describe_error(exc)}{where}; going on without it")


def setup(ctx: Context) -> int:
    data_partition(ctx)
    machine_id(ctx)
    password = upsmon_password(ctx)
    ups_changed, importer = configs(ctx, password)
    write_status(ctx, importer)
    _step(ctx, "cannot set the host name", lambda: hostname(ctx))
    # The drivers first: they start (--no-block) while the SSH keys are being made.
    if ctx.systemd:
        _step(ctx, "cannot reload systemd and udev", lambda: units.reload_and_start(ctx, ups_changed))
    _step(ctx, "cannot set up SSH", lambda: ssh.setup_ssh(ctx))
    return 0
