"""The README and its docs pages: Python examples run as written, the quick start is what CI runs,
the README fits on a page, and every relative link (file and #anchor) resolves."""

from pathlib import Path
import re
import unicodedata

import pytest

from common_utils import REPO

README = (REPO / "README.md").read_text()
# Pages whose ```python blocks are examples moved out of the README: each must hold at least one.
EXAMPLE_PAGES = ["docs/TRAINING.md", "docs/DEPENDENCE.md", "docs/MUSICGEN.md", "docs/QUALITY.md"]
PAGES = sorted({REPO / "README.md", *(REPO / "docs").rglob("*.md")})


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", EXAMPLE_PAGES)
def test_python_examples_run(page):
    blocks = python_blocks((REPO / page).read_text())
    assert blocks, f"{page} lost its examples"
    for block in blocks:
        exec(compile(block, page, "exec"), {})


def test_readme_has_no_untested_python():
    assert not python_blocks(README), "put examples in a docs page listed in EXAMPLE_PAGES"


def test_quick_start_test_command_is_the_ci_command():
    quick_start = re.search(r"## Quick start.*?```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["./mmd-env dora run solver=compression/mmd", "./mmd-env pytest"]
    assert commands[1] in (REPO / ".ci" / "run").read_text().splitlines()


def test_readme_fits_on_a_page():
    assert len(README.splitlines()) <= 200


def github_anchor(heading: str) -> str:
    """GitHub's heading id: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip().lower())
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings inside code
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_github_anchor():
    assert github_anchor(" The `mmd` config section") == "the-mmd-config-section"
    assert github_anchor("What the main job leaves, and how to look at it") == \
        "what-the-main-job-leaves-and-how-to-look-at-it"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_every_docs_page_is_reachable_from_the_readme():
    linked = {(REPO / target.partition("#")[0]).resolve()
              for target in re.findall(r"\]\((docs/[^)\s]+)\)", README)}
    reachable = set(linked)
    for page in list(linked):  # one hop: pages linked from a linked page (RESULTS.md from STUDY.md)
        if page.suffix == ".md":
            reachable |= {(page.parent / t.partition("#")[0]).resolve()
                          for t in re.findall(r"\]\(([^)\s:]+\.md)(?:#[^)]*)?\)", page.read_text())}
    unreachable = [p.name for p in PAGES if p.resolve() not in reachable and p.name != "README.md"]
    assert not unreachable
