"""Runs the lit + FileCheck tests of tests/filecheck/ so that `pytest` alone runs everything."""

import os
import subprocess
import sys
from pathlib import Path

FILECHECK_DIR = Path(__file__).parent / "filecheck"


def test_filecheck_suite() -> None:
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    lit = [sys.executable, "-c", "from lit.main import main; main()"]
    result = subprocess.run(
        [*lit, "-v", str(FILECHECK_DIR)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
