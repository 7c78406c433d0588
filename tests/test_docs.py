"""The documentation the code points at exists: every `docs/design.md §N` and README link."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("flcompile", "passes", "models", "tools", "tests")
REFERENCE = re.compile(r"docs/design\.md §(\d+)")


def _design_sections() -> set[int]:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    return {int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE)}


def _references() -> list[tuple[str, int]]:
    found = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found += [
                    (f"{path.relative_to(ROOT)}:{line_no}", int(n)) for n in REFERENCE.findall(line)
                ]
    return found


def test_design_sections_are_numbered_in_order() -> None:
    sections = _design_sections()
    assert sections == set(range(1, max(sections) + 1))


def test_every_design_reference_names_an_existing_section() -> None:
    references = _references()
    sections = _design_sections()
    assert len(references) >= 20  # the code cites the design throughout
    missing = [(where, n) for where, n in references if n not in sections]
    assert not missing, f"references to sections docs/design.md lacks: {missing}"


def test_no_reference_to_a_design_outside_the_repository() -> None:
    # The founding design file, which lived outside the repository; split so as not to match here.
    old = re.compile(r"(?<![\w/.])" + "DESIGN" + " §")
    stale = [
        str(path.relative_to(ROOT))
        for folder in SOURCE_DIRS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if old.search(path.read_text(encoding="utf-8"))
    ]
    assert not stale


def test_readme_links_to_docs_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert {"docs/design.md", "docs/paper-results.md"} <= set(links)
    assert all((ROOT / link).is_file() for link in links)
