"""The project's own Python passes ruff with the rules pyproject.toml selects (pyflakes, the
pycodestyle errors, 100 columns): an unused import, an undefined name or a long line fails
here, not in a reviewer's eye."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_code_is_ruff_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "cnndsl", "tests",
                           "bench", "scripts", "editors"], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
