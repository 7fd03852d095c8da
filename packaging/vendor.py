"""The pure-Python libraries bookworm lacks, copied into the package from the build venv.

nutlite's snmp-ups needs pysnmp 7 (``pysnmp.hlapi.v3arch.asyncio``) and the pyasn1 0.6 it needs; bookworm
has neither (python3-pysnmp4 is 4.4 with another API, python3-pyasn1 is 0.4.8). Both are pure Python, so
the package stays ``_all``: they are copied from the installed distributions of the Python that runs the
build (``importlib.metadata``: the files its RECORD lists; no network), into /usr/lib/nutlite/vendor,
with their licence texts. /usr/bin/nutlite puts that folder on ``sys.path`` before dist-packages.

One small patch makes SNMPv3 privacy work with bookworm's python3-cryptography 38: pysnmp 7.1.30 imports
TripleDES from ``cryptography.hazmat.decrepit.ciphers`` (cryptography 43 and later) and CFB from
``cryptography.hazmat.decrepit.ciphers.modes`` (47 and later) and, when that fails, turns off every
privacy protocol. The patch falls back to the old places of the same classes
(``cryptography.hazmat.primitives.ciphers``), where cryptography 38 to 46 have them.
See docs/packaging.md.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

VENDOR_DIR = "usr/lib/nutlite/vendor"
# distribution -> the top-level packages it must bring (pysmi is build/test only: not vendored)
VENDORED = {"pysnmp": ("pysnmp",), "pyasn1": ("pyasn1",)}
# the oldest versions that serve: nutlite.snmp.client's API (pysnmp 7.1), what pysnmp 7.1 asks for (pyasn1)
MINIMUM = {"pysnmp": (7, 1), "pyasn1": (0, 6, 4)}
REPO = Path(__file__).resolve().parent.parent
_FALLBACK_DES = ("    try:\n        from cryptography.hazmat.decrepit.ciphers import algorithms\n"
                 "    except ImportError:  # nutlite: cryptography < 43 has TripleDES here\n"
                 "        from cryptography.hazmat.primitives.ciphers import algorithms\n")
# (distribution, file, the line as upstream has it, what replaces it)
PATCHES = (
    ("pysnmp", "pysnmp/proto/secmod/rfc3414/priv/des.py",
     "    from cryptography.hazmat.decrepit.ciphers import algorithms\n", _FALLBACK_DES),
    ("pysnmp", "pysnmp/proto/secmod/eso/priv/des3.py",
     "    from cryptography.hazmat.decrepit.ciphers import algorithms\n", _FALLBACK_DES),
    ("pysnmp", "pysnmp/proto/secmod/rfc3826/priv/aes.py",
     "    from cryptography.hazmat.decrepit.ciphers.modes import CFB\n",
     "    try:\n        from cryptography.hazmat.decrepit.ciphers.modes import CFB\n"
     "    except ImportError:  # nutlite: cryptography < 47 has CFB here\n"
     "        from cryptography.hazmat.primitives.ciphers.modes import CFB\n"),
)


class VendorError(Exception):
    """The build Python cannot provide a library to vendor (the message says what to install)."""


@dataclass(frozen=True)
class Vendored:
    name: str
    version: str
    license: str  # SPDX name
    license_text: str  # verbatim, from the distribution's licence file
    top_level: tuple[str, ...]
    files: int
    size: int  # bytes of the copied files


def _license_name(dist: importlib.metadata.Distribution, text: str) -> str:
    meta = dist.metadata
    name = meta.get("License-Expression") or meta.get("License") or ""
    if name and len(name) < 40:
        return name
    # pysnmp states its licence only by the file: a BSD licence with the two redistribution clauses
    if "Redistribution and use in source and binary forms" in text and "endorse or promote" not in text:
        return "BSD-2-Clause"
    raise VendorError(f"vendor: cannot tell the licence of {dist.metadata['Name']} {dist.version}: "
                      f"add it to packaging/vendor.py")


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def find_distribution(name: str) -> importlib.metadata.Distribution:
    """The build venv's distribution: the running Python's if it is a venv, else the checkout's .venv,
    else the running Python's (a system Python)."""
    in_venv = sys.prefix != sys.base_prefix
    places: list[list[str]] = [sys.path] if in_venv else []
    places += [[str(p)] for p in sorted((REPO / ".venv").glob("lib/python3*/site-packages"))]
    if not in_venv:
        places.append(sys.path)
    for path in places:
        dist = next(iter(importlib.metadata.distributions(name=name, path=path)), None)
        if dist is None:
            continue
        if _version_tuple(dist.version) < MINIMUM.get(name, ()):
            raise VendorError(f"vendor: {name} {dist.version} at {dist.locate_file('')} is older than "
                              f"{'.'.join(map(str, MINIMUM[name]))}, which nutlite needs "
                              f"(pip install -U {name} in the build venv)")
        return dist
    raise VendorError(f"vendor: no '{name}' distribution to copy into {VENDOR_DIR}, neither in the Python "
                      f"running the build ({sys.executable}) nor in {REPO / '.venv'} (make deps installs it)")


def vendor(root: Path, names: dict[str, tuple[str, ...]] = VENDORED) -> list[Vendored]:
    """Copy each distribution's modules under ``root/VENDOR_DIR`` and patch them; return what was copied."""
    dest = root / VENDOR_DIR
    done = []
    for name, tops in names.items():
        dist = find_distribution(name)
        licence_text = ""
        count = size = 0
        for rel in dist.files or ():
            path = PurePosixPath(str(rel))
            if path.parts[0].endswith(".dist-info"):
                if path.parent.name == "licenses" or path.name.upper().startswith(("LICENSE", "COPYING")):
                    licence_text = Path(str(dist.locate_file(rel))).read_text()
                continue
            if path.parts[0] not in tops or "__pycache__" in path.parts or path.suffix not in (".py", ".typed"):
                continue
            src = Path(str(dist.locate_file(rel)))
            if not src.is_file():
                raise VendorError(f"vendor: {name} {dist.version} lists {rel} but {src} is missing "
                                  f"(reinstall it: pip install --force-reinstall {name}=={dist.version})")
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            target.chmod(0o644)
            count += 1
            size += target.stat().st_size
        for top in tops:
            if not (dest / top / "__init__.py").is_file():
                raise VendorError(f"vendor: {name} {dist.version} has no package '{top}' to copy")
        if not licence_text:
            raise VendorError(f"vendor: {name} {dist.version} has no licence file in its .dist-info")
        done.append(Vendored(name, dist.version, _license_name(dist, licence_text), licence_text.rstrip() + "\n",
                             tops, count, size))
    for name, rel, old, new in PATCHES:
        if name not in names:
            continue
        path = dest / rel
        text = path.read_text() if path.is_file() else ""
        if text.count(old) != 1:
            raise VendorError(f"vendor: {rel} of this {name} does not have the line the cryptography fallback "
                              f"replaces ({old.strip()!r}): check packaging/vendor.py's PATCHES against it")
        path.write_text(text.replace(old, new))
    return done


def copyright_stanzas(done: list[Vendored]) -> str:
    """Debian copyright-format Files paragraphs for the vendored files, each with its licence's verbatim text."""
    patched = {p[0] for p in PATCHES}
    out = []
    for lib in done:
        holders = [ln.removeprefix("Copyright (c)").removeprefix("Copyright").strip()
                   for ln in lib.license_text.splitlines() if ln.startswith("Copyright")]
        change = " with the cryptography fallback of packaging/vendor.py" if lib.name in patched else " unchanged"
        out.append(f"Files: {' '.join(f'{VENDOR_DIR}/{t}/*' for t in lib.top_level)}\n"
                   f"Copyright: {chr(10).join(' ' + h if i else h for i, h in enumerate(holders))}\n"
                   f"Comment: {lib.name} {lib.version} from the Python Package Index, copied{change}.\n"
                   f"License: {lib.license}\n"
                   + "".join(f" {ln.rstrip()}\n" if ln.strip() else " .\n" for ln in lib.license_text.splitlines()))
    return "\n".join(out)
