"""``AsyncMock`` through pytest-mock's ``mocker`` fixture: patches are undone automatically."""

import asyncio
from unittest.mock import AsyncMock, call

import pytest


class EmailGateway:
    async def send(self, to: str, body: str) -> str:
        raise RuntimeError("tests must not send real email")


class Notifier:
    def __init__(self, gateway: EmailGateway) -> None:
        self.gateway = gateway

    async def notify_all(self, users: list[str], body: str) -> dict[str, str]:
        results = await asyncio.gather(
            *(self.gateway.send(user, body) for user in users), return_exceptions=True
        )
        return {
            user: "failed" if isinstance(result, Exception) else result
            for user, result in zip(users, results, strict=True)
        }

    async def greet(self, user: str) -> str:
        await asyncio.sleep(0.05)
        return f"Welcome, {user}"


@pytest.mark.asyncio
async def test_mocker_patch_object(mocker):
    send = mocker.patch.object(EmailGateway, "send", return_value="queued")
    assert isinstance(send, AsyncMock)
    result = await Notifier(EmailGateway()).notify_all(["ada", "alan"], "hi")
    assert result == {"ada": "queued", "alan": "queued"}
    send.assert_has_awaits([call("ada", "hi"), call("alan", "hi")])


@pytest.mark.asyncio
async def test_mocker_async_mock_with_mixed_side_effects(mocker):
    gateway = mocker.AsyncMock(spec=EmailGateway)
    gateway.send.side_effect = ["id-1", TimeoutError("smtp timeout"), "id-3"]
    result = await Notifier(gateway).notify_all(["a", "b", "c"], "news")
    assert result == {"a": "id-1", "b": "failed", "c": "id-3"}
    assert gateway.send.await_count == 3


@pytest.mark.asyncio
async def test_mocker_spy_on_an_async_method(mocker):
    spy = mocker.spy(Notifier, "greet")
    notifier = Notifier(EmailGateway())
    assert await notifier.greet("grace") == "Welcome, grace"
    spy.assert_awaited_once_with(notifier, "grace")
    assert spy.spy_return == "Welcome, grace"


@pytest.mark.asyncio
async def test_mocker_stop_restores_the_real_method(mocker):
    gateway = EmailGateway()
    send = mocker.patch.object(EmailGateway, "send", return_value="queued")
    assert await gateway.send("ada", "hi") == "queued"
    mocker.stop(send)  # mocker also undoes every patch by itself after the test
    with pytest.raises(RuntimeError, match="real email"):
        await gateway.send("ada", "hi")
