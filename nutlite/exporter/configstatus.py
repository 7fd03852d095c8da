"""The appliance's configuration status on the exporter's /metrics page.

``nutlite appliance setup`` writes ``/run/nutlite/config-status.json`` at boot: for each NUT file of
the boot partition, whether it was good and where the installed copy came from. The exporter reads it
at every scrape of /metrics and publishes ``nutlite_config_file_ok{file=...,source=...}`` (1 good, 0
broken). No file: no series. A file that cannot be read or understood: no series, and one log line
each time the problem changes."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from nutlite.exporter.exposition import Family, render

log = logging.getLogger("nutlite.exporter")

DEFAULT_PATH = "/run/nutlite/config-status.json"
METRIC = "nutlite_config_file_ok"
HELP = ("1 if the NUT file from the boot partition was good, 0 if it was broken and another copy "
        "(source) was installed")


class ConfigStatus:
    """Reads the status file; remembers the last problem so that each is logged once."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._problem: str | None = None
        self._lock = threading.Lock()

    def _note(self, problem: str | None) -> None:
        with self._lock:
            if problem != self._problem:
                self._problem = problem
                if problem is not None:
                    log.warning("%s", problem)
                else:
                    log.info("config status %s can be read again", self.path)

    def samples(self) -> list[tuple[dict[str, str], float]]:
        if self.path is None:
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:  # not an appliance, or not set up yet: nothing to say
            with self._lock:
                self._problem = None
            return []
        except (OSError, UnicodeDecodeError) as exc:
            self._note(f"cannot read the config status {self.path}: {getattr(exc, 'strerror', None) or exc}")
            return []
        try:
            files = json.loads(text)["files"]
            out = []
            for name, entry in files.items():
                ok, source = entry["ok"], entry["source"]
                if not isinstance(ok, bool) or not isinstance(source, str) or not isinstance(name, str):
                    raise TypeError("'ok' must be true or false and 'source' a string")
                out.append(({"file": name, "source": source}, 1.0 if ok else 0.0))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._note(f"the config status {self.path} is not what nutlite appliance setup writes "
                       f"({type(exc).__name__}: {exc}); no {METRIC} series")
            return []
        self._note(None)
        return out

    def render(self) -> bytes:
        """The Prometheus text of the series (empty without any)."""
        samples = self.samples()
        if not samples:
            return b""
        return render([Family(METRIC, HELP, samples=samples)])
