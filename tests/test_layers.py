"""The import-linter contract in pyproject.toml: pipeline layers import only downwards; and no import\ncycle anywhere in genrel/ (inside a layer too), found with grimp, the graph library import-linter uses."""

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


def test_no_import_cycle_in_genrel():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (pip install 'genrel[dev]')")
    graph = grimp.build_graph("genrel", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append(" -> ".join(graph.find_shortest_chain(importer=imported, imported=module)) + f" -> {imported}")
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))
