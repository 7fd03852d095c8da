"""snmp-ups: UPSes, PDUs and ATSes with an SNMP network card (NUT-FACTS §8.7, SNMP-FACTS).

The layers: :mod:`nutlite.snmp.client` talks SNMP (pysnmp, v1/v2c/v3), :mod:`nutlite.snmp.detect` picks
the mapping as NUT 2.8.0 does, :mod:`nutlite.snmp.engine` turns answers into NUT variables with the MIB
tables of :mod:`nutlite.drivers.tables.snmp`. This module is the shell between them and the driver
framework: settings, start-up, the poll schedule, agent loss, commands and SETs.

Polling: every ``pollinterval`` (2 s) a short pass asks for the values that change (a GET or two with
many varbinds), every ``pollfreq`` seconds (30) a full pass asks for everything, and every
``semistaticfreq`` full passes the semi-static values too. An agent that stops answering makes the data
stale at the first unanswered request, so within ``pollinterval`` + ``snmp_timeout`` x
(``snmp_retries`` + 1) (NUT: at its next full pass, about 30 s); the first answer after that brings a
full pass, ``ups.status`` included, before the data is declared fresh again.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from nutlite.drivers.framework.core import Driver, DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option
from nutlite.snmp.client import (
    AUTH_PROTOCOLS,
    SnmpAuthError,
    SnmpClient,
    SnmpConfigError,
    SnmpError,
    SnmpRequestError,
    SnmpSettings,
    SnmpTimeout,
    parse_target,
)

_OPTIONS: tuple[Option, ...] = (
    Option("mibs", "the MIB mapping: auto (default: find it as NUT does) or one name; --list lists them"),
    Option("community", "the SNMP v1/v2c community (default public)"),
    Option("snmp_version", "v1 (default), v2c or v3"),
    Option("pollfreq", "seconds between full updates (default 30); the status is read every pollinterval"),
    Option("semistaticfreq", "full updates between two refreshes of the semi-static values (default 10)"),
    Option("snmp_retries", "retries of an unanswered request (default 5)"),
    Option("snmp_timeout", "seconds to wait for an answer, per try (default 1)"),
    Option("notransferoids", "do not read the transfer voltage OIDs (for APC Symmetras)", flag=True),
    Option("symmetrathreephase", "APC three-phase Symmetra quirks", flag=True),
    Option("secLevel", "SNMPv3 security level: noAuthNoPriv (default), authNoPriv or authPriv"),
    Option("secName", "SNMPv3 user name"),
    Option("authPassword", "SNMPv3 authentication pass phrase"),
    Option("privPassword", "SNMPv3 privacy pass phrase"),
    Option("authProtocol", f"SNMPv3 authentication protocol: {', '.join(AUTH_PROTOCOLS)} (default MD5)"),
    Option("privProtocol", "SNMPv3 privacy protocol: DES (default), AES, AES192, AES256"),
    Option("ondelay", "delay before the UPS restores the load after a shutdown (seconds)"),
    Option("offdelay", "delay before the UPS cuts the load at shutdown (seconds)"),
)

#: settings that are secrets or that NUT does not publish as driver.parameter.*
UNPUBLISHED = ("community", "secName", "authPassword", "privPassword")
#: killpower: the first of these commands the device offers is sent (as NUT's snmp-ups tries them)
SHUTDOWN_COMMANDS = ("shutdown.return", "shutdown.reboot", "load.off.delay", "load.off")


def _number(driver: Driver, key: str, default: float, lo: float, kind: type = int) -> Any:
    raw = driver.getval(key)
    if raw is None:
        return kind(default)
    try:
        n = kind(raw.strip())
    except ValueError:
        n = lo - 1
    if n < lo:
        what = "a whole number" if kind is int else "a number"
        raise DriverError(f"{key} = '{raw}': expected {what}, at least {lo:g}")
    return n


class SnmpUps(Driver):
    name: ClassVar[str] = "snmp-ups"
    description: ClassVar[str] = "Generic SNMP UPS driver"
    version: ClassVar[str] = "1.21"
    options: ClassVar[tuple[Option, ...]] = _OPTIONS

    @classmethod
    def help_sections(cls) -> str:
        return "'-x mibs=--list' lists the MIB mappings, in the order mibs=auto tries them."

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        self.mibs = (self.getval("mibs") or "auto").strip()
        if self.mibs == "--list":
            print(mapping_list(), end="")
            raise SystemExit(0)
        self.pollfreq = _number(self, "pollfreq", 30, 1)
        self.semistaticfreq = _number(self, "semistaticfreq", 10, 1)
        try:
            host, port = parse_target(config.port)
            self.settings = SnmpSettings(
                host, port, (self.getval("snmp_version") or "v1").strip(),
                self.getval("community") if self.getval("community") is not None else "public",
                (self.getval("secLevel") or "noAuthNoPriv").strip(), self.getval("secName"),
                self.getval("authPassword"), self.getval("privPassword"),
                (self.getval("authProtocol") or "MD5").strip(), (self.getval("privProtocol") or "DES").strip(),
                _number(self, "snmp_timeout", 1, 0.001, float), _number(self, "snmp_retries", 5, 0))
            self.settings.check()
        except SnmpConfigError as exc:
            raise DriverError(f"[{config.upsname}]: {exc}") from None
        self.client: SnmpClient | None = None
        self.engine: Any = None
        self.mapping: Any = None
        self._next_full = 0.0
        self._passes = 0
        self._lost_since: float | None = None
        self._reported: set[str] = set()

    # ---- start

    @property
    def where(self) -> str:
        return self.settings.where

    async def initups(self) -> None:
        from nutlite.snmp.detect import Detector

        self.client = SnmpClient(self.settings)
        try:
            detector = Detector(registry(), self.mibs)
            await self.client.open()
            while (oids := detector.next_oids()) is not None:
                detector.feed(await self.client.get(oids))
        except SnmpTimeout as exc:
            await self.client.close()
            raise DriverError(f"No supported device detected at [{self.upsname}] (host {self.where}): "
                              f"{exc}") from None
        except SnmpError as exc:
            await self.client.close()
            raise DriverError(f"[{self.upsname}]: {exc}") from None
        except ValueError as exc:  # an unknown mibs= name
            await self.client.close()
            raise DriverError(f"[{self.upsname}]: {exc}") from None
        if detector.error:
            await self.client.close()
            raise DriverError(f"[{self.upsname}] (host {self.where}): {detector.error}")
        self.mapping = detector.result
        self.engine = make_engine(self, self.mapping)

    async def initinfo(self) -> None:
        for key in list(self.config.values):
            if key.lower() in {k.lower() for k in UNPUBLISHED}:
                self.delinfo(f"driver.parameter.{key}")
        self.setinfo("driver.version.data", version_data(self.mapping))
        self.setinfo("device.type", self.mapping.device_type)
        await self._pass(self.engine.first_pass())
        self._passes = 1
        model = self.getinfo("ups.model") or self.getinfo("device.model") or ""
        self.log.info("Detected %s on host %s (mib: %s)", model, self.where, version_data(self.mapping, short=True))
        for name in self.engine.commands():
            self.addcmd(name)
        self._publish_rw()
        self._next_full = time.monotonic() + self.pollfreq

    def _publish_rw(self) -> None:
        for rw in self.engine.writable():
            if self.getinfo(rw.name) is None:
                continue
            if rw.kind == "string":
                self.setflags(rw.name, "RW", "STRING")
                self.setaux(rw.name, rw.length)
            else:
                self.setflags(rw.name, "RW", "NUMBER")
            for choice in getattr(rw, "enums", ()) or ():
                self.addenum(rw.name, choice)

    # ---- polling

    async def updateinfo(self) -> None:
        now = time.monotonic()
        try:
            if self._lost_since is not None or now >= self._next_full:
                await self._full_pass()
                self._next_full = time.monotonic() + self.pollfreq
            else:
                await self._pass(self.engine.quick_pass())
        except SnmpTimeout as exc:
            self._lost(str(exc))
            return
        except SnmpError as exc:
            self._lost(str(exc))
            return
        if self._lost_since is not None:
            self.log.warning("[%s] %s answers again after %.0f s: data is fresh", self.upsname, self.where,
                             time.monotonic() - self._lost_since)
            self._lost_since = None
        self.dataok()

    def _lost(self, text: str) -> None:
        if self._lost_since is None:
            self._lost_since = time.monotonic()
            self.log.error("[%s] data stale: %s", self.upsname, text)
        self.datastale()

    async def _full_pass(self) -> None:
        await self._pass(self.engine.full_pass(semistatic=self._passes % self.semistaticfreq == 0))
        self._passes += 1

    async def _pass(self, plan: Any) -> None:
        """Run one pass of the engine: its GETs (batched by the client), then publish what it read."""
        assert self.client is not None
        while (oids := plan.next_oids()) is not None:
            plan.feed(await self.client.get(oids))
        self._apply(plan.result())

    def _apply(self, result: Any) -> None:
        for name, value in result.values.items():
            self.setinfo(name, value)
        for name in result.removed:
            if self.getinfo(name) is not None:
                self.delinfo(name)
        for message in result.problems:
            self.log.warning("[%s] %s", self.upsname, message)
        for message in result.absent:
            self.log.info("[%s] the device lacks %s", self.upsname, message)

    # ---- commands and SETs

    async def instcmd(self, cmd: str, param: str | None) -> Status:
        try:
            varbinds = self.engine.instcmd(cmd, param)
        except KeyError:
            return Status.UNKNOWN
        except ValueError as exc:
            self.log.warning("[%s] %s: %s", self.upsname, cmd, exc)
            return Status.INVALID
        return await self._set(f"instant command {cmd}", varbinds)

    async def setvar(self, name: str, value: str) -> Status:
        try:
            varbinds = self.engine.setvar(name, value)
        except KeyError:
            return Status.UNKNOWN
        except ValueError as exc:
            self.log.warning("[%s] %s = %s: %s", self.upsname, name, value, exc)
            return Status.INVALID
        status = await self._set(f"{name} = {value}", varbinds)
        if status == Status.HANDLED:
            self.setinfo(name, value)
        return status

    async def _set(self, what: str, varbinds: Any) -> Status:
        assert self.client is not None
        try:
            await self.client.set(varbinds)
        except SnmpRequestError as exc:
            self.log.error("[%s] %s: %s", self.upsname, what, exc)
            return Status.FAILED
        except (SnmpTimeout, SnmpAuthError, SnmpError) as exc:
            self.log.error("[%s] %s: %s", self.upsname, what, exc)
            return Status.FAILED
        return Status.HANDLED

    async def shutdown(self) -> bool:
        offered = set(self.engine.commands()) if self.engine is not None else set()
        for cmd in SHUTDOWN_COMMANDS:
            if cmd in offered and await self.instcmd(cmd, None) == Status.HANDLED:
                self.log.warning("[%s] sent %s", self.upsname, cmd)
                return True
        self.log.error("[%s] the device offers none of %s: cannot shut it down", self.upsname,
                       ", ".join(SHUTDOWN_COMMANDS))
        return False

    async def cleanup(self) -> None:
        if self.client is not None:
            await self.client.close()


# --------------------------------------------------------------------------------------------------
# The glue to the sans-IO core (nutlite.snmp.engine / detect, nutlite.drivers.tables.snmp)


def registry() -> Any:
    from nutlite.drivers.tables import snmp

    return snmp


def mapping_list() -> str:
    return str(registry().list_text())


def version_data(mapping: Any, short: bool = False) -> str:
    return f"{mapping.name} {mapping.version}" if short else f"{mapping.name} MIB {mapping.version}"


def make_engine(driver: SnmpUps, mapping: Any) -> Any:
    from nutlite.snmp.engine import Engine

    return Engine(mapping, {"notransferoids": driver.testvar("notransferoids"),
                            "symmetrathreephase": driver.testvar("symmetrathreephase")})
