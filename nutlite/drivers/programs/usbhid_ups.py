"""usbhid-ups: UPSes of the USB HID Power Device Class (NUT-FACTS §8.3).

The USB layer is nutlite.usb (matching settings, the pyusb transport, the reconnection policy), the
HID layer nutlite.hid (descriptor, reports), the vendor tables nutlite.drivers.tables.hidups. pyusb blocks,
so every USB call runs in one worker thread owned by the driver (the transport is thread-confined);
the asyncio side only schedules them.

Polling: a quick poll (status bits and timers) every ``pollinterval``, a full one every ``pollfreq``
seconds (30), and the interrupt IN reports applied as they arrive (not with ``pollonly``; with
``interruptonly`` there is no quick poll). A lost device makes the data stale (one log line), is
looked for again per nutlite.usb.reconnect (``waitbeforereconnect``) and gives fresh data when back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from nutlite.drivers.framework.core import Driver, DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option, usb_match_options
from nutlite.drivers.tables.hidups import Subdriver, all_subdrivers, claim, subdriver_for
from nutlite.drivers.tables.hidups.engine import HidEngine, Quirks, Reading
from nutlite.drivers.tables.hidups.others import EXPLORE
from nutlite.hid import HidError, ReportType, is_power_device, parse_descriptor
from nutlite.hid.fixups import fix_cyberpower
from nutlite.usb import (
    Disconnected,
    Link,
    ReconnectPolicy,
    Stalled,
    UsbConfigError,
    UsbDeviceInfo,
    UsbError,
    UsbMatcher,
    UsbTimeout,
)

#: Megatec/Q1 UPSes behind a USB bridge that some users point usbhid-ups at
MEGATEC_BRIDGES = {(0x0665, 0x5161), (0x06DA, 0x0003), (0x0F03, 0x0001), (0xFFFF, 0x0000), (0x0001, 0x0000)}
IRQ_TIMEOUT_MS = 250
QX_HINT = ("it is a Megatec/Q1 UPS behind a USB-HID bridge (its report descriptor has only vendor-defined "
           "usages, no Power Device page): use driver = nutdrv_qx (or blazer_usb) for it")

_OPTIONS: tuple[Option, ...] = (
    *usb_match_options("; also lets a subdriver take a product it does not list"),
    Option("subdriver", "use this subdriver (the start of its name: APC, CyberPower, MGE ...) whatever the ids"),
    Option("lowbatt", "low battery level in percent (accepted as NUT 2.8.0 does; the device's own limit is used)"),
    Option("pollfreq", "seconds between full updates (default 30)"),
    Option("offdelay", "delay before the UPS cuts the load at shutdown (seconds, default 20)"),
    Option("ondelay", "delay before the UPS restores the load (seconds, default 30)"),
    Option("interruptsize", "bytes to read from the interrupt endpoint (default: its packet size)"),
    Option("waitbeforereconnect", "seconds to wait before looking for a lost device again"),
    Option("lbrb_log_delay_sec", "report LB and RB raised together only once they lasted this many seconds"),
    Option("pollonly", "do not use the interrupt endpoint, only poll", flag=True),
    Option("interruptonly", "no quick polls: status from interrupt reports (and the full updates)", flag=True),
    Option("onlinedischarge", "old name of onlinedischarge_onbattery", flag=True),
    Option("onlinedischarge_onbattery", "a UPS reporting OL and DISCHRG together is on battery (OB)", flag=True),
    Option("onlinedischarge_calibration", "a UPS reporting OL and DISCHRG together is calibrating (CAL)",
           flag=True),
    Option("disable_fix_report_desc", "do not correct known-broken report descriptors", flag=True),
    Option("explore", "take any HID device of vendorid with NUT's explore subdriver (publishes only its ids)",
           flag=True),
    Option("replay", "talk to the device recorded in this capture file (.capture, or a NUT debug-log .dev "
           "dump) instead of a USB device"),
    Option("maxreport", "accepted for compatibility (no effect)", flag=True),
    Option("noscanlangid", "accepted for compatibility (no effect)", flag=True),
)


def _int(driver: Driver, key: str, default: int, lo: int = 0) -> int:
    raw = driver.getval(key)
    if raw is None:
        return default
    try:
        n = int(raw.strip())
    except ValueError:
        n = lo - 1
    if n < lo:
        raise DriverError(f"{key} = '{raw}': expected a whole number, at least {lo}")
    return n


class UsbHidUps(Driver):
    name: ClassVar[str] = "usbhid-ups"
    description: ClassVar[str] = "Generic HID driver"
    version: ClassVar[str] = "0.47"
    options: ClassVar[tuple[Option, ...]] = _OPTIONS

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        self.pollfreq = _int(self, "pollfreq", 30, 1)
        self.offdelay = _int(self, "offdelay", 20)
        self.ondelay = _int(self, "ondelay", 30)
        self.irq_size = _int(self, "interruptsize", 0) or None
        self.pollonly = self.testvar("pollonly")
        self.interruptonly = self.testvar("interruptonly")
        self.quirks = Quirks(
            onlinedischarge_onbattery=self.testvar("onlinedischarge_onbattery") or self.testvar("onlinedischarge"),
            onlinedischarge_calibration=self.testvar("onlinedischarge_calibration"),
            lbrb_log_delay_sec=float(_int(self, "lbrb_log_delay_sec", 0)))
        where = f"UPS [{config.upsname}]"
        try:
            self.matcher = UsbMatcher.from_config(config.values, where)
            self.policy = ReconnectPolicy.from_config(config.values, self.matcher, where, config.upsname)
        except UsbConfigError as exc:
            raise DriverError(str(exc)) from None
        if self.testvar("explore") and self.getval("vendorid") is None:
            raise DriverError("explore needs vendorid: set vendorid = <4 hex digits> of the device to explore")
        self._pool: ThreadPoolExecutor | None = None
        self.dev: Any = None
        self.info: UsbDeviceInfo | None = None
        self.sub: Subdriver | None = None
        self.engine: HidEngine | None = None
        self._next_full = 0.0
        self._irq_task: asyncio.Task[None] | None = None
        self._refused: list[str] = []

    # ---- the worker thread

    async def _io(self, fn: Any, *args: Any) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usbhid")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _choose(self, vendor_id: int, product_id: int) -> tuple[Subdriver | None, str | None]:
        """The subdriver for a device (``subdriver`` forces one, ``explore`` takes any device with the
        generic table), or None and why not."""
        wanted = self.getval("subdriver")
        if wanted:
            sub = subdriver_for(vendor_id, wanted)
            if sub is None:
                names = ", ".join(s.name for s in all_subdrivers())
                raise DriverError(f"subdriver = '{wanted}': no such subdriver (there are: {names})")
            return sub, None
        if self.testvar("explore"):
            return EXPLORE, None
        return claim(vendor_id, product_id, any_product=self.getval("productid") is not None)

    def _accept(self, info: UsbDeviceInfo) -> bool:
        if (info.vendor_id, info.product_id) in MEGATEC_BRIDGES:
            return True
        sub, why = self._choose(info.vendor_id, info.product_id)
        if why:
            self._refused.append(why)
        return sub is not None

    def _open(self, matcher: UsbMatcher) -> tuple[Any, bytes]:
        from nutlite.usb.transport import backend_for, open_device

        self._refused = []
        try:
            dev = open_device(matcher, backend_for(self.getval("replay")), accept=self._accept)
        except UsbError as exc:
            if self._refused:
                raise UsbError(self._refused[0]) from exc
            raise
        try:
            raw = dev.report_descriptor()
        except BaseException:
            dev.close()
            raise
        return dev, raw

    def _close_dev(self) -> None:
        if self.dev is not None:
            with contextlib.suppress(Exception):
                self.dev.close()
            self.dev = None

    def _read(self, rtype: ReportType, rid: int) -> bytes | None:
        assert self.engine is not None
        try:
            length = self.engine.descriptor.report_length(rtype, rid)
            return self.dev.get_report(rtype, rid, length)
        except (Stalled, UsbTimeout, HidError):
            return None

    def _string(self, index: int) -> str | None:
        try:
            return self.dev.get_string(index)
        except Disconnected:
            raise
        except (UsbError, ValueError):
            return None

    def _read_irq(self) -> bytes | None:
        if self.dev is None:
            return None
        return self.dev.read_interrupt(IRQ_TIMEOUT_MS, self.irq_size)

    # ---- start

    async def initups(self) -> None:
        try:
            self.dev, raw = await self._io(self._open, self.matcher)
        except UsbError as exc:
            raise DriverError(str(exc)) from None
        info = self.info = self.dev.info
        try:
            descriptor = parse_descriptor(raw)
        except HidError as exc:
            await self._io(self._close_dev)
            raise DriverError(f"USB device {info.ids}: its HID report descriptor is malformed: {exc}") from None
        if not is_power_device(descriptor):
            await self._io(self._close_dev)
            if 0xFF00 in descriptor.pages() or (info.vendor_id, info.product_id) in MEGATEC_BRIDGES:
                raise DriverError(f"USB device {info.describe()} is not a HID Power Device: {QX_HINT}")
            raise DriverError(f"USB device {info.describe()} is not a UPS: its HID report descriptor has no "
                              "Power Device or Battery System usages")
        sub, _why = self._choose(info.vendor_id, info.product_id)
        if sub is None:  # a Megatec bridge id that has Power Device usages after all
            sub = all_subdrivers()[-1]
        if sub.extra.get("fix") == "cyberpower" and not self.testvar("disable_fix_report_desc"):
            for change in fix_cyberpower(descriptor):
                self.log.info("fixing the report descriptor: %s", change)
        self.sub = sub
        self.engine = HidEngine(descriptor, sub, self.quirks)
        self.log.info("using subdriver: %s", sub.version_data)
        self.policy.connected(time.monotonic(), info)

    async def initinfo(self) -> None:
        assert self.engine is not None and self.sub is not None and self.info is not None
        try:
            reading = await self._io(self.engine.discover, self._read, self._string)
        except UsbError as exc:
            raise DriverError(f"USB device {self.info.describe()}: reading the UPS's reports: {exc}") from None
        info, sub = self.info, self.sub
        self.setinfo("driver.version.data", sub.version_data)
        self.setinfo("driver.version.usb", self._libusb_version())
        if self.getinfo("driver.parameter.pollfreq") is None:
            self.setinfo("driver.parameter.pollfreq", str(self.pollfreq))
        overrides = {"ups.delay.shutdown": self.getval("offdelay"), "ups.delay.start": self.getval("ondelay")}
        for name, val in overrides.items():
            if val is not None and name in self.engine.absent:
                self.engine.absent[name] = reading.values[name] = str(int(val))
        self._apply(reading)
        for name, e in self.engine.vars.items():
            if e.rw and e.number:
                self.setflags(name, "RW", "NUMBER")
            elif e.rw:
                self.setflags(name, "RW", "STRING")
                self.setaux(name, e.rw)
                for choice in e.enum:
                    self.addenum(name, choice)
        for name in self.engine.absent:
            e = next(x for x in sub.table if x.kind == "absent" and x.name == name)
            self.setflags(name, "RW", "STRING")
            self.setaux(name, e.rw)
        mfr = (info.vendor or "").strip() or sub.mfr
        if mfr:
            self.setinfo("ups.mfr", mfr)
        model = sub.model(info.product, {v.name: v.value for v in self.state.sorted_vars()}) if sub.model else None
        if model:
            self.setinfo("ups.model", model)
        if sub.name == "APC HID" and info.product and " FW:" in info.product:
            # "Back-UPS 500 FW: 6.5.I USB FW: c1 ": NUT keeps the blanks after each "FW:" (checked on
            # 2.8.0: ups.firmware " 6.5.I", ups.firmware.aux " c1 ")
            fw = info.product.split(" FW:", 1)[1]
            main, _, aux = fw.partition(" USB FW:")
            self.setinfo("ups.firmware", main)
            if aux:
                self.setinfo("ups.firmware.aux", aux)
        if info.serial and info.serial.strip():
            self.setinfo("ups.serial", info.serial.strip())
        self.setinfo("ups.vendorid", f"{info.vendor_id:04x}")
        self.setinfo("ups.productid", f"{info.product_id:04x}")
        for name in self.engine.listed_commands():
            self.addcmd(name)
        self._next_full = time.monotonic() + self.pollfreq
        if self.runner is not None and not self.pollonly and self.dev.ep_in is not None:
            self._irq_task = asyncio.ensure_future(self._irq_loop())

    @staticmethod
    def _libusb_version() -> str:
        try:
            import ctypes
            import ctypes.util

            name = ctypes.util.find_library("usb-1.0") or "libusb-1.0.so.0"
            lib = ctypes.CDLL(name)

            class _Ver(ctypes.Structure):
                _fields_ = [("major", ctypes.c_uint16), ("minor", ctypes.c_uint16), ("micro", ctypes.c_uint16),
                            ("nano", ctypes.c_uint16), ("rc", ctypes.c_char_p), ("describe", ctypes.c_char_p)]

            lib.libusb_get_version.restype = ctypes.POINTER(_Ver)
            v = lib.libusb_get_version().contents
            return f"libusb-{v.major}.{v.minor}.{v.micro} (pyusb)"
        except (OSError, AttributeError, ValueError):
            return "libusb-1.0 (pyusb)"

    # ---- applying readings

    def _apply(self, reading: Reading) -> None:
        for name, value in reading.values.items():
            self.setinfo(name, value)
        for name in reading.removed:
            if self.getinfo(name) is not None:
                self.delinfo(name)
        assert self.sub is not None
        compute = self.sub.extra.get("realpower")
        if compute is not None and self.getinfo("ups.power.nominal") is not None:
            rp = compute({"ups.power.nominal": self.getinfo("ups.power.nominal") or "",
                          "ups.load": self.getinfo("ups.load") or ""})
            if rp is not None:
                self.setinfo("ups.realpower", rp)
        if reading.status:
            self.status_init()
            for word in reading.status:
                self.status_set(word)
            self.alarm_init()
            for text in reading.alarms:
                self.alarm_set(text)
            self.status_commit()
            self.alarm_commit()

    # ---- polling and reconnection

    def _lost(self, reason: str) -> None:
        if self.info is not None:  # the policy's line names the device already
            for prefix in (f"USB device {self.info.describe()}: ", f"USB device {self.info.ids}: "):
                reason = reason.removeprefix(prefix)
        tr = self.policy.lost(time.monotonic(), reason)
        if tr is not None:
            self.log.log(tr.level, "%s", tr.message)
        self.datastale()

    async def _reconnect(self) -> bool:
        now = time.monotonic()
        if not self.policy.due(now):
            return False
        await self._io(self._close_dev)
        try:
            self.dev, _raw = await self._io(self._open, self.policy.matcher)
        except UsbError as exc:
            self.policy.attempt_failed(time.monotonic(), str(exc))
            self.log.debug("USB device not back yet: %s", exc)
            return False
        self.info = self.dev.info
        tr = self.policy.connected(time.monotonic(), self.info)
        if tr is not None:
            self.log.log(tr.level, "%s", tr.message)
        self._next_full = 0.0
        if not self.pollonly and self._irq_task is None and self.runner is not None:
            self._irq_task = asyncio.ensure_future(self._irq_loop())
        return True

    async def updateinfo(self) -> None:
        assert self.engine is not None
        if self.dev is None or self.policy.state is not Link.CONNECTED:
            if not await self._reconnect():
                self.datastale()
                return
        now = time.monotonic()
        full = now >= self._next_full
        if not full and self.interruptonly:
            return
        try:
            reading = await self._io(self.engine.poll, self._read, self._string, full)
        except Disconnected as exc:
            self._lost(str(exc))
            return
        except UsbError as exc:
            self.log.warning("poll failed: %s", exc)
            self.datastale()
            return
        if full:
            self._next_full = now + self.pollfreq
        self._apply(reading)
        self.dataok()

    async def _irq_loop(self) -> None:
        try:
            while True:
                if self.dev is None or self.policy.state is not Link.CONNECTED or self.engine is None:
                    await asyncio.sleep(0.5)
                    continue
                try:
                    report = await self._io(self._read_irq)
                except Disconnected as exc:
                    self._lost(str(exc))
                    continue
                except UsbError as exc:
                    self.log.debug("interrupt read: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                if report:
                    try:
                        reading = self.engine.interrupt(report, self._string_cached)
                    except HidError as exc:
                        self.log.debug("interrupt report %s ignored: %s", report.hex(" "), exc)
                        continue
                    self._apply(reading)
        except asyncio.CancelledError:
            pass

    @staticmethod
    def _string_cached(_index: int) -> str | None:
        return None  # string variables are static: interrupt reports never update them

    # ---- commands, settings, killpower

    def _send(self, path_field: Any, value: float) -> None:
        assert self.engine is not None
        data = self.engine.build_set(path_field, value, self._read)
        self.dev.set_report(path_field.report_type, path_field.report_id, data)

    async def _write(self, name: str, value: float) -> Status:
        assert self.engine is not None
        found = self.engine.command_value(name)
        if found is None:
            return Status.INVALID
        _entry, f = found
        try:
            await self._io(self._send, f, value)
        except (UsbError, HidError) as exc:
            self.log.warning("%s failed: %s", name, exc)
            return Status.FAILED
        return Status.HANDLED

    def _delay(self, var: str, default: int) -> int:
        try:
            return int(self.getinfo(var) or default)
        except ValueError:
            return default

    async def instcmd(self, cmd: str, param: str | None) -> Status:
        if self.engine is None or self.dev is None:
            return Status.FAILED
        cmd = cmd.lower()
        delays = all(self.engine.command_value(n) is not None for n in ("load.on.delay", "load.off.delay"))
        if cmd == "shutdown.return":
            if not (self.engine.can_shutdown() and delays):
                return Status.INVALID
            r = await self._write("load.on.delay", self._delay("ups.delay.start", self.ondelay))
            if r != Status.HANDLED:
                return r
            return await self._write("load.off.delay", self._delay("ups.delay.shutdown", self.offdelay))
        if cmd == "shutdown.stayoff":
            if not (self.engine.can_shutdown() and delays):
                return Status.INVALID
            return await self._write("load.off.delay", self._delay("ups.delay.shutdown", self.offdelay))
        if cmd == "beeper.toggle":
            cmd = "beeper.enable" if self.getinfo("ups.beeper.status") == "disabled" else "beeper.disable"
        entry = self.engine.cmds.get(cmd)
        if entry is None or (entry.hidden and cmd not in ("load.off.delay", "load.on.delay")):
            return Status.UNKNOWN
        value = entry.value
        if value is None:
            var, default = ("ups.delay.start", self.ondelay) if cmd == "load.on.delay" else (
                "ups.delay.shutdown", self.offdelay)
            try:
                value = float(param) if param else self._delay(var, default)
            except ValueError:
                return Status.INVALID
            if not math.isfinite(value):
                return Status.INVALID
        return await self._write(cmd, value)

    async def setvar(self, name: str, value: str) -> Status:
        if self.engine is None:
            return Status.FAILED
        if name in self.engine.absent:
            try:
                n = int(value)
            except ValueError:
                return Status.INVALID
            self.engine.absent[name] = str(n)
            self.setinfo(name, str(n))
            return Status.HANDLED
        e = self.engine.vars.get(name)
        if e is None or not e.rw:
            return Status.UNKNOWN
        if e.enum and value not in e.enum:
            return Status.INVALID
        f = self.engine.field(e.path)
        try:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            await self._io(self._send, f, number)
        except ValueError:
            return Status.INVALID
        except (UsbError, HidError) as exc:
            self.log.warning("SET %s failed: %s", name, exc)
            return Status.FAILED
        try:
            now = await self._io(self.engine.read_var, name, self._read, self._string)
        except UsbError:
            now = None
        self.setinfo(name, now if now is not None else value)
        return Status.HANDLED

    async def shutdown(self) -> bool:
        """Killpower as NUT: shutdown.return (offdelay/ondelay), else shutdown.reboot, else load.off.delay."""
        for cmd in ("shutdown.return", "shutdown.reboot", "load.off.delay"):
            if await self.instcmd(cmd, None) == Status.HANDLED:
                self.log.warning("UPS told to shut down (%s)", cmd)
                return True
        self.log.error("shutdown failed: the UPS has no shutdown.return, shutdown.reboot or load.off.delay")
        return False

    async def cleanup(self) -> None:
        if self._irq_task is not None:
            self._irq_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._irq_task
            self._irq_task = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._io(self._close_dev)
            self._pool.shutdown(wait=False)
            self._pool = None


def usb_ids() -> list[tuple[int, int | None, str, str]]:
    """(vendor, product or None for any, driver, comment) for every id a subdriver claims: the source of
    the generated udev rules (``nutlite udev-rules``)."""
    from nutlite.drivers.tables.hidups import all_subdrivers

    ids: list[tuple[int, int | None, str, str]] = []
    for sub in all_subdrivers():
        for vendor in sub.vendor_ids:
            label = sub.labels.get(vendor) or sub.name.removesuffix(" HID")
            products = sub.products.get(vendor)
            if products is None:
                ids.append((vendor, None, "usbhid-ups", label))
            else:
                ids.extend((vendor, p, "usbhid-ups", label) for p in sorted(products))
    return ids
