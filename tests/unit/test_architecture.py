"""The floor plan holds: every import between wings is one docs/architecture.md allows,
every module belongs to a wing, and no two modules import each other, even through
others. Type-only imports count: they are arrows a reader follows too."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "federation"
DOCUMENT = ROOT / "docs" / "architecture.md"
# Root modules that are wings of their own, or part of the foundation.
ROOT_MODULES = {"errors": "foundation", "clock": "foundation", "settings": "settings"}
ROOT_MODULES["client"] = "client"
PACKAGE_FILES = {"__init__", "__main__"}  # the version and lazy exports; the entry point
_ROW = re.compile(r"^\| (?P<wing>[a-z_]+) \| [^|]+ \|\s*(?P<allowed>[a-z_, ]*?)\s*\|$")


def allowed_imports(document: str) -> dict[str, set[str]]:
    """The table of docs/architecture.md: each wing and the wings it may import."""
    table: dict[str, set[str]] = {}
    for line in document.splitlines():
        row = _ROW.match(line)
        if row and row["wing"] != "wing":
            table[row["wing"]] = {w.strip() for w in row["allowed"].split(",") if w.strip()}
    return table


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def wing_of(module: str) -> str | None:
    """``federation.issuing.pipeline`` -> ``issuing``; None for the package files."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in PACKAGE_FILES):
        return None
    if parts[1] == "_internal":
        return "foundation"
    if len(parts) == 2 and parts[1] in ROOT_MODULES:
        return ROOT_MODULES[parts[1]]
    return parts[1] if (PACKAGE / parts[1]).is_dir() else f"<root module {parts[1]}>"


def is_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> Iterator[str]:
    """The federation modules ``path`` imports (``from a import b``: ``a.b`` when that
    is a module, else ``a``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "federation")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "federation":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if is_module(full) else node.module


def modules() -> dict[str, set[str]]:
    return {
        module_name(path): set(imports_of(path))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations/versions" not in path.as_posix()
    }


GRAPH = modules()
TABLE = allowed_imports(DOCUMENT.read_text(encoding="utf-8"))


def test_the_document_names_every_wing_once() -> None:
    wings = {wing_of(module) for module in GRAPH} - {None}
    assert wings == set(TABLE)
    for wing, allowed in TABLE.items():
        assert allowed <= set(TABLE), wing
        assert wing not in allowed, wing


@pytest.mark.parametrize("importer", sorted(GRAPH))
def test_imports_between_wings_are_allowed(importer: str) -> None:
    wing = wing_of(importer)
    if wing is None:  # the package's own files: the version and its lazy public names
        return
    for imported in GRAPH[importer]:
        other = wing_of(imported)
        if other is None or other == wing:  # `from federation import __version__`
            continue
        assert other in TABLE[wing], f"{importer} ({wing}) imports {imported} ({other})"


def test_the_wings_are_layered() -> None:
    """The table itself has no cycle: no wing reaches back to itself."""
    for start in TABLE:
        seen: set[str] = set()
        todo = list(TABLE[start])
        while todo:
            wing = todo.pop()
            assert wing != start, f"{start} reaches itself"
            if wing not in seen:
                seen.add(wing)
                todo += TABLE[wing]


def test_no_module_cycle() -> None:
    on_path: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in on_path, " -> ".join([*on_path, module])
        on_path.append(module)
        for imported in GRAPH.get(module, ()):
            if imported != "federation" and imported != module:
                visit(imported)
        on_path.pop()
        done.add(module)

    for module in GRAPH:
        if wing_of(module) is not None:
            visit(module)


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The check reads real imports: a domain module importing the store would fail."""
    probe = tmp_path / "probe.py"
    probe.write_text("from federation.store.models import Run\n", encoding="utf-8")
    (imported,) = imports_of(probe)
    assert wing_of(imported) == "store"
    assert "store" not in TABLE["domain"]
