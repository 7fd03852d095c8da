"""nutlite: a lean, NUT-compatible UPS stack."""

__version__ = "0.1.0"
