"""Every tool's help is plain text in one style: it starts with the usage (after NUT's banner line for
the programs that imitate one), says what the tool does, exits 0, and carries no reST or Markdown
markup and no traceback."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from nutenv import REPO_ROOT

from nutlite.cli import TOOLS
from nutlite.drivers.main import available_drivers

MARKUP = re.compile(r"``|:mod:|:func:|:class:|:meth:|^\s*\* |\*\*", re.M)


def run_help(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nutlite", *words], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=30)


def check_help(out: subprocess.CompletedProcess[str], what: str) -> str:
    text = out.stdout
    assert out.returncode == 0, f"{what}: exit {out.returncode}\n{out.stderr}"
    assert "Traceback" not in text + out.stderr, f"{what}: traceback\n{out.stderr}"
    assert text.strip(), f"{what}: no help on stdout"
    hit = MARKUP.search(text)
    assert hit is None, f"{what}: markup {hit.group(0)!r} in its help:\n{text}"
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[1] if lines[0].startswith("Network UPS Tools") else lines[0]
    assert first.lower().startswith("usage:"), f"{what}: help does not start with its usage:\n{text}"
    prose = [line for line in lines[1:] if not line.startswith((" ", "\t", "usage:", "Usage:"))]
    assert any(len(line.split()) >= 4 for line in prose), f"{what}: no sentence saying what it does:\n{text}"
    return text


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_help_is_plain_and_in_one_style(tool):
    check_help(run_help(tool, "-h"), f"nutlite {tool} -h")


@pytest.mark.parametrize("driver", available_drivers())
def test_driver_help_is_plain_and_in_one_style(driver):
    check_help(run_help(driver, "-h"), f"nutlite {driver} -h")


def test_top_level_help_lists_every_tool():
    out = run_help("-h")
    assert out.returncode == 0
    for tool in TOOLS:
        assert re.search(rf"^\s+{re.escape(tool)}\s", out.stdout, re.M), f"nutlite -h does not list {tool}"
    assert MARKUP.search(out.stdout) is None
