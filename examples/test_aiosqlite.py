"""An aiosqlite in-memory database fixture: a fresh schema and seed data for every test."""

import aiosqlite
import pytest
import pytest_asyncio

SCHEMA = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    total_cents INTEGER NOT NULL CHECK (total_cents > 0)
);
"""

USERS = [("Ada", "ada@example.com"), ("Grace", "grace@example.com")]
ORDERS = [(1, 1250), (1, 800), (2, 4999)]


@pytest_asyncio.fixture
async def db():
    async with aiosqlite.connect(":memory:") as conn:
        conn.row_factory = aiosqlite.Row
        await conn.executescript(SCHEMA)
        await conn.executemany("INSERT INTO users (name, email) VALUES (?, ?)", USERS)
        await conn.executemany("INSERT INTO orders (user_id, total_cents) VALUES (?, ?)", ORDERS)
        await conn.commit()
        yield conn


@pytest.mark.asyncio
async def test_insert_returns_the_new_row_id(db):
    cursor = await db.execute(
        "INSERT INTO users (name, email) VALUES (?, ?)", ("Alan", "alan@example.com")
    )
    await db.commit()
    assert cursor.lastrowid == 3
    async with db.execute("SELECT COUNT(*) FROM users") as count:
        assert (await count.fetchone())[0] == 3


@pytest.mark.asyncio
async def test_constraints_are_enforced(db):
    with pytest.raises(aiosqlite.IntegrityError, match="UNIQUE"):
        await db.execute("INSERT INTO users (name, email) VALUES ('Eve', 'ada@example.com')")
    with pytest.raises(aiosqlite.IntegrityError, match="CHECK"):
        await db.execute("INSERT INTO orders (user_id, total_cents) VALUES (1, 0)")


@pytest.mark.asyncio
async def test_rollback_discards_uncommitted_changes(db):
    await db.execute("DELETE FROM orders")
    await db.rollback()
    async with db.execute("SELECT COUNT(*) FROM orders") as cursor:
        assert (await cursor.fetchone())[0] == 3


@pytest.mark.asyncio
async def test_join_and_aggregate(db):
    query = """
        SELECT users.name, SUM(orders.total_cents) AS spent
        FROM users JOIN orders ON orders.user_id = users.id
        GROUP BY users.id ORDER BY spent DESC
    """
    async with db.execute(query) as cursor:
        assert [tuple(row) for row in await cursor.fetchall()] == [("Grace", 4999), ("Ada", 2050)]
