"""apcsmart: APC Smart-UPS units on a serial port, speaking APC's "smart" protocol (NUT-FACTS §8.5).

The protocol is :mod:`nutlite.drivers.protocols.apc` (sans-IO), the port :mod:`nutlite.drivers.transports.serialport`. This
module is the driver on top:

* start: ``Y`` -> ``SM`` (smart mode), ``V``, ``a`` (what the UPS supports), one read of every
  supported variable, ``b`` (firmware; its last letter is the locale), Ctrl-Z (allowed values of the
  settings); only what the UPS supports is published and offered;
* every poll: ``Q`` (status register) and the readings; all variables again after ``|`` (EEPROM changed);
* alert characters (``!`` ``$`` ``%`` ``+`` ``?`` ``=`` ``#`` ...) are read as soon as they arrive: the
  status changes at once and the UPS is polled right away, not at the next poll;
* SET steps a setting with ``-`` until it reads back as wanted; ``ups.id``/``battery.date`` are typed in;
* instant commands; ``load.off``, ``shutdown.stayoff`` and ``shutdown.return`` act only when asked
  twice, 3 to 15 seconds apart; ``Z``, ``K`` and Ctrl-N go to the UPS twice, 1.5 s apart;
* killpower by ``sdtype`` (0..5) or ``advorder``, ``awd`` and ``cshdelay`` as in ``man apcsmart``;
* ``cable = 940-0095B`` (NUT FAQ #8): DTR set, RTS cleared on the port;
* faults never stop the driver: no reply, a garbled or truncated reply, or the port disappearing
  mark the data stale with one log line saying what arrived; smart mode is entered again and the port
  reopened as soon as the UPS is back.

Differences from Debian's NUT 2.8.0 driver are listed in tests/test_apcsmart_side_by_side.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import termios
import time
from typing import Any, ClassVar

from nutlite.drivers.framework.core import DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option
from nutlite.drivers.protocols import apc
from nutlite.drivers.transports.serialport import PortError, SerialDriver, SerialPort

ALT_CABLE = "940-0095B"
REPLY_TIMEOUT = 1.5


class ApcSmart(SerialDriver):
    name: ClassVar[str] = "apcsmart"
    description: ClassVar[str] = "APC Smart protocol driver"
    version: ClassVar[str] = "3.2"
    options: ClassVar[tuple[Option, ...]] = (
        Option("ttymode", "tty discipline selection (raw or canonical; nutlite always reads raw)"),
        Option("cable", "alternate cable (940-0095B) selection"),
        Option("awd", "hard hibernate's additional wakeup delay"),
        Option("sdtype", "simple shutdown method"),
        Option("advorder", "advanced shutdown control"),
        Option("cshdelay", "CS hack delay"),
    )

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        try:
            self.sdtype = apc.parse_sdtype(self.getval("sdtype"))
            self.advorder = apc.parse_advorder(self.getval("advorder"))
            self.awd = apc.parse_awd(self.getval("awd"))
        except ValueError as exc:
            raise DriverError(str(exc)) from None
        raw = self.getval("cshdelay")
        try:
            self.cshdelay = float(raw) if raw is not None else 3.5
        except ValueError:
            raise DriverError(f"cshdelay: expected seconds (0 to 9.9), got '{raw}'") from None
        if not 0 <= self.cshdelay <= 9.9:
            raise DriverError(f"cshdelay: expected seconds (0 to 9.9), got '{raw}'")
        cable = self.getval("cable")
        if cable is not None and cable.upper() != ALT_CABLE:
            raise DriverError(f"cable: the only alternate cable is {ALT_CABLE} (got '{cable}'); leave it out for "
                              "the standard 940-0024C smart cable")
        self.alt_cable = cable is not None
        self.serial: SerialPort | None = None
        self.info: apc.ProtocolInfo | None = None
        self.supported: list[apc.ApcVar] = []
        self.caps: dict[str, list[str]] = {}
        self.bits: int | None = None
        self._alerts: list[str] = []
        self._resync = False
        self._rescan = False
        self._armed: tuple[tuple[str, str], float] | None = None
        self._watched: int | None = None
        self._alert_task: asyncio.Task[None] | None = None
        self._own_lock: asyncio.Lock | None = None
        self._port_lock = asyncio.Lock()  # one conversation with the UPS at a time

    # ---------------------------------------------------------------------------------------------
    # blocking I/O (worker thread)

    def _open_port(self) -> SerialPort:
        sp = SerialPort(self.port, lock=not self.testvar("nolock"), timeout=REPLY_TIMEOUT,
                        cablepower="normal" if self.alt_cable else "both")
        try:
            sp.open()
        except PortError as exc:
            raise DriverError(str(exc)) from None
        if self.alt_cable:
            try:  # the dual-mode grey cable: DTR set, RTS cleared (smart signalling)
                sp.set_modem_bits(termios.TIOCM_DTR)
            except (DriverError, PortError) as exc:
                sp.close()
                raise DriverError(f"cable={ALT_CABLE}: cannot set DTR and clear RTS on {self.port}: this port "
                                  f"has no modem-control lines ({str(exc).split(': ', 1)[-1][:80]}); use a real "
                                  "serial port or USB-serial adapter for this cable") from None
        return sp

    def _take_alerts(self, data: bytes) -> None:
        self._alerts.extend(c for c in data.decode("latin-1") if c in apc.ALERTS)

    def _ask(self, c: str, timeout: float = REPLY_TIMEOUT, caps: bool = False) -> str | None:
        """Send one command character; its reply line (alerts in front taken off), None on timeout."""
        assert self.serial is not None
        self._take_alerts(self.serial.read_waiting())  # what came while nobody asked
        self.serial.write_raw(c.encode("latin-1"))
        raw = self.serial.read_until(b"\n", timeout)
        if raw is None:
            self.log.debug("%s -> nothing (received %s)", apc.char_name(c), apc.show(self.serial.last_raw))
            return None
        alerts, reply = apc.split_alerts(raw.decode("latin-1").replace("\r", ""), caps)
        self._alerts.extend(alerts)
        self.log.debug("%s -> %s%s", apc.char_name(c), apc.show(reply), f" (alerts {alerts!r})" if alerts else "")
        return reply

    def _no_reply(self, c: str) -> str:
        assert self.serial is not None
        raw = self.serial.last_raw
        return (f"no reply to {apc.char_name(c)} within {REPLY_TIMEOUT:g}s"
                + (f" (received {apc.show(raw)} without an end of line)" if raw else ""))

    def _smart_mode(self) -> str | None:
        """Enter smart mode; None when done, else what went wrong."""
        last: str | None = None
        for _ in range(3):
            reply = self._ask(apc.SMART_MODE)
            if reply == apc.SMART_REPLY:
                return None
            last = reply if reply is not None else (self.serial.last_raw.decode("latin-1") if self.serial else None)
        return (f"the UPS does not enter smart mode: no 'SM' reply to 'Y' (last {apc.show(last)}); check the "
                f"cable: APC's grey {ALT_CABLE} cable needs 'cable = {ALT_CABLE}' (NUT FAQ #8), other grey cables "
                "only do contact-closure signalling (use genericups)")

    def _discover(self) -> dict[str, str]:
        """Firmware, the supported command set, one read of each supported variable, the capabilities."""
        replies: dict[str, str] = {}
        old_fw = self._ask(apc.OLD_FIRMWARE)
        if old_fw and old_fw != "NA":
            replies[apc.OLD_FIRMWARE] = old_fw
        try:
            self.info = apc.parse_protocol_info(self._ask(apc.PROTOCOL_INFO))
            order = [c for c in self.info.commands if c in apc.VAR_BY_CHAR]
        except apc.ApcError as exc:  # very old units: try every variable
            self.log.info("%s: probing every variable", exc)
            self.info = None
            order = [v.char for v in apc.VARS]
        for c in order:
            reply = self._ask(c)
            if reply is not None and reply != "NA":
                replies[c] = reply
        if self.info is not None and apc.CAPABILITIES in self.info.commands:
            fw = replies.get("b") or replies.get(apc.OLD_FIRMWARE) or ""
            locale = fw[-1:] if fw else "4"
            try:
                self.caps = apc.parse_capabilities(self._ask(apc.CAPABILITIES, caps=True), locale)
            except apc.ApcError as exc:
                self.log.warning("no capability list, settings are read only: %s", exc)
        return replies

    def _poll(self, chars: list[str]) -> tuple[dict[str, str], str | None]:
        """Ask each character in turn; stops at the first one without a reply."""
        out: dict[str, str] = {}
        if self._resync:
            why = self._smart_mode()
            if why is not None:
                return out, why
            self._resync = False
        for c in chars:
            reply = self._ask(c)
            if reply is None:
                return out, self._no_reply(c)
            out[c] = reply
        return out, None

    def _repeat(self, c: str) -> str | None:
        """K, Z, Ctrl-N: twice, 1.5 s apart; the reply to the second."""
        assert self.serial is not None
        self._take_alerts(self.serial.read_waiting())
        self.serial.write_raw(c.encode("latin-1"))
        time.sleep(apc.REPEAT_PAUSE)
        return self._ask(c, timeout=3.0)

    def _hard_hibernate(self, digits: str) -> str | None:
        assert self.serial is not None
        self._take_alerts(self.serial.read_waiting())
        self.serial.write_raw(b"@")
        time.sleep(0.2)
        for d in digits[:-1]:
            self.serial.write_raw(d.encode())
            time.sleep(0.05)
        reply = self._ask(digits[-1])
        if reply is None and len(digits) == 2:
            self.log.error("command @ with 2 digits got no reply: try 3 digits (awd)")
        return reply

    def _method(self, method: str, on_battery: bool) -> bool:
        """Carry out one shutdown method; whether the UPS accepted it."""
        self.log.info("shutdown method %s", {"@": f"@{self.awd}"}.get(method, method))
        if method == apc.SOFT:
            reply = self._ask("S")
        elif method == apc.HARD:
            reply = self._hard_hibernate(self.awd)
        elif method in (apc.DELAYED, apc.INSTANT):
            reply = self._repeat(method)
        else:  # CS: simulate a power failure first, so that S works on mains too
            if not on_battery:
                self._ask("U")
                time.sleep(self.cshdelay)
            reply = self._ask("S")
        ok = apc.accepted(reply)
        if not ok:
            self.log.warning("the UPS did not take %s (replied %s)", method, apc.show(reply))
        return ok

    def _shutdown_blocking(self) -> bool:
        why = self._smart_mode()
        if why is not None:
            self.log.warning("%s", why)
        reply = self._ask(apc.STATUS)
        try:
            bits = apc.parse_status(reply)
            on_battery = bool(bits & apc.BIT["OB"])
        except apc.ApcError as exc:
            self.log.warning("status read failed (%s): assuming on battery with a low battery", exc)
            on_battery = True
        methods = self.advorder if self.advorder is not None else apc.sdtype_plan(self.sdtype, on_battery)
        self.log.info("shutting down: %s, %s", "on battery" if on_battery else "on line power",
                      f"advorder {''.join(k for m in methods for k, v in apc.ADVORDER_METHODS.items() if v == m)}"
                      if self.advorder is not None else f"sdtype {self.sdtype}")
        return any(self._method(m, on_battery) for m in methods)

    def _step_to(self, var: apc.ApcVar, value: str) -> tuple[Status, str | None]:
        """Step an enum setting with '-' until it reads as ``value``."""
        first = self._ask(var.char)
        if first is None:
            return Status.FAILED, None
        current = first
        for _ in range(16):
            if var.value(current) == value:
                return Status.HANDLED, self._ask(var.char) or current
            step = self._ask(apc.NEXT_VALUE)
            if step != "OK":
                self.log.error("SET %s: the UPS refused to step it (replied %s)", var.name, apc.show(step))
                return Status.FAILED, current
            reply = self._ask(var.char)
            if reply is None:
                return Status.FAILED, None
            current = reply
            self.log.debug("SET %s: stepped to %s, want %s", var.name, var.value(current), value)
            if current == first and var.value(current) != value:
                self.log.error("SET %s: '%s' is not one of the values the UPS allows (went round to '%s')",
                               var.name, value, var.value(current))
                return Status.FAILED, current
        return Status.FAILED, current

    def _type_string(self, var: apc.ApcVar, value: str) -> tuple[Status, str | None]:
        assert self.serial is not None
        if self._ask(var.char) is None:
            return Status.FAILED, None
        self.serial.write_raw(apc.NEXT_VALUE.encode())
        time.sleep(0.25)
        for ch in value[:-1]:
            self.serial.write_raw(ch.encode("latin-1"))
            time.sleep(0.05)
        last = value[-1] if len(value) == apc.STRING_LENGTH else value[-1] + "\r"
        if len(last) == 2:
            self.serial.write_raw(last[0].encode("latin-1"))
            time.sleep(0.05)
            last = last[1]
        reply = self._ask(last)
        if not apc.accepted(reply):
            self.log.error("SET %s: the UPS did not take '%s' (replied %s)", var.name, value, apc.show(reply))
            return Status.FAILED, self._ask(var.char)
        return Status.HANDLED, self._ask(var.char)

    def _leave_smart_mode(self) -> None:
        if self.serial is not None and self.serial.ser is not None:
            with contextlib.suppress(PortError):
                self._ask(apc.LEAVE_SMART, timeout=1.0)

    # ---------------------------------------------------------------------------------------------
    # the event loop side

    def _lock(self) -> asyncio.Lock:
        if self.runner is not None:
            return self.runner.lock
        if self._own_lock is None:
            self._own_lock = asyncio.Lock()
        return self._own_lock

    async def _io(self, fn: Any, *args: Any, act_on_alerts: bool = True) -> Any:
        """Run blocking port work; act on the alerts it met (unless the caller will, after it has used
        the result); watch the port for more."""
        try:
            async with self._port_lock:
                result = await self.run_blocking(fn, *args)
        except PortError:
            self._unwatch()
            self._resync = True
            self._handle_alerts()
            raise
        if act_on_alerts:
            self._handle_alerts()
        self._watch()
        return result

    def _handle_alerts(self, publish: bool = True) -> bool:
        alerts, self._alerts = self._alerts, []
        for a in alerts:
            what = apc.ALERT_ACTIONS[a][0]
            self.log.info("alert from the UPS: %r (%s)", a, what)
            if self.bits is not None:
                self.bits = apc.apply_alert(self.bits, a)
            if a == "|":
                self._rescan = True
        if alerts and publish and self.bits is not None:
            self._publish_status()
        return bool(alerts)

    def _watch(self) -> None:
        if self.runner is None or self.serial is None:
            return
        fd = self.serial.fileno()
        if fd == self._watched:
            return
        self._unwatch()
        if fd is not None:
            asyncio.get_running_loop().add_reader(fd, self._readable)
            self._watched = fd

    def _unwatch(self) -> None:
        if self._watched is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._watched)
            self._watched = None

    def _readable(self) -> None:
        self._unwatch()
        if self._alert_task is None or self._alert_task.done():
            self._alert_task = asyncio.ensure_future(self._read_alerts())

    async def _read_alerts(self) -> None:
        """Bytes arrived while nobody asked: alert characters, acted on now."""
        async with self._port_lock:
            if self.serial is None:
                return
            try:
                data = await self.run_blocking(self.serial.read_waiting)
            except PortError as exc:
                self._unwatch()
                self._failed(f"port problem: {exc}")
                self._resync = True
                return
        self._take_alerts(data)
        other = bytes(b for b in data if chr(b) not in apc.ALERTS and b not in (10, 13))
        if other:
            self.log.debug("ignoring unexpected bytes from the UPS: %s", apc.show(other))
        if self._handle_alerts():
            async with self._lock():
                with self.batch():  # one write, as a poll
                    await self._update()  # the rest of the picture, now
        elif not data:
            return  # readable without data: the port is going away; the next poll will see
        self._watch()

    # ---------------------------------------------------------------------------------------------
    # hooks

    async def initups(self) -> None:
        self.serial = await self.run_blocking(self._open_port)
        why = await self._io(self._smart_mode)
        if why is not None:
            raise DriverError(f"{self.port}: {why}")

    async def initinfo(self) -> None:
        try:
            replies = await self._io(self._discover)
        except PortError as exc:
            raise DriverError(str(exc)) from None
        self.supported = [v for v in apc.VARS if v.char in replies]
        fw = replies.get("b") or replies.get(apc.OLD_FIRMWARE)
        self.setinfo("ups.mfr", "APC")
        if fw and "b" not in replies:
            self.setinfo("ups.firmware", fw)
        self.log.info("detected %s [%s] on %s", replies.get(apc.MODEL, "an APC UPS"), replies.get("n", "?"),
                      self.port)
        for var in self.supported:
            try:
                self.setinfo(var.name, var.value(replies[var.char]))
            except apc.ApcError as exc:
                self.log.warning("%s: %s", var.name, exc)
                self.setinfo(var.name, replies[var.char])
            if var.kind == "string":
                self.setflags(var.name, "RW", "STRING")
                self.setaux(var.name, apc.STRING_LENGTH)
            elif var.kind == "enum" and var.char in self.caps:
                for v in apc.enum_values(var, self.caps[var.char]):
                    self.addenum(var.name, v)
                self.setflags(var.name, "RW")
        commands = self.info.commands if self.info is not None else ""
        for cmd in apc.command_table(commands):
            self.addcmd(cmd)
        self._rescan = True
        await self._update()

    async def updateinfo(self) -> None:
        await self._update()

    async def _update(self) -> None:
        full = self._rescan
        chars = [apc.STATUS] + [v.char for v in self.supported if v.poll or full]
        try:
            # Alerts met during the poll are applied after its status reading (below), not before:
            # one that came after the Q reply is newer than it and must not be overwritten by it.
            replies, why = await self._io(self._poll, chars, act_on_alerts=False)
        except PortError as exc:
            self._failed(f"port problem: {exc}")
            return
        if why is not None:
            self._handle_alerts()
            self._resync = True
            self._failed(why)
            return
        c = apc.STATUS
        try:
            bits = apc.parse_status(replies[c])
            values = {}
            for var in self.supported:
                c = var.char
                reply = replies.get(c)
                if reply is not None and reply != "NA":
                    values[var.name] = var.value(reply)
        except apc.ApcError as exc:
            what = f" ({apc.VAR_BY_CHAR[c].name})" if c in apc.VAR_BY_CHAR else ""
            self._handle_alerts()
            self._resync = True
            self._failed(f"reply to {apc.char_name(c)}{what}: {exc}")
            return
        self.bits = bits
        for name, value in values.items():
            self.setinfo(name, value)
        if not self._handle_alerts():  # the alerts on top of the reading; it publishes the status
            self._publish_status()
        if full:
            self._rescan = False
        self._answered()

    def _publish_status(self) -> None:
        assert self.bits is not None
        self.status_init()
        for token in apc.status_tokens(self.bits):
            self.status_set(token)
        self.status_commit()

    # -- commands
    async def instcmd(self, cmd: str, param: str | None) -> Any:
        cmd = cmd.lower()
        if cmd not in self.state.cmds:
            self.log.warning("instant command %s%s not supported", cmd, f" {param}" if param else "")
            return Status.INVALID
        method = None
        if cmd == "shutdown.return":
            p = (param or "").lower()
            if p == "":
                method = apc.SOFT
            elif p == "cs":
                method = apc.CS
            elif p.startswith("at:"):
                try:
                    digits = apc.parse_awd(p[3:])
                except ValueError as exc:
                    self.log.error("shutdown.return %s: %s", param, exc)
                    return Status.INVALID
                method = "@" + digits
            else:
                self.log.warning("shutdown.return: unknown parameter '%s' (cs or at:<n>)", param)
                return Status.INVALID
        elif param:
            self.log.warning("instant command %s takes no parameter (got '%s')", cmd, param)
            return Status.INVALID
        if cmd in apc.NASTY and not self._confirmed(cmd, param or ""):
            return Status.HANDLED
        try:  # (the driver core holds the port's lock while a command runs)
            reply = await self._io(self._run_command, cmd, method)
        except PortError as exc:
            self.log.error("%s: %s", cmd, exc)
            return Status.FAILED
        if cmd.startswith("bypass.") and reply in ("BYP", "INV"):
            self.log.info("%s: the UPS reports %s", cmd, reply)
            return Status.HANDLED
        if not apc.accepted(reply):
            self.log.error("%s: the UPS replied %s", cmd, apc.show(reply))
            return Status.FAILED
        return Status.HANDLED

    def _confirmed(self, cmd: str, param: str) -> bool:
        """Nasty commands act on the second request, 3 to 15 seconds after the first."""
        now = time.monotonic()
        key = (cmd, param)
        prev, self._armed = self._armed, (key, now)
        lo, hi = apc.CONFIRM_WINDOW
        if prev is not None and prev[0] == key and lo <= now - prev[1] <= hi:
            self._armed = None
            return True
        self.log.warning("%s%s: send it again in %g to %g seconds to carry it out", cmd, f" {param}" if param else "",
                         lo, hi)
        return False

    def _run_command(self, cmd: str, method: str | None) -> str | None:
        if cmd == "shutdown.return":
            assert method is not None
            self.log.warning("shutdown.return: %s", method)
            on_battery = self.bits is not None and bool(self.bits & apc.BIT["OB"])
            if method.startswith("@"):
                return self._hard_hibernate(method[1:])
            return "OK" if self._method(method, on_battery) else None
        c = apc.COMMANDS[cmd]
        if c in apc.REPEATED:
            if cmd != "load.on":
                self.log.warning("%s: sending %s", cmd, apc.char_name(c))
            return self._repeat(c)
        if c == "D":
            self.log.info("%s runtime calibration", "starting" if cmd == "calibrate.start" else "stopping")
        return self._ask(c)

    async def setvar(self, name: str, value: str) -> Any:
        var = apc.VAR_BY_NAME.get(name.lower())
        if var is None or var not in self.supported or (var.kind == "enum" and var.char not in self.caps) \
                or not var.kind:
            self.log.warning("%s is not a setting of this UPS", name)
            return Status.UNKNOWN
        if var.kind == "string" and not 0 < len(value) <= apc.STRING_LENGTH:
            self.log.error("SET %s: expected 1 to %d characters, got '%s'", name, apc.STRING_LENGTH, value)
            return Status.INVALID
        fn = self._step_to if var.kind == "enum" else self._type_string
        try:
            result, reply = await self._io(fn, var, value)
        except PortError as exc:
            self.log.error("SET %s: %s", name, exc)
            return Status.FAILED
        if reply is not None and reply != "NA":
            with contextlib.suppress(apc.ApcError):
                self.setinfo(var.name, var.value(reply))
        if result == Status.HANDLED:
            self.log.info("SET %s='%s'", var.name, value)
        return result

    async def shutdown(self) -> bool:
        """Killpower: the sdtype's (or advorder's) command; then back to dumb mode (as NUT)."""
        try:
            ok = bool(await self._io(self._shutdown_blocking))
        except PortError as exc:
            self.log.error("shutdown failed: %s", exc)
            return False
        if ok:
            self.log.warning("the UPS took the shutdown command")
        else:
            self.log.error("the UPS took none of the shutdown commands")
        return ok

    async def cleanup(self) -> None:
        self._unwatch()
        if self._alert_task is not None and not self._alert_task.done():
            self._alert_task.cancel()
        if self.serial is not None:
            with contextlib.suppress(Exception):
                await self.run_blocking(self._leave_smart_mode)
            self.serial.close()
            self.serial = None
