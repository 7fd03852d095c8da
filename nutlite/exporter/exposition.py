"""The Prometheus text exposition format (version 0.0.4), for gauge families.

The exporter renders its few gauge families itself instead of importing ``prometheus_client``, whose
import brings ``http.server``, ``wsgiref``, ``email`` and ``urllib.request`` (about 110 modules and
8 MiB of heap in a daemon that needs none of them). The output is byte for byte what
``prometheus_client.generate_latest`` gives for the same families (tests compare the two):

* ``# HELP`` text escapes backslash and newline; labels are sorted by name, and their values escape
  backslash, double quote and newline;
* values are Python's shortest ``repr`` of the float, ``+Inf``/``-Inf``/``NaN``, and for positive
  values of 10**6 and more Go's exponent notation (``1.5e+06``), as Prometheus' Go clients print.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

Labels = dict[str, str]


@dataclass
class Family:
    """One metric family: a name, its help text and its samples (labels, value)."""

    name: str
    doc: str
    kind: str = "gauge"
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, labels: Labels, value: float) -> None:
        self.samples.append((labels, value))


def format_value(value: float) -> str:
    """A sample value as Prometheus' clients print it."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    dot = text.find(".")
    if v > 0 and dot > 6:  # 1234567.0 -> 1.234567e+06 (Go switches to exponents sooner than Python)
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _label(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_family(fam: Family) -> str:
    lines = [f"# HELP {fam.name} {_help(fam.doc)}", f"# TYPE {fam.name} {fam.kind}"]
    for labels, value in fam.samples:
        if labels:
            body = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{fam.name}{{{body}}} {format_value(value)}")
        else:
            lines.append(f"{fam.name} {format_value(value)}")
    return "\n".join(lines) + "\n"


def render(families: Iterable[Family]) -> bytes:
    """The text format for ``families``, rendered one family at a time."""
    return "".join(render_family(f) for f in families).encode("utf-8")
