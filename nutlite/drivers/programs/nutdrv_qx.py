"""nutdrv_qx: UPSes speaking the Megatec "Q1" family on a serial port or a USB bridge (NUT-FACTS §8.4).

The protocol is :mod:`nutlite.drivers.protocols.q1` (sans-IO), the port :mod:`nutlite.drivers.transports.serialport`.
This module is the driver on top: the protocol probe (``voltronic-qs``, ``mustek``, ``megatec``, then
the plain ``q1`` fallback, or ``protocol = ...``), the variables, the instant commands, the writable
``ups.delay.shutdown``/``ups.delay.start`` and killpower (``S<n>R<mmmm>`` from ``offdelay``/``ondelay``,
``R0000`` with ``stayoff``). :class:`QxDriver` also carries what :mod:`nutlite.drivers.programs.blazer_ser`
changes (the older driver of the same protocol).

Every status reply is published whole: all its variables and ``ups.status`` together, in the same poll
(whose changes the driver runner hands to the socket clients as one write), so upsd never shows the
status of one reply with the voltages of another. NUT 2.8.0's nutdrv_qx refreshes only the status between its full
updates (every ``pollfreq`` s); here the reply has been read anyway, so ``pollfreq`` is accepted and
published but changes nothing.

Faults never stop the driver: no reply, a garbled or truncated reply, or the port disappearing mark
the data stale with one log line saying what arrived; the port is reopened as soon as it is back.

USB: ``port = auto`` (or any port with a USB matching setting: ``vendorid``, ``productid``, ``vendor``,
``product``, ``serial``, ``bus``, ``device``, ``busport``) talks to the UPS through a USB-serial bridge
(nutlite.drivers.transports.q1usb: cypress, phoenix, ippon, krauler, fabula, hunnox), picked by ``subdriver``
(which then needs ``vendorid`` and ``productid``, as NUT) or by the device's ids. A lost device makes
the data stale (one log line) and is looked for again (``waitbeforereconnect``); the line for its
return says how long it was gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from nutlite.drivers.framework.core import DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option, usb_match_options
from nutlite.drivers.protocols import q1
from nutlite.drivers.transports import q1usb
from nutlite.drivers.transports.serialport import PortError, SerialDriver, SerialPort
from nutlite.usb import SETTINGS as USB_SETTINGS
from nutlite.usb import ReconnectPolicy, UsbConfigError, UsbMatcher

COMMON_OPTIONS: tuple[Option, ...] = (
    Option("offdelay", "delay before UPS shutdown (seconds, 12..600; default 30)"),
    Option("ondelay", "delay before UPS startup (default 180 seconds)"),
    Option("runtimecal", "parameters of the runtime calculation: runtime1,load1,runtime2,load2"),
    Option("chargetime", "nominal charge time of the UPS battery (seconds, default 43200)"),
    Option("idleload", "minimum load used in the runtime calculation (percent, default 10)"),
    Option("cablepower", "cable power of the serial interface: normal, reverse, both, none"),
    Option("protocol", "communication protocol to use (skips the detection)"),
)

USB_OPTIONS: tuple[Option, ...] = (
    *usb_match_options(),
    Option("langid_fix", "language id for the krauler bridge's strings (0x409 or 0x4095)"),
    Option("noscanlangid", "do not scan for a working language id (accepted; the first one is used)", flag=True),
    Option("waitbeforereconnect", "seconds to wait before looking for a lost USB device again"),
    Option("replay", "talk to the USB device recorded in this capture file (.capture with megatec lines, "
           "or a NUT debug-log .dev) instead of the bus"),
)


class QxDriver(SerialDriver):
    """The Q1 driver; class attributes select nutdrv_qx's or blazer_ser's ways."""

    name: ClassVar[str] = "nutdrv_qx"
    description: ClassVar[str] = "Generic Q* USB/Serial driver"
    version: ClassVar[str] = "0.32"
    options: ClassVar[tuple[Option, ...]] = (
        *COMMON_OPTIONS,
        Option("stayoff", "after a shutdown when FSD arises, the UPS stays off (does not come back with the power)", flag=True),
        Option("pollfreq", "seconds between full updates (default 30; accepted, changes nothing here)"),
        Option("subdriver", "serial-over-USB subdriver: cypress, phoenix, phoenixtec, ippon, krauler, fabula, hunnox"),
        *USB_OPTIONS,
    )
    ondelay_minutes: ClassVar[bool] = False  # blazer_ser takes ondelay in minutes
    ondelay_max: ClassVar[int] = 599940
    publish_vendor_as_device: ClassVar[bool] = True  # nutdrv_qx: device.mfr/model; blazer: ups.mfr/model
    static_type: ClassVar[bool] = True  # nutdrv_qx publishes ups.type once, at start
    writable_delays: ClassVar[bool] = True
    probe_protocols: ClassVar[bool] = True
    # blazer_ser: with runtimecal and a guessed voltage range, the first charge is judged between the
    # nominal voltage and 115 % of it (observed on 2.8.0)
    runtime_start_from_nominal: ClassVar[bool] = False
    usb_only: ClassVar[bool] = False  # blazer_usb
    usb_capable: ClassVar[bool] = True  # blazer_ser: serial ports only
    usb_subdrivers: ClassVar[dict[str, str]] = q1usb.NUTDRV_QX_SUBDRIVERS
    usb_auto: ClassVar[dict[tuple[int, int], str]] = q1usb.AUTO
    usb_min_lengths: ClassVar[dict[str, int]] = {}  # blazer_usb: shortest F / I string replies taken

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        self.serial: SerialPort | q1usb.UsbLink | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.usb = self._usb_link() if self.usb_only or self._wants_usb() else None
        self.protocol: q1.Protocol | None = None
        self.runtime: q1.RuntimeModel | None = None
        self.batt_low: float | None = None
        self.batt_high: float | None = None
        self._start_range: tuple[float, float] | None = None  # for the runtime model's first charge
        self._pending_first: q1.Q1Reply | None = None
        # checked and published as NUT does; every reply is published whole (see the module docstring)
        self.pollfreq = self._int_setting("pollfreq", 30, 1, 10**9, "Poll frequency") if self.probe_protocols else 0
        self.offdelay = self._int_setting("offdelay", 30, *q1.OFFDELAY_RANGE, "Shutdown delay")
        default_on = 3 if self.ondelay_minutes else 180
        self.ondelay = self._int_setting("ondelay", default_on, 0, self.ondelay_max, "Start delay")

    # -- settings
    def _int_setting(self, key: str, default: int, lo: int, hi: int, what: str) -> int:
        raw = self.getval(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise DriverError(f"{key}: expected a whole number, got '{raw}'") from None
        if not lo <= value <= hi:
            raise DriverError(f"{what} '{value}' out of range [{lo}..{hi}] (setting '{key}')")
        return value

    def _float_setting(self, key: str, default: float) -> float:
        raw = self.getval(key)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise DriverError(f"{key}: expected a number, got '{raw}'") from None

    @property
    def start_delay_seconds(self) -> int:
        return self.ondelay * 60 if self.ondelay_minutes else self.ondelay

    # -- I/O
    def _wants_usb(self) -> bool:
        if not self.usb_capable:
            return False
        port = self.port or ""
        return port == "auto" or port.lower().startswith("usb") or any(
            self.getval(k) is not None for k in (*USB_SETTINGS, "subdriver", "replay"))

    def _usb_link(self) -> q1usb.UsbLink:
        where = f"UPS [{self.config.upsname}]"
        sub = self.getval("subdriver")
        if sub is not None:
            if self.getval("vendorid") is None or self.getval("productid") is None:
                raise DriverError(f"{where}: subdriver = '{sub}' needs vendorid and productid too (as NUT: "
                                  "'When specifying a subdriver, vendorid and productid are mandatory')")
            if sub.lower() not in self.usb_subdrivers:
                raise DriverError(f"{where}: subdriver = '{sub}': no such subdriver (there are: "
                                  f"{', '.join(self.usb_subdrivers)})")
            sub = sub.lower()
        try:
            matcher = UsbMatcher.from_config(self.config.values, where)
            policy = ReconnectPolicy.from_config(self.config.values, matcher, where, self.config.upsname)
            langid = q1usb.parse_langid(self.getval("langid_fix"))
        except (UsbConfigError, ValueError) as exc:
            raise DriverError(str(exc)) from None
        return q1usb.UsbLink(matcher, policy, subdriver=sub, table=self.usb_subdrivers, auto=self.usb_auto,
                             langid_fix=langid, min_lengths=self.usb_min_lengths, replay=self.getval("replay"))

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Every port call in one worker thread (a USB device belongs to the thread that opened it)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open_port(self) -> SerialPort | q1usb.UsbLink:
        if self.usb is not None:
            try:
                self.usb.open()
            except q1usb.UsbError as exc:
                raise DriverError(str(exc)) from None
            return self.usb
        port = self.port
        sp = SerialPort(port, lock=not self.testvar("nolock"), cablepower=self.getval("cablepower") or "normal")
        try:
            sp.open()
        except PortError as exc:
            raise DriverError(str(exc)) from None
        return sp

    def _query(self, command: str) -> str | None:
        assert self.serial is not None
        reply = self.serial.ask(command)
        self.log.debug("%s -> %s", command, q1.show(reply))
        return reply

    def _send(self, command: str) -> None:
        assert self.serial is not None
        self.log.info("sending %s to the UPS", command)
        self.serial.send(command)

    # -- hooks
    async def initups(self) -> None:
        rc = self.getval("runtimecal")
        if rc is not None:
            try:
                t1, l1, t2, l2 = q1.parse_runtimecal(rc)
            except ValueError as exc:
                raise DriverError(str(exc)) from None
            self.runtime = q1.RuntimeModel(t1, l1, t2, l2, self._float_setting("chargetime", 43200.0),
                                           self._float_setting("idleload", 10.0))
        self.serial = await self.run_blocking(self._open_port)
        try:
            self.protocol = await self.run_blocking(self._detect)
        except PortError as exc:
            raise DriverError(str(exc)) from None
        if self.protocol is None:
            where = self.port
            if self.usb is not None and self.usb.info is not None and self.usb.transport is not None:
                where = f"USB device {self.usb.info.describe()} ({self.usb.transport.name} bridge)"
            raise DriverError(f"no supported UPS detected on {where} (no valid reply to "
                              f"{', '.join(q1.PROBE_ORDER) if self.probe_protocols else 'Q1'}; last reply "
                              f"{q1.show(self.serial.last_raw)}): check the cable, the port and that the UPS "
                              "is on")
        self.log.info("Using protocol: %s", self.protocol.version)

    def _detect(self) -> q1.Protocol | None:
        wanted = self.getval("protocol")
        for _ in range(3):  # a UPS may miss the first command after the port opened
            if self.probe_protocols:
                try:
                    proto = q1.probe(self._query, wanted)
                except ValueError as exc:
                    raise DriverError(str(exc)) from None
            else:
                proto = q1.PROTOCOLS["mustek" if wanted == "mustek" else "megatec"]
                try:
                    q1.parse_q1(self._query(proto.status_command))
                except q1.Q1Error:
                    proto = None
            if proto is not None:
                return proto
        return None

    async def initinfo(self) -> None:
        assert self.protocol is not None
        if self.probe_protocols:
            self.setinfo("driver.version.data", self.protocol.version)
            self.setinfo("driver.parameter.pollfreq", self.getval("pollfreq") or "30")
            # nutdrv_qx reads the status once at start (a full update, but without alarms)
            try:
                r = q1.parse_q1(await self.run_blocking(self._query, self.protocol.status_command))
            except (q1.Q1Error, PortError) as exc:
                self.log.warning("no status at start: %s", exc)
            else:
                self._pending_first = r
        if self.usb is not None and self.usb.info is not None:
            from nutlite.drivers.programs.usbhid_ups import UsbHidUps

            self.setinfo("driver.version.usb", UsbHidUps._libusb_version())
            self.setinfo("ups.vendorid", f"{self.usb.info.vendor_id:04x}")
            self.setinfo("ups.productid", f"{self.usb.info.product_id:04x}")
        if self.protocol.has_rating and not self.testvar("norating"):
            try:
                rating = q1.parse_f(await self.run_blocking(self._query, "F"))
                for k, v in q1.rating_values(rating, self.protocol.side).items():
                    self.setinfo(k, v)
            except (q1.Q1Error, PortError) as exc:
                self.log.warning("no rating information: %s", exc)
        if self.protocol.has_vendor and not self.testvar("novendor"):
            try:
                info = q1.parse_i(await self.run_blocking(self._query, "I"))
                prefix = "device" if self.publish_vendor_as_device else "ups"
                if info.company:
                    self.setinfo(f"{prefix}.mfr", info.company)
                if info.model:
                    self.setinfo(f"{prefix}.model", info.model)
                if info.firmware:
                    self.setinfo("ups.firmware", info.firmware)
            except (q1.Q1Error, PortError) as exc:
                self.log.warning("no vendor information: %s", exc)
        if self.protocol.name == "voltronic-qs":  # the protocol letter, shown as the firmware's
            try:
                m = await self.run_blocking(self._query, "M")
                if m:
                    self.setinfo("ups.firmware.aux", f"PM-{m.strip()}")
            except PortError as exc:
                self.log.warning("no protocol letter: %s", exc)
        self._battery_range()
        if self._pending_first is not None:
            self._publish(self._pending_first, alarms=False)
            self._pending_first = None
        self.setinfo("ups.delay.shutdown", str(self.offdelay))
        self.setinfo("ups.delay.start", str(self.start_delay_seconds))
        if self.writable_delays:
            self.addrange("ups.delay.shutdown", *q1.OFFDELAY_RANGE)
            self.setflags("ups.delay.shutdown", "RW", "NUMBER")
            self.addrange("ups.delay.start", 0, self.ondelay_max)
            self.setflags("ups.delay.start", "RW", "NUMBER")
        for cmd in q1.COMMANDS:
            self.addcmd(cmd)

    def _battery_range(self) -> None:
        low, high = self.getinfo("battery.voltage.low"), self.getinfo("battery.voltage.high")
        try:
            self.batt_low = float(low) if low is not None else None
            self.batt_high = float(high) if high is not None else None
        except ValueError:
            raise DriverError("battery.voltage.low/high: expected numbers") from None
        if self.batt_low is not None and self.batt_high is not None:
            return
        nominal = self.getinfo("battery.voltage.nominal")
        if nominal is None:
            self.log.info("no battery voltage range and no nominal voltage: battery.charge will not be estimated")
            if not self.probe_protocols:
                # blazer_ser/blazer_usb 2.8.0 guess from a nominal voltage of -1 all the same and publish
                # that range (-0.87 .. -1.08), without a charge
                glow, ghigh = q1.guess_battery_range(-1.0)
                for name, value in (("battery.voltage.low", glow), ("battery.voltage.high", ghigh)):
                    if self.getinfo(name) is None:
                        self.setinfo(name, f"{value:.2f}")
            return
        glow, ghigh = q1.guess_battery_range(float(nominal))
        if self.runtime_start_from_nominal and self.batt_low is None and self.batt_high is None:
            self._start_range = (float(nominal), float(nominal) * 1.15)
        self.log.info("No values for battery high/low voltages; guessing low %.2f, high %.2f", glow, ghigh)
        if self.batt_low is None:
            self.batt_low = glow
            self.setinfo("battery.voltage.low", f"{glow:.2f}")
        if self.batt_high is None:
            self.batt_high = ghigh
            self.setinfo("battery.voltage.high", f"{ghigh:.2f}")

    async def updateinfo(self) -> None:
        assert self.protocol is not None
        command = self.protocol.status_command
        try:
            reply = await self.run_blocking(self._query, command)
        except PortError as exc:
            self._failed(f"port problem: {exc}")
            return
        if reply is None:
            assert self.serial is not None
            raw = self.serial.last_raw
            self._failed(f"no reply to {command} within {self.serial.timeout:g}s"
                         + (f" (received {q1.show(raw)} without an end of line)" if raw else ""))
            return
        try:
            r = q1.parse_q1(reply)
        except q1.Q1Error as exc:
            self._failed(f"{command}: {exc}")
            return
        self._publish(r, alarms=True)
        if self.usb is not None and self.usb.back is not None:
            self.log.warning("%s", self.usb.back)  # the one line for the return (the policy's)
            self.usb.back = None
            self._fault = None
        self._answered()

    def _publish(self, r: q1.Q1Reply, alarms: bool) -> None:
        """Every variable of one status reply, the status and the alarms last, as one update."""
        assert self.protocol is not None
        for k, v in q1.values(r, f"{self.protocol.side}.frequency").items():
            self.setinfo(k, v)
        if not self.static_type or self.getinfo("ups.type") is None:
            self.setinfo("ups.type", q1.ups_type(r))
        self.setinfo("ups.beeper.status", "enabled" if r.beeper else "disabled")
        if self.batt_low is not None and self.batt_high is not None:
            charge = q1.charge_from_voltage(r.battery_voltage, self.batt_low, self.batt_high)
            if self.runtime is not None:
                if self.runtime.soc is None and self._start_range is not None:
                    charge = q1.charge_from_voltage(r.battery_voltage, *self._start_range)
                charge, runtime = self.runtime.update(time.monotonic(), r.load, r.utility_fail, charge)
                self.setinfo("battery.runtime", f"{runtime:.0f}")
            self.setinfo("battery.charge", q1.fmt_charge(charge))
        # after battery.charge: with ignorelb the status's LB is judged by this reply's charge
        self.status_init()
        for word in q1.status_tokens(r):
            self.status_set(word)
        self.alarm_init()
        if alarms and r.failed:
            self.alarm_set("UPS selftest failed!")
        if alarms and r.shutdown_active:
            self.alarm_set("Shutdown imminent!")
        self.alarm_commit()
        self.status_commit()

    # -- commands
    def _restart_minutes(self, stayoff: bool) -> int | None:
        if stayoff:
            return 0
        minutes = self.start_delay_seconds // 60
        return minutes if minutes > 0 else None

    def _offdelay_now(self) -> int:
        value = self.getinfo("ups.delay.shutdown")
        try:
            return int(value) if value is not None else self.offdelay
        except ValueError:
            return self.offdelay

    def shutdown_command(self, stayoff: bool = False) -> str:
        return q1.shutdown_command(self._offdelay_now(), self._restart_minutes(stayoff))

    async def instcmd(self, cmd: str, param: str | None) -> Any:
        cmd = cmd.lower()
        simple = q1.simple_commands()
        if cmd in simple:
            wire = simple[cmd]
        elif cmd == "test.battery.start":
            try:
                wire = q1.test_command(int(param) if param is not None else None, self.ondelay_minutes)
            except ValueError as exc:
                self.log.error("test.battery.start: %s", exc)
                return Status.FAILED
        elif cmd == "shutdown.return":
            wire = self.shutdown_command()
        elif cmd == "shutdown.stayoff":
            wire = self.shutdown_command(stayoff=True)
        else:
            self.log.info("instant command %s not supported", cmd)
            return Status.UNKNOWN if self.ondelay_minutes else Status.INVALID  # as blazer_ser / nutdrv_qx
        try:
            await self.run_blocking(self._send, wire)
        except PortError as exc:
            self.log.error("%s: %s", cmd, exc)
            return Status.FAILED
        return Status.HANDLED

    async def setvar(self, name: str, value: str) -> Any:
        if not self.writable_delays or name.lower() not in ("ups.delay.shutdown", "ups.delay.start"):
            return Status.UNKNOWN
        try:
            seconds = int(value)
        except ValueError:
            return Status.UNKNOWN
        if name.lower() == "ups.delay.shutdown":
            lo, hi = q1.OFFDELAY_RANGE
            if not lo <= seconds <= hi:
                return Status.UNKNOWN
            self.setinfo("ups.delay.shutdown", str(q1.offdelay_rounded(seconds)))
        else:
            if not 0 <= seconds <= self.ondelay_max:
                return Status.UNKNOWN
            self.ondelay = (seconds // 60) * 60
            self.setinfo("ups.delay.start", str(self.ondelay))
        return Status.HANDLED

    async def shutdown(self) -> bool:
        """Killpower: cancel what may be pending, then ``S<n>R<mmmm>``."""
        wire = self.shutdown_command(stayoff=self.testvar("stayoff"))
        self.log.warning("Shutting down in %d seconds (%s)", q1.offdelay_rounded(self._offdelay_now()), wire)
        try:
            await self.run_blocking(self._send, "C")
            await self.run_blocking(self._send, wire)
        except PortError as exc:
            self.log.error("shutdown failed: %s", exc)
            return False
        return True

    def cleanup(self) -> None:
        if self.serial is not None:
            if self._pool is not None and self.usb is not None:
                self._pool.submit(self.serial.close).result(timeout=10)  # in the thread that opened it
            else:
                self.serial.close()
            self.serial = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class NutdrvQx(QxDriver):
    """``nutdrv_qx`` (serial)."""
