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


def aiotempo_active(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("aiotempo")


def take_over(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Block pytest-asyncio's plugin; return whether it was already loaded (options included)."""
    loaded = [p for p in map(pluginmanager.get_plugin, PLUGIN_NAMES) if p is not None]
    for name in PLUGIN_NAMES:
        pluginmanager.set_blocked(name)  # also unregisters it
    _forget_registration(pluginmanager, loaded)
    return bool(loaded)


def _forget_registration(pluginmanager: pytest.PytestPluginManager, plugins: list[Any]) -> None:
    """Drop the record of the plugins' registration.

    ``pytest_plugin_registered`` is a historic hook: pytest's fixture manager, created later,
    would still replay it and define pytest-asyncio's fixtures (among them an autouse one).
    pluggy keeps that record in ``HookCaller._call_history``.
    """
    history = getattr(pluginmanager.hook.pytest_plugin_registered, "_call_history", None)
    if plugins and history:
        history[:] = [call for call in history if call[0].get("plugin") not in plugins]


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("pytest-asyncio")
    except importlib.metadata.PackageNotFoundError:
        return None


def patch_is_async_test(replacement: Callable[[pytest.Item], bool]) -> Callable[[], None]:
    """Make ``pytest_asyncio.is_async_test`` answer for aiotempo's tests; return the undo.

    Only the package attribute, which conftests import, is replaced: pytest-asyncio's own
    module keeps its function. Items of a run without aiotempo get the original's answer.
    """
    try:
        module = importlib.import_module("pytest_asyncio")
    except ImportError:
        return lambda: None
    original: Callable[[pytest.Item], bool] = module.is_async_test

    def is_async_test(item: pytest.Item) -> bool:
        if aiotempo_active(item.config):
            return replacement(item)
        return bool(original(item))

    module.is_async_test = is_async_test  # type: ignore[attr-defined]

    def undo() -> None:
        module.is_async_test = original  # type: ignore[attr-defined]

    return undo
