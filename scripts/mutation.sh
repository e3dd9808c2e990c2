#!/usr/bin/env bash
# Mutation testing of the security-critical modules with mutmut 3 (see docs/testing.rst).
# Not part of CI: it takes tens of minutes. Needs the `mutation` extra:
#     pip install -e '.[mutation]'
# Usage:
#     scripts/mutation.sh                      # every configured module
#     scripts/mutation.sh codec mail._rewrite  # some of them
# The configuration (modules, fast test selection, text-only exclusions) is
# [tool.mutmut] in pyproject.toml. It runs at the lowest CPU priority, then prints
# the score per module (scripts/mutation_score.py); `mutmut show NAME` shows a mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CT_ALIAS_VENV:-.venv}
names=()
for module in "$@"; do
    names+=("ct_alias.${module}.*")
done
nice -n 19 "$VENV/bin/mutmut" run --max-children "${MUTMUT_CHILDREN:-2}" "${names[@]}" || true
"$VENV/bin/python" scripts/mutation_score.py
