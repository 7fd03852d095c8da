#!/bin/sh
# nutlite image: the last step of the root filesystem, run by image/build.py through mmdebstrap's
# --customize-hook on the build machine, with the root filesystem folder as $1.  It makes the Debian
# system an appliance: units enabled, nothing machine-specific left (SSH host keys, machine-id), the
# Pi's kernel command line for a read-only root, and what a UPS appliance never uses pruned.
set -eu
R=$1
say() { printf 'image: %s\n' "$*"; }

# Nothing that must differ between two SD cards: the first boot makes these (docs/image.md).
rm -f "$R"/etc/ssh/ssh_host_*
: >"$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
echo nutlite >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tnutlite\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"

# The services of the appliance.
systemctl --root="$R" enable nut.target nut-driver.target nut-server.service nut-monitor.service \
    nutlite-boot-guard.service nutlite-powerfail-marker.service \
    nutlite-appliance.service systemd-networkd.service ssh.service avahi-daemon.service >/dev/null 2>&1
# The exporter runs inside upsd (nut-server.service.d/nutlite-image.conf): its own unit never starts.
systemctl --root="$R" mask nutlite-exporter.service >/dev/null 2>&1
# Waiting for the network would only delay the boot (nothing here needs network-online.target);
# apt and e2scrub timers have no use on a read-only root.
systemctl --root="$R" disable systemd-networkd-wait-online.service >/dev/null 2>&1 || true
# Nor do binfmt_misc, the kernel's debug and trace file systems, huge pages or the DRM module
# (its drivers are pruned below): each costs seconds of the boot on a slow CPU.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount modprobe@drm.service; do
    systemctl --root="$R" mask "$unit" >/dev/null 2>&1 || true
done
# systemd's generators for what the image has not got: encrypted, verity and integrity volumes, a GPT
# disk, hibernation, offline updates, SysV init scripts (every one here has a native unit), rc.local.
# Each is a process start at boot and at every daemon-reload.
mkdir -p "$R/etc/systemd/system-generators"
for gen in cryptsetup veritysetup integritysetup gpt-auto hibernate-resume system-update sysv rc-local; do
    ln -sf /dev/null "$R/etc/systemd/system-generators/systemd-$gen-generator"
done

# The Pi's cmdline.txt and config.txt again, now that /etc/default/raspi-firmware and
# raspi-extra-cmdline (from image/rootfs) name the root partition by label and make it read-only.
kver=$(ls "$R/lib/modules" | sort -V | tail -n 1)
mounted_proc=no
if [ ! -e "$R/proc/self" ]; then
    mount -t proc proc "$R/proc"
    mounted_proc=yes
fi
chroot "$R" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$kver"
[ "$mounted_proc" = yes ] && umount "$R/proc"
say "cmdline.txt: $(cat "$R/boot/firmware/cmdline.txt")"

# Pruning (docs/image.md lists what and why).
# - kernel modules for hardware a Pi or the QEMU test machine never has, and for file systems and
#   network protocols a UPS appliance never mounts or speaks
M="$R/lib/modules/$kver/kernel"
for d in drivers/gpu drivers/media sound drivers/infiniband drivers/net/wireless drivers/isdn \
    drivers/staging drivers/bluetooth net/bluetooth net/wireless net/mac80211 drivers/iio \
    drivers/input/touchscreen drivers/input/joystick drivers/hwmon/pmbus drivers/nfc net/nfc \
    drivers/scsi/lpfc drivers/scsi/qla2xxx drivers/scsi/megaraid drivers/scsi/mpt3sas drivers/target \
    drivers/net/ethernet/mellanox drivers/net/ethernet/intel drivers/net/ethernet/chelsio \
    drivers/net/ethernet/qlogic drivers/net/ethernet/marvell drivers/net/ethernet/cavium \
    drivers/net/ethernet/hisilicon drivers/net/ethernet/huawei drivers/net/ethernet/amazon \
    drivers/net/ethernet/sfc drivers/net/ethernet/netronome drivers/net/ethernet/mscc \
    drivers/net/can drivers/net/wwan drivers/net/ipa drivers/md drivers/mtd drivers/thunderbolt \
    fs/btrfs fs/xfs fs/ocfs2 fs/gfs2 fs/nfs fs/nfsd fs/ceph fs/smb fs/cifs fs/f2fs fs/jfs fs/nilfs2 \
    fs/reiserfs fs/ubifs fs/udf fs/ntfs3 fs/hfsplus fs/erofs net/ceph net/sunrpc net/netfilter/ipvs \
    net/rxrpc net/sctp net/tipc net/rds net/batman-adv net/openvswitch; do
    rm -rf "${M:?}/$d"
done
depmod -b "$R" "$kver"
# - the kernel and initrd are on the boot partition (the Pi's firmware loads them from there), and
#   raspi-firmware's files were copied there too: the root partition's copies are never read
rm -f "$R/boot/vmlinuz-$kver" "$R/boot/initrd.img-$kver" "$R/boot/System.map-$kver" "$R/boot/config-$kver"
rm -rf "$R/usr/lib/raspi-firmware"
# - apt's package lists and caches (the root is read-only: nothing is installed on the appliance)
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb
rm -rf "$R"/var/cache/debconf/*-old "$R"/var/lib/dpkg/*-old "$R"/var/log/*.log "$R"/var/log/apt/*
# The user's configuration folder on the boot partition (see its README.txt).
mkdir -p "$R/boot/firmware/nutlite"
