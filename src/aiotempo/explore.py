"""Race exploration: run a test under other legal interleavings of its tasks, reproducibly.

Races hide because asyncio's scheduling is nearly deterministic: callbacks run in the order
they were scheduled. A seeded explorer perturbs that order before each loop iteration, but only
within what asyncio promises: callbacks scheduled by one task (one ``call_soon`` chain) keep
their order, while callbacks of different tasks may be interleaved differently, and a whole
chain may be put off to the next iteration (as if its task were slower). The same seed gives
the same interleaving for code without real I/O, so a failing seed replays exactly.

``--asyncio-explore=N`` runs each async test N times with seeds ``S, S+1, ...`` (``S`` from
``--asyncio-seed``, else 0), each a test of its own with its fixtures rebuilt;
``--asyncio-seed=S`` alone runs each async test once, perturbed with seed ``S``.

The explorer wraps the loop instance's ``call_soon`` (to know each callback's task) and its
selector (to reorder ``BaseEventLoop._ready`` before each iteration runs it).
"""

from __future__ import annotations

import asyncio
import random
import shlex
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

#: Chance that a chain of callbacks is put off to the next iteration.
_DEFER = 0.5
_UNKNOWN = object()
#: The hidden parameter that gives each explored run of a test its seed.
SEED_FIXTURE = "_aiotempo_seed"
_EXPLORER_ATTR = "_aiotempo_explorer"


class Explorer:
    """Reorders a loop's ready callbacks, seeded (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seed: int) -> None:
        self.seed = seed
        self._loop = loop
        self._random = random.Random(seed)
        self._origin: weakref.WeakKeyDictionary[asyncio.Handle, object] = (
            weakref.WeakKeyDictionary()
        )
        self._selector = loop._selector  # type: ignore[attr-defined]
        loop._selector = self  # type: ignore[attr-defined]
        loop.call_soon = self._call_soon  # type: ignore[method-assign,assignment]

    def remove(self) -> None:
        self._loop._selector = self._selector  # type: ignore[attr-defined]
        del self._loop.call_soon

    def _call_soon(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        handle = type(self._loop).call_soon(self._loop, callback, *args, context=context)
        self._origin[handle] = asyncio.current_task(self._loop)
        return handle

    def select(self, timeout: float | None = None) -> Any:
        events = self._selector.select(timeout)
        self._perturb(self._loop._ready)  # type: ignore[attr-defined]
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)

    def _perturb(self, ready: deque[asyncio.Handle]) -> None:
        if not ready:
            return
        chains: dict[object, list[asyncio.Handle]] = {}
        for handle in ready:  # callbacks not scheduled through call_soon form one chain
            chains.setdefault(self._origin.get(handle, _UNKNOWN), []).append(handle)
        if len(chains) < 2:
            return
        queues = []
        for chain in chains.values():
            if self._random.random() < _DEFER:
                chain = [asyncio.Handle(_resume, (ready, chain), self._loop, None)]
            queues.append(deque(chain))
        ready.clear()
        while queues:  # a random interleaving that keeps each chain's order
            queue = queues[self._random.randrange(len(queues))]
            ready.append(queue.popleft())
            if not queue:
                queues.remove(queue)


def _resume(ready: deque[asyncio.Handle], chain: list[asyncio.Handle]) -> None:
    """Run a put-off chain in the next iteration, in its order."""
    ready.extend(handle for handle in chain if not handle.cancelled())


def perturb(loop: asyncio.AbstractEventLoop, seed: int) -> None:
    """Explore ``loop``'s interleavings with ``seed`` until ``restore``."""
    restore(loop)
    setattr(loop, _EXPLORER_ATTR, Explorer(loop, seed))


def restore(loop: asyncio.AbstractEventLoop) -> None:
    explorer: Explorer | None = getattr(loop, _EXPLORER_ATTR, None)
    if explorer is not None:
        explorer.remove()
        delattr(loop, _EXPLORER_ATTR)


def parametrize(metafunc: Any, runs: int, first_seed: int) -> None:
    """Run the test once per seed, each run a test of its own (``test[seed=7]``)."""
    seeds = range(first_seed, first_seed + runs)
    metafunc.fixturenames.append(SEED_FIXTURE)
    metafunc.parametrize(SEED_FIXTURE, seeds, ids=[f"seed={s}" for s in seeds], indirect=True)


def replay_line(nodeid: str, seed: int) -> str:
    """The command line that replays one explored run: the test, without its seed id."""
    head, _, ids = nodeid.partition("[")
    kept = [part for part in ids.rstrip("]").split("-") if part and part != f"seed={seed}"]
    test = f"{head}[{'-'.join(kept)}]" if kept else head
    return f"pytest '{test}' --asyncio-seed={seed}"


def replay_run(args: Sequence[str], seed: int) -> str:
    """The command line that replays a whole run (its tests in flight together) with ``seed``."""
    kept = [arg for arg in args if not arg.startswith("--asyncio-seed")]
    return shlex.join(["pytest", *kept, f"--asyncio-seed={seed}"])
