"""clone and clone-outlet: a UPS made of another driver's socket (NUT-FACTS §8.2, NUT FAQ #38).

``port`` names the parent driver's socket in the state path (``<driver>-<upsname>``, e.g.
``snmp-ups-rack1``). The logic lives in :mod:`nutlite.drivers.clone_core` (sans-IO); this module is the
asyncio shell: it connects to the parent socket, feeds what it says to the core, sends the core's
commands back, and reconnects when the parent goes away (the data is stale meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from nutlite.drivers.clone_core import CloneCore, CloneOutletCore, CloneSettings, ParentReader, log
from nutlite.drivers.framework.core import Driver, DriverError, DriverState, Status
from nutlite.drivers.framework.drvconfig import DriverConfig, Option

CONNECT_TIMEOUT = 3.0
DUMP_TIMEOUT = 5.0
PING_AFTER = 10.0  # seconds of silence from the parent before asking it for a PONG
PONG_TIMEOUT = 10.0  # a parent that stays silent this long after a PING is treated as gone


class CloneOutlet(Driver):
    """clone-outlet: the parent's data as a UPS, OFF while ``<prefix>.status`` is off (read-only)."""

    name = "clone-outlet"
    description = "clone outlet UPS Driver"
    version = "0.02"
    options = (Option("prefix", "the parent's outlet variables to follow, e.g. outlet.group.1 (required)"),)

    def __init__(self, config: DriverConfig, state: DriverState | None = None) -> None:
        super().__init__(config, state)
        self.core: CloneOutletCore | None = None
        self.reader = ParentReader()
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing: str | None = None
        self._last_rx = 0.0
        self._ping_at: float | None = None

    # ---- settings
    @property
    def parent_path(self) -> Path:
        p = Path(self.port)
        return p if p.is_absolute() else self.config.statepath / p

    def make_core(self) -> CloneOutletCore:
        prefix = self.getval("prefix")
        if not prefix:
            raise DriverError("clone-outlet needs 'prefix' (the outlet's variable prefix, e.g. prefix = outlet.1)")
        return CloneOutletCore(self.state, prefix)

    def initups(self) -> None:
        if not self.port:
            raise DriverError("port: name the parent driver's socket, e.g. port = usbhid-ups-myups")
        self.core = self.make_core()

    async def initinfo(self) -> None:
        assert self.core is not None
        await self.connect()

    # ---- the parent connection
    async def connect(self) -> bool:
        core = self.core
        assert core is not None
        path = self.parent_path
        try:
            self._r, self._w = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            self._trouble(f"cannot connect to the parent driver's socket {path}: "
                          f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else 'no answer'} "
                          "(is its driver running? port must be its socket name, e.g. usbhid-ups-myups)")
            core.on_lost()
            return False
        await self.send(core.on_connect())
        try:
            await asyncio.wait_for(self._read_dump(), DUMP_TIMEOUT)
        except (OSError, TimeoutError, EOFError):
            self._trouble(f"the parent driver on {path} did not send its data")
            await self.disconnect()
            return False
        if self._failing:
            log.info("connected to the parent driver on %s again", path)
        else:
            log.info("connected to the parent driver on %s", path)
        self._failing = None
        self._last_rx = time.monotonic()
        self._ping_at = None
        self._task = asyncio.get_running_loop().create_task(self._follow())
        return True

    def _trouble(self, text: str) -> None:
        if self._failing != text:
            log.error("%s; retrying every %d s", text, self.pollinterval)
        self._failing = text

    async def _read_dump(self) -> None:
        assert self._r is not None and self.core is not None
        with self.batch():
            while not self.core.dumped:
                data = await self._r.read(65536)
                if not data:
                    raise EOFError
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        assert self.core is not None
        out: list[str] = []
        for words in self.reader.feed(data):
            out.extend(self.core.feed(words))
        if out:
            asyncio.get_running_loop().create_task(self.send(out))

    async def _follow(self) -> None:
        """Read the parent's broadcasts until its socket closes."""
        assert self._r is not None and self.core is not None
        try:
            while True:
                data = await self._r.read(65536)
                if not data:
                    break
                self._last_rx = time.monotonic()
                with self.batch():
                    self._feed(data)
        except OSError as exc:
            log.debug("parent socket: %s", exc)
        with self.batch():
            self.core.on_lost()
        self._close_writer()

    def _close_writer(self) -> None:
        w, self._w, self._r = self._w, None, None
        if w is not None:
            with contextlib.suppress(Exception):
                w.close()
        self.reader = ParentReader()

    async def disconnect(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self._close_writer()
        if self.core is not None:
            self.core.connected = False

    async def check_alive(self) -> None:
        """PING a parent that has been quiet for a while; one that does not answer is treated as gone."""
        now = time.monotonic()
        if self._ping_at is not None and self._last_rx < self._ping_at:
            if now - self._ping_at >= PONG_TIMEOUT:
                log.error("the parent driver does not answer (no PONG in %d s): reconnecting", PONG_TIMEOUT)
                await self.disconnect()
                assert self.core is not None
                self.core.on_lost()
                self._ping_at = None
            return
        if now - self._last_rx >= PING_AFTER:
            self._ping_at = now
            await self.send(["PING"])

    async def send(self, lines: list[str]) -> None:
        if not lines or self._w is None:
            return
        try:
            self._w.write("".join(line + "\n" for line in lines).encode("ascii", "replace"))
            await self._w.drain()
        except OSError as exc:
            log.error("cannot send %s to the parent driver: %s", ", ".join(lines), exc)

    # ---- hooks
    async def updateinfo(self) -> None:
        core = self.core
        assert core is not None
        if self._w is None:
            await self.connect()
        elif core.wants_redump():
            log.info("the parent driver's data is stale: asking it for everything again")
            await self.disconnect()
            await self.connect()
        else:
            await self.check_alive()
        await self.send(core.tick(self.pollinterval))

    async def instcmd(self, cmd: str, param: str | None) -> Status:
        assert self.core is not None
        result, lines = self.core.instcmd(cmd, param)
        await self.send(lines)
        if result == Status.UNKNOWN:
            log.info("instant command %s not supported", cmd)
        return result

    def setvar(self, name: str, value: str) -> Status:
        assert self.core is not None
        result = self.core.setvar(name, value)
        if result == Status.UNKNOWN:
            log.info("setting %s not supported", name)
        return result

    def shutdown(self) -> bool:
        log.error("%s cannot shut anything down: it only reads the parent driver (use clone with load.off "
                  "and load.on for an outlet that a UPS section may switch)", self.name)
        return False

    async def cleanup(self) -> None:
        await self.disconnect()


class Clone(CloneOutlet):
    """clone: one outlet (group) of the parent's device as a UPS with its own FSD and delays."""

    name = "clone"
    description = "Clone UPS driver"
    version = "0.03"
    options = (
        Option("offdelay", "seconds from the shutdown decision to the parent's load.off (120)"),
        Option("ondelay", "seconds from mains return to the parent's load.on (30)"),
        Option("mincharge", "battery.charge in percent under which this outlet group shuts down on battery"),
        Option("minruntime", "battery.runtime in seconds under which this outlet group shuts down on battery"),
        Option("load.off", "the parent's instant command that switches the outlet group off"),
        Option("load.on", "the parent's instant command that switches the outlet group on"),
        Option("load.status", "the parent's variable that says whether the outlet group is on or off"),
    )

    def make_core(self) -> CloneCore:
        settings = CloneSettings.parse(self.getval)
        if settings.load_off is None or settings.load_on is None:
            log.warning("without both load.off and load.on the clone cannot power-cycle its outlet")
        return CloneCore(self.state, settings)

    async def initinfo(self) -> None:
        core = self.core
        assert isinstance(core, CloneCore)
        core.publish_own()
        await self.connect()

    def shutdown(self) -> bool:
        """Killpower through the running clone: the outlet goes off after ``offdelay`` and comes back
        ``ondelay`` seconds after the power returns (as ``shutdown.return``)."""
        core = self.core
        if self.runner is None or not isinstance(core, CloneCore):
            log.error("clone: killpower works through the running clone driver only (it keeps the offdelay "
                      "and ondelay timers while this host powers off); start the clone driver first")
            return False
        with self.batch():
            result, _ = core.instcmd("shutdown.return", None)
        return result == Status.HANDLED
