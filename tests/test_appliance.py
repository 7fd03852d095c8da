"""``nutlite appliance setup``, the image's boot step, run as a process on a tmp tree: the boot
partition's files checked and installed (broken ones fall back to the last good copy), the defaults,
the generated upsmon password, machine id, host name, SSH, and the status file the exporter reads."""

from __future__ import annotations

import base64
import grp
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from nutenv import REPO_ROOT

from nutlite.config import load_upsd_users, load_upsmon_conf
from nutlite.systemd_generator import UDEV_DIR_ENV

NUT_GID = grp.getgrnam("nut").gr_gid if os.geteuid() == 0 else None
DIRS = ("boot", "etc", "data", "run", "root", "dev", "sys")


@dataclass
class Tree:
    base: Path

    def __getattr__(self, name: str) -> Path:
        if name in DIRS:
            return self.base / name
        raise AttributeError(name)

    @property
    def udev(self) -> Path:
        """Where the systemd step writes the hot-plug rules (instead of /run/udev/rules.d)."""
        return self.base / "udev"

    @property
    def user(self) -> Path:
        return self.base / "boot" / "nutlite"

    @property
    def nut(self) -> Path:
        return self.base / "etc" / "nut"

    def put(self, name: str, text: str | bytes) -> Path:
        self.user.mkdir(parents=True, exist_ok=True)
        path = self.user / name
        if isinstance(text, str):
            path.write_text(text)
        else:
            path.write_bytes(text)
        return path

    def args(self, *extra: str) -> list[str]:
        return ["--boot", str(self.boot), "--etc", str(self.etc), "--data", str(self.data), "--run", str(self.run),
                "--root-home", str(self.root), "--dev", str(self.dev), "--sys", str(self.sys), *extra]

    def setup(self, *extra: str, env: dict[str, str] | None = None,
              systemd: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "nutlite", "appliance", "setup",
                *self.args(*(extra or ([] if systemd else ["--no-systemd"])))]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.base,
                           env={**os.environ, "PYTHONPATH": str(REPO_ROOT), UDEV_DIR_ENV: str(self.udev),
                                **(env or {})})
        assert "Traceback" not in r.stderr, r.stderr
        for line in r.stderr.splitlines():
            assert line.startswith("nutlite appliance: "), r.stderr
        return r

    def status(self) -> dict[str, dict[str, object]]:
        return json.loads((self.run / "config-status.json").read_text())["files"]

    @property
    def password(self) -> str:
        return (self.data / "credentials" / "upsmon.password").read_text().strip()


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    t = Tree(tmp_path / "t")
    for d in ("boot", "data", "dev", "sys"):
        (t.base / d).mkdir(parents=True)
    return t


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


DUMMY_UPS = "[dummy]\n\tdriver = dummy-ups\n\tport = dummy.dev\n"


# ------------------------------------------------------------------------------------------------
# First and second boot


SYSTEM_PATHS = ("/etc/nut", "/etc/hostname", "/etc/hosts", "/etc/machine-id", "/etc/ssh", "/root/.ssh",
                "/var/lib/nutlite", "/run/nutlite", "/boot/firmware")


def system_state() -> dict[str, tuple[float, ...] | None]:
    """What the real system's files look like (so a test can tell that the command left them alone)."""
    out: dict[str, tuple[float, ...] | None] = {}
    for top in SYSTEM_PATHS:
        paths = [Path(top), *(Path(top).iterdir() if Path(top).is_dir() else ())]
        for path in paths:
            try:
                st = path.lstat()
                out[str(path)] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_mode)
            except OSError:
                out[str(path)] = None
    return out


def test_first_boot_writes_defaults_with_nut_modes_and_a_generated_password(tree: Tree) -> None:
    tree.put("ups.conf", DUMMY_UPS)
    before = system_state()
    r = tree.setup()
    assert system_state() == before, "the command touched the real system's files"
    assert r.returncode == 0, r.stderr
    pw = tree.password
    assert len(pw) >= 24
    assert mode(tree.data / "credentials") == 0o700 and mode(tree.data / "credentials" / "upsmon.password") == 0o600
    assert (tree.nut / "nut.conf").read_text().splitlines()[-1] == "MODE=netserver"
    assert "LISTEN 0.0.0.0 3493" in (tree.nut / "upsd.conf").read_text()
    assert "LISTEN :: 3493" in (tree.nut / "upsd.conf").read_text()
    users = load_upsd_users(tree.nut / "upsd.users")
    assert list(users.users) == ["nutlite-upsmon"], "no other user may control the UPS from the LAN"
    user = users.users["nutlite-upsmon"]
    assert user.password == pw and user.upsmon == "primary" and not user.instcmds
    upsmon = load_upsmon_conf(tree.nut / "upsmon.conf")
    assert [(m.system, m.user, m.password, m.role) for m in upsmon.monitors] == [
        ("dummy@localhost", "nutlite-upsmon", pw, "primary")]
    assert upsmon.run_as_user == "nut" and upsmon.powerdownflag == "/run/nut/killpower"
    assert upsmon.shutdowncmd == "/sbin/shutdown -h +0" and upsmon.minsupplies == 1
    assert mode(tree.nut) == 0o755
    for name in ("ups.conf", "upsd.conf", "upsd.users", "upsmon.conf"):
        assert mode(tree.nut / name) == 0o640, name
    assert mode(tree.nut / "nut.conf") == 0o644
    if NUT_GID is not None:
        for path in (tree.nut, *tree.nut.iterdir()):
            assert (path.stat().st_uid, path.stat().st_gid) == (0, NUT_GID), path
    assert tree.status() == {
        "ups.conf": {"ok": True, "source": "boot"}, "upsd.conf": {"ok": True, "source": "default"},
        "upsd.users": {"ok": True, "source": "default"}, "upsmon.conf": {"ok": True, "source": "default"},
        "nut.conf": {"ok": True, "source": "default"}, "upssched.conf": {"ok": True, "source": "default"}}
    assert mode(tree.run / "config-status.json") == 0o644 and mode(tree.run) == 0o755
    assert pw not in r.stderr
    assert sorted(p.name for p in tree.base.iterdir()) == sorted(DIRS[:3] + ("run", "dev", "sys")), \
        "something was written outside the folders given"


def test_second_boot_keeps_the_password_and_the_machine_id(tree: Tree) -> None:
    tree.etc.mkdir()
    first_id = "0123456789abcdef0123456789abcdef\n"
    (tree.etc / "machine-id").write_text(first_id)
    assert tree.setup().returncode == 0
    pw = tree.password
    assert (tree.data / "machine-id").read_text() == first_id
    # next boot: a fresh /etc (tmpfs overlay) with a new transient machine id
    (tree.nut / "upsd.users").unlink()
    (tree.etc / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    assert tree.setup().returncode == 0
    assert tree.password == pw
    assert (tree.etc / "machine-id").read_text() == first_id
    assert load_upsd_users(tree.nut / "upsd.users").users["nutlite-upsmon"].password == pw


def test_without_a_data_partition_it_still_configures_for_this_boot(tree: Tree) -> None:
    (tree.data).rmdir()
    r = tree.setup()
    assert r.returncode == 0
    assert "data partition" in r.stderr and "until the next boot" in r.stderr
    pw = load_upsd_users(tree.nut / "upsd.users").users["nutlite-upsmon"].password
    assert pw and len(pw) >= 24
    assert not tree.data.exists()


def test_etc_that_cannot_be_written_is_one_line_and_exit_1(tree: Tree) -> None:
    tree.etc.write_text("not a folder")
    r = tree.setup()
    assert r.returncode == 1
    fatal = [ln for ln in r.stderr.splitlines() if str(tree.nut) in ln]
    assert len(fatal) == 1 and "cannot create" in fatal[0], r.stderr


# ------------------------------------------------------------------------------------------------
# Files from the boot partition


GOOD_USERS = "[admin]\n\tpassword = adminpw\n\tactions = SET FSD\n\tinstcmds = ALL\n"


def test_a_broken_file_keeps_the_last_good_copy_and_names_the_line(tree: Tree) -> None:
    tree.put("ups.conf", DUMMY_UPS)
    tree.put("upsd.users", GOOD_USERS)
    assert tree.setup().returncode == 0
    good_ups = (tree.nut / "ups.conf").read_text()
    good_users = (tree.nut / "upsd.users").read_text()
    assert "[admin]" in good_users and "[nutlite-upsmon]" in good_users
    broken_ups = tree.put("ups.conf", DUMMY_UPS + "[other]\n\tdriver = dummy-ups\n\tsdorder = soon\n\tport = x\n")
    broken_users = tree.put("upsd.users", GOOD_USERS + "[mon]\n\tpassword = p\n\tupsmon = boss\n")
    before = broken_ups.read_bytes(), broken_users.read_bytes()
    r = tree.setup()
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    ups_line = [ln for ln in lines if "ups.conf:6:" in ln]
    users_line = [ln for ln in lines if "upsd.users:7:" in ln]
    assert len(ups_line) == 1 and "sdorder" in ups_line[0] and "keeping the last good copy from 20" in ups_line[0]
    assert len(users_line) == 1 and "boss" in users_line[0] and "keeping the last good copy" in users_line[0]
    assert (tree.nut / "ups.conf").read_text() == good_ups
    assert (tree.nut / "upsd.users").read_text() == good_users
    assert (broken_ups.read_bytes(), broken_users.read_bytes()) == before, "the boot partition's file was changed"
    status = tree.status()
    assert status["ups.conf"]["ok"] is False and status["ups.conf"]["source"] == "last-good"
    assert "sdorder" in str(status["ups.conf"]["error"])
    assert status["upsd.users"]["ok"] is False and status["upsd.users"]["source"] == "last-good"
    assert status["upsmon.conf"] == {"ok": True, "source": "default"}


def test_a_broken_file_without_a_good_copy_gets_the_default(tree: Tree) -> None:
    tree.put("upsd.users", "[mon]\n\tupsmon = boss\n")
    tree.put("nut.conf", "MODE=server\n")
    r = tree.setup()
    assert r.returncode == 0
    assert "upsd.users:2:" in r.stderr and "using the image's default" in r.stderr
    assert "nut.conf:1:" in r.stderr
    assert list(load_upsd_users(tree.nut / "upsd.users").users) == ["nutlite-upsmon"]
    assert (tree.nut / "nut.conf").read_text().splitlines()[-1] == "MODE=netserver"
    assert tree.status()["upsd.users"] == {"ok": False, "source": "default",
                                           "error": tree.status()["upsd.users"]["error"]}


def test_files_written_on_a_pc_crlf_and_bom_are_accepted(tree: Tree) -> None:
    tree.put("ups.conf", b"\xef\xbb\xbf" + DUMMY_UPS.replace("\n", "\r\n").encode())
    tree.put("upsd.users", b"\xef\xbb\xbf" + GOOD_USERS.replace("\n", "\r\n").encode())
    tree.put("hostname", b"\xef\xbb\xbfups-box\r\n")
    r = tree.setup()
    assert r.returncode == 0 and "ups.conf" not in r.stderr, r.stderr
    assert (tree.nut / "ups.conf").read_bytes().startswith(b"[dummy]\n")
    assert b"\r" not in (tree.nut / "ups.conf").read_bytes()
    assert "admin" in load_upsd_users(tree.nut / "upsd.users").users
    assert tree.status()["ups.conf"] == {"ok": True, "source": "boot"}
    assert (tree.etc / "hostname").read_text() == "ups-box\n"


def test_users_own_upsd_users_and_upsmon_conf_get_the_local_upsmon(tree: Tree) -> None:
    tree.put("ups.conf", DUMMY_UPS)
    tree.put("upsd.users", GOOD_USERS)
    tree.put("upsmon.conf", "MINSUPPLIES 1\nSHUTDOWNCMD \"/sbin/poweroff\"\nPOWERDOWNFLAG /etc/killpower\n")
    r = tree.setup()
    pw = tree.password
    users = load_upsd_users(tree.nut / "upsd.users").users
    assert set(users) == {"admin", "nutlite-upsmon"} and users["nutlite-upsmon"].password == pw
    monitors = load_upsmon_conf(tree.nut / "upsmon.conf").monitors
    assert [(m.system, m.user, m.password) for m in monitors] == [("dummy@localhost", "nutlite-upsmon", pw)]
    assert "POWERDOWNFLAG /etc/killpower is not under /run" in r.stderr
    # the user's own section and MONITOR line win; @GENERATED@ is the generated password, only locally
    tree.put("upsd.users", "[nutlite-upsmon]\n\tpassword = @GENERATED@\n\tupsmon primary\n")
    tree.put("upsmon.conf", "MONITOR dummy@localhost 1 nutlite-upsmon @GENERATED@ primary\n"
                            "MONITOR far@10.0.0.9 1 nutlite-upsmon @GENERATED@ secondary\n"
                            "POWERDOWNFLAG /run/nut/killpower\n")
    r = tree.setup()
    users = load_upsd_users(tree.nut / "upsd.users").users
    assert list(users) == ["nutlite-upsmon"] and users["nutlite-upsmon"].password == pw
    monitors = load_upsmon_conf(tree.nut / "upsmon.conf").monitors
    assert [(m.system, m.password) for m in monitors] == [("dummy@localhost", pw), ("far@10.0.0.9", "@GENERATED@")]
    assert "upsmon.conf:2:" in r.stderr and "not under /run" not in r.stderr
    assert "@GENERATED@" in (tree.user / "upsmon.conf").read_text(), "the boot partition's file was changed"
    assert pw not in (tree.data / "config-good" / "upsmon.conf").read_text()


# ------------------------------------------------------------------------------------------------
# Host name and SSH


@pytest.mark.parametrize(("text", "want", "complains"), [
    ("pantry-ups\n", "pantry-ups", False),
    ("# the box in the pantry\nups1.example.org\n", "ups1.example.org", False),
    ("my_ups\n", "nutlite", True),
    ("-ups\n", "nutlite", True),
    ("a" * 64 + "\n", "nutlite", True),
    ("two names\n", "nutlite", True),
    (None, "nutlite", False),
])
def test_hostname(tree: Tree, text: str | None, want: str, complains: bool) -> None:
    tree.etc.mkdir()
    (tree.etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\told-name\n")
    if text is not None:
        tree.put("hostname", text)
    r = tree.setup()
    assert r.returncode == 0
    assert (tree.etc / "hostname").read_text() == want + "\n"
    assert (tree.etc / "hosts").read_text() == f"127.0.0.1\tlocalhost\n127.0.1.1\t{want}\n"
    assert ("hostname: expected one host name" in r.stderr) is complains, r.stderr


def ed25519_line(comment: str = "me@pc") -> str:
    name = b"ssh-ed25519"
    blob = len(name).to_bytes(4, "big") + name + (32).to_bytes(4, "big") + bytes(range(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def test_authorized_keys_turn_ssh_on_bad_lines_are_skipped_and_absent_turns_it_off(tree: Tree) -> None:
    good = ed25519_line()
    rsa_as_ed = "ssh-rsa " + good.split()[1]
    tree.put("authorized_keys", f"# my keys\r\n{good}\r\nnot a key at all\r\n{rsa_as_ed} x\r\n"
                                f'from="10.0.0.0/8" {ed25519_line("other")}\r\n')
    r = tree.setup()
    keys = tree.root / ".ssh" / "authorized_keys"
    assert keys.read_text() == f'{good}\nfrom="10.0.0.0/8" {ed25519_line("other")}\n'
    assert mode(tree.root / ".ssh") == 0o700 and mode(keys) == 0o600
    assert "authorized_keys:3: not an SSH public key" in r.stderr
    assert "authorized_keys:4: the key is not a ssh-rsa key" in r.stderr
    if Path("/usr/bin/ssh-keygen").exists():
        made = sorted(p.name for p in (tree.data / "ssh").iterdir())
        assert "ssh_host_ed25519_key" in made and "ssh_host_ed25519_key.pub" in made
        assert mode(tree.data / "ssh" / "ssh_host_ed25519_key") == 0o600
        assert mode(tree.etc / "ssh" / "ssh_host_ed25519_key.pub") == 0o644
        first = (tree.etc / "ssh" / "ssh_host_ed25519_key").read_bytes()
        (tree.etc / "ssh" / "ssh_host_ed25519_key").unlink()
        tree.setup()
        assert (tree.etc / "ssh" / "ssh_host_ed25519_key").read_bytes() == first, "host keys must persist"
    (tree.user / "authorized_keys").unlink()
    tree.setup()
    assert not keys.exists(), "without authorized_keys on the boot partition ssh must stay off"


def test_authorized_keys_without_a_valid_line_keep_ssh_off(tree: Tree) -> None:
    tree.put("authorized_keys", "ssh-ed25519 AAAA-not-base64\n")
    r = tree.setup()
    assert not (tree.root / ".ssh" / "authorized_keys").exists()
    assert "SSH stays off" in r.stderr
    assert not (tree.data / "ssh").exists(), "no host keys are made when ssh stays off"
