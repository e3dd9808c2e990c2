"""``python -m ct_alias``: the command line (see :mod:`ct_alias.cli`)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
