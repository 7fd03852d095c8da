"""The vendor families whose devices use the plain Power Device Class paths (generic.TABLE): Belkin and
Liebert, Phoenixtec-built Liebert, iDowell, openUPS, Ever, Salicru, Legrand, Delta, Arduino, Powervar.

Names, versions and the product ids each claims are what Debian's NUT 2.8.0 usbhid-ups prints and
takes, checked through usbsim with each vendor/product id on a Power Device capture ("Using
subdriver: ..." or "This ... device ... is not (or perhaps not yet) supported"). Arduino and
Powervar match in NUT 2.8.0 but use another interface number, so their versions could not be read
there: theirs here are placeholders. EcoFlow (3746) is not in NUT 2.8.0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import Entry, Subdriver, cmd
from .cyberpower import cps_model
from .generic import TABLE

Model = Callable[[str | None, Mapping[str, str]], str | None]

OUTLET = "UPS.OutletSystem.Outlet"
#: Delta (Minuteman): the delays are the outlet's; no ups.delay.*, ups.timer.* or beeper commands (NUT 2.8.0,
#: through usbsim)
DELTA_TABLE: tuple[Entry, ...] = (
    *(e for e in TABLE if not e.name.startswith(("ups.delay.", "ups.timer.", "load.", "shutdown.", "beeper."))),
    cmd("load.off", f"{OUTLET}.DelayBeforeShutdown", 0),
    cmd("load.on", f"{OUTLET}.DelayBeforeStartup", 0),
    cmd("load.off.delay", f"{OUTLET}.DelayBeforeShutdown", None, hidden=True),
    cmd("load.on.delay", f"{OUTLET}.DelayBeforeStartup", None, hidden=True),
)


def unknown_model(product: str | None, _values: Mapping[str, str]) -> str | None:
    return product.strip() if product and product.strip() else "unknown"


def _sub(name: str, version: str, products: dict[int, frozenset[int]], labels: dict[int, str],
         mfr: str | None = None, model: Model = cps_model, table: tuple[Entry, ...] = TABLE) -> Subdriver:
    return Subdriver(name, version, tuple(products), table, mfr=mfr, model=model, products=products,
                     labels=labels)


SUBDRIVERS: list[Subdriver] = [
    _sub("Belkin/Liebert HID", "0.18", {0x050D: frozenset({0x0912, 0x0980, 0x0F51}),
                                        0x10AF: frozenset({0x0001, 0x0004, 0x0008})},
         {0x050D: "Belkin", 0x10AF: "Liebert"}, mfr="Belkin", model=unknown_model),
    _sub("Phoenixtec/Liebert HID", "0.41", {0x06DA: frozenset({0xFFFF})}, {0x06DA: "Liebert"}),
    _sub("iDowell HID", "0.2", {0x075D: frozenset({0x0300})}, {0x075D: "iDowell"}),
    _sub("openUPS HID", "0.5", {0x04D8: frozenset({0xD004, 0xD005})}, {0x04D8: "openUPS"}),
    _sub("Ever HID", "0.1", {0x2E51: frozenset({0x0000, 0xFFFF}), 0x0483: frozenset()},
         {0x2E51: "Ever", 0x0483: "Ever"}),
    _sub("Salicru HID", "0.3", {0x2E66: frozenset({0x0201, 0x0300})}, {0x2E66: "Salicru"}),
    _sub("Legrand HID", "0.2", {0x1CB0: frozenset({0x0032, 0x0038})}, {0x1CB0: "Legrand"}),
    _sub("Delta UPS HID", "0.6", {0x05DD: frozenset({0x041B})}, {0x05DD: "Delta"}, mfr="Delta", table=DELTA_TABLE),
    _sub("Arduino HID", "0.2", {0x2341: frozenset({0x0036}), 0x2A03: frozenset({0x0036, 0x0040})},
         {0x2341: "Arduino", 0x2A03: "Arduino"}),
    _sub("Powervar HID", "0.1", {0x4234: frozenset({0x0002})}, {0x4234: "Powervar"}),
]

#: NUT's explore subdriver (the ``explore`` flag, with ``vendorid``): takes any device, publishes
#: nothing from it (NUT dumps its paths to the debug log)
EXPLORE = Subdriver("EXPLORE HID", "0.2", (), ())
