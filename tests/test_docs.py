"""The README and docs/: every relative link resolves (file and heading), no project history in
the prose, the README stays short, and every command they show exists (make targets, Python
modules and scripts; Python blocks parse). The library example runs in tests/test_api.py."""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = ROOT / "docs" / "results"  # written by commands (make results, bench --markdown)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: link to {target}: no such file"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{page.name}: link to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_project_history_in_the_guide(page):
    found = re.findall(r"commit [0-9a-f]{7}|sitting|fresh clone of|the day before|issue \d+",
                       prose(page))
    assert not found, f"{page.name}: {found} (history belongs in git and CHANGELOG.md)"


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def commands(block: str):
    """The block's commands, one per line (continued lines joined), comments dropped."""
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            try:
                yield shlex.split(line)
            except ValueError:  # a quote opened in a comment-less shell idiom: plain words
                yield line.split()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_exists(page):
    """``make T``: T is a target; ``python -m M``: M is importable here; ``python path.py``
    and ``bash path``: the file exists; a ``python`` block parses."""
    for lang, block in FENCE.findall(page.read_text()):
        if lang == "python":
            ast.parse(block)
        if lang != "bash":
            continue
        for words in commands(block):
            if words[0] == "make":
                named = [w for w in words[1:] if "=" not in w]
                assert set(named) <= targets(), f"{page.name}: {' '.join(words)}"
            elif words[0] in ("python", "python3") or words[0].endswith("/python"):
                if words[1] == "-m":
                    assert importlib.util.find_spec(words[2]) is not None, \
                        f"{page.name}: {' '.join(words)}"
                elif words[1].endswith(".py"):
                    assert (ROOT / words[1]).is_file(), f"{page.name}: {' '.join(words)}"
            elif words[0] in ("bash", "sh") or words[0].startswith(("bench/", "./bench/")):
                script = words[1] if words[0] in ("bash", "sh") else words[0]
                assert (ROOT / script.removeprefix("./")).is_file(), f"{page.name}: {script}"


def test_the_make_run_output_the_readme_quotes_has_the_shape_it_prints():
    """The quoted summary: the lines src/run.py prints, in its order (digits differ by CPU)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```\n(== gru-partial-copy-s0 done in .*?)```", text, re.S).group(1)
    shapes = [r"== gru-partial-copy-s0 done in \d+ s", r"   test/loss \d\.\d{4}",
              r"   warm-up \(100 Adam steps on VAA\*\) loss \d\.\d{3} -> \d\.\d{3}, VAA\* ",
              r"   vaa \(init -> warm-up -> final\) [\d.]+ -> [\d.]+ -> [\d.]+ ",
              r"   settled +\d+% -> \d+% -> \d+% ", r"   mlflow run ", r"   browse: http",
              r"   outputs: ", r"   attractors: "]
    lines = block.strip("\n").splitlines()
    assert len(lines) == len(shapes)
    for line, shape in zip(lines, shapes):
        assert re.match(shape, line), (line, shape)
