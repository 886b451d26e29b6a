"""Living beside an installed pytest-asyncio: aiotempo takes over its surface, without a crash.

Both plugins register ``--asyncio-mode``, and argparse refuses an option string registered
twice. Whichever plugin pytest loads first, aiotempo ends up the only active one: it blocks
pytest-asyncio's plugin names, unregisters the plugin if it was already loaded (keeping the
options it registered, which mean the same), and makes ``pytest_asyncio.is_async_test`` answer
for aiotempo's tests, so pytest-asyncio's documented conftest recipes keep working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

import pytest

#: The names under which pytest may load pytest-asyncio's plugin.
PLUGIN_NAMES = ("asyncio", "pytest_asyncio", "pytest_asyncio.plugin")


def take_over(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Block pytest-asyncio's plugin; return whether it was already loaded (options included)."""
    loaded = any(pluginmanager.get_plugin(name) is not None for name in PLUGIN_NAMES)
    for name in PLUGIN_NAMES:
        pluginmanager.set_blocked(name)  # also unregisters it
    return loaded


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("pytest-asyncio")
    except importlib.metadata.PackageNotFoundError:
        return None


def patch_is_async_test(replacement: Callable[[pytest.Item], bool]) -> Callable[[], None]:
    """Route ``pytest_asyncio.is_async_test`` to ``replacement``; return the undo."""
    try:
        modules = [importlib.import_module(m) for m in ("pytest_asyncio", "pytest_asyncio.plugin")]
    except ImportError:
        return lambda: None
    originals: list[tuple[Any, Any]] = [(m, m.is_async_test) for m in modules]
    for module, _ in originals:
        module.is_async_test = replacement

    def undo() -> None:
        for module, original in originals:
            module.is_async_test = original

    return undo
