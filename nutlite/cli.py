"""`nutlite <tool> …`: one entry point for every daemon and tool.

Installed, NUT's own command names (``upsc``, ``upsmon``, ``dummy-ups``, …) can be links to this
program, so the tool can also be chosen by the name it was started under; ``nutlite <driver> …`` runs
that driver as ``nutlite driver --driver-name <driver> …`` does.

No Python traceback reaches a user: :func:`main` turns an unexpected exception into one line naming the
tool and what went wrong, and where to report it (the traceback only with ``-D`` or
``NUTLITE_DEBUG=1``), exit status 1; Ctrl-C ends a tool quietly with 130.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import textwrap
import traceback
from collections.abc import Callable
from typing import Any, TextIO

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
    "udev-rules": ("nutlite.udev", "print the udev rules for USB UPSes (--hotplug: ups.conf's hot-plug rules)"),
    "scan": ("nutlite.tools.scan", "list the USB UPSes attached and print a ups.conf section for each (nut-scanner -U)"),
    "hid-dump": ("nutlite.tools.hiddump", "print a USB HID UPS's descriptor and values; --record a capture of it"),
    "appliance": ("nutlite.appliance.main", "the SD-card image's boot step: appliance setup installs the boot partition's nutlite/ files"),
    "sim": ("nutlite.sim.main", "UPS simulators on a pseudo-terminal: sim q1|apc [--link PATH] [--script FILE]"),
}

DEBUG_ENV = "NUTLITE_DEBUG"
REPORT_TO = ("please report it to the nutlite maintainers with the command you ran and its output with "
             f"{DEBUG_ENV}=1 set")


def driver_names() -> tuple[str, ...]:
    """NUT's driver program names (``nutdrv_qx``, ``genericups``, …, planned ones too): as argv[0] or as
    ``nutlite <name>`` they run that driver (a planned one says it is not in this build yet)."""
    from nutlite.drivers.main import DRIVERS

    return tuple(DRIVERS)


def usage() -> str:
    from nutlite.drivers.main import drivers_summary

    lines = ["usage: nutlite <tool> [options]", "       nutlite <driver> [options]", "",
             "Run one of the daemons, tools or UPS drivers of nutlite, a NUT-compatible UPS stack: the",
             "first word names it.", "", "tools:"]
    for name, (_, text) in TOOLS.items():
        lines.append(f"  {name:<10} {text}")
    lines.append("")
    lines.append("drivers:")
    lines.append("  <driver>   run that UPS driver (as nutlite driver -a <ups> runs the driver of <ups>)")
    lines.extend(textwrap.wrap(drivers_summary(), 100, initial_indent="             ",
                               subsequent_indent="             "))
    lines.append("")
    lines.append("'nutlite <tool> -h' shows a tool's options, 'nutlite <driver> -h' a driver's settings.")
    return "\n".join(lines)


def run_tool(name: str, argv: list[str]) -> int:
    module = importlib.import_module(TOOLS[name][0])
    return int(module.main(argv) or 0)


def run_driver(name: str, argv: list[str], prog: str) -> int:
    from nutlite.drivers import main as driver_main

    return int(driver_main.main(["--driver-name", name, *argv], prog=prog) or 0)


def _debugging(argv: list[str]) -> bool:
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        return True
    return any(len(a) > 1 and a.startswith("-D") and set(a[1:]) == {"D"} for a in argv)


def internal_error(tool: str, exc: BaseException, debug: bool) -> None:
    """Say that ``tool`` failed unexpectedly: one line and where to report it; the traceback if ``debug``.
    Into the log when the tool set one up (a daemon in the background logs to syslog), else on stderr."""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = f"nutlite {tool}: internal error: {what}"
    hint = REPORT_TO if debug else f"{REPORT_TO} (run it with {DEBUG_ENV}=1 or -D to see the Python traceback)"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        from nutlite.daemon import account_name

        text = (f"nutlite {tool}: cannot import the Python module '{exc.name}': it is not installed, or not "
                f"readable by {account_name(os.geteuid())}")
        hint = "Install nutlite with its dependencies where every account it runs as can read them."
    if isinstance(exc, OSError) and exc.filename:
        from nutlite.daemon import path_facts, running_as

        hint = "\n".join([running_as(), *path_facts(exc.filename), hint])
    root = logging.getLogger()
    if root.handlers:
        log = logging.getLogger("nutlite")
        log.error("%s\n%s", text, hint, exc_info=exc if debug else None)
        return
    with contextlib.suppress(OSError, ValueError):  # stderr itself may be gone
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"{text}\n{hint}", file=sys.stderr)


class _WatchedOutput:
    """sys.stdout as it is, but remembering the error of a failed write (a full disk, a closed pipe)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guarded(tool: str, run: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run ``run(argv)`` for ``tool`` with the last-resort guard: SystemExit passes, Ctrl-C is exit 130
    without a word, a closed pipe on stdout (``upsc -l | head -1``) ends quietly, output that cannot be
    written is said in one line, anything else is an internal error (exit 1)."""
    out = _WatchedOutput(sys.stdout) if sys.stdout is not None else None
    if out is not None:
        sys.stdout = out  # type: ignore[assignment]
    try:
        return _guarded_run(tool, run, argv, out)
    finally:
        if out is not None and sys.stdout is out:
            sys.stdout = out._stream


def _guarded_run(tool: str, run: Callable[[list[str]], int], argv: list[str], out: _WatchedOutput | None) -> int:
    try:
        code = run(argv)
        sys.stdout.flush()
    except SystemExit as exc:
        # argparse's -h and --version swallow a failed write and exit 0: the output was lost all the same
        if out is not None and out.error is not None and exc.code in (0, None):
            return _output_failed(tool, out.error)
        raise
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if out is not None and exc is out.error:
            return _output_failed(tool, exc)
        internal_error(tool, exc, _debugging(argv))
        return 1
    if out is not None and out.error is not None and code == 0:  # a tool that caught the write error
        return _output_failed(tool, out.error)
    return code


def _output_failed(tool: str, exc: OSError) -> int:
    """The exit status when the output could not be written: 141 for a closed pipe (``upsc -l | head
    -1``: as a shell reports a process killed by SIGPIPE, without a word), else 1 with one line."""
    if isinstance(exc, BrokenPipeError):
        _drop_stdout()
        return 141
    return _stdout_error(tool, exc)


def _stdout_error(tool: str, exc: OSError) -> int:
    """Writing the output failed (a full disk, a closed terminal): say so in one line."""
    _drop_stdout()
    with contextlib.suppress(OSError, ValueError):  # stderr itself may be gone
        print(f"nutlite {tool}: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
    return 1


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit finds nothing left to fail on."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass


# The long-running daemons that start without ssl (nutlite.lazyssl: it is imported when TLS is set up),
# and with inspect imported only when first used.
SSL_LAZY = frozenset({"upsd", "upsmon", "driver", "exporter"})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0]) if argv else "nutlite"
    chosen = argv[1] if prog in ("nutlite", "__main__.py") and len(argv) > 1 else prog
    if chosen in SSL_LAZY or (chosen not in TOOLS and not chosen.startswith("-")):  # a daemon or a driver
        from nutlite import lazyssl

        lazyssl.keep_out()
        lazyssl.defer("inspect")
    if prog in TOOLS:
        return guarded(prog, lambda a: run_tool(prog, a), argv[1:])
    if prog not in ("nutlite", "__main__.py") and prog in driver_names():
        return guarded(prog, lambda a: run_driver(prog, a, prog), argv[1:])
    args = argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from nutlite import __version__

        print(f"nutlite {__version__}")
        return 0
    name = args[0]
    if name in TOOLS:
        return guarded(name, lambda a: run_tool(name, a), args[1:])
    if name in driver_names():
        return guarded(name, lambda a: run_driver(name, a, f"nutlite {name}"), args[1:])
    print(f"nutlite: unknown tool '{name}'\n\n{usage()}", file=sys.stderr)
    return 2
