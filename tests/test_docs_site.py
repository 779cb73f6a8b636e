"""The docs site (mkdocs.yml, docs/): it builds with `mkdocs build --strict`, and its nav is every page, in the order
scripts/readme-commands reads them (tests/test_readme.py runs their commands)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netkit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
BUILD_TIMEOUT_S = 120  # measured: about 1.5 s


def needs_mkdocs() -> None:
    """mkdocs and its plugins come with netkit's `docs` extra (scripts/provision.sh installs it)."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail(f"mkdocs is not installed in {sys.prefix}: run scripts/provision.sh (it installs the docs extra)",
                    pytrace=False)


def nav_pages_by_yaml() -> list[str]:
    import yaml  # mkdocs' own dependency

    def walk(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [page for item in node for page in walk(item)]
        if isinstance(node, dict):
            return [page for value in node.values() for page in walk(value)]
        return []

    # mkdocs.yml may hold !!python/name tags (none today); the nav is plain data either way.
    return walk(yaml.safe_load(MKDOCS_YML.read_text())["nav"])


def test_the_site_builds_strict(tmp_path):
    needs_mkdocs()
    site = tmp_path / "site"
    in_checkout = (ROOT / "site").exists()  # a reader's own `mkdocs build` output, if any
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(MKDOCS_YML),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    took = time.monotonic() - started
    assert done.returncode == 0, f"mkdocs build --strict exited {done.returncode} after {took:.1f} s:\n{done.stderr[-4000:]}"
    assert in_checkout or not (ROOT / "site").exists(), "the build wrote into the checkout"
    api = (site / "api" / "index.html").read_text()
    undocumented = [name for name in netkit.__all__
                    if f'id="netkit.{name}"' not in api and f'id="netkit.errors.{name}"' not in api]
    assert not undocumented, f"the API reference (docs/api.md) lacks these exports of netkit: {undocumented}"


def test_the_nav_holds_every_page_once():
    needs_mkdocs()
    nav = nav_pages_by_yaml()
    assert len(nav) == len(set(nav)), nav
    assert sorted(nav) == sorted(p.name for p in DOCS.glob("*.md")), "every docs/*.md page is in mkdocs.yml's nav"


def test_the_lister_reads_the_nav_as_yaml_does():
    """scripts/readme-commands reads the nav with a regular expression (standard library only, on a fresh machine)."""
    needs_mkdocs()
    listed = subprocess.run([str(ROOT / "scripts" / "readme-commands"), "--shell", "-n", "--where", "host"],
                            capture_output=True, text=True, check=True).stdout
    assert listed.startswith("README.md:")
    loader = importlib.machinery.SourceFileLoader("readme_commands", str(ROOT / "scripts" / "readme-commands"))
    spec = importlib.util.spec_from_loader("readme_commands", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert [str(p.relative_to(DOCS)) for p in module.nav_pages(MKDOCS_YML)] == nav_pages_by_yaml()
