"""Async yield fixtures: connect during setup, ``yield`` the resource, close it in teardown."""

import asyncio

import pytest
import pytest_asyncio


class Connection:
    """A tiny stand-in for a database driver's connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.is_open = False
        self._rows: dict[str, str] = {}
        self._snapshot: dict[str, str] | None = None

    async def connect(self) -> None:
        await asyncio.sleep(0.05)  # handshake
        self.is_open = True

    async def close(self) -> None:
        await asyncio.sleep(0.01)
        self.is_open = False

    async def put(self, key: str, value: str) -> None:
        self._check_open()
        await asyncio.sleep(0)
        self._rows[key] = value

    async def get(self, key: str) -> str | None:
        self._check_open()
        await asyncio.sleep(0)
        return self._rows.get(key)

    async def begin(self) -> None:
        self._snapshot = dict(self._rows)

    async def rollback(self) -> None:
        assert self._snapshot is not None, "no transaction in progress"
        self._rows, self._snapshot = self._snapshot, None

    def _check_open(self) -> None:
        if not self.is_open:
            raise ConnectionError(f"connection to {self.dsn} is closed")


@pytest_asyncio.fixture
async def connection():
    conn = Connection("memory://examples")
    await conn.connect()
    yield conn
    await conn.close()  # teardown runs after the test, even if it failed
    assert not conn.is_open


@pytest_asyncio.fixture
async def seeded(connection):
    """A plain ``return`` fixture that builds on another async fixture."""
    await connection.put("user:1", "ada")
    return connection


@pytest_asyncio.fixture
async def transaction(seeded):
    await seeded.begin()
    yield seeded
    await seeded.rollback()
    assert await seeded.get("user:2") is None, "rollback must discard the test's writes"


@pytest_asyncio.fixture
async def connect():
    """A factory fixture: tests open as many connections as they like, teardown closes all."""
    opened: list[Connection] = []

    async def _connect(dsn: str) -> Connection:
        conn = Connection(dsn)
        await conn.connect()
        opened.append(conn)
        return conn

    yield _connect
    await asyncio.gather(*(conn.close() for conn in opened))
    assert not any(conn.is_open for conn in opened)


@pytest.mark.asyncio
async def test_connection_is_open_during_the_test(connection):
    assert connection.is_open
    await connection.put("greeting", "hi")
    assert await connection.get("greeting") == "hi"


@pytest.mark.asyncio
async def test_fixture_chain_sees_seeded_rows(seeded):
    assert await seeded.get("user:1") == "ada"
    assert await seeded.get("user:2") is None


@pytest.mark.asyncio
async def test_writes_inside_a_transaction_are_rolled_back(transaction):
    await transaction.put("user:2", "grace")
    assert await transaction.get("user:2") == "grace"


@pytest.mark.asyncio
async def test_factory_fixture_opens_independent_connections(connect):
    primary, replica = await asyncio.gather(connect("db://primary"), connect("db://replica"))
    await primary.put("k", "v")
    assert await replica.get("k") is None
    await replica.close()
    with pytest.raises(ConnectionError, match="replica"):
        await replica.get("k")
