"""The structure the architecture promises (docs/architecture.md), checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "crgate"
MODULES = sorted(p for p in SOURCE.rglob("*.py") if "_proto" not in p.parts)  # not the generated stubs
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


EMULATOR = SOURCE.parent.parent / "emulator" / "src" / "crgate_emulator"
EMULATOR_MODULES = sorted(EMULATOR.rglob("*.py"))
EMULATOR_ENTRY = ("crgate/connect.py", "start_emulator")
"""The one place crgate imports its emulator (docs/architecture.md): a function, never a module's top."""
CRGATE_FOR_THE_EMULATOR = frozenset(
    {"crgate.errors", "crgate.inputs", "crgate.model", "crgate.regions", "crgate.yamlstrict"}
)
"""The crgate modules the emulator may use (its README and docs/architecture.md list them): the strict YAML
reader and bounded reads its scenarios go through, the error it raises, the counts and regions it serves."""
STUBS = "crgate._proto.yandex.cloud"
"""crgate's generated stubs, which the emulator serves (the wire it speaks is crgate's, pinned by version)."""


def emulator_imports(path: Path) -> list[str]:
    """The functions of ``path`` that import ``crgate_emulator`` (``<module>`` for an import outside any)."""
    where: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(name == "crgate_emulator" or name.startswith("crgate_emulator.") for name in names):
            where.append(function)
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return where


def test_crgate_imports_its_emulator_in_one_function_and_nowhere_else():
    """The emulator is a distribution of its own that ``pip install crgate`` leaves out."""
    users = {(name_of(p), function) for p in MODULES for function in emulator_imports(p)}
    assert users == {EMULATOR_ENTRY}


def test_the_emulator_uses_only_crgates_modules_meant_for_it():
    assert len(EMULATOR_MODULES) > 15 and EMULATOR / "server.py" in EMULATOR_MODULES
    for path in EMULATOR_MODULES:
        used = {name for name in imported(path) if name == "crgate" or name.startswith("crgate.")}
        used = {name for name in used if not name.startswith(f"{STUBS}.")}
        # `from crgate import inputs` names crgate and crgate.inputs; `from crgate.x import y` crgate.x and crgate.x.y
        modules = {name for name in used if name in CRGATE_FOR_THE_EMULATOR or name == "crgate"}
        names = used - modules
        stray = {n for n in names if n.rsplit(".", 1)[0] not in CRGATE_FOR_THE_EMULATOR}
        private = {n for n in names if n.rsplit(".", 1)[1].startswith("_")}
        assert not stray and not private, f"{path.name} uses {sorted(stray | private)} of crgate"


def test_the_modules_the_emulator_uses_are_documented():
    architecture = (SOURCE.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in (*CRGATE_FOR_THE_EMULATOR, STUBS):
        assert f"`{name}`" in architecture, name


@pytest.mark.parametrize("path", EMULATOR_MODULES, ids=lambda p: p.name)
def test_the_emulator_serves_crgates_own_stubs_not_the_sdks(path):
    yandex = {name for name in imported(path) if name == "yandex" or name.startswith("yandex.")}
    assert not yandex, f"{path.name} imports {sorted(yandex)}: the emulator serves crgate's stubs ({STUBS})"


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


@pytest.mark.parametrize("path", MODULES, ids=name_of)
def test_only_the_clients_doctor_and_emulator_import_the_stubs(path):
    stubs = {name for name in imported(path) if name.startswith(("crgate._proto", "yandex"))}
    allowed = "scanner" in path.parts or path.name == "doctor.py"
    assert allowed or not stubs, f"{name_of(path)} imports {sorted(stubs)}: the stubs stay behind the clients"
    assert not {name for name in stubs if name.startswith("yandex")}, "crgate runs on its own stubs (crgate._proto)"
