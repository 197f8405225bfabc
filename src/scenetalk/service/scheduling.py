"""How requests share the models: bounded concurrency with a queue, a deadline, and dynamic
batching of captions.

The models run in a pool of ``concurrency`` threads (PyTorch releases the GIL in its kernels,
so the event loop keeps answering while they work). At most ``concurrency + queue`` requests
are admitted at once; the next gets 503 with Retry-After instead of waiting without end. Each
admitted request has a deadline: past it the client gets 504, and its model call, if it has not
started, is taken off the pool's queue (one that has started runs to its end, still counted
against the pool, so the server never runs more than ``concurrency`` calls).

Captions are batched (Clipper's and Triton's dynamic batching): the first request waits
``wait_s`` for others with the same decoding settings, and one model call captions up to
``max_batch`` photos, so many clients get more photos a second than one at a time would.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scenetalk.service.errors import ServiceError


class Scheduler:
    """Admission (``admitted``), a deadline (``within_deadline``) and the model pool (``run``)."""

    def __init__(self, concurrency: int, queue: int, timeout_s: float):
        self.concurrency, self.limit, self.timeout_s = concurrency, concurrency + queue, timeout_s
        self.in_flight = 0
        self.pool: ThreadPoolExecutor | None = None  # made on first use, again after close (a restarted app)

    @contextlib.contextmanager
    def admitted(self):
        """One request's place among the admitted ones, or 503 when there is none."""
        if self.in_flight >= self.limit:
            retry = max(1, math.ceil(self.timeout_s / 4))
            raise ServiceError(503, "busy", f"the server is busy ({self.in_flight} requests in progress); "
                                            f"try again in {retry} s", headers={"Retry-After": str(retry)})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def within_deadline(self, awaitable):
        """``awaitable``'s result, or 504 when it takes longer than the request timeout."""
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except asyncio.TimeoutError:
            raise ServiceError(504, "timeout", f"the request took longer than {self.timeout_s:g} s "
                                               "and was given up") from None

    async def run(self, fn: Callable, *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)`` on the model pool."""
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="scenetalk-model")
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class CaptionBatcher:
    """``caption(image, beam_size, n_best, lang)`` for one photo; photos asked for within
    ``wait_s`` of each other with the same settings are captioned by one call of
    ``caption_many(images, beam_size=…, n_best=…, lang=…)`` (at most ``max_batch`` at a time). A batch
    whose call fails is captioned again photo by photo, so one bad photo fails only its own
    request. ``batches`` counts the calls and ``photos`` the photos (for measurements)."""

    def __init__(self, caption_many: Callable, scheduler: Scheduler, wait_s: float, max_batch: int):
        self.caption_many, self.scheduler, self.wait_s, self.max_batch = caption_many, scheduler, wait_s, max_batch
        self.pending: list[tuple[tuple, Any, asyncio.Future]] = []
        self.worker: asyncio.Task | None = None
        self.batches = self.photos = 0

    async def caption(self, image, beam_size: int, n_best: int, lang: str = "en"):
        future = asyncio.get_running_loop().create_future()
        self.pending.append(((beam_size, n_best, lang), image, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._work())
        return await future

    async def _work(self) -> None:
        while self.pending:
            if len(self.pending) < self.max_batch and self.wait_s > 0:
                await asyncio.sleep(self.wait_s)  # let others join the batch
            key = self.pending[0][0]
            batch = [p for p in self.pending if p[0] == key and not p[2].done()][:self.max_batch]
            taken = {id(p[2]) for p in batch}
            self.pending = [p for p in self.pending if id(p[2]) not in taken and not p[2].done()]
            if batch:
                await self._caption(key, batch)

    async def _caption(self, key: tuple, batch: Sequence[tuple]) -> None:
        beam_size, n_best, lang = key
        try:
            results = await self.scheduler.run(self.caption_many, [p[1] for p in batch],
                                               beam_size=beam_size, n_best=n_best, lang=lang)
            self.batches, self.photos = self.batches + 1, self.photos + len(batch)
        except Exception as exc:
            if len(batch) > 1:  # one photo's fault must not fail the others
                for p in batch:
                    await self._caption(key, [p])
            else:
                _settle(batch[0][2], error=exc)
            return
        for (_, _, future), captions in zip(batch, results):
            _settle(future, result=captions)


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():  # its request was given up (timeout, client gone)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
