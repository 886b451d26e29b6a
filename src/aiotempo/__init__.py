"""aiotempo: fast, deterministic and leak-free asyncio test suites; a drop-in for pytest-asyncio."""

from .fixtures import fixture
from .items import is_async_test

__all__ = ["fixture", "is_async_test"]
__version__ = "0.1.0"
