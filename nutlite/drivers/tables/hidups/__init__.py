"""usbhid-ups subdriver tables, as data: which HID usage path feeds which NUT variable, status flag,
instant command or writable variable, per vendor family (one module each).

A table is a tuple of entries built with the helpers below:

* ``var(name, path, fmt)`` publishes a variable: ``fmt`` is a printf format applied to the value
  (``"%.0f"``, ``"%.1f"``) or a conversion (a dict lookup, or a function of the value returning a
  string or None); ``rw=N`` makes it writable (NUT's ``RW STRING`` of length N; with ``number``:
  ``RW NUMBER``), ``static`` reads it once at start, ``quick`` reads it at every status poll;
* ``absent(name, path, default)`` publishes a fixed default (``ups.delay.shutdown``) when the path
  exists in the descriptor;
* ``flag(path, bit)`` sets status bit ``bit`` when the value is not 0 (``"!bit"``: when it is 0);
* ``cmd(name, path, value)`` is an instant command writing ``value`` (None: the delay setting the
  command stands for), offered when its report reads (load.off and load.on: when the path exists);
  ``hidden`` commands are building blocks (shutdown.return uses load.on.delay and load.off.delay)
  that are not listed.

The first entry of a name whose path the device has wins, as in NUT. ``claim`` picks the subdriver
of a vendor:product id as NUT 2.8.0 does (its names, versions and claimed ids were checked by running
Debian's usbhid-ups against usbsim with each id); the tables are derived from NUT's documentation, the
captures' decoded paths and what Debian's driver publishes for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Conversion = str | Mapping[int, str] | Callable[[float], "str | None"]


@dataclass(frozen=True)
class Entry:
    """One table line (build it with var, string, absent, flag or cmd)."""

    kind: str  # "var", "absent", "flag", "cmd"
    name: str
    path: str
    conv: Conversion | None = None
    rw: int = 0
    static: bool = False
    quick: bool = False
    value: float | None = None
    hidden: bool = False
    enum: tuple[str, ...] = ()
    string: bool = False  # the value is a string descriptor index
    number: bool = False  # writable as NUT's RW NUMBER (not RW STRING:rw)


def var(name: str, path: str, conv: Conversion = "%.0f", *, rw: int = 0, static: bool = False,
        quick: bool = False, enum: tuple[str, ...] = (), number: bool = False) -> Entry:
    if number and not rw:
        rw = 10
    return Entry("var", name, path, conv, rw=rw, static=static, quick=quick, enum=enum, number=number)


def string(name: str, path: str) -> Entry:
    """A variable holding the text of the string descriptor whose index the field gives."""
    return Entry("var", name, path, "%s", static=True, string=True)


def absent(name: str, path: str, default: str, *, rw: int = 10) -> Entry:
    return Entry("absent", name, path, default, rw=rw)


def flag(path: str, bit: str) -> Entry:
    return Entry("flag", bit, path, quick=True)


#: commands NUT 2.8.0 offers when the descriptor has their path, readable or not (checked through usbsim:
#: every other command needs its report to read)
PATH_ONLY_COMMANDS = ("load.off", "load.on")


def cmd(name: str, path: str, value: float | None = None, *, hidden: bool = False) -> Entry:
    return Entry("cmd", name, path, value=value, hidden=hidden)


# ---- conversions shared by the tables

BEEPER = {1: "disabled", 2: "enabled", 3: "muted"}
TEST_RESULT = {1: "Done and passed", 2: "Done and warning", 3: "Done and error", 4: "Aborted",
               5: "In progress", 6: "No test initiated", 7: "Test scheduled"}
YES_NO = {0: "no", 1: "yes"}
ON_OFF = {0: "off", 1: "on"}


def hid_date(value: float) -> str | None:
    """USB HID Power Device dates: (year - 1980) * 512 + month * 32 + day; 0 is "not set" (NUT 2.8.0,
    through usbsim)."""
    v = int(value)
    if v == 0:
        return "not set"
    if v < 0:
        return None
    return f"{(v >> 9) + 1980:04d}/{(v >> 5) & 0x0F:02d}/{v & 0x1F:02d}"


def kelvin(value: float) -> str:
    return f"{value - 273.15:.1f}"


def beeper_commands(path: str) -> tuple[Entry, ...]:
    return (cmd("beeper.disable", path, 1), cmd("beeper.enable", path, 2), cmd("beeper.mute", path, 3),
            cmd("beeper.off", path, 1), cmd("beeper.on", path, 2))


def delay_entries(base: str, shutdown_default: str = "20", start_default: str = "30", *, rw: int = 10,
                  listed: bool = True, stop: bool = True) -> tuple[Entry, ...]:
    """ups.delay.* defaults, ups.timer.* readings and the delay commands on ``base`` (e.g.
    ``UPS.PowerSummary``)."""
    off, on = f"{base}.DelayBeforeShutdown", f"{base}.DelayBeforeStartup"
    return (
        absent("ups.delay.shutdown", off, shutdown_default, rw=rw),
        absent("ups.delay.start", on, start_default, rw=rw),
        var("ups.timer.shutdown", off, quick=True),
        var("ups.timer.start", on, quick=True),
        cmd("load.off", off, 0),
        cmd("load.on", on, 0),
        cmd("load.off.delay", off, None, hidden=not listed),
        cmd("load.on.delay", on, None, hidden=not listed),
        cmd("shutdown.stop", off, -1, hidden=not stop),
    )


@dataclass(frozen=True)
class Subdriver:
    """One vendor family: NUT's subdriver name and version (``driver.version.data`` is
    ``"<name> <version>"``), the vendor ids it claims, its table and its naming rules."""

    name: str
    version: str
    vendor_ids: tuple[int, ...]
    table: tuple[Entry, ...]
    mfr: str | None = None  # ups.mfr when the device has no manufacturer string
    model: Callable[[str | None, Mapping[str, str]], str | None] | None = None
    pollfreq: int = 30
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: vendor usage names (32-bit usage -> name) for path rendering
    usages: Mapping[int, str] = field(default_factory=dict)
    #: vendor id -> the product ids claimed (a vendor id missing here: every product)
    products: Mapping[int, frozenset[int]] = field(default_factory=dict)
    #: vendor id -> the brand named when a product is not claimed
    labels: Mapping[int, str] = field(default_factory=dict)

    def claims(self, vendor_id: int, product_id: int) -> bool:
        known = self.products.get(vendor_id)
        return vendor_id in self.vendor_ids and (known is None or product_id in known)

    @property
    def version_data(self) -> str:
        return f"{self.name} {self.version}"


def all_subdrivers() -> list[Subdriver]:
    """Every subdriver, in the order NUT tries them (generic last)."""
    from . import apc, cyberpower, generic, mge, others, powercom, tripplite

    return [apc.SUBDRIVER, cyberpower.SUBDRIVER, mge.SUBDRIVER, tripplite.SUBDRIVER, powercom.SUBDRIVER,
            *others.SUBDRIVERS, generic.SUBDRIVER]


#: devices of a supported vendor that need another driver
OTHER_DRIVER = {(0x09AE, 0x0001): "it speaks Tripp Lite's older protocol: use driver = tripplite_usb"}


def subdriver_for(vendor_id: int, name: str | None = None) -> Subdriver | None:
    """The subdriver of ``vendor_id`` (whatever the product), or the one named ``name`` as
    ``subdriver = ...`` chooses (a case-insensitive match on the start of its name)."""
    subs = all_subdrivers()
    if name:
        low = name.lower()
        return next((s for s in subs if s.name.lower().startswith(low)), None)
    return next((s for s in subs if vendor_id in s.vendor_ids), None)


def claim(vendor_id: int, product_id: int, any_product: bool = False) -> tuple[Subdriver | None, str | None]:
    """The subdriver that takes a device, as NUT 2.8.0 picks it (checked through usbsim): the first
    whose vendor id and product id match; with ``any_product`` (``productid`` set in ups.conf) the
    vendor id is enough. Else (None, why) when a subdriver knows the vendor, (None, None) when none does."""
    subs = all_subdrivers()
    ids = f"{vendor_id:04x}:{product_id:04x}"
    if (vendor_id, product_id) in OTHER_DRIVER:
        return None, f"USB device {ids}: {OTHER_DRIVER[(vendor_id, product_id)]}"
    for s in subs:
        if s.claims(vendor_id, product_id):
            return s, None
    if any_product:
        sub = subdriver_for(vendor_id)
        if sub is not None:
            return sub, None
    owner = next((s for s in subs if vendor_id in s.vendor_ids), None)
    if owner is None:
        return None, None
    label = owner.labels.get(vendor_id) or owner.name.split()[0]
    return None, (f"this {label} device ({ids}) is not (or perhaps not yet) supported by usbhid-ups; if it is "
                  f"a HID Power Device, set productid = {product_id:04x} in its ups.conf section to try it anyway")
