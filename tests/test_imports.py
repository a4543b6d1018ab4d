"""Imports run one way: the import-linter contracts of pyproject.toml, run as a test."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# lint-imports, run by this Python; the package it reads is the one under PYTHONPATH.
LINT = ("import sys\nfrom importlinter.cli import lint_imports_command\n"
        "sys.argv[0] = 'lint-imports'\nlint_imports_command()\n")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's report on the package in root/cnndsl, with root/pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", LINT, "--config", "pyproject.toml",
                           "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_import_contracts_are_kept():
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_a_lazy_import_the_wrong_way_breaks_a_contract(tmp_path):
    # The contracts would be worth little if an import inside a function slipped past them:
    # a copy of the package gets two such imports, and import-linter must report both.
    shutil.copytree(ROOT / "cnndsl", tmp_path / "cnndsl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "cnndsl" / "summary.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _wrong_way():\n    from .api import check_spec\n    return check_spec\n")
    with open(tmp_path / "cnndsl" / "passes.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _heavy():\n    import torch\n    return torch\n")
    r = lint_imports(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    report = " ".join(r.stdout.split())
    assert "cnndsl.summary is not allowed to import cnndsl.api" in report, report
    assert "cnndsl.passes is not allowed to import torch" in report, report


def test_compile_and_load_are_the_apis_and_import_torch_only_when_called():
    code = ("import sys, cnndsl, cnndsl.api\n"
            "assert cnndsl.compile is cnndsl.api.compile and cnndsl.load is cnndsl.api.load\n"
            "assert 'torch' not in sys.modules, 'import cnndsl imported torch'\n"
            "cnndsl.compile('input 4x4x1\\nCONV(2, 3)', seed=0)\n"
            "assert 'torch' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
