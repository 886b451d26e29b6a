"""Async test classes: one marker on the class covers every method, fixtures can be methods."""

import asyncio

import pytest
import pytest_asyncio


class PriceService:
    PRICES = {"tea": 350, "cake": 425}

    async def price(self, sku: str) -> int:
        await asyncio.sleep(0.05)
        return self.PRICES[sku]


class Cart:
    def __init__(self, prices: PriceService) -> None:
        self.prices = prices
        self.items: list[str] = []

    def add(self, sku: str) -> None:
        self.items.append(sku)

    async def total(self) -> int:
        return sum(await asyncio.gather(*map(self.prices.price, self.items)))

    async def checkout(self) -> int:
        if not self.items:
            raise ValueError("cart is empty")
        total = await self.total()
        self.items.clear()
        return total


@pytest.mark.asyncio
class TestCart:
    @pytest_asyncio.fixture
    async def cart(self):
        cart = Cart(PriceService())
        yield cart
        assert await cart.total() >= 0

    async def test_total_sums_item_prices(self, cart):
        cart.add("tea")
        cart.add("cake")
        cart.add("tea")
        assert await cart.total() == 1125

    async def test_checkout_empties_the_cart(self, cart):
        cart.add("cake")
        assert await cart.checkout() == 425
        assert cart.items == []

    async def test_empty_checkout_is_refused(self, cart):
        with pytest.raises(ValueError, match="empty"):
            await cart.checkout()


@pytest_asyncio.fixture(scope="class", loop_scope="class")
async def warm_prices():
    service = PriceService()
    prices = await asyncio.gather(*map(service.price, service.PRICES))
    return asyncio.get_running_loop(), dict(zip(service.PRICES, prices, strict=True))


@pytest.mark.asyncio(loop_scope="class")
class TestSharedClassLoop:
    """With ``loop_scope="class"`` the tests and a class-scoped fixture share one loop."""

    async def test_runs_on_the_fixtures_loop(self, warm_prices):
        loop, prices = warm_prices
        assert asyncio.get_running_loop() is loop
        assert prices == {"tea": 350, "cake": 425}

    async def test_class_fixture_is_shared(self, warm_prices):
        loop, prices = warm_prices
        assert asyncio.get_running_loop() is loop
        assert sum(prices.values()) == 775
