"""``unittest.mock.AsyncMock`` with ``patch``: replace the awaitables the code under test uses."""

import asyncio
from unittest.mock import AsyncMock, call, patch

import pytest


class WeatherClient:
    async def temperature(self, city: str) -> float:
        raise RuntimeError("tests must not reach the real weather service")


async def describe(client: WeatherClient, city: str) -> str:
    degrees = await client.temperature(city)
    return f"{city}: {'warm' if degrees >= 20 else 'cold'} ({degrees:.0f} C)"


async def fetch_rate(currency: str) -> float:
    raise RuntimeError("tests must not reach the real exchange-rate service")


async def convert(amount: float, currency: str) -> float:
    return round(amount * await fetch_rate(currency), 2)


@pytest.mark.asyncio
async def test_patch_a_module_level_coroutine_function():
    with patch(f"{__name__}.fetch_rate", new_callable=AsyncMock, return_value=1.1) as rate:
        assert await convert(10, "USD") == 11.0
    rate.assert_awaited_once_with("USD")


@pytest.mark.asyncio
async def test_patch_object_with_autospec_checks_the_signature():
    client = WeatherClient()
    with patch.object(WeatherClient, "temperature", autospec=True, return_value=24.6) as temp:
        assert await describe(client, "Lisbon") == "Lisbon: warm (25 C)"
        with pytest.raises(TypeError):
            await client.temperature("Lisbon", "extra argument")
    temp.assert_awaited_once_with(client, "Lisbon")


@pytest.mark.asyncio
@patch.object(WeatherClient, "temperature", new_callable=AsyncMock)
async def test_patch_as_a_decorator(temperature):
    temperature.side_effect = [3.0, 21.0]
    client = WeatherClient()
    reports = await asyncio.gather(describe(client, "Oslo"), describe(client, "Rome"))
    assert reports == ["Oslo: cold (3 C)", "Rome: warm (21 C)"]
    assert temperature.await_args_list == [call("Oslo"), call("Rome")]


@pytest.mark.asyncio
async def test_async_mock_side_effect_can_raise_and_delay():
    async def slow_then_fail(city: str) -> float:
        await asyncio.sleep(0.1)
        raise ConnectionResetError(city)

    with (
        patch.object(WeatherClient, "temperature", side_effect=slow_then_fail) as temp,
        pytest.raises(ConnectionResetError, match="Paris"),
    ):
        await describe(WeatherClient(), "Paris")
    assert isinstance(temp, AsyncMock)  # patch picks AsyncMock for async targets by itself
    assert temp.await_count == 1
