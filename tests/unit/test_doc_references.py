"""Every reference to a document resolves: `docs/….md#anchor` in code, templates and documents, every relative
Markdown link, and every repository path a document names in backticks. A moved file or a renamed heading
fails here, not in a reader's browser."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".html", ".js", ".json", ".toml", ".txt", ".in", ""}

DOC_MENTION = re.compile(r"(?<![\w/.-])(docs/[\w.-]+\.md)(#[\w-]+)?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
BACKTICKED_PATH = re.compile(
    r"`((?:shared|functions|tests|local|scripts|docs|\.ci)/[\w/.-]+\.(?:py|md|yaml|json|html|js))`"
)


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / name for name in listed.splitlines()]
    return [f for f in files if f.is_file() and (f.suffix in TEXT_SUFFIXES or f.name == "Makefile")]


FILES = tracked_files()
DOCUMENTS = [f for f in FILES if f.suffix == ".md"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(document: Path) -> frozenset[str]:
    found: set[str] = set()
    in_code = False
    for line in document.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6}\s+(.*)", line)):
            found.add(slug(heading.group(1)))
    found |= set(re.findall(r'<a (?:id|name)="([\w-]+)"', document.read_text()))
    return frozenset(found)


def problems_in(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    problems = []
    for match in DOC_MENTION.finditer(text):
        target, anchor = ROOT / match.group(1), match.group(2)
        if not target.is_file():
            problems.append(f"{match.group(0)}: no such document")
        elif anchor and anchor[1:] not in anchors(target):
            problems.append(f"{match.group(0)}: no such heading")
    if path.suffix == ".md":
        for match in MARKDOWN_LINK.finditer(text):
            link = match.group(1)
            if re.match(r"[a-z]+:", link):  # https:, mailto:
                continue
            file_part, _, anchor = link.partition("#")
            target = (path.parent / file_part).resolve() if file_part else path
            if not target.exists():
                problems.append(f"({link}): no such file")
            elif anchor and target.suffix == ".md" and anchor not in anchors(target):
                problems.append(f"({link}): no such heading")
        problems += [f"`{m}`: no such file" for m in BACKTICKED_PATH.findall(text) if not (ROOT / m).exists()]
    return problems


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_every_document_reference_resolves(path: Path) -> None:
    assert problems_in(path) == []


def test_the_checker_sees_a_broken_reference(tmp_path: Path) -> None:
    page = ROOT / "docs" / "api.md"
    assert "identity-and-access" in anchors(page) and "making-a-payment" in anchors(page)
    broken = tmp_path / "note.md"
    docs = "docs/"  # split, so this file's own text holds no broken reference
    broken.write_text(
        f"See {docs}api.md#no-such-part, {docs}nothing.md, [x](missing.md), [y](#nowhere), `shared/payments/gone.py`."
    )
    assert len(problems_in(broken)) == 5
