"""The README and docs/ stay true: their links resolve inside the repository, the commands and make
targets they name exist, and the install recipe installs what is in the checkout."""

from __future__ import annotations

import re
import subprocess

import pytest
from nutenv import REPO_ROOT

from nutlite.cli import TOOLS

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repository(doc):
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s):, mailto:
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(REPO_ROOT), f"{doc.name} links {target}, outside the repository"
        assert path.exists(), f"{doc.name} links {target}, which does not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_reference_to_files_outside_the_repository(doc):
    assert "../shared" not in doc.read_text(), f"{doc.name} points at ../shared, which users do not have"


def test_readme_lists_every_tool():
    readme = (REPO_ROOT / "README.md").read_text()
    for name in TOOLS:
        assert f"`nutlite {name}" in readme or f"`{name}`" in readme, f"README does not mention nutlite {name}"


def test_make_targets_named_in_the_readme_exist():
    readme = (REPO_ROOT / "README.md").read_text()
    out = subprocess.run(["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    have = set(re.findall(r"make (\S+)", out))
    named = set(re.findall(r"`make ([a-z-]+)`", readme)) | set(re.findall(r"^make ([a-z-]+)", readme, re.M))
    named |= set(re.findall(r"`([a-z-]+)`", readme.split("`make help` lists the other targets")[1].split("\n")[0]))
    assert named, "the README names no make target"
    assert named <= have, f"the README names make targets that do not exist: {sorted(named - have)}"


def test_readme_install_recipe_uses_what_exists():
    readme = (REPO_ROOT / "README.md").read_text()
    recipe = readme.split("## Installing on an existing Debian or Raspberry Pi OS")[1].split("```")[1]
    out = subprocess.run(["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for target in re.findall(r"^make ([a-z-]+)", recipe, re.M):
        assert f"make {target} " in out, f"the install recipe runs make {target}, which does not exist"
    units = {p.name for p in (REPO_ROOT / "systemd").iterdir()}
    for unit in re.findall(r"systemctl enable --now ([^#\n]+)", recipe)[0].split():
        assert unit in units or unit + ".service" in units, f"the install recipe enables {unit}, not in systemd/"
