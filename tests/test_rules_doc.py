"""docs/rules.md: every section a docstring or comment cites exists, and the page has no command to run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "rules.md"
# "docs/rules.md, "Section"" or "docs/rules.md ("Section", "Another")", across the lines of a docstring or comment
CITATION = re.compile(r'docs/rules\.md[,:]?\s*\(?((?:"[^"]+"(?:,\s*)?)+)')


def _sections() -> set[str]:
    return {line[3:].strip() for line in RULES.read_text().splitlines() if line.startswith("## ")}


def _citations() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [*ROOT.glob("netkit/**/*.py"), *ROOT.glob("tests/*.py"), *(p for p in ROOT.glob("scripts/*") if p.is_file())]
    for path in files:
        if path.name == Path(__file__).name:
            continue
        text = re.sub(r"\s*\n\s*(?:#\s*)?", " ", path.read_text(errors="replace"))  # one line: citations wrap
        for match in CITATION.finditer(text):
            for name in re.findall(r'"([^"]+)"', match.group(1)):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_cited_section_exists():
    cited = _citations()
    assert cited, "no citation of docs/rules.md found: the pattern is out of date"
    missing = {name: sorted(paths) for name, paths in cited.items() if name not in _sections()}
    assert not missing, f"cited sections docs/rules.md does not have: {missing}"


def test_the_page_has_no_command_block_to_run():
    # A command block would need a test that runs it verbatim, as the README's have: the page is prose and tables.
    assert "```" not in RULES.read_text() and "\n    $ " not in RULES.read_text()


def test_no_docstring_cites_a_file_the_repository_does_not_have():
    stale = [str(p.relative_to(ROOT)) for p in [*ROOT.glob("netkit/**/*.py"), *ROOT.glob("tests/*.py")]
             if "KERNEL-NOTES" in p.read_text(errors="replace") and p.name != Path(__file__).name]
    assert not stale, f"these cite KERNEL-NOTES, which is not in the repository (docs/rules.md is): {stale}"
