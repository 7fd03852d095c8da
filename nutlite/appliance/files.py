"""What every step of ``nutlite appliance setup`` shares: the folders, the messages, safe writes."""

from __future__ import annotations

import contextlib
import grp
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "nutlite appliance: "


@dataclass
class Paths:
    """The folders the command works in (each a command-line option)."""

    boot: Path  # the FAT boot partition (its nutlite/ folder holds the user's files)
    etc: Path  # the system's /etc
    data: Path  # the persistent data partition
    run: Path  # the run-time state folder (/run/nutlite)
    root_home: Path  # root's home folder (.ssh/authorized_keys)
    dev: Path  # where the devices are (serial ports)
    sys: Path  # sysfs (USB devices present)

    @property
    def user_dir(self) -> Path:
        return self.boot / "nutlite"

    @property
    def nut_dir(self) -> Path:
        return self.etc / "nut"


class Fatal(Exception):
    """The command cannot work at all (one line, exit status 1)."""


@dataclass
class Context:
    """Where the appliance's files live and what this run may do (systemd, data partition, root)."""

    paths: Paths
    systemd: bool = False
    persistent: bool = True  # the data partition can be written
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    said: list[str] = field(default_factory=list)
    _owner_noted: bool = False

    def say(self, message: str) -> None:
        """One line on stderr (the unit sends it to the journal and the console)."""
        text = " ".join(message.split())
        self.said.append(text)
        with contextlib.suppress(OSError, ValueError):
            print(PREFIX + text, file=sys.stderr, flush=True)

    @property
    def store(self) -> Path:
        """Where generated things are kept: the data partition, or for this boot only the run folder."""
        return self.paths.data if self.persistent else self.paths.run

    def nut_group(self) -> int | None:
        """The gid to give NUT's files (group nut), or None (after saying so once) when the files
        cannot be given to it: not running as root, or no group nut."""
        reason = None
        gid = None
        if not self.as_root:
            reason = "not running as root"
        else:
            try:
                gid = grp.getgrnam("nut").gr_gid
            except KeyError:
                reason = "there is no group nut"
        if reason and not self._owner_noted:
            self._owner_noted = True
            self.say(f"{reason}: the files in {self.paths.nut_dir} keep this process's owner and group "
                     "instead of root:nut, and the NUT daemons may not be able to read them")
        return gid


def write_file(path: Path, data: bytes | str, mode: int, gid: int | None = None) -> None:
    """Write ``path`` whole (through a temporary file in the same folder, then a rename), with ``mode``,
    and owner root and group ``gid`` when ``gid`` is given."""
    if isinstance(data, str):
        data = data.encode("latin-1", "replace")
    tmp = path.with_name(f".{path.name}.nutlite-new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        if gid is not None:
            os.fchown(fd, 0, gid)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_in_place(path: Path, data: str, mode: int) -> None:
    """Rewrite ``path`` without replacing it (it may be a mount point, as /etc/machine-id can be)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(path, mode)


def make_dir(path: Path, mode: int, gid: int | None = None) -> None:
    """``path`` as a folder (parents too) with ``mode`` and, when ``gid`` is given, owner root:gid."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if gid is not None:
        os.chown(path, 0, gid)


def read_user_file(path: Path) -> bytes | None:
    """A file of the boot partition, or None when it is not there (OSError when it cannot be read)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def normalize(data: bytes) -> str:
    """A file as a PC may write it (UTF-8 byte order mark, CR LF line ends) as NUT reads it."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n").decode("latin-1")


def describe_error(exc: OSError) -> str:
    return exc.strerror or str(exc)
