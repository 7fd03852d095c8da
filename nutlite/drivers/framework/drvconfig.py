"""A driver's settings: its ups.conf section (plus the globals) with ``-x`` values on top, and which
settings the driver core itself takes (NUT-FACTS §2)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nutlite.config import UpsConf, confpath, load_ups_conf, statepath
from nutlite.drivers.framework.core import DriverError

if TYPE_CHECKING:
    from nutlite.drivers.framework.core import Driver

log = logging.getLogger("nutlite.driver")


@dataclass
class Option:
    """A driver option (``-x name=value``, or a flag) and its help text."""

    name: str
    help: str
    flag: bool = False


def usb_match_options(productid_help: str = "") -> tuple[Option, ...]:
    """The USB device matching settings every USB driver takes (interpreted by nutlite.usb.match)."""
    return (
        Option("vendorid", "the USB vendor id to match (4 hex digits; a regular expression)"),
        Option("productid", "the USB product id to match (4 hex digits; a regular expression)" + productid_help),
        Option("vendor", "a regular expression the USB manufacturer string must match"),
        Option("product", "a regular expression the USB product string must match"),
        Option("serial", "a regular expression the USB serial number must match"),
        Option("bus", "the USB bus to match (a regular expression, e.g. 001)"),
        Option("device", "the USB device number on its bus to match (a regular expression)"),
        Option("busport", "the USB port on its hub to match (a regular expression)"),
        Option("usb_set_altinterface", "accepted for compatibility (no effect)"),
    )


# Settings the driver core interprets itself; accepted for every driver and not published as
# driver.parameter.* (port/pollinterval/synchronous are published with their defaults).
CORE_SILENT = {
    "driver", "desc", "sdorder", "user", "group", "debug_min", "maxretry", "retrydelay", "maxstartdelay",
    "chroot", "driverpath", "statepath", "nowait", "libusb_debug", "sdcommands", "allow_killpower",
}
CORE_PUBLISHED = ("port", "pollinterval", "synchronous")
CORE_FLAGS = ("nolock", "ignorelb", "allow_killpower")


@dataclass
class DriverConfig:
    """A driver's settings: its ups.conf section (plus globals) with ``-x`` values on top."""

    upsname: str
    driver: str
    values: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)
    confpath: Path = field(default_factory=confpath)
    statepath: Path = field(default_factory=lambda: Path("/run/nut"))
    user: str | None = None  # -u, else the setting
    group: str | None = None  # -g, else the setting
    debug: int = 0
    pollinterval_arg: int | None = None  # -i

    def get(self, key: str, default: str | None = None) -> str | None:
        if key in self.values:
            return self.values[key]
        return self.globals.get(key, default)

    @property
    def port(self) -> str:
        return self.values.get("port", "")

    @property
    def pollinterval(self) -> int:
        if self.pollinterval_arg is not None:
            return self.pollinterval_arg
        v = self.get("pollinterval", "2")
        try:
            n = int(v or "2")
        except ValueError:
            raise DriverError(f"pollinterval: expected a whole number of seconds, got '{v}'") from None
        if n < 1:
            raise DriverError(f"pollinterval: expected at least 1 second, got {n}")
        return n

    @property
    def run_as_user(self) -> str | None:
        return self.user or self.get("user")

    @property
    def run_as_group(self) -> str | None:
        return self.group or self.get("group")

    @property
    def sockname(self) -> str:
        return f"{self.driver}-{self.upsname}"

    @property
    def sockpath(self) -> Path:
        return self.statepath / self.sockname

    @property
    def pidpath(self) -> Path:
        return pid_dir(self.statepath) / f"{self.sockname}.pid"

    def has_flag(self, name: str) -> bool:
        return name in self.flags


def pid_dir(state: Path) -> Path:
    """Where driver pid files go: ``$NUT_ALTPIDPATH`` (as NUT) or STATEPATH."""
    alt = os.environ.get("NUT_ALTPIDPATH")
    return Path(alt) if alt else Path(state)


def load_config(upsname: str, driver_name: str | None = None, extra: Iterable[str] = (),
                ups_conf: UpsConf | None = None) -> DriverConfig:
    """The settings for ``-a <upsname>``: ups.conf section + ``-x key=value`` words.

    Raises :class:`ConfigError` (bad ups.conf) or :class:`DriverError` (no such section, wrong driver).
    """
    conf = ups_conf if ups_conf is not None else load_ups_conf()
    for w in conf.warnings:
        log.warning("%s", w)
    sec = conf.find(upsname)
    if sec is None:
        raise DriverError(f"section [{upsname}] not found in {conf.path}")
    if driver_name and sec.driver != driver_name:
        raise DriverError(f"UPS [{sec.name}] is configured for driver {sec.driver} in {conf.path}, not {driver_name}")
    cfg = DriverConfig(sec.name, sec.driver, dict(sec.values), list(sec.flags), dict(conf.globals),
                       confpath(), statepath(conf))
    apply_extra(cfg, extra)
    return cfg


def apply_extra(cfg: DriverConfig, extra: Iterable[str]) -> None:
    """``-x key=value`` sets a value, ``-x flag`` a flag (after ups.conf, so they win)."""
    for item in extra:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not key:
            raise DriverError(f"-x {item}: expected key=value or a flag name")
        if sep:
            cfg.values[key] = value
        elif key not in cfg.flags:
            cfg.flags.append(key)


def validate_options(cls: type[Driver], cfg: DriverConfig) -> None:
    """Refuse settings neither the core nor the driver knows, as NUT does."""
    known_values = {o.name.lower() for o in cls.options if not o.flag} | CORE_SILENT | set(CORE_PUBLISHED)
    known_flags = {o.name.lower() for o in cls.options if o.flag} | set(CORE_FLAGS)
    for key in cfg.values:
        low = key.lower()
        if low in known_values or low.startswith(("default.", "override.")):
            continue
        raise DriverError(
            f"'{key}' is not a setting of the {cls.name} driver "
            f"(see 'nutlite {cls.name} -h' for the ones it takes)")
    for flag in cfg.flags:
        if flag.lower() not in known_flags:
            raise DriverError(f"'{flag}' is not a flag of the {cls.name} driver "
                              f"(see 'nutlite {cls.name} -h' for the ones it takes)")
