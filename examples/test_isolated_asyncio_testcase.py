"""``unittest.IsolatedAsyncioTestCase``: async tests in unittest style, each on a fresh loop.

No pytest marker is needed: unittest runs these itself, and pytest collects them as usual.
"""

import asyncio
import unittest


class Inventory:
    def __init__(self) -> None:
        self._stock: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self.closed = False

    async def load(self, stock: dict[str, int]) -> None:
        await asyncio.sleep(0.05)  # e.g. read from a warehouse API
        self._stock.update(stock)

    async def reserve(self, sku: str, quantity: int) -> int:
        async with self._lock:
            available = self._stock.get(sku, 0)
            if quantity > available:
                raise ValueError(f"only {available} {sku} left")
            await asyncio.sleep(0.01)  # a write round-trip while holding the lock
            self._stock[sku] = available - quantity
            return self._stock[sku]

    async def close(self) -> None:
        self.closed = True


class TestInventory(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.inventory = Inventory()
        await self.inventory.load({"apple": 3, "pear": 1})
        self.addAsyncCleanup(self.inventory.close)

    async def test_reserve_reduces_stock(self) -> None:
        self.assertEqual(await self.inventory.reserve("apple", 2), 1)

    async def test_overbooking_raises(self) -> None:
        with self.assertRaisesRegex(ValueError, "only 1 pear left"):
            await self.inventory.reserve("pear", 2)

    async def test_concurrent_reservations_never_oversell(self) -> None:
        results = await asyncio.gather(
            *(self.inventory.reserve("apple", 1) for _ in range(5)), return_exceptions=True
        )
        sold = [result for result in results if not isinstance(result, Exception)]
        self.assertEqual(sorted(sold), [0, 1, 2])
        self.assertEqual(sum(isinstance(result, ValueError) for result in results), 2)
