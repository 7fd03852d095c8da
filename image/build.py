"""Build the nutlite Raspberry Pi SD-card image: build/nutlite-<version>-arm64.img.xz.

usage: python3 image/build.py [--out DIR] [--work DIR] [--keep] [--no-compress]

Run as root (``make image``). On the way it installs the Debian tools it needs (mmdebstrap,
qemu-user-static, genimage, mtools, ...), mounts binfmt_misc if it is not mounted and checks that arm64
programs run, builds the nutlite package (packaging/build_deb.py), then:

1. mmdebstrap makes a Debian bookworm arm64 root filesystem in a folder: Debian's linux-image-arm64
   and raspi-firmware (Pi 3/3+/4/400/CM3/CM4/Zero 2 W), systemd with networkd, openssh-server, avahi,
   overlayroot and the nutlite package; the files of image/rootfs/ go on top;
2. the customize step (image/customize.sh) makes it an appliance: the units enabled, no SSH host
   keys, an empty machine-id, the Pi's kernel command line with a read-only root under
   overlayroot=tmpfs, and what a UPS appliance never uses pruned;
3. genimage writes an MBR disk image with three partitions, without loop devices or mounts:
   NUTBOOT (FAT, 256 MiB: firmware, kernel, initrd, the user's nutlite/ folder), NUTROOT (ext4, the
   read-only root) and NUTDATA (ext4, 64 MiB, the little that must survive a reboot);
4. xz compresses it; the sha256 and the package manifest (dpkg-query -W) are written beside it.

Apt's downloads are kept in build/apt-cache between builds (nothing else is cached).
See docs/image.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "image"
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main non-free-firmware",
    "deb http://deb.debian.org/debian bookworm-updates main non-free-firmware",
    "deb http://deb.debian.org/debian-security bookworm-security main non-free-firmware",
)
# What the appliance runs on, besides what the nutlite package pulls in (python3 and its libraries).
PACKAGES = (
    "systemd-sysv", "udev", "dbus", "kmod", "netbase", "iproute2", "e2fsprogs",
    "linux-image-arm64", "raspi-firmware", "initramfs-tools", "busybox", "overlayroot",
    "openssh-server", "avahi-daemon", "avahi-utils", "libnss-mdns",
    "python3-cryptography",  # SNMPv3 privacy for snmp-ups (a Recommends of the deb; Recommends are off here)
)
# Host tools: Debian package -> a program it provides (checked before installing).
HOST_TOOLS = {
    "mmdebstrap": "mmdebstrap", "qemu-user-static": "qemu-aarch64-static", "binfmt-support": "update-binfmts",
    "arch-test": "arch-test", "genimage": "genimage", "mtools": "mcopy", "dosfstools": "mkfs.vfat",
    "e2fsprogs": "mke2fs", "fdisk": "sfdisk", "xz-utils": "xz", "dpkg-dev": "dpkg-scanpackages",
}
# The initramfs holds only these modules (MODULES=list): the Pi's SD card (sdhci_iproc for the Pi 4's
# emmc2, bcm2835 sdhost), ext4, overlay for overlayroot, and virtio for the QEMU test.
INITRD_MODULES = ("sdhci_iproc", "bcm2835", "reset_raspberrypi", "mmc_block", "ext4", "crc32c_generic",
                  "overlay", "virtio_blk", "virtio_pci", "usb_storage", "uas", "xhci_pci")
BOOT_MIB = 256
DATA_MIB = 64
ROOT_SLACK_MIB = 96  # free space left in the root filesystem (it is read-only: only for fsck's needs)


def say(msg: str) -> None:
    print(f"image: {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"image: error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, check=True, text=True, **kw)  # type: ignore[call-overload]
    except FileNotFoundError:
        fail(f"{cmd[0]} is not installed")
    except subprocess.CalledProcessError as exc:
        fail(f"{' '.join(cmd[:3])}... failed with status {exc.returncode}")
    raise AssertionError  # unreachable


def version() -> str:
    """The package's version (nutlite/__init__.py, as packaging/build_deb.py names the .deb)."""
    sys.path.insert(0, str(REPO))
    from nutlite import __version__

    return __version__


def image_name() -> str:
    """build/<this>.img.xz, .manifest, .build-figures, .test-figures"""
    return f"nutlite-{version()}-arm64"


def host_tools() -> None:
    missing = [pkg for pkg, prog in HOST_TOOLS.items() if not shutil.which(prog)]
    if missing:
        say(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        say("mounting binfmt_misc")
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
    if not (binfmt / "qemu-aarch64").exists():
        run(["update-binfmts", "--enable", "qemu-aarch64"])
    check = subprocess.run(["arch-test", "arm64"], capture_output=True, text=True)
    if check.returncode != 0:
        fail(f"this machine cannot run arm64 programs through qemu-user ({check.stdout.strip()}); "
             "check /proc/sys/fs/binfmt_misc/qemu-aarch64 (update-binfmts --enable qemu-aarch64)")


def build_deb(out: Path) -> Path:
    run([sys.executable, str(REPO / "packaging" / "build_deb.py"), "--out", str(out)])
    debs = sorted(out.glob(f"nutlite_{version()}_*.deb"))
    if not debs:
        fail(f"packaging/build_deb.py made no nutlite_{version()}_*.deb in {out}")
    return debs[-1]


def du_mib(path: Path) -> float:
    out = subprocess.run(["du", "-s", "--block-size=1", "-x", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[0]) / 2**20


def rootfs(target: Path, deb: Path, cache: Path, sizes: dict[str, float]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    modules = " ".join(INITRD_MODULES)
    essential = (
        'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" && '
        'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/nutlite.conf" && '
        f'printf "%s\\n" {modules} > "$1/usr/share/initramfs-tools/modules.d/nutlite"'
    )
    cmd = [
        "mmdebstrap", "--arch=arm64", "--variant=minbase", "--components=main,non-free-firmware",
        "--aptopt=Apt::Install-Recommends \"false\"",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-include=/usr/share/doc/nutlite/*",
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*", "--dpkgopt=path-exclude=/usr/share/lintian/*",
        "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
        "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
        # apt's downloads kept between builds (mmdebstrap(1), "--skip=download/empty")
        "--skip=download/empty", "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives/"',
        f'--setup-hook=sync-in "{cache}" /var/cache/apt/archives/',
        f"--essential-hook={essential}",
        f"--include={','.join(PACKAGES)}",
        f"--include={deb}",
        f'--customize-hook=sync-out /var/cache/apt/archives "{cache}"',
        f'--customize-hook=sync-in "{HERE / "rootfs"}" /',
        '--customize-hook=du -s --block-size=1 -x "$1" > "$1/../size-before"',
        f'--customize-hook="{HERE / "customize.sh"}" "$1"',
        SUITE, str(target), *MIRRORS,
    ]
    t0 = time.monotonic()
    run(cmd)
    sizes["rootfs_build_s"] = time.monotonic() - t0
    before = (target.parent / "size-before").read_text().split()[0]
    sizes["rootfs_before_prune_mib"] = int(before) / 2**20
    sizes["rootfs_mib"] = du_mib(target)


def genimage(work: Path, root: Path, img: Path) -> None:
    """An MBR image of three partitions from the rootfs folder (genimage runs mkdosfs/mcopy and
    mke2fs -d: no loop device, no mount)."""
    # The boot partition gets /boot/firmware, the root partition the rest (with an empty
    # /boot/firmware to mount it on); the data partition starts empty.
    boot = work / "boot"
    if boot.exists():
        shutil.rmtree(boot)
    (root / "boot/firmware").rename(boot)
    (root / "boot/firmware").mkdir()
    (boot / "nutlite").mkdir(exist_ok=True)
    shutil.copy(HERE / "boot-README.txt", boot / "nutlite" / "README.txt")
    root_mib = int(du_mib(root) * 1.08) + ROOT_SLACK_MIB
    cfg = work / "genimage.cfg"
    tmp = work / "genimage-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    cfg.write_text(f"""\
image boot.vfat {{
    vfat {{
        label = "NUTBOOT"
        extraargs = "-F 32"
    }}
    size = {BOOT_MIB}M
    srcpath = "{boot}"
    temporary = true
}}
image root.ext4 {{
    ext4 {{
        label = "NUTROOT"
        use-mke2fs = true
        extraargs = "-E root_owner=0:0 -m 0"
    }}
    size = {root_mib}M
    srcpath = "{root}"
    temporary = true
}}
image data.ext4 {{
    ext4 {{
        label = "NUTDATA"
        use-mke2fs = true
        extraargs = "-E root_owner=0:0"
    }}
    size = {DATA_MIB}M
    empty = true
    temporary = true
}}
image {img.name} {{
    hdimage {{
        partition-table-type = "mbr"
        align = 4M
    }}
    partition boot {{
        partition-type = 0xC
        bootable = true
        image = "boot.vfat"
    }}
    partition root {{
        partition-type = 0x83
        image = "root.ext4"
    }}
    partition data {{
        partition-type = 0x83
        image = "data.ext4"
    }}
}}
""")
    run(["genimage", "--config", str(cfg), "--tmppath", str(tmp), "--outputpath", str(img.parent),
         "--inputpath", str(tmp), "--rootpath", str(root)], stdout=subprocess.DEVNULL)


def unmount_below(path: Path) -> None:
    """Unmount what a failed mmdebstrap run left mounted in the work folder (deepest first)."""
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="image/build.py", description=(
        "Build the nutlite Raspberry Pi SD-card image (Debian bookworm arm64, read-only root) as "
        "build/nutlite-<version>-arm64.img.xz, with its sha256 and package manifest. Run as root."))
    p.add_argument("--out", default=str(REPO / "build"), metavar="DIR", help="where the image goes (build/)")
    p.add_argument("--work", metavar="DIR", help="work folder (default build/image-work, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the work folder and the uncompressed image")
    p.add_argument("--no-compress", action="store_true", help="stop at the uncompressed .img")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        fail("run as root (make image): mmdebstrap and the image's file owners need it")
    t_start = time.monotonic()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work).resolve() if args.work else out / "image-work"
    if work.exists():
        unmount_below(work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    name = image_name()
    img = out / f"{name}.img"
    sizes: dict[str, float] = {}

    host_tools()
    say("building the nutlite package")
    deb = build_deb(work / "deb")
    say(f"building the arm64 root filesystem with mmdebstrap ({SUITE})")
    root = work / "rootfs"
    rootfs(root, deb, out / "apt-cache", sizes)
    say(f"root filesystem: {sizes['rootfs_mib']:.0f} MiB ({sizes['rootfs_before_prune_mib']:.0f} MiB "
        f"before pruning), built in {sizes['rootfs_build_s']:.0f} s")
    manifest = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\n"],
                              capture_output=True, text=True, check=True).stdout
    (out / f"{name}.manifest").write_text(manifest)
    say(f"{len(manifest.splitlines())} packages, listed in {out / (name + '.manifest')}")
    say("writing the disk image with genimage")
    img.unlink(missing_ok=True)
    genimage(work, root, img)
    say(f"{img}: {img.stat().st_size / 2**20:.0f} MiB")
    result = img
    if not args.no_compress:
        xz = out / f"{name}.img.xz"
        xz.unlink(missing_ok=True)
        t0 = time.monotonic()
        run(["xz", "-T2", "-3", "-k", "-f", str(img)])  # -3: 94 MiB in 40 s here; -6: 83 MiB in 105 s
        sizes["xz_s"] = time.monotonic() - t0
        result = xz
        if not args.keep:
            img.unlink()
        say(f"{xz}: {xz.stat().st_size / 2**20:.0f} MiB (xz in {sizes['xz_s']:.0f} s)")
    digest = sha256(result)
    (result.parent / (result.name + ".sha256")).write_text(f"{digest}  {result.name}\n")
    if not args.keep:
        shutil.rmtree(work)
    total = time.monotonic() - t_start
    (out / f"{name}.build-figures").write_text(
        "".join(f"{k}={v:.1f}\n" for k, v in sorted(sizes.items())) + f"total_s={total:.1f}\n"
        + f"image_bytes={result.stat().st_size}\n")
    say(f"done in {total / 60:.1f} min: {result} (sha256 {digest[:16]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
