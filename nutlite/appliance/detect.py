"""Finding the attached UPSes when the boot partition has no ups.conf: the USB UPSes (what
``nutlite scan`` lists) and UPSes on USB-serial adapters (probed briefly as a Megatec Q1 UPS and as an
APC Smart-UPS, 2400 baud 8N1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nutlite.parseconf import quote

Say = Callable[[str], None]
PROBE_WAIT = 0.8  # seconds for each of the two questions: at most 2 s a port in all


@dataclass
class Found:
    """A UPS found on the bus: the driver and the ups.conf settings that select it."""

    driver: str
    settings: list[tuple[str, str]] = field(default_factory=list)  # after driver, in order
    what: str = ""


def usb_upses(say: Say) -> list[Found]:
    """The USB UPSes a nutlite driver takes, as ``nutlite scan`` finds them (bus number left out: it
    may change from one boot to the next)."""
    from nutlite.tools.scan import scan, section_items
    from nutlite.usb import UsbError

    try:
        found, notes = scan()
    except UsbError as exc:
        say(f"cannot look for USB UPSes: {exc}")
        return []
    except Exception as exc:  # noqa: BLE001 - a broken USB stack must not stop the boot step
        say(f"cannot look for USB UPSes: {type(exc).__name__}: {exc}")
        return []
    for note in notes:
        say(note)
    out = []
    for info, driver in found:
        items = [(k, v) for k, v in section_items(info, driver) if k not in ("driver", "bus")]
        out.append(Found(driver, items, f"USB {info.describe()}"))
    return out


def serial_ports(dev: Path) -> list[Path]:
    """The USB-serial ports: their /dev/serial/by-id names, and any ttyUSBn/ttyACMn without one."""
    by_id = dev / "serial" / "by-id"
    ports = sorted(by_id.iterdir()) if by_id.is_dir() else []
    named = {p.resolve() for p in ports}
    for pattern in ("ttyUSB*", "ttyACM*"):
        ports += [p for p in sorted(dev.glob(pattern)) if p.resolve() not in named]
    return ports


def _read_until(port: Any, marker: bytes, wait: float) -> bytes:
    """What ``port`` (a pyserial port) sends within ``wait`` seconds, or up to ``marker``."""
    got = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and marker not in got:
        got += port.read(64)
    return got


def probe(path: Path) -> tuple[str | None, str]:
    """(driver, what was found) for the UPS on serial port ``path``, or (None, why not)."""
    import serial

    from nutlite.drivers.protocols.q1 import Q1Error, parse_q1

    try:
        port = serial.Serial(str(path), 2400, bytesize=8, parity="N", stopbits=1, timeout=0.1,
                             write_timeout=0.5, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        return None, f"cannot open it ({exc})"
    try:
        port.reset_input_buffer()
        port.write(b"Y")  # APC: enter smart mode
        reply = _read_until(port, b"SM", PROBE_WAIT)
        if b"SM" in reply:
            return "apcsmart", "APC Smart-UPS"
        port.write(b"\r")  # ends the Y for a UPS that wants CR-terminated commands
        time.sleep(0.1)
        port.reset_input_buffer()
        port.write(b"Q1\r")
        reply = _read_until(port, b"\r", PROBE_WAIT)
        line = reply.split(b"\r")[0].decode("latin-1").strip("\n\x00 ")
        if line.startswith("("):
            try:
                parse_q1(line)
            except Q1Error:
                return None, f"a reply to Q1 that is not a Q1 status ({line[:50]!r})"
            return "nutdrv_qx", "Megatec Q1 UPS"
        return None, "no answer as a Megatec Q1 UPS or an APC Smart-UPS"
    except (serial.SerialException, OSError) as exc:
        return None, f"cannot talk to it ({exc})"
    finally:
        port.close()


def serial_upses(dev: Path, say: Say) -> list[Found]:
    out = []
    for path in serial_ports(dev):
        driver, what = probe(path)
        if driver is None:
            say(f"serial port {path}: {what}; not configured")
            continue
        out.append(Found(driver, [("port", str(path))], f"{what} on {path}"))
    return out


def section_names(count: int) -> list[str]:
    return ["ups" if i == 0 else f"ups{i + 1}" for i in range(count)]


def detect(dev: Path, say: Say) -> list[Found]:
    """Every UPS found: USB ones first, then serial ones."""
    return usb_upses(say) + serial_upses(dev, say)


def ups_conf_text(found: list[Found], header: str, no_ups: str) -> str:
    out = [header]
    if not found:
        out.append(no_ups)
    for name, f in zip(section_names(len(found)), found, strict=True):
        out.append(f"\n# {f.what}\n[{name}]\n\tdriver = {f.driver}\n")
        out.extend(f"\t{key} = {quote(value)}\n" for key, value in f.settings)
    return "".join(out)
