"""The tools' flags and help texts.

Every flag that Debian's NUT 2.8.0 lists in a tool's -h is accepted by nutlite's tool of that name.

The flags are read from the Debian binary's own help each time (so a newer Debian NUT with more flags
makes this fail until nutlite has them), then each is given to ``python -m nutlite <tool>`` followed by
``-h``: the flag is accepted when nutlite prints its help without a complaint about the flag. A flag
whose placeholder (``-u <user>``) is an option argument gets a sample value; one whose placeholder is
the operand that follows (``upscmd -l <ups>``) is also tried bare. upssched has no flags (upsmon runs
it), so it has no case there.

The help texts share one style: plain text (no reST or Markdown markup from docstrings), a usage line,
options whose meaning starts in lowercase and has no trailing period.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from nutenv import REPO_ROOT

interop = pytest.mark.interop  # the tests that need Debian's NUT

# Debian's binaries (/sbin/upsmon is a wrapper script that runs /lib/nut/upsmon only when nut.conf's
# MODE allows it, so the real program is asked directly).
DEBIAN = {
    "upsmon": Path("/lib/nut/upsmon"),
    "upsdrvctl": Path("/sbin/upsdrvctl"),
    "upsc": Path("/bin/upsc"),
    "upscmd": Path("/bin/upscmd"),
    "upsrw": Path("/bin/upsrw"),
    "upslog": Path("/bin/upslog"),
}
# Sample values for the placeholders of Debian's help ("-u <user>" -> "-u nut").
VALUES = {
    "cmd": "reload", "pid": "1", "user": "nut", "path": "/", "ups": "ups@127.0.0.1:1", "username": "admin",
    "password": "secret", "timeout": "5", "variable": "ups.id", "format": "%VAR ups.status%",
    "interval": "5", "logfile": "-", "pidbase": "flagtest",
}  # fmt: skip
COMPLAINTS = ("invalid option", "unrecognized argument", "requires an argument", "error:")
OPTION_LINE = re.compile(r"^\s+(-[A-Za-z0-9])(?:\s+<([a-z]+)>)?(?:\s|$)")


def run(argv: list[str], executable: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUT_", "NOTIFY"))}
    env["LC_ALL"] = "C"
    env["NUT_CONFPATH"] = env["NUT_STATEPATH"] = env["NUT_ALTPIDPATH"] = "/nonexistent"
    return subprocess.run(argv, executable=executable, capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO_ROOT, stdin=subprocess.DEVNULL, start_new_session=True)


def debian_flags(tool: str) -> list[tuple[str, str | None]]:
    """(flag, placeholder or None) for each option line of Debian's ``<tool> -h``."""
    path = DEBIAN[tool]
    if not path.exists():
        pytest.skip(f"Debian's {tool} is not installed ({path})")
    p = run([tool, "-h"], executable=str(path))
    flags = [(m.group(1), m.group(2)) for line in p.stdout.splitlines() if (m := OPTION_LINE.match(line))]
    assert len(flags) >= 3, f"no options found in Debian's {tool} -h:\n{p.stdout}{p.stderr}"
    return flags


def nutlite(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "nutlite", tool, *args])


def accepted(tool: str, flag: str, placeholder: str | None) -> str | None:
    """None if nutlite's tool takes ``flag``; else what it said."""
    attempts = [[flag, "-h"]]
    if placeholder is not None:
        assert placeholder in VALUES, f"Debian's {tool} -h has a new placeholder <{placeholder}>: add a value"
        attempts.insert(0, [flag, VALUES[placeholder], "-h"])
    said = []
    for args in attempts:
        p = nutlite(tool, *args)
        if "usage:" in p.stdout and not any(c in p.stderr for c in COMPLAINTS):
            return None
        said.append(f"{tool} {' '.join(args)}: exit {p.returncode}, stderr {p.stderr.strip()!r}")
    return "; ".join(said)


@interop
@pytest.mark.parametrize("tool", sorted(DEBIAN))
def test_debian_flags_are_accepted(tool: str) -> None:
    flags = debian_flags(tool)
    ours = nutlite(tool, "-h")
    assert ours.returncode == 0 and "usage:" in ours.stdout, ours
    problems = []
    for flag, placeholder in flags:
        complaint = accepted(tool, flag, placeholder)
        if complaint is not None:
            problems.append(complaint)
        elif not re.search(rf"(^|[\s\[|]){re.escape(flag)}\b", ours.stdout, re.M):
            problems.append(f"{tool} -h does not mention {flag}")
    assert not problems, "\n".join(problems)


def test_a_flag_nobody_has_is_refused() -> None:
    """The check above can fail: an unknown flag is complained about by every tool."""
    for tool in sorted(DEBIAN):
        assert accepted(tool, "-Z", None) is not None, tool


# ------------------------------------------------------------------------------------------ help style

HELP_TOOLS = ["upsmon", "upsdrvctl", "upssched", "bootguard", "upsc", "upscmd", "upsrw", "upslog"]
MARKUP = re.compile(r"``|`[^`]+`|:(mod|func|class|meth|attr):|^\s*[*] |^\s*\.\. |::$", re.M)
# "  -x ARG   meaning" (argparse), "  -x <arg>   meaning" / "  -x <arg> - meaning" (NUT's layout)
ENTRY = re.compile(r"^  (-\S+(?:[ ,]+(?:<[^>]+>|\{[^}]*\}|[A-Z][A-Z_\[\]@:]*|--?\S+))*)\s+(?:- )?(\S.*)$")


@pytest.mark.parametrize("tool", HELP_TOOLS)
def test_help_style(tool: str) -> None:
    p = nutlite(tool, "-h")
    assert p.returncode == 0 and not p.stderr, p
    text = p.stdout
    assert not MARKUP.search(text), f"markup in {tool} -h: {MARKUP.search(text)}"
    head = text.splitlines()[:3]
    assert any(ln.startswith("usage: ") for ln in head), head  # after at most NUT's banner line
    entries = [m.group(2) for ln in text.splitlines() if (m := ENTRY.match(ln))]
    assert entries, text
    for meaning in entries:
        first = meaning.split()[0]
        assert not meaning.endswith("."), f"{tool}: trailing period in {meaning!r}"
        assert not first[0].isupper() or first.isupper() or first.rstrip(",:").isupper(), (
            f"{tool}: {meaning!r} should start in lowercase")
