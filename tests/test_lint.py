"""ruff over the library, the tests, the benchmarks and the notebooks (settings in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    targets = [p for p in ("wmlib", "tests", "benchmarks", "course", "tools", "conftest.py") if (ROOT / p).exists()]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *targets], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
