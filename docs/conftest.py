"""Run each documentation page's examples as one test, in order.

The root conftest.py collects the examples of ``docs/*.rst`` with Sybil, one
pytest item per example, and the examples of a page share one namespace from
top to bottom. pytest-xdist (``pytest -n 2`` in CI) may send the items of one
page to different workers, where the earlier examples never ran. So the
examples of each page are gathered into a single item here: every page runs
whole, on one worker, whatever the distribution mode. A failure is reported
with the page and line of the example that failed.
"""

from __future__ import annotations

from typing import Any

import pytest
from sybil.example import Example, SybilFailure
from sybil.integration.pytest import SybilItem


class DocumentExamples(pytest.Item):
    """All the examples of one page, evaluated in order in the page's namespace."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.examples: list[Example] = []
        self.current: Example | None = None

    def runtest(self) -> None:
        for example in self.examples:
            self.current = example
            example.evaluate()

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.path.name}: all examples, in order"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SybilFailure) and self.current is not None:
            return f"{self.path.name}, line {self.current.line}:\n{excinfo.value}"
        return super().repr_failure(excinfo, style=style)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Replace the Sybil items of each ``docs/`` page by one item that runs them all."""
    pages: dict[Any, DocumentExamples] = {}
    kept: list[pytest.Item] = []
    for item in items:
        if not (isinstance(item, SybilItem) and item.path.parent.name == "docs"):
            kept.append(item)
            continue
        page = pages.get(item.parent)
        if page is None:
            page = pages[item.parent] = DocumentExamples.from_parent(item.parent, name="examples")
            kept.append(page)
        page.examples.append(item.example)
    items[:] = kept
