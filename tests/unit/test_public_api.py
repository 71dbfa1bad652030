"""The package's public surface is exactly what ``__all__`` names, all documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import federation


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in federation.__all__:
        value = getattr(federation, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_dir_is_the_public_surface() -> None:
    assert dir(federation) == sorted(federation.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        federation.no_such_thing  # noqa: B018


def test_every_module_imports_on_its_own() -> None:
    for module in pkgutil.walk_packages(federation.__path__, "federation."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        importlib.import_module(module.name)


def test_the_cli_starts_without_the_web_and_database_layers() -> None:
    # `federation issue-token` runs at the start of every agent run: it must stay light.
    probe = (
        "import sys, federation.cli; "
        "print(','.join(m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'graphql', 'joserfc') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == ""


def test_all_names_exactly_the_lazy_exports() -> None:
    lazy = set(federation._MODULE_OF)
    assert set(federation.__all__) == lazy | {"__version__"}
