"""The structure the architecture promises (docs/architecture.md), checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "crgate"
MODULES = sorted(SOURCE.rglob("*.py"))
ABOVE_THE_CLIENTS = ("crgate.cli", "crgate.connect", "crgate.doctor", "crgate.gate", "crgate.runner", "crgate.obtain")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def name_of(path: Path) -> str:
    return path.relative_to(SOURCE.parent).as_posix()


def test_the_source_tree_is_there():
    assert len(MODULES) > 50 and (SOURCE / "cli.py") in MODULES


@pytest.mark.parametrize("path", MODULES, ids=name_of)
def test_only_the_cli_imports_click(path):
    if path.name == "cli.py" and path.parent == SOURCE:
        return
    clicky = {name for name in imported(path) if name == "click" or name.startswith("click.")}
    assert not clicky, f"{name_of(path)} imports {sorted(clicky)}: only cli.py may (options and printing)"


@pytest.mark.parametrize(
    "path", [p for p in MODULES if p.parent.name in ("scanner", "registry", "credentials")], ids=name_of
)
def test_the_clients_import_nothing_above_them(path):
    above = {name for name in imported(path) if name.startswith(ABOVE_THE_CLIENTS)}
    assert not above, f"{name_of(path)} imports {sorted(above)}: the layers point one way"


def test_the_cli_exits_in_one_place():
    tree = ast.parse((SOURCE / "cli.py").read_text(encoding="utf-8"))
    exits = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and (node.func.value.id, node.func.attr) in {("sys", "exit"), ("os", "_exit")}
    ]
    assert len(exits) == 1, [node.lineno for node in exits]
