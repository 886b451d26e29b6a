"""Loopback test doubles: an HTTP server, a TCP server and an in-memory SQLite database.

A client's timeouts, retries and error handling only run for real against a real socket. These
doubles are real servers on 127.0.0.1 that start in milliseconds on the test's own loop, so
under ``--asyncio-clock=virtual`` their latency and slow replies take no real time. Faults make
them misbehave on purpose: answer late, answer with an error status, raise in the handler,
trickle the body, or drop the connection before or part-way through the reply. The TCP server
runs a stream handler ``(reader, writer)`` or an ``asyncio.Protocol`` factory, faults alike.

The per-test fixtures (``http_server``, ``tcp_server``, ``sqlite_db``) are factories to await;
what they start is closed after the test. The ``make_*`` fixtures are the same factories as
async context managers, for fixtures of wider scopes. Closing leaves nothing behind: listening
sockets, connections, handler tasks and aiosqlite's thread. A handler that raises by mistake
(not by an injected fault) answers 500 and fails the test when its server closes.

aiohttp (HTTP) and aiosqlite (SQLite) are optional: a double that needs one says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json as jsonlib
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import pytest

from . import clock
from .mock import _exception, _seconds

if TYPE_CHECKING:
    import aiosqlite
    from aiohttp import web

__all__ = [
    "Fault",
    "HandlerError",
    "HttpServer",
    "RecordedRequest",
    "Route",
    "TcpServer",
    "http_server",
    "make_http_server",
    "make_sqlite_db",
    "make_tcp_server",
    "open_sqlite",
    "sqlite_db",
    "tcp_server",
]

LOOPBACK = "127.0.0.1"
#: Seconds a closing HTTP server gives a request still in progress before cancelling it.
_SHUTDOWN_GRACE = 0.05
_UNSET: Any = object()

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]
ProtocolFactory = Callable[[], asyncio.Protocol]
S = TypeVar("S", bound="_Server")
T = TypeVar("T")


class HandlerError(Exception):
    """A double's handler raised by mistake (not by an injected fault); the cause is the first
    such error."""


def _require(module: str, double: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"aiotempo's {double} needs {module}, which is not installed: pip install {module}"
        ) from error


# -- faults ---------------------------------------------------------------------------------------


class _Registered:
    """A route or fault: counts its hits and can be removed, or used as a ``with`` block."""

    hits: int
    _registry: list[Any]

    def remove(self) -> None:
        """Take it off its server (a no-op if already removed)."""
        with contextlib.suppress(ValueError):
            self._registry.remove(self)

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


@dataclass(eq=False)
class Fault(_Registered):
    """What goes wrong with the requests (HTTP) or connections (TCP) it matches.

    The newest fault that matches and has uses left applies, alone.
    """

    #: Seconds to wait before anything else happens.
    latency: float = 0.0
    #: HTTP: answer with this status instead of calling the handler.
    status: int | None = None
    #: HTTP: headers of the ``status`` answer (``Retry-After``...).
    headers: Mapping[str, str] | None = None
    #: HTTP: raise this in the handler; aiohttp answers 500, as for a bug.
    raises: BaseException | type[BaseException] | None = None
    #: Close the connection without answering.
    drop: bool = False
    #: Close the connection after this many bytes of the reply (HTTP: of the body).
    drop_after: int | None = None
    #: Send the reply in chunks of ``chunk_size`` bytes, each this many seconds after the last.
    trickle: float | None = None
    chunk_size: int = 64
    #: Apply to this many requests or connections, then no more (``None``: to all).
    times: int | None = None
    #: How many requests or connections it applied to.
    hits: int = field(default=0, init=False)
    method: str = "*"
    path: str | None = None
    _registry: list[Any] = field(default_factory=list, repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.latency = _seconds(self.latency, "latency")
        if self.trickle is not None:
            self.trickle = _seconds(self.trickle, "trickle")
        _count(self.chunk_size, "chunk_size", minimum=1)
        if self.times is not None:
            _count(self.times, "times", minimum=1)
        if self.drop_after is not None:
            _count(self.drop_after, "drop_after", minimum=0)
        if self.raises is not None:
            self.raises = _exception(self.raises, "raises")
        if self.status is not None and not (
            isinstance(self.status, int) and 100 <= self.status <= 599
        ):
            raise ValueError(f"status must be an HTTP status code (100-599), got {self.status!r}")
        answers = [name for name in ("status", "raises") if getattr(self, name) is not None]
        if self.drop:
            answers.append("drop")
        if len(answers) > 1:
            raise ValueError(f"a fault gives one answer; choose one of {', '.join(answers)}")
        if self.drop and (self.trickle is not None or self.drop_after is not None):
            raise ValueError("drop=True sends nothing to trickle or cut short; pass drop_after=")
        self.method = self.method.upper()
        self._pattern = _compile(self.path) if self.path is not None else None

    @property
    def active(self) -> bool:
        """Whether it still has uses left."""
        return self.times is None or self.hits < self.times

    @property
    def shapes_reply(self) -> bool:
        return self.trickle is not None or self.drop_after is not None

    def _matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        return self._pattern is None or self._pattern.fullmatch(path) is not None


def _count(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _compile(path: str) -> re.Pattern[str]:
    """``/items/{id}`` matches ``/items/7``, with ``id="7"``."""
    if not path.startswith("/"):
        raise ValueError(f"a path starts with '/', got {path!r}")
    parts = re.split(r"\{(\w+)\}", path)  # literal, name, literal, name, ...
    return re.compile(
        "".join(f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts))
    )


# -- shared server life cycle ---------------------------------------------------------------------


class _Server:
    """Start on ``await`` or ``async with``; close once; raise handler errors at close. Faults
    are added and taken here, for every kind of server."""

    #: The ``fault()`` arguments this kind of server cannot act on.
    _not_faults: ClassVar[tuple[str, ...]] = ()

    def __init__(self, check_errors: bool) -> None:
        self.check_errors = check_errors
        #: Exceptions the handlers raised by mistake.
        self.errors: list[Exception] = []
        self.faults: list[Fault] = []
        self._started = False
        self._closed = False

    @property
    def host(self) -> str:
        """The address it listens on: loopback only."""
        return LOOPBACK

    async def start(self: S) -> S:
        if self._started:
            raise RuntimeError(f"{self!r} is already started")
        self._started = True
        await self._start()
        return self

    async def close(self) -> None:
        """Stop serving and close every connection; raise ``HandlerError`` for handler bugs."""
        if not self._started or self._closed:
            return
        self._closed = True
        await self._close()
        if self.errors and self.check_errors:
            count = f"{len(self.errors)} error(s)" if len(self.errors) > 1 else "an error"
            raise HandlerError(
                f"{self!r}: its handler raised {count}; the first is above "
                "(pass check_errors=False to allow them)"
            ) from self.errors[0]

    async def __aenter__(self: S) -> S:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _start(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    def fault(
        self,
        method: str = "*",
        path: str | None = None,
        *,
        latency: float = 0.0,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        raises: BaseException | type[BaseException] | None = None,
        drop: bool = False,
        drop_after: int | None = None,
        trickle: float | None = None,
        chunk_size: int = 64,
        times: int | None = None,
    ) -> Fault:
        """Make the next ``times`` requests or connections (all, by default) go wrong; for HTTP,
        those to ``method`` and ``path`` (any, by default). See ``Fault`` for each argument; a
        TCP server takes ``latency``, ``drop``, ``drop_after``, ``trickle``, ``chunk_size`` and
        ``times``."""
        fault = Fault(
            method=method,
            path=path,
            latency=latency,
            status=status,
            headers=headers,
            raises=raises,
            drop=drop,
            drop_after=drop_after,
            trickle=trickle,
            chunk_size=chunk_size,
            times=times,
            _registry=self.faults,
        )
        unusable = [
            f.name
            for f in fields(Fault)
            if f.name in self._not_faults and getattr(fault, f.name) != f.default
        ]
        if unusable:
            raise TypeError(f"a {type(self).__name__} fault takes no {', '.join(unusable)}")
        self.faults.append(fault)
        return fault

    async def _apply_fault(
        self, transport: asyncio.WriteTransport | None, method: str = "*", path: str = ""
    ) -> Fault | None:
        """The fault for a new request or connection (counted as a hit), after its latency; if
        it drops the connection (``fault.drop``), the connection is closed."""
        fault = next(
            (f for f in reversed(self.faults) if f.active and f._matches(method, path)), None
        )
        if fault is None:
            return None
        fault.hits += 1
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.drop and transport is not None:
            transport.abort()
        return fault


# -- HTTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """A request an ``HttpServer`` received, as the client sent it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return jsonlib.loads(self.body)


@dataclass(eq=False)
class Route(_Registered):
    """What an ``HttpServer`` answers to one method and path."""

    method: str
    path: str
    handler: Callable[[web.Request], Any]
    hits: int = field(default=0, init=False)
    _registry: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self._pattern = _compile(self.path)

    def _match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("*", method.upper()):
            return None
        found = self._pattern.fullmatch(path)
        return None if found is None else found.groupdict()


class HttpServer(_Server):
    """An aiohttp server on 127.0.0.1: its own routes, or a given ``web.Application``.

    ``route()`` says what to answer, ``fault()`` what goes wrong; ``requests`` records what
    arrived. Start it with ``await server.start()`` or ``async with``. A given application gets
    the faults' middleware, in front of its own: serve it once.
    """

    def __init__(self, app: web.Application | None = None, *, check_errors: bool = True) -> None:
        super().__init__(check_errors)
        _require("aiohttp", "http_server")
        from aiohttp import web

        self.port = 0
        self.routes: list[Route] = []
        #: Every request that arrived, in order (those a fault dropped too).
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        #: The tasks serving requests: aiohttp leaves those of lost connections running.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serves_routes = app is None
        self.app: web.Application = web.Application() if app is None else app
        if app is None:
            self.app.router.add_route("*", "/{path:.*}", self._dispatch)

        @web.middleware
        async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._middleware(request, handler)

        self.app.middlewares.insert(0, faults)  # the outermost: it sees every request

    def __repr__(self) -> str:
        return f"<HttpServer {self.url}>"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: append a path to it."""
        return f"http://{LOOPBACK}:{self.port}"

    def route(
        self,
        method: str,
        path: str,
        handler: Callable[[web.Request], Any] | None = None,
        *,
        status: int = 200,
        json: Any = _UNSET,
        text: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Answer ``method`` (or ``"*"``) requests to ``path`` (``/items/{id}`` style).

        ``handler(request)``, sync or async, gets the ``web.Request`` (``match_info`` holds the
        path's parameters) and returns a response, or a ``str`` (text), ``bytes``, ``None``
        (204) or anything else (JSON). Without a handler the answer is ``status`` with ``json``,
        ``text`` or ``body``. The newest matching route answers.
        """
        if not self._serves_routes:
            raise TypeError("this server serves the application it was given; add routes to it")
        given = [name for name, value in (("text", text), ("body", body)) if value is not None]
        if json is not _UNSET:
            given.append("json")
        if handler is not None and (given or status != 200 or headers):
            raise TypeError("pass a handler or a canned answer (status, json, text...), not both")
        if len(given) > 1:
            raise TypeError(f"pass one of json, text and body, not {' and '.join(given)}")
        if handler is None:
            handler = self._canned(status, json, text, body, headers)
        route = Route(method, path, handler, _registry=self.routes)
        self.routes.append(route)
        return route

    async def _start(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=_SHUTDOWN_GRACE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await _cancel(self._tasks)

    def _canned(
        self,
        status: int,
        json: Any,
        text: str | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> Callable[[web.Request], web.StreamResponse]:
        from aiohttp import web

        def answer(request: web.Request) -> web.StreamResponse:
            if json is not _UNSET:
                return web.json_response(json, status=status, headers=headers)
            return web.Response(status=status, text=text, body=body, headers=headers)

        return answer

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        for route in reversed(self.routes):
            params = route._match(request.method, request.path)
            if params is not None:
                route.hits += 1
                request.match_info.clear()
                request.match_info.update(params)
                result = route.handler(request)
                if inspect.isawaitable(result):
                    result = await result
                return self._response(result)
        known = ", ".join(f"{r.method} {r.path}" for r in self.routes) or "none"
        raise web.HTTPNotFound(
            text=f"no route for {request.method} {request.path} (routes: {known})"
        )

    def _response(self, result: Any) -> web.StreamResponse:
        from aiohttp import web

        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        if isinstance(result, str):
            return web.Response(text=result)
        if isinstance(result, bytes | bytearray):
            return web.Response(body=bytes(result))
        return web.json_response(result)

    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        from aiohttp import web

        for task in (asyncio.current_task(), request.task):
            if task is not None and task not in self._tasks:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), dict(request.headers), body
            )
        )
        fault = await self._apply_fault(request.transport, request.method, request.path)
        if fault is not None:
            if fault.drop:
                # Never sent: aiohttp takes the failed write to the closed transport for a
                # client that went away, quietly.
                return web.Response()
            if fault.status is not None:
                return web.Response(
                    status=fault.status, text=f"{fault.status} (injected)", headers=fault.headers
                )
            if fault.raises is not None:
                raise fault.raises  # aiohttp answers 500 and logs it, as for any handler bug
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception as error:  # a bug in the handler: answer as aiohttp would, report later
            self.errors.append(error)
            return web.Response(
                status=500, text=f"500 Internal Server Error\n\n{type(error).__name__}: {error}"
            )
        if fault is not None and fault.shapes_reply:
            return await self._send_faulty(request, response, fault)
        return response

    async def _send_faulty(
        self, request: web.Request, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse:
        """Send ``response`` chunk by chunk, slowly, or only its first ``drop_after`` bytes."""
        from aiohttp import web

        body = getattr(response, "body", None)
        if not isinstance(body, bytes):
            raise TypeError(
                "trickle= and drop_after= reshape a web.Response with a bytes body; "
                f"{request.method} {request.path} answered {response!r}"
            )
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() not in ("content-length", "transfer-encoding")
        }
        out = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
        out.content_length = len(body)
        end = len(body) if fault.drop_after is None else min(fault.drop_after, len(body))
        try:
            await out.prepare(request)
            for start in range(0, end, fault.chunk_size):
                if fault.trickle:
                    await asyncio.sleep(fault.trickle)
                await out.write(body[start : min(start + fault.chunk_size, end)])
            if fault.drop_after is not None and request.transport is not None:
                request.transport.close()  # aiohttp's write_eof then finds the client gone
            else:
                await out.write_eof()
        except ConnectionError:
            pass  # the client left before the end
        return out


# -- TCP ------------------------------------------------------------------------------------------


class TcpServer(_Server):
    """A TCP server on 127.0.0.1: a stream server calling ``handler(reader, writer)`` for each
    connection, or, with ``protocol=``, one that gives each connection to a new protocol from
    that factory, as ``loop.create_server`` does.

    A handler's connection is closed when the handler returns; a protocol's when the protocol
    closes it or the server closes. ``fault()`` says what goes wrong with the next connections;
    ``connections`` counts them.
    """

    _not_faults = ("method", "path", "status", "headers", "raises")

    def __init__(
        self,
        handler: StreamHandler | None = None,
        *,
        protocol: ProtocolFactory | None = None,
        check_errors: bool = True,
    ) -> None:
        if (handler is None) == (protocol is None):
            raise TypeError(
                "a TcpServer serves handler(reader, writer) or protocol=, a protocol factory: "
                "pass one of them"
            )
        super().__init__(check_errors)
        self.handler = handler
        self.protocol = protocol
        #: How many connections it accepted.
        self.connections = 0
        self._server: asyncio.Server | None = None
        #: Handler tasks, protocols' connections being opened, and slow writers' senders.
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The open connections of a ``protocol=`` server.
        self._live: set[_Connection] = set()
        self.port = 0

    def __repr__(self) -> str:
        return f"<TcpServer {LOOPBACK}:{self.port}>"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, as ``asyncio.open_connection(*address)`` takes it."""
        return (LOOPBACK, self.port)

    async def _start(self) -> None:
        if self.protocol is not None:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(lambda: _Connection(self), LOOPBACK, 0)
        else:
            self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        live = list(self._live)
        for connection in live:
            connection.abort()
        await _cancel(self._tasks)
        await asyncio.gather(*(connection.closed for connection in live))
        await self._server.wait_closed()

    def _track(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` at close if it is still running."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self.handler is not None
        self._track(task)
        self.connections += 1
        out: asyncio.StreamWriter | _FaultyWriter = writer
        try:
            fault = await self._apply_fault(writer.transport)
            if fault is not None and fault.drop:
                return
            if fault is not None and fault.shapes_reply:
                out = _FaultyWriter(writer, fault, self._track)
            result = self.handler(reader, out)  # type: ignore[arg-type]
            if inspect.isawaitable(result):
                await result
            if isinstance(out, _FaultyWriter):
                await out.drain()
        except ConnectionError:
            pass  # the client left
        except Exception as error:
            self.errors.append(error)
        finally:
            if isinstance(out, _FaultyWriter):
                await out.stop()  # cancelled: what is not sent yet never will be
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class _Connection(asyncio.Protocol):
    """A connection of a ``protocol=`` server: its fault applies first, then the connection
    goes to a new protocol from the factory, and every later event is passed on to it. An
    exception from the protocol is a handler error: it is recorded and the connection aborted.
    """

    def __init__(self, server: TcpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._protocol: asyncio.Protocol | None = None
        self._opening: asyncio.Task[None] | None = None
        #: What arrived before the protocol had the connection (``b""``: the end of file).
        self._early: list[bytes] = []
        #: Done once the connection is lost.
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections += 1
        self._server._live.add(self)
        self._opening = asyncio.get_running_loop().create_task(self._hand_over())
        self._server._track(self._opening)

    async def _hand_over(self) -> None:
        transport, factory = self._transport, self._server.protocol
        assert transport is not None and factory is not None
        fault = await self._server._apply_fault(transport)
        if fault is not None and fault.drop:
            return
        protocol = self._call(factory)
        if protocol is None:
            return
        out: asyncio.Transport | _FaultyWriter = transport
        if fault is not None and fault.shapes_reply:
            out = _FaultyWriter(transport, fault, self._server._track)
        self._protocol = protocol
        self._call(protocol.connection_made, out)
        early, self._early = self._early, []
        for data in early:
            if transport.is_closing():
                break
            if data:
                self.data_received(data)
            elif not self.eof_received():
                transport.close()  # as the transport does when eof_received() says so

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._protocol is None:  # the fault's latency is still running
            self._early.append(data)
        else:
            self._call(self._protocol.data_received, data)

    def eof_received(self) -> bool | None:
        if self._protocol is None:
            self._early.append(b"")
            return True  # open until the protocol has seen it
        return self._call(self._protocol.eof_received)

    def pause_writing(self) -> None:
        if self._protocol is not None:
            self._call(self._protocol.pause_writing)

    def resume_writing(self) -> None:
        if self._protocol is not None:
            self._call(self._protocol.resume_writing)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._live.discard(self)
        if self._opening is not None:
            self._opening.cancel()  # lost while its fault's latency ran: the protocol never knew
        if self._protocol is not None:
            self._call(self._protocol.connection_lost, exc)
        if not self.closed.done():
            self.closed.set_result(None)

    def _call(self, func: Callable[..., T], *args: Any) -> T | None:
        try:
            return func(*args)
        except Exception as error:
            self._server.errors.append(error)
            self.abort()
            return None


class _FaultyWriter:
    """A ``StreamWriter`` or transport whose bytes go out slowly (``trickle``) or stop
    (``drop_after``).

    Writes return at once, as on a real one; a task sends them chunk by chunk, and ``drain()``
    waits until it has sent everything.
    """

    def __init__(
        self,
        writer: asyncio.StreamWriter | asyncio.Transport,
        fault: Fault,
        track: Callable[[asyncio.Task[Any]], None],
    ) -> None:
        self._writer = writer
        self._fault = fault
        self._track = track
        self._pending = bytearray()
        self._sent = 0
        self._eof = False
        self._closing = False
        self._sender: asyncio.Task[None] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data
        self._kick()

    def writelines(self, data: Any) -> None:
        for line in data:
            self.write(line)

    def write_eof(self) -> None:
        self._eof = True  # after what was written before
        self._kick()

    def close(self) -> None:
        self._closing = True  # after what was written before
        self._kick()

    def is_closing(self) -> bool:
        return self._closing or self._writer.is_closing()

    async def drain(self) -> None:
        while self._sender is not None and not self._sender.done():
            await self._sender
        if self._sender is not None and not self._sender.cancelled():
            self._sender.result()  # ConnectionError if the client left

    async def wait_closed(self) -> None:
        assert isinstance(self._writer, asyncio.StreamWriter), "a transport has no wait_closed()"
        self.close()
        await self.drain()
        await self._writer.wait_closed()

    async def stop(self) -> None:
        if self._sender is not None:
            await _cancel({self._sender})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def _kick(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())
            self._sender.add_done_callback(_retrieve)
            self._track(self._sender)

    async def _send(self) -> None:
        fault, writer = self._fault, self._writer
        while self._pending and not writer.is_closing():
            chunk = bytes(self._pending[: fault.chunk_size])
            del self._pending[: fault.chunk_size]
            if fault.drop_after is not None:
                chunk = chunk[: fault.drop_after - self._sent]
            if fault.trickle:
                await asyncio.sleep(fault.trickle)
            writer.write(chunk)
            self._sent += len(chunk)
            if isinstance(writer, asyncio.StreamWriter):  # a transport buffers what it is given
                await writer.drain()
            if fault.drop_after is not None and self._sent >= fault.drop_after:
                writer.close()  # what was written still goes out, then the connection ends
        self._pending.clear()
        if self._eof and not writer.is_closing() and writer.can_write_eof():
            writer.write_eof()
        if self._closing:
            writer.close()


async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until they are done."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a sender's error as seen: ``drain()`` raises it, if anyone drains."""
    if not task.cancelled():
        task.exception()


# -- SQLite ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_sqlite(
    schema: str = "", *, database: str = ":memory:", **connect_kwargs: Any
) -> AsyncIterator[aiosqlite.Connection]:
    """An aiosqlite connection (in memory by default) with ``schema``, a SQL script, run and
    committed; closed, with its thread, on exit."""
    aiosqlite = _require("aiosqlite", "sqlite_db")
    connection = aiosqlite.connect(database, **connect_kwargs)
    _tell_the_clock(connection)
    await connection
    thread = getattr(connection, "_thread", connection)
    _ignore_idle_thread(thread)
    try:
        if schema:
            await connection.executescript(schema)
            await connection.commit()
        yield connection
    finally:
        await connection.close()
        if isinstance(thread, threading.Thread):
            thread.join(1.0)  # it has answered its last request and is ending


class _Queue(Protocol):
    def put_nowait(self, item: Any) -> None: ...


class _ClockedQueue:
    """aiosqlite's request queue, which tells a virtual clock that each request's reply is
    work outside the loop: the clock waits for it instead of jumping (or seeing a deadlock)."""

    def __init__(self, queue: _Queue) -> None:
        self._queue = queue

    def put_nowait(self, item: Any) -> None:
        future = item[0]
        if isinstance(future, asyncio.Future):
            virtual = clock.of(future.get_loop())
            if virtual is not None:
                virtual._track_executor_job(future)
        self._queue.put_nowait(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def _tell_the_clock(connection: Any) -> None:
    queue = getattr(connection, "_tx", None)
    if queue is not None and hasattr(queue, "put_nowait"):
        connection._tx = _ClockedQueue(queue)


def _ignore_idle_thread(thread: object) -> None:
    """aiosqlite's thread waits for requests, each tracked by itself: it does not hold the
    virtual clock of the loop, even if the test started it."""
    with contextlib.suppress(RuntimeError):
        virtual = clock.of(asyncio.get_running_loop())
        if virtual is not None and isinstance(thread, threading.Thread):
            virtual._baseline_threads.add(thread)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def http_server() -> AsyncIterator[Callable[..., Awaitable[HttpServer]]]:
    """``server = await http_server()``, or ``await http_server(app)``: a started
    ``HttpServer`` on 127.0.0.1, closed after the test."""
    _require("aiohttp", "http_server")
    closers = contextlib.AsyncExitStack()

    async def start(app: web.Application | None = None, **kwargs: Any) -> HttpServer:
        server: HttpServer = await closers.enter_async_context(HttpServer(app, **kwargs))
        return server

    yield start
    await closers.aclose()


@pytest.fixture
async def tcp_server() -> AsyncIterator[Callable[..., Awaitable[TcpServer]]]:
    """``server = await tcp_server(handler)``: a started ``TcpServer`` on 127.0.0.1 calling
    ``handler(reader, writer)`` per connection (or ``tcp_server(protocol=factory)``: a new
    protocol per connection), closed after the test."""
    closers = contextlib.AsyncExitStack()

    async def start(handler: StreamHandler | None = None, **kwargs: Any) -> TcpServer:
        server: TcpServer = await closers.enter_async_context(TcpServer(handler, **kwargs))
        return server

    yield start
    await closers.aclose()


@pytest.fixture
async def sqlite_db() -> AsyncIterator[Callable[..., Awaitable[aiosqlite.Connection]]]:
    """``db = await sqlite_db(schema)``: an in-memory aiosqlite connection with ``schema``
    (a SQL script) run, closed after the test."""
    _require("aiosqlite", "sqlite_db")
    closers = contextlib.AsyncExitStack()

    async def open_db(schema: str = "", **kwargs: Any) -> aiosqlite.Connection:
        connection: aiosqlite.Connection = await closers.enter_async_context(
            open_sqlite(schema, **kwargs)
        )
        return connection

    yield open_db
    await closers.aclose()


@pytest.fixture(scope="session")
def make_http_server() -> type[HttpServer]:
    """``async with make_http_server() as server``: for fixtures of any scope."""
    _require("aiohttp", "make_http_server")
    return HttpServer


@pytest.fixture(scope="session")
def make_tcp_server() -> type[TcpServer]:
    """``async with make_tcp_server(handler) as server`` (or ``protocol=factory``): for
    fixtures of any scope."""
    return TcpServer


@pytest.fixture(scope="session")
def make_sqlite_db() -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with make_sqlite_db(schema) as db``: for fixtures of any scope."""
    _require("aiosqlite", "make_sqlite_db")
    return open_sqlite
