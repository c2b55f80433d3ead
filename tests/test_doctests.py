"""Every docstring example in the ``utils`` package runs and shows what it says.

Docstrings are what learners read first (``help(...)`` in a notebook), so a wrong example teaches
something false. ``test_grpo_math`` checks the GRPO modules' examples in detail; this test walks the
whole package so that no module's examples are left unchecked.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import utils

MODULES = sorted(m.name for m in pkgutil.walk_packages(utils.__path__, "utils.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} fail"


def test_the_package_has_examples() -> None:
    attempted = sum(doctest.testmod(importlib.import_module(n)).attempted for n in MODULES)
    assert attempted >= 90, attempted  # 94 on 2026-12-06: a drop means examples stopped being collected
