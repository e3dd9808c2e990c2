"""Print mutmut's last results per module: killed, survived, score, and the survivors.

Run after ``mutmut run`` (``scripts/mutation.sh`` does both). A mutant counts as
killed when a test failed, timed out or crashed on it; ``not checked`` and
``skipped`` mutants are left out of the score.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {"killed", "timeout", "segfault", "suspicious", "caught by type check"}


def main() -> int:
    """Print a table of scores per module and the names of surviving mutants."""
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(  # noqa: S603 - our own venv's mutmut, fixed arguments
        [str(mutmut), "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if ".x" not in name and "__mutmut_" not in name:
            continue
        module = name.split(".x", 1)[0]
        counts[module][status] += 1
        if status == "survived":
            survivors[module].append(name)
    print(f"{'module':<26}{'mutants':>8}{'killed':>8}{'survived':>9}{'unchecked':>10}{'score':>8}")
    for module in sorted(counts):
        c = counts[module]
        killed = sum(c[s] for s in KILLED)
        survived = c["survived"] + c["no tests"]
        checked = killed + survived
        score = f"{100 * killed / checked:.1f}%" if checked else "-"
        total = sum(c.values())
        print(f"{module:<26}{total:>8}{killed:>8}{survived:>9}{total - checked:>10}{score:>8}")
    for module in sorted(survivors):
        print(f"\n{module}: survivors")
        for name in survivors[module]:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
