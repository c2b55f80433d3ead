"""The files the course's texts cite exist: README, the experiment log (results/README.md) and the notebooks' text.

Every figure there names the committed file it comes from; a results file renamed, moved or never committed would
leave a figure without its evidence, and nothing else would notice."""

from __future__ import annotations

import functools
import itertools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("results", "utils", "scripts", "benchmarks", "notebooks", "experiments", "data", "tests")
#: A path in backticks under one of the repository's folders (`results/ablation/weak_grpo.json`,
#: `utils/evaluate/answers.py`, `results/ablation/{weak,strong}_grpo/completions_sft_test.jsonl`).
CITED = re.compile(r"`((?:" + "|".join(FOLDERS) + r")/[^`\s]*)`")
#: A results file named in plain text, without backticks ("(results/cpu_recipe_2026-12-06.json)").
PLAIN = re.compile(r"(?<![\w/`])(results/[\w./*{},-]+\.(?:json|jsonl|gz|md))")


@functools.cache  # read once: every parametrized case and the count below share it
def texts() -> dict[str, str]:
    found = {name: (ROOT / name).read_text() for name in ("README.md", "results/README.md")}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found[f"notebooks/{path.name}"] = "\n".join("".join(cell["source"]) for cell in cells)
    return found


def expand(path: str) -> list[str]:
    """``a/{b,c}.json`` -> ``a/b.json``, ``a/c.json`` (the texts' shorthand for several files).

    >>> expand("r/{weak,strong}_grpo.json")
    ['r/weak_grpo.json', 'r/strong_grpo.json']
    """
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    alternatives = (path[: m.start()] + alt + path[m.end() :] for alt in m.group(1).split(","))
    return list(itertools.chain.from_iterable(expand(p) for p in alternatives))


def cited_paths(text: str) -> set[str]:
    """The repository paths a text cites: what precedes a ``:`` (``file.py:12``), trailing punctuation off, and
    placeholders (``<row>``, ``ROW``: a capitalised word other than README) left out.

    >>> sorted(cited_paths("`results/a.json`, `utils/x.py:12`, `results/ROW.json`, results/README.md (results/b.json)"))
    ['results/README.md', 'results/a.json', 'results/b.json', 'utils/x.py']
    """
    paths = {m.split(":")[0].rstrip(".,;)") for m in CITED.findall(text)} | set(PLAIN.findall(text))
    return {p for p in paths if "<" not in p and not re.search(r"\b(?!README\b)[A-Z]{2,}\b", p)}


@pytest.mark.parametrize("name", list(texts()))
def test_every_file_a_text_cites_exists(name: str) -> None:
    missing = sorted(
        path
        for path in cited_paths(texts()[name])
        for each in expand(path)
        if not list(ROOT.glob(each))  # a glob: `results/ablation/*.json` names files that must be there too
    )
    assert not missing, f"{name} cites files that are not in the repository: {missing}"


def test_the_texts_cite_results_files() -> None:
    """The check above reads citations at all (a broken pattern would pass every text)."""
    cited = set().union(*(cited_paths(text) for text in texts().values()))
    assert sum(path.startswith("results/") for path in cited) >= 40, sorted(cited)
