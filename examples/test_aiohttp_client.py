"""An aiohttp ``ClientSession`` against a real loopback ``aiohttp.web`` server.

The server starts once per module (``scope="module"``) on the module's event loop
(``loop_scope="module"``). Sockets belong to the loop that opened them, so the client fixture
and every test here must run on that same loop: hence ``loop_scope="module"`` on both.
"""

import asyncio

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

pytestmark = pytest.mark.asyncio(loop_scope="module")

ITEMS = {1: {"id": 1, "name": "keyboard"}, 2: {"id": 2, "name": "mouse"}}


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_item(request: web.Request) -> web.Response:
    item = ITEMS.get(int(request.match_info["item_id"]))
    if item is None:
        raise web.HTTPNotFound(text="no such item")
    return web.json_response(item)


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"received": await request.json()}, status=201)


async def slow(request: web.Request) -> web.Response:
    delay = float(request.query["delay"])
    await asyncio.sleep(delay)  # a slow upstream dependency
    return web.Response(text=f"slept {delay}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server_url():
    app = web.Application()
    app.add_routes(
        [
            web.get("/health", health),
            web.get(r"/items/{item_id:\d+}", get_item),
            web.post("/echo", echo),
            web.get("/slow", slow),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: let the OS pick a free port
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def client(server_url):
    async with aiohttp.ClientSession(base_url=server_url) as session:
        yield session


async def test_health_endpoint_returns_json(client):
    async with client.get("/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_item_lookup_and_missing_item_404(client):
    async with client.get("/items/1") as found, client.get("/items/99") as missing:
        assert (await found.json())["name"] == "keyboard"
        assert missing.status == 404
        assert await missing.text() == "no such item"


async def test_post_json_round_trip(client):
    async with client.post("/echo", json={"name": "trackball"}) as response:
        assert response.status == 201
        assert await response.json() == {"received": {"name": "trackball"}}


async def test_slow_endpoint_answers_eventually(client):
    async with client.get("/slow", params={"delay": "0.3"}) as response:
        assert await response.text() == "slept 0.3"


async def test_client_timeout_raises(client):
    with pytest.raises(asyncio.TimeoutError):
        async with client.get(
            "/slow", params={"delay": "0.5"}, timeout=aiohttp.ClientTimeout(total=0.1)
        ):
            pass


async def test_concurrent_requests_share_the_session(client):
    async def fetch(delay: float) -> str:
        async with client.get("/slow", params={"delay": str(delay)}) as response:
            response.raise_for_status()
            return await response.text()

    loop = asyncio.get_running_loop()
    start = loop.time()
    bodies = await asyncio.gather(*(fetch(0.2) for _ in range(5)))
    assert bodies == ["slept 0.2"] * 5
    assert loop.time() - start < 0.9  # one after the other would take 1.0 s
