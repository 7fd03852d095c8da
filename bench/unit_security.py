#!/usr/bin/env python3
"""systemd's exposure score of each nutlite service unit (systemd-analyze security --offline=true).

The score runs from 0 (fully locked down) to 10 (no sandboxing at all); systemd calls up to 3.9 "OK",
up to 6.9 "MEDIUM", up to 8.9 "EXPOSED" and the rest "UNSAFE". The units are analysed as shipped in
systemd/ (nut-driver@.service as an instance, nut-driver@ups1.service). With --verbose the settings
that still add to a unit's score are listed. Figures, not assertions (tests/test_systemd_units.py
holds the limits).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
SCORE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)")


def exposure(unit: Path, workdir: Path) -> tuple[float, str, list[str]]:
    """(score, systemd's word for it, the lines of the settings that add to the score)."""
    target = workdir / unit.name.replace("@.service", "@ups1.service")
    target.write_text(unit.read_text())
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(target)],
                          capture_output=True, text=True, timeout=60, cwd=workdir)
    match = SCORE.search(proc.stdout + proc.stderr)
    if not match:
        raise RuntimeError(f"systemd-analyze security {unit.name}: no score in its output:\n"
                           f"{proc.stdout}{proc.stderr}")
    costs = [ln.strip() for ln in proc.stdout.splitlines() if ln.lstrip().startswith("✗")]
    return float(match.group(1)), match.group(2), costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unit_security.py",
                                     description="Print systemd's exposure score of each nutlite service unit.")
    parser.add_argument("--verbose", action="store_true", help="list the settings that add to each score")
    args = parser.parse_args(argv)
    if shutil.which("systemd-analyze") is None:
        print("unit_security: systemd-analyze is not installed (it comes with systemd)", file=sys.stderr)
        return 1
    print("systemd-analyze security --offline=true (0 = locked down, 10 = unprotected)")
    with tempfile.TemporaryDirectory(prefix="nutlite-security-") as tmp:
        for unit in sorted(SYSTEMD_DIR.glob("*.service")):
            score, word, costs = exposure(unit, Path(tmp))
            print(f"  {unit.name:<34} {score:4.1f}  {word}")
            if args.verbose:
                for line in costs:
                    print(f"      {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
