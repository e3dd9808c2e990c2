"""Sphinx configuration for the ct_alias documentation."""

from __future__ import annotations

import ct_alias

project = "ct_alias"
author = "The ct_alias developers"
copyright = "2026, The ct_alias developers"  # noqa: A001
release = ct_alias.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.graphviz",
]
# Diagrams are drawn at build time by Graphviz's `dot` (Debian: apt-get install graphviz).
graphviz_output_format = "svg"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False
html_theme = "furo"
html_title = f"ct_alias {release}"
exclude_patterns = ["_build"]
suppress_warnings = ["config.cache"]
