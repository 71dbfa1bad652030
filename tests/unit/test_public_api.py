"""The package's public surface is exactly what ``__all__`` names, all documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import federation


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in federation.__all__:
        value = getattr(federation, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_no_accidental_exports() -> None:
    public = {name for name in vars(federation) if not name.startswith("_")}
    submodules = {module.name for module in pkgutil.iter_modules(federation.__path__)}
    assert public - submodules == set(federation.__all__) - {"__version__"}


def test_every_module_imports_on_its_own() -> None:
    for module in pkgutil.walk_packages(federation.__path__, "federation."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        importlib.import_module(module.name)
