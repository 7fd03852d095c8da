"""The SD-card image's own files (image/), checked without building or booting it.

``make image-test`` boots the real image; these catch the mistakes that would only show there, in
seconds: a unit systemd rejects, an fstab that would leave the root writable or hang the boot, a boot
partition README that no longer lists what ``nutlite appliance setup`` reads.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_systemd_units import SYSTEMD_DIR, assert_verified, verifiable_copies

from nutlite.appliance.configs import FILES
from nutlite.appliance.units import RELOAD_UNIT

IMAGE = Path(__file__).resolve().parent.parent / "image"
ROOTFS = IMAGE / "rootfs"
UNIT = ROOTFS / "etc/systemd/system/nutlite-appliance.service"
RELOAD = ROOTFS / "etc/systemd/system" / RELOAD_UNIT


def fstab() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOTFS / "etc/fstab").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            spec, mountpoint, fstype, opts, freq, passno = line.split()
            entries[mountpoint] = [spec, fstype, opts, freq, passno]
    return entries


def test_fstab_root_read_only_data_persistent_nothing_blocks_the_boot() -> None:
    entries = fstab()
    assert set(entries) == {"/", "/boot/firmware", "/var/lib/nutlite"}
    # overlayroot turns the root's entry into the overlay's; the lower layer stays read-only
    spec, fstype, opts, _, passno = entries["/"]
    assert (spec, fstype, passno) == ("LABEL=NUTROOT", "ext4", "0") and "ro" in opts.split(",")
    # the FAT partition is read-only (a power cut cannot damage it); a missing one does not stop the boot
    spec, fstype, opts, _, _ = entries["/boot/firmware"]
    assert (spec, fstype) == ("LABEL=NUTBOOT", "vfat")
    assert {"ro", "nofail"} <= set(opts.split(","))
    # the data partition is checked at boot and never blocks it
    spec, fstype, opts, _, passno = entries["/var/lib/nutlite"]
    assert (spec, fstype, passno) == ("LABEL=NUTDATA", "ext4", "2")
    assert {"rw", "nofail"} <= set(opts.split(","))
    # under QEMU TCG udev can take a minute to show the partitions: systemd's own default wait
    for point in ("/boot/firmware", "/var/lib/nutlite"):
        assert "x-systemd.device-timeout=90s" in entries[point][2].split(",")


def test_kernel_command_line_makes_the_root_read_only() -> None:
    extra = (ROOTFS / "etc/default/raspi-extra-cmdline").read_text().split()
    assert "ro" in extra and "overlayroot=tmpfs:recurse=0" in extra  # recurse=0: the data partition stays real
    assert "ROOTPART=LABEL=NUTROOT" in (ROOTFS / "etc/default/raspi-firmware").read_text()


def test_journal_in_ram_and_capped() -> None:
    text = (ROOTFS / "etc/systemd/journald.conf.d/nutlite.conf").read_text()
    assert "Storage=volatile" in text and "RuntimeMaxUse=" in text


def test_boot_readme_lists_every_file_the_appliance_reads() -> None:
    readme = (IMAGE / "boot-README.txt").read_text()
    for name in (*FILES, "hostname", "authorized_keys"):
        assert f"\n  {name} " in readme, f"boot-README.txt does not list {name}"


def test_avahi_advertises_nut_on_3493() -> None:
    text = (ROOTFS / "etc/avahi/services/nut.service").read_text()
    assert "<type>_nut._tcp</type>" in text and "<port>3493</port>" in text


def test_customize_script_is_valid_shell() -> None:
    subprocess.run(["sh", "-n", str(IMAGE / "customize.sh")], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", "-s", "sh", str(IMAGE / "customize.sh")], check=True)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_image_units_verify(tmp_path: Path) -> None:
    """The appliance units and the drop-ins, with the package's units, pass ``systemd-analyze verify``."""
    unitdir = verifiable_copies(tmp_path, [UNIT, RELOAD, SYSTEMD_DIR / "nut-monitor.service"])
    for dropin in sorted((ROOTFS / "etc/systemd/system").glob("*.service.d/*.conf")):
        target = unitdir / dropin.parent.name
        target.mkdir(exist_ok=True)
        shutil.copy(dropin, target / dropin.name)
    assert_verified([unitdir / UNIT.name, unitdir / RELOAD.name, unitdir / "nut-monitor.service"], unitdir)


def test_deferred_reload_runs_after_the_nut_services_and_reloads() -> None:
    """The reload the appliance asks for (by this name) waits for upsd and upsmon, and reloads."""
    text = RELOAD.read_text()
    after = " ".join(ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("After=")).split()
    assert {"nut-server.service", "nut-monitor.service"} <= set(after)
    assert "ExecStart=/bin/systemctl daemon-reload" in text.splitlines()
    assert "[Install]" not in text, "started by nutlite-appliance.service only, never enabled"
