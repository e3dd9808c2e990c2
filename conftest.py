"""Collect the code examples in README.md and docs/ as tests (Sybil)."""

from __future__ import annotations

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser as MarkdownPython
from sybil.parsers.rest import DocTestParser, PythonCodeBlockParser

pytest_collect_file = (
    Sybil(parsers=[MarkdownPython()], patterns=["README.md"])
    + Sybil(parsers=[DocTestParser(), PythonCodeBlockParser()], patterns=["docs/*.rst"])
).pytest()
