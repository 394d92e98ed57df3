"""The README stays short and its pages stay reachable: live links, a line limit, no code citing README sections.

Every relative link in README.md and docs/*.md must name a file that exists (and, for a
`#section`, a heading that exists in it); every docs/ page must be one click from the README;
the README stays within two screens; and code comments cite docs/ pages, never a README
section, since the README is no longer where method notes live.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 210
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# "README" used as a document (not the path README.md), or any README cited with a quoted title.
_NAME = "READ" + "ME"  # spelled apart so this file does not cite itself
_CITES_README = re.compile(rf"\b{_NAME}\b(?!\.md)|\b{_NAME}(\.md)?(?:['’]s\s*|\s*[,(:]\s*|\s+)[\"“]")
CODE_GLOBS = ("*.py", "*.yaml", "*.yml", "*.sh", "Makefile")
SKIP_DIRS = {".git", ".venv", "results", "node_modules", "__pycache__"}


def _prose(path: Path) -> str:
    """A page's text without its fenced code blocks (links and headings there are not markdown)."""
    return _FENCE.sub("", path.read_text())


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every anchor a page's headings give, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_prose(path)):
        slug = _slug(heading)
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def _relative_links(path: Path) -> list[str]:
    """The page's links that point inside the repository."""
    return [t for t in _LINK.findall(_prose(path)) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def dead_links(path: Path) -> list[str]:
    """Each relative link of a page whose file, or whose #section in that file, does not exist."""
    dead = []
    for target in _relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            dead.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            dead.append(target)
    return dead


def readme_citations(text: str) -> list[str]:
    """Lines of code text that cite the README as a document rather than a docs/ page."""
    return [line.strip() for line in text.splitlines() if _CITES_README.search(line)]


def _code_files() -> list[Path]:
    found = {p for g in CODE_GLOBS for p in ROOT.rglob(g)}
    keep = [p for p in found if not SKIP_DIRS & set(p.relative_to(ROOT).parts[:-1])]
    return sorted(p for p in keep if p.resolve() != Path(__file__).resolve())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(page):
    assert dead_links(page) == [], f"{page.relative_to(ROOT)} links to what does not exist"


def test_readme_fits_on_two_screens():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_every_docs_page_is_one_click_from_the_readme():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in _relative_links(README)}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert unlinked == [], f"docs pages the README does not link: {unlinked}"


def test_no_code_comment_cites_a_readme_section():
    cited = {str(p.relative_to(ROOT)): readme_citations(p.read_text()) for p in _code_files()}
    assert {k: v for k, v in cited.items() if v} == {}


def test_the_checks_catch_what_they_guard(tmp_path):
    """A dead file, a dead section and both ways the code used to cite the README are caught."""
    (tmp_path / "a.md").write_text("# Top\n\n## The alpha optimiser: why Adam 0.02\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#the-alpha-optimiser-why-adam-002) [gone](missing.md) [no](a.md#nope)\n"
                    "[web](https://example.org/x.md) [self](#here)\n\n# Here\n```\n[code](not-a-link.md)\n```\n")
    assert dead_links(page) == ["missing.md", "a.md#nope"]
    cites = f'x = 1  # chosen by the check ({_NAME}, "NASIB\'s optimisers")\n# see the {_NAME}\'s "Benchmarks"\n'
    cites += f'# measured on an H200 ({_NAME}.md ("Measured (GPU)"))\n# an H200 epoch estimate ({_NAME}).\n'
    assert len(readme_citations(cites)) == 4
    assert readme_citations('path = RESULTS / "README.md"  # a file, not a citation\n') == []
