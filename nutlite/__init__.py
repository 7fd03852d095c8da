"""nutlite: a lean, NUT-compatible UPS stack."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# The Debian package's private pysnmp 7 and pyasn1 0.6, which bookworm lacks (docs/packaging.md): after
# the standard library, before dist-packages, so that an older copy from Debian or pip never shadows
# them. Here rather than in /usr/bin/nutlite so that `python3 -m nutlite` (upsdrvctl's children) gets it.
_VENDOR = "/usr/lib/nutlite/vendor"
if _VENDOR not in _sys.path and _os.path.isdir(_VENDOR):
    _sys.path.insert(next((i for i, p in enumerate(_sys.path) if p.rstrip("/").endswith("-packages")),
                          len(_sys.path)), _VENDOR)
