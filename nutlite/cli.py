"""`nutlite <tool> …`: one entry point for every daemon and tool.

On the image NUT's own command names (``upsc``, ``upsmon``, …) are links to this
program, so the tool can also be chosen by the name it was started under.
"""

from __future__ import annotations

import importlib
import os
import sys

# tool name -> "module:function"; modules are imported only when their tool runs.
TOOLS: dict[str, tuple[str, str]] = {
    "upsd": ("nutlite.upsd.main", "the NUT network server (TCP 3493)"),
    "upsmon": ("nutlite.upsmon.main", "watch UPSes and shut this system down when power runs out"),
    "driver": ("nutlite.drivers.main", "run one UPS driver: driver -a <ups>"),
    "upsdrvctl": ("nutlite.tools.upsdrvctl", "start/stop the drivers of ups.conf"),
    "upsc": ("nutlite.tools.upsc", "list UPSes and read variables"),
    "upscmd": ("nutlite.tools.upscmd", "run instant commands"),
    "upsrw": ("nutlite.tools.upsrw", "list and set writable variables"),
    "upslog": ("nutlite.tools.upslog", "log UPS variables with a format string"),
    "upssched": ("nutlite.upssched", "timers for upsmon's events (set it as upsmon's NOTIFYCMD)"),
    "exporter": ("nutlite.exporter.main", "Prometheus exporter for local and remote NUT servers"),
    "bootguard": ("nutlite.bootguard", "after a power-fail shutdown, wait at boot for the UPS to recharge"),
    "demo": ("nutlite.demo", "run the whole stack on simulated UPSes (make run)"),
    "sim": ("nutlite.sim.main", "UPS simulators on a pseudo-terminal: sim q1|apc [--link PATH] [--script FILE]"),
}


def driver_names() -> tuple[str, ...]:
    """NUT's driver program names (``nutdrv_qx``, ``genericups``, …): as argv[0] they run that driver."""
    from nutlite.drivers.main import DRIVERS

    return tuple(DRIVERS)


def usage() -> str:
    lines = ["usage: nutlite <tool> [options]", "", "tools:"]
    for name, (_, text) in TOOLS.items():
        lines.append(f"  {name:<10} {text}")
    lines.append("")
    lines.append("'nutlite <tool> -h' shows a tool's options.")
    return "\n".join(lines)


def run_tool(name: str, argv: list[str]) -> int:
    module = importlib.import_module(TOOLS[name][0])
    return int(module.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0]) if argv else "nutlite"
    if prog in TOOLS:
        return run_tool(prog, argv[1:])
    if prog not in ("nutlite", "__main__.py") and prog in driver_names():
        return run_tool("driver", ["--driver-name", prog, *argv[1:]])
    args = argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from nutlite import __version__

        print(f"nutlite {__version__}")
        return 0
    name = args[0]
    if name not in TOOLS:
        print(f"nutlite: unknown tool '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    return run_tool(name, args[1:])
