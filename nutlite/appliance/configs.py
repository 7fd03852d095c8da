"""Step 4 and 5 of ``nutlite appliance setup``: the NUT files of the boot partition's ``nutlite/``
folder, checked with the daemons' own loaders and installed into ``/etc/nut``; the last good copy of
each (on the data partition) or the image's default when one is broken; an autodetected ups.conf when
there is none."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nutlite import config
from nutlite.appliance import defaults
from nutlite.appliance.detect import detect, ups_conf_text
from nutlite.appliance.files import Context, describe_error, make_dir, normalize, read_user_file, write_file
from nutlite.parseconf import ParseError, split_line

FILES = ("ups.conf", "upsd.conf", "upsd.users", "upsmon.conf", "nut.conf", "upssched.conf")
LOADERS: dict[str, Callable[..., Any]] = {
    "ups.conf": config.load_ups_conf, "upsd.conf": config.load_upsd_conf, "upsd.users": config.load_upsd_users,
    "upsmon.conf": config.load_upsmon_conf, "nut.conf": config.load_nut_conf,
    "upssched.conf": config.load_upssched_conf,
}
MODES = {"nut.conf": 0o644}  # the others 0640, as Debian's NUT installs them
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass
class FileStatus:
    """How one boot-partition file was taken: from where, and the error if it was refused."""

    ok: bool
    source: str  # boot, last-good, default, detected
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"ok": self.ok, "source": self.source}
        if self.error:
            out["error"] = self.error
        return out


def check(name: str, text: str, path: Path) -> tuple[Any, str | None]:
    """(the loaded file, None) or (None, what is wrong, naming the file and the line)."""
    try:
        return LOADERS[name](path, text=text), None
    except (config.ConfigError, ValueError) as exc:
        return None, str(exc)


class Importer:
    """Installs the files one by one; remembers what it did for the status file."""

    def __init__(self, ctx: Context, password: str) -> None:
        self.ctx = ctx
        self.password = password
        self.status: dict[str, FileStatus] = {}
        self.upses: list[str] = []
        self.gid = ctx.nut_group()

    @property
    def good_dir(self) -> Path:
        return self.ctx.store / "config-good"

    # -- where a file's text comes from

    def _last_good(self, name: str) -> tuple[str, str] | None:
        path = self.good_dir / name
        try:
            text = path.read_bytes().decode("latin-1")
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
        except OSError:
            return None
        if check(name, text, path)[1] is not None:
            return None
        return text, when

    def _save_good(self, name: str, text: str) -> None:
        """Keep ``text`` as the last good copy (rewritten only when it changed, so its date says since
        when it is the good one)."""
        try:
            if (self.good_dir / name).read_bytes() == text.encode("latin-1", "replace"):
                return
        except OSError:
            pass
        try:
            make_dir(self.good_dir, 0o700)
            write_file(self.good_dir / name, text, 0o600)
        except OSError as exc:
            self.ctx.say(f"cannot keep a copy of {name} in {self.good_dir}: {describe_error(exc)}")

    def source_text(self, name: str, default: Callable[[], str | None]) -> str | None:
        """The text to install for ``name`` (None: nothing to install), its status recorded."""
        path = self.ctx.paths.user_dir / name
        try:
            data = read_user_file(path)
        except OSError as exc:
            data, error = None, f"{path}: cannot read it: {describe_error(exc)}"
        else:
            error = None
        if data is None and error is None:
            text = default()
            self.status[name] = FileStatus(True, "detected" if name == "ups.conf" else "default")
            return text
        if data is not None:
            text = normalize(data)
            loaded, error = check(name, text, path)
            if error is None:
                for warning in loaded.warnings:
                    self.ctx.say(warning)
                self._save_good(name, text)
                self.status[name] = FileStatus(True, "boot")
                return text
        good = self._last_good(name)
        if good is not None:
            self.ctx.say(f"{error}; keeping the last good copy from {good[1]}")
            self.status[name] = FileStatus(False, "last-good", error)
            return good[0]
        fallback = {"ups.conf": "detecting the attached UPSes instead",
                    "upssched.conf": "none is installed"}.get(name, "using the image's default")
        self.ctx.say(f"{error}; there is no good copy from an earlier boot, {fallback}")
        self.status[name] = FileStatus(False, "detected" if name == "ups.conf" else "default", error)
        return default()

    # -- installing

    def install(self, name: str, text: str) -> None:
        path = self.ctx.paths.nut_dir / name
        try:
            write_file(path, text, MODES.get(name, 0o640), self.gid)
        except OSError as exc:
            self.ctx.say(f"cannot write {path}: {describe_error(exc)}")
            self.status[name] = FileStatus(False, self.status[name].source, f"cannot write {path}")

    def run(self) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("ups.conf", self.ups_conf), ("upsd.conf", lambda: self.simple("upsd.conf", defaults.upsd_conf)),
            ("upsd.users", self.upsd_users), ("upsmon.conf", self.upsmon_conf),
            ("nut.conf", lambda: self.simple("nut.conf", defaults.nut_conf)),
            ("upssched.conf", lambda: self.simple("upssched.conf", lambda: None))]
        for name, step in steps:
            try:
                step()
            except OSError as exc:  # one the steps did not expect (a folder that cannot be listed)
                where = f" ({exc.filename})" if exc.filename else ""
                self.ctx.say(f"cannot set up {name}: {describe_error(exc)}{where}")
                self.status[name] = FileStatus(False, self.status.get(name, FileStatus(False, "default")).source,
                                               f"cannot set up {name}: {describe_error(exc)}")

    def simple(self, name: str, default: Callable[[], str | None]) -> None:
        text = self.source_text(name, default)
        if text is not None:
            self.install(name, text)

    def ups_conf(self) -> None:
        text = self.source_text("ups.conf", self.detect)
        assert text is not None
        loaded, error = check("ups.conf", text, self.ctx.paths.nut_dir / "ups.conf")
        self.upses = list(loaded.ups) if loaded is not None else []
        self.install("ups.conf", text)

    def detect(self) -> str:
        if self.ctx.systemd:  # the UPSes and adapters present at boot: wait until udev has seen them all
            from nutlite.appliance.units import run

            run(self.ctx, ["udevadm", "settle", "--timeout=15"])
        found = detect(self.ctx.paths.dev, self.ctx.say)
        text = ups_conf_text(found, defaults.detected_header(), defaults.NO_UPS)
        if not found:
            self.ctx.say("no UPS found (USB, or USB-serial adapter): ups.conf is empty; plug the UPS in and "
                         "reboot, or put a ups.conf into the nutlite/ folder of the boot partition "
                         "(see docs/appliance.md)")
        for name, f in zip(self.upses_of(text), found, strict=False):
            self.ctx.say(f"found {f.what}: configured as [{name}] (driver {f.driver})")
        return text

    @staticmethod
    def upses_of(text: str) -> list[str]:
        loaded, _ = check("ups.conf", text, Path("ups.conf"))
        return list(loaded.ups) if loaded is not None else []

    def upsd_users(self) -> None:
        text = self.source_text("upsd.users", lambda: defaults.upsd_users(self.password))
        assert text is not None
        if self.status["upsd.users"].source in ("boot", "last-good"):
            text = substitute_users(text, self.password)
            loaded, _ = check("upsd.users", text, self.ctx.paths.nut_dir / "upsd.users")
            if loaded is not None and defaults.UPSMON_USER not in loaded.users:
                text = text.rstrip("\n") + "\n\n" + defaults.upsmon_section(self.password)
        self.install("upsd.users", text)

    def upsmon_conf(self) -> None:
        name = "upsmon.conf"
        text = self.source_text(name, lambda: defaults.upsmon_conf(self.upses, self.password))
        assert text is not None
        if self.status[name].source in ("boot", "last-good"):
            text = self.adapt_upsmon(text)
        self.install(name, text)

    def adapt_upsmon(self, text: str) -> str:
        """A user's upsmon.conf: the generated password for ``@GENERATED@``, MONITOR lines when it has
        none, a warning for a POWERDOWNFLAG the read-only root would lose or refuse."""
        where = self.ctx.paths.user_dir / "upsmon.conf"
        text = substitute_monitors(text, self.password, lambda n, why: self.ctx.say(f"{where}:{n}: {why}"))
        loaded, _ = check("upsmon.conf", text, where)
        if loaded is None:
            return text
        if not loaded.monitors:
            text = text.rstrip("\n") + "\n\n# Added by nutlite appliance setup: the UPSes of ups.conf.\n"
            text += defaults.monitor_lines(self.upses, self.password)
        flag = loaded.powerdownflag
        if flag is not None and not flag.startswith("/run/"):
            self.ctx.say(f"{where}: POWERDOWNFLAG {flag} is not under /run: the root filesystem of this image "
                         f"is read-only, use POWERDOWNFLAG {defaults.POWERDOWNFLAG} (see docs/shutdown.md)")
        return text


_SECTION = re.compile(r"^\s*\[([^\]]*)\]\s*(#.*)?$")


def substitute_users(text: str, password: str) -> str:
    """``@GENERATED@`` in the [nutlite-upsmon] section of a user's upsd.users: the generated password."""
    out, section = [], None
    for line in text.split("\n"):
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
        elif section == defaults.UPSMON_USER:
            line = line.replace(defaults.GENERATED, password)
        out.append(line)
    return "\n".join(out)


def substitute_monitors(text: str, password: str, warn: Callable[[int, str], None]) -> str:
    """``@GENERATED@`` as the password of a MONITOR line for a local UPS as nutlite-upsmon: the generated
    password (never sent to another host)."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if defaults.GENERATED in line:
            try:
                words = split_line(line)
            except ParseError:
                words = []
            if len(words) == 6 and words[0].upper() == "MONITOR" and words[4] == defaults.GENERATED:
                try:
                    host = config.split_system(words[1])[1]
                except ValueError:
                    host = ""
                if words[3] != defaults.UPSMON_USER:
                    warn(n, f"{defaults.GENERATED} stands only for the password of {defaults.UPSMON_USER}; "
                            "left as it is")
                elif host not in LOCAL_HOSTS:
                    warn(n, f"{defaults.GENERATED} is replaced only for a UPS of this machine (localhost), "
                            f"not for {words[1]}; left as it is")
                else:
                    line = line.replace(defaults.GENERATED, password)
        out.append(line)
    return "\n".join(out)
