"""What ``make image-test`` needs to run the built image: the disk, QEMU with its monitor (QMP), SSH.

* :class:`Disk`: a copy of the image, its partitions, files written onto its FAT boot partition with
  mtools (no mount), the kernel and initrd read from it, and the SHA-256 of a partition;
* :class:`Vm`: ``qemu-system-aarch64 -M virt`` (TCG) booting the Pi's kernel and initrd with the Pi's
  own ``cmdline.txt``, ports forwarded to the host, a USB serial adapter wired to a host pty, the
  console written to a file, and QMP for hot-plug and for pulling the plug.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

QEMU = "qemu-system-aarch64"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Disk:
    """The image under test: partitions read from its MBR."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as fh:
            mbr = fh.read(512)
        assert mbr[510:512] == b"\x55\xaa", f"{path}: no MBR"
        self.parts: list[tuple[int, int]] = []
        for i in range(4):
            e = mbr[446 + 16 * i: 462 + 16 * i]
            if e[4]:
                self.parts.append((int.from_bytes(e[8:12], "little") * 512, int.from_bytes(e[12:16], "little") * 512))

    def _fat(self) -> str:
        return f"{self.path}@@{self.parts[0][0]}"

    def write_boot(self, name: str, text: str) -> None:
        """Write a file into the boot partition (``name`` relative to its root, e.g. nutlite/ups.conf)."""
        tmp = self.path.parent / ("boot-" + name.replace("/", "_"))
        tmp.write_text(text)
        folder = os.path.dirname(name)
        if folder:
            subprocess.run(["mmd", "-D", "s", "-i", self._fat(), "::" + folder], capture_output=True)
        subprocess.run(["mcopy", "-o", "-i", self._fat(), str(tmp), "::" + name], check=True, env=_mtools_env())
        tmp.unlink()

    def delete_boot(self, name: str) -> None:
        subprocess.run(["mdel", "-i", self._fat(), "::" + name], capture_output=True, env=_mtools_env())

    def read_boot(self, name: str) -> bytes:
        return subprocess.run(["mtype", "-i", self._fat(), "::" + name], check=True, capture_output=True,
                              env=_mtools_env()).stdout

    def list_boot(self) -> list[str]:
        out = subprocess.run(["mdir", "-b", "-i", self._fat(), "::/"], check=True, capture_output=True, text=True,
                             env=_mtools_env()).stdout
        return [line.strip().removeprefix("::/") for line in out.splitlines() if line.strip()]

    def extract_boot(self, name: str, dest: Path) -> Path:
        subprocess.run(["mcopy", "-o", "-i", self._fat(), "::" + name, str(dest)], check=True, env=_mtools_env())
        return dest

    def sha256(self, index: int) -> str:
        start, size = self.parts[index]
        h = hashlib.sha256()
        with open(self.path, "rb") as fh:
            fh.seek(start)
            left = size
            while left:
                block = fh.read(min(left, 4 << 20))
                if not block:
                    break
                h.update(block)
                left -= len(block)
        return h.hexdigest()


def _mtools_env() -> dict[str, str]:
    return dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLS_NO_VFAT="0")


class Qmp:
    """QEMU's machine protocol over its unix socket: one command, one answer."""

    def __init__(self, path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(30)
        self.file = self.sock.makefile("rwb")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QMP closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def execute(self, command: str, **arguments: object) -> dict:
        msg: dict[str, object] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"QMP {command}: {reply['error']}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Vm:
    """One run of the image in QEMU (a power-on); :meth:`stop` or the guest's power-off ends it."""

    def __init__(self, disk: Disk, workdir: Path, ups_tty: str, ports: dict[str, int], *, usb_serial: bool = True,
                 serial_number: str = "UPS1234", memory_mib: int = 1024) -> None:
        self.disk = disk
        self.workdir = workdir
        self.ports = ports
        self.ups_tty = ups_tty
        self.serial_number = serial_number
        self.console = workdir / f"console-{int(time.time() * 1000)}.log"
        self.qmp_path = workdir / "qmp.sock"
        kernel = sorted(n for n in disk.list_boot() if n.startswith("vmlinuz-"))[-1]
        initrd = sorted(n for n in disk.list_boot() if n.startswith("initrd.img-"))[-1]
        self.kernel = disk.extract_boot(kernel, workdir / "vmlinuz")
        self.initrd = disk.extract_boot(initrd, workdir / "initrd.img")
        cmdline = disk.read_boot("cmdline.txt").decode().replace("\r", " ").replace("\n", " ").strip()
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{host}-:{guest}"
                       for guest, host in ((3493, ports["upsd"]), (9199, ports["exporter"]), (22, ports["ssh"])))
        self.argv = [
            QEMU, "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", str(memory_mib),
            "-accel", "tcg,thread=multi", "-display", "none", "-monitor", "none",
            "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", f"{cmdline} console=ttyAMA0",
            "-drive", f"file={disk.path},if=none,id=d0,format=raw,cache=unsafe", "-device", "virtio-blk-pci,drive=d0",
            "-netdev", f"user,id=n0,{fwd}", "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-device", "qemu-xhci,id=xhci", "-chardev", f"serial,id=ups,path={ups_tty}",
            "-device", "i6300esb", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-serial", f"file:{self.console}",
        ]
        if usb_serial:
            self.argv += ["-device", self.usb_serial_props()]
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: Qmp | None = None
        self.started = 0.0

    def usb_serial_props(self) -> str:
        return f"usb-serial,bus=xhci.0,chardev=ups,serial={self.serial_number},id=upsdev"

    def start(self) -> Vm:
        with contextlib.suppress(FileNotFoundError):
            self.qmp_path.unlink()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=open(self.workdir / "qemu.err", "ab"),
                                     start_new_session=True)
        self.qmp = Qmp(self.qmp_path)
        return self

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def unplug_ups(self) -> None:
        assert self.qmp is not None
        self.qmp.execute("device_del", id="upsdev")

    def plug_ups(self) -> None:
        assert self.qmp is not None
        props = dict(kv.split("=", 1) for kv in self.usb_serial_props().split(",")[1:])
        self.qmp.execute("device_add", driver="usb-serial", **props)

    def pull_the_plug(self) -> None:
        """The power goes: QEMU stops at once, as a board does when its supply is cut."""
        if self.running() and self.qmp is not None:
            with contextlib.suppress(OSError, ConnectionError, RuntimeError):
                self.qmp.execute("quit")
        if self.wait_exit(10) is None and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.qmp is not None:
            self.qmp.close()
        if self.running():
            self.pull_the_plug()


class Ssh:
    def __init__(self, workdir: Path, port: int) -> None:
        self.key = workdir / "id_ed25519"
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.known_hosts = workdir / "known_hosts"
        self.port = port

    def public_key(self) -> str:
        return (self.key.with_suffix(".pub")).read_text()

    def run(self, command: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", command]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"ssh {command!r}: status {res.returncode}: {res.stdout}{res.stderr}")
        return res


def which(name: str) -> str | None:
    return shutil.which(name)
