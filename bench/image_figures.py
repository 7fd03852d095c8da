"""The SD-card image's figures, from the last ``make image`` and ``make image-test`` runs.

Building the image takes minutes and booting it more, so ``make bench`` does not redo them: it prints
what build/nutlite-<version>-arm64.build-figures (written by image/build.py) and .test-figures
(written by image/test_image.py) recorded, against the targets of docs/image.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# figure -> (target, unit, label)
TARGETS = {
    "total_s": (600, "s", "image build (make image)"),
    "rootfs_build_s": (None, "s", "  of which mmdebstrap (root filesystem)"),
    "xz_s": (None, "s", "  of which xz"),
    "image_bytes": (200 * 10**6, "bytes", "compressed image (target 200 MB)"),
    "rootfs_before_prune_mib": (None, "MiB", "root filesystem before pruning"),
    "rootfs_mib": (None, "MiB", "root filesystem after pruning"),
    "boot_to_upsd_s": (60, "s", "boot to upsd answering (QEMU TCG, first boot)"),
    "stack_pss_mib": (round(40 * 10**6 / 2**20, 1), "MiB", "driver+upsd+upsmon+exporter PSS in the VM (target 40 MB)"),
    "pss_driver_mib": (None, "MiB", "  driver (nutdrv_qx)"),
    "pss_upsd_mib": (None, "MiB", "  upsd (the exporter runs inside it in the image)"),
    "pss_upsmon_mib": (None, "MiB", "  upsmon (both processes)"),
    "pss_exporter_mib": (None, "MiB", "  exporter (its own process: older images)"),
}


def read(path: Path) -> dict[str, float]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            continue
    return out


def main() -> int:
    sys.path.insert(0, str(REPO / "image"))
    from build import image_name

    name = image_name()
    print("SD-card image (figures of the last make image / make image-test; targets from docs/image.md)")
    for suffix in ("build-figures", "test-figures"):
        path = REPO / "build" / f"{name}.{suffix}"
        if not path.exists():
            print(f"  {path.name}: none yet (run {'make image' if suffix == 'build-figures' else 'make image-test'})")
            continue
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        print(f"  {path.name} ({stamp}):")
        figures = read(path)
        order = [k for k in TARGETS if k in figures] + [k for k in figures if k not in TARGETS]
        for key in order:
            value = figures[key]
            target, unit, label = TARGETS.get(key, (None, "", key))
            shown = f"{value / 2**20:.0f} MiB" if unit == "bytes" else f"{value:.1f} {unit}".strip()
            goal = ""
            if target is not None:
                tshown = f"{target / 2**20:.0f} MiB" if unit == "bytes" else f"{target} {unit}"
                goal = f"  (target <= {tshown}: {'met' if value <= target else 'NOT met'})"
            print(f"    {label:<62} {shown}{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
