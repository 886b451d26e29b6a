"""aiotempo: fast, deterministic and leak-free asyncio test suites; a drop-in for pytest-asyncio.

The names below are imported on first use: ``aiotempo.TestCase`` runs under
``python -m unittest``, which must not import pytest, as ``fixture`` and ``is_async_test`` do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fixtures import fixture
    from .items import is_async_test
    from .testcase import TestCase

__all__ = ["TestCase", "fixture", "is_async_test"]
__version__ = "0.1.0"

_MODULES = {"TestCase": "testcase", "fixture": "fixtures", "is_async_test": "items"}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'aiotempo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
