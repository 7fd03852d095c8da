"""Prometheus exporter for NUT servers (``nutlite exporter``); see docs/exporter.md."""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_file"]


def data_file(name: str) -> Path:
    """Path of a file shipped with the exporter (dashboards, alert rules) in ``nutlite/exporter/data``."""
    from importlib import resources  # here: the exporter daemon never needs it (tempfile, random, ...)

    return Path(str(resources.files(__name__).joinpath("data", name)))
