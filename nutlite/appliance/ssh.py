"""Step 7 of ``nutlite appliance setup``: SSH access only with an ``authorized_keys`` file on the boot
partition, and host keys that survive a reboot (kept on the data partition)."""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from nutlite.appliance.files import Context, describe_error, make_dir, normalize, read_user_file, write_file

KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-*", "sk-*")
# The host keys made at the first boot: every OpenSSH client of the last ten years takes one of them,
# and both are made in a blink (an RSA key takes seconds on a Pi, and longer under QEMU).
HOST_KEY_TYPES = ("ed25519", "ecdsa")
_TYPE = re.compile(r"(?:^|\s)(ssh-ed25519|ssh-rsa|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)")


def key_problem(line: str) -> str | None:
    """None for an authorized_keys line with a public key of a known type, else what is wrong."""
    m = _TYPE.search(line)
    if m is None:
        return f"not an SSH public key (expected a key type, {', '.join(KEY_TYPES)}, then the key)"
    kind, blob = m.groups()
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return f"the {kind} key is not valid base64"
    size = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 + size or raw[4:4 + size] != kind.encode():
        return f"the key is not a {kind} key (it is cut short, or of another type)"
    return None


def authorized_keys(ctx: Context) -> bool:
    """Install the valid lines of the boot partition's authorized_keys for root; True when SSH is on."""
    src = ctx.paths.user_dir / "authorized_keys"
    dest_dir = ctx.paths.root_home / ".ssh"
    dest = dest_dir / "authorized_keys"
    try:
        data = read_user_file(src)
    except OSError as exc:
        ctx.say(f"{src}: cannot read it: {describe_error(exc)}")
        data = None
    good: list[str] = []
    if data is not None:
        for n, line in enumerate(normalize(data).split("\n"), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            problem = key_problem(text)
            if problem:
                ctx.say(f"{src}:{n}: {problem}; line skipped")
            else:
                good.append(text)
    if not good:
        if dest.is_file() or dest.is_symlink():
            dest.unlink()
        if data is not None:
            ctx.say(f"{src} has no valid key: SSH stays off")
        return False
    make_dir(dest_dir, 0o700)
    write_file(dest, "".join(k + "\n" for k in good), 0o600, 0 if ctx.as_root else None)
    ctx.say(f"SSH is on for root with {len(good)} key(s) from {src}")
    return True


def _key_mode(path: Path) -> int:
    return 0o644 if path.name.endswith(".pub") else 0o600


def host_keys(ctx: Context, wanted: bool) -> None:
    """The host keys: the data partition's into ETC/ssh; when there are none and SSH is on, new ones
    (HOST_KEY_TYPES), kept on the data partition for the next boot."""
    saved_dir = ctx.store / "ssh"
    etc_ssh = ctx.paths.etc / "ssh"
    saved = sorted(saved_dir.glob("ssh_host_*_key*")) if saved_dir.is_dir() else []
    if saved:
        make_dir(etc_ssh, 0o755)
        for path in saved:
            write_file(etc_ssh / path.name, path.read_bytes(), _key_mode(path))
        return
    if not wanted:
        return
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        ctx.say("ssh-keygen is not installed: no SSH host keys made")
        return
    with tempfile.TemporaryDirectory(prefix="keygen-", dir=_tmp_parent(ctx)) as tmp:
        (Path(tmp) / "etc" / "ssh").mkdir(parents=True)
        for kind in HOST_KEY_TYPES:
            key = Path(tmp) / "etc" / "ssh" / f"ssh_host_{kind}_key"
            argv = [keygen, "-q", "-t", kind, "-N", "", "-C", "", "-f", str(key)]
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired) as exc:
                ctx.say(f"ssh-keygen -t {kind} failed: {exc}")
                return
            if r.returncode != 0:
                ctx.say(f"ssh-keygen -t {kind} failed: {(r.stderr or r.stdout).strip()[-200:] or f'exit {r.returncode}'}")
                return
        made = sorted((Path(tmp) / "etc" / "ssh").glob("ssh_host_*_key*"))
        make_dir(etc_ssh, 0o755)
        try:
            make_dir(saved_dir, 0o700)
        except OSError as exc:
            ctx.say(f"cannot keep the SSH host keys in {saved_dir}: {describe_error(exc)}")
            saved_dir = None  # type: ignore[assignment]
        for path in made:
            data = path.read_bytes()
            write_file(etc_ssh / path.name, data, _key_mode(path))
            if saved_dir is not None:
                write_file(saved_dir / path.name, data, _key_mode(path))
        ctx.say(f"made new SSH host keys ({', '.join(p.name for p in made if not p.name.endswith('.pub'))})")


def _tmp_parent(ctx: Context) -> Path:
    ctx.paths.run.mkdir(parents=True, exist_ok=True)
    return ctx.paths.run


def setup_ssh(ctx: Context) -> None:
    try:
        wanted = authorized_keys(ctx)
    except OSError as exc:
        ctx.say(f"cannot set up root's authorized_keys in {ctx.paths.root_home}: {describe_error(exc)}")
        wanted = False
    try:
        host_keys(ctx, wanted)
    except OSError as exc:
        ctx.say(f"cannot set up the SSH host keys in {ctx.paths.etc / 'ssh'}: {describe_error(exc)}")
