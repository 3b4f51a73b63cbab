"""The import-linter contract in pyproject.toml: pipeline layers import only downwards."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO


def test_layers_import_only_downwards():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install 'genrel[dev]')")
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
