"""A committed stream: relayed chunk by chunk, its quirks tolerated, its breaks recovered.

    relay      each chunk within the deployment's silence limit and the whole-stream cap;
               what the caller received is tracked (`Delivered`); where the caller can
               write at once (`write_directly`) and the source can push, chunks go from one
               connection to the other as they are read, with no task woken per chunk
    tolerate   a malformed chunk is skipped and counted (a few per stream); a stream that
               delivered a finish reason is whole, with or without its terminator
    break      a cut (the stream ended without a finish reason), a silence, an error event,
               too many malformed chunks
    recover    on the next candidate: continue from the delivered text (assistant prefill)
               where the candidate can, else restart and match; heartbeats keep the client's
               connection alive meanwhile; each try spends from the retry budget and the
               stream's deadline
    give up    `StreamInterrupted` naming the original cause, never a normal end

Outcomes are recorded through `Attempts` like every other call: the broken stream as its
deployment's failure, a recovery that diverged or whose prefill was refused as nobody's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from ._aio import aclose_quietly, running_loop
from ._attempt import Attempts, Skipped
from ._delivered import Delivered
from ._limits import SilenceWatch
from ._native import NativeSource
from ._operations import Opened, OpenStream
from ._request import Call, Operation, RequestState
from ._resume import Diverged, Splice, continue_request
from .clock import Clock, deadline_scope
from .errors import (
    AttemptTimeout,
    BadRequest,
    ConnectionFailed,
    ProviderError,
    StreamInterrupted,
)
from .events import Hooks, StreamBreak
from .resilience.streams import Prefill, Resume, StreamPolicy
from .route import Plan, Slot
from .types import Chunk

__all__ = ["HEARTBEAT", "Heartbeat", "StreamSession", "Write"]

#: Writes chunks to the caller at once: how many it wrote (0 when it cannot take any now).
Write = Callable[[list[Chunk]], int]


class Pushed(Protocol):
    """A source pushing its chunks (e.g. `transport.Pushing`): its result, True when the
    taker stopped it and False at the source's end, or the failure; `stop()` ends it."""

    @property
    def future(self) -> asyncio.Future[bool]: ...

    def stop(self) -> None: ...


#: A source's `push(take, loop)`: hand the chunks of each read to `take` as they are read,
#: until it returns False; None when the source cannot now.
Push = Callable[[Callable[[list[Chunk]], bool], asyncio.AbstractEventLoop], Pushed | None]


class Heartbeat:
    """Yielded while a break is being recovered: the gateway sends a keep-alive comment."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HEARTBEAT"


HEARTBEAT = Heartbeat()

Candidates = Callable[[Slot, ProviderError], Iterator[tuple[Plan, Slot]]]


class _Source:
    """One upstream stream feeding the session, and how its chunks reach the caller."""

    __slots__ = (
        "call",
        "chunks",
        "first",
        "longest",
        "malformed",
        "mode",
        "push",
        "silence",
        "splice",
        "usage",
    )

    def __init__(
        self,
        opened: Opened,
        splice: Splice | None,
        silence: SilenceWatch,
        mode: Resume | None = None,
    ) -> None:
        self.call = opened.call
        self.mode = mode  # how it resumes a broken answer (None: the original stream)
        self.chunks = opened.rest
        self.usage = opened.usage  # it was asked for a usage chunk after its finish reason
        # a recovery's first content goes through its splice like the rest
        self.first: Chunk | None = opened.first if splice is not None else None
        self.splice = splice
        # the original stream's chunks may be pushed; a recovery's go through its splice
        self.push: Push | None = getattr(self.chunks, "push", None) if splice is None else None
        self.silence = silence
        self.malformed = 0
        self.longest = 0.0  # the longest silence between two of its chunks

    async def close(self) -> None:
        """Hang up the upstream stream."""
        self.silence.stop()
        await aclose_quietly(self.chunks)


class StreamSession:
    """Relays one committed stream to the caller and recovers it when it breaks."""

    def __init__(
        self,
        *,
        attempts: Attempts,
        state: RequestState[Opened],
        opened: Opened,
        policy: StreamPolicy,
        opener: Operation[Opened],
        candidates: Candidates,
        no_prefill: set[str],
        silence: Callable[[Call], float | None],
        deadline: float,
        on_end: Callable[[BaseException | None, bool], None],
    ) -> None:
        self.attempts = attempts
        self.clock: Clock = attempts.clock
        self.hooks: Hooks = attempts.hooks
        self.state = state
        self.policy = policy
        self.delivered = Delivered()
        self.recoveries = 0  # breaks recovered so far
        self._opener = opener
        self._candidates = candidates
        self._no_prefill = no_prefill
        self._refused: set[str] = set()  # deployments that refused this stream's prefill
        self._silence = silence
        self._deadline = deadline
        self._on_end = on_end
        self._queue: deque[Chunk] = deque([*opened.held, opened.first])
        for chunk in self._queue:  # read once already: they parse
            self.delivered.feed(chunk.body)
        self._source: _Source | None = self._new_source(opened, None)
        self._last = opened.call.slot.name
        self._cause: ProviderError | None = None  # the first break: what an error names
        self._recovery: asyncio.Task[_Source | None] | None = None  # a break being recovered
        self._whole = False  # the answer is complete: no more upstream reads
        self._done = False
        self._write: Write | None = None  # the caller's direct write, if it offers one

    @property
    def deployment(self) -> str:
        """The deployment sending the stream now (or the last one that did)."""
        return self._last

    def write_directly(self, write: Write) -> None:
        """Let chunks read while nothing else is pending go straight to `write`, in the
        connection's callback as they are read (`events()` still yields the rest and drives
        the ends, breaks and recovery)."""
        self._write = write

    @property
    def ready(self) -> bool:
        """The next chunk, or the end, follows without waiting for an upstream."""
        return bool(self._queue) or self._whole

    # -- relaying --------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[Chunk | Heartbeat, None]:
        """The chunks for the caller, with heartbeats while a break is recovered."""
        queue = self._queue
        delivered = self.delivered
        try:
            while True:
                while queue:
                    yield queue.popleft()
                source = self._source
                if source is None:
                    break
                self._last = source.call.slot.name
                # one upstream chunk into the queue (every chunk of every stream passes
                # here: kept inline, a coroutine less per chunk)
                try:
                    if not (
                        source.push is not None
                        and self._write is not None
                        and await self._pump(source, source.push, self._write)
                    ):
                        chunk = await self._read(source)
                        if chunk is None:
                            if not delivered.complete:
                                raise ConnectionFailed(
                                    "the stream ended before its answer was complete",
                                    deployment=source.call.slot.name,
                                )
                            await self._finished(source, drain=False)
                            continue
                        self._accept(source, chunk)
                except ProviderError as err:
                    if delivered.complete:  # the answer is whole: what follows is not ours
                        await self._finished(source, drain=False)
                        continue
                    await self._broke(source, err)
                else:
                    if delivered.finish is not None and self._answered(source):
                        await self._finished(source, drain=True)
                    continue
                async for beat in self._recovering(source):
                    yield beat
        except BaseException as exc:
            await self._close(exc, ok=False)
            raise
        await self._close(None, ok=True)

    def _answered(self, source: _Source) -> bool:
        """A finish reason arrived, and the usage when the source was asked for it (by the
        caller, or by the gateway translating the caller's request for it)."""
        delivered = self.delivered
        return delivered.complete and (delivered.usage is not None or not source.usage)

    def _new_source(
        self, opened: Opened, splice: Splice | None, mode: Resume | None = None
    ) -> _Source:
        silence = SilenceWatch(self.clock, self._silence(opened.call), self._deadline)
        return _Source(opened, splice, silence, mode)

    async def _read(self, source: _Source) -> Chunk | None:
        """One chunk within the silence limit and the stream's deadline; None at its end."""
        if source.first is not None:
            first, source.first = source.first, None
            return first
        silence = source.silence
        try:
            now = silence.begin()
        except TimeoutError:
            raise self._stalled(source, 0.0) from None
        try:
            chunk = await anext(source.chunks)
        except StopAsyncIteration:
            return None
        except BaseException as exc:
            if (instead := self._failed(source, exc, now)) is None:
                raise
            raise instead from exc
        finally:
            instead = None  # raised, its traceback holds this frame: a cycle if kept here
            silence.end()
        source.longest = max(source.longest, self.clock.now() - now)
        return chunk

    async def _pump(self, source: _Source, push: Push, write: Write) -> bool:
        """Relay chunks from the source to the caller as they are read, with no task woken
        per chunk, until one needs more: a finish reason (its chunks stay queued, so the
        end leaves in one write), a caller that cannot take more now, the source's end, or a
        failure (raised as `_read` raises). After the second and third the source is read
        as usual. False when the source could not push now: read its next chunk as usual.
        """
        silence = source.silence
        try:
            silence.begin()
        except TimeoutError:
            raise self._stalled(source, 0.0) from None
        queue = self._queue
        delivered = self.delivered

        def take(chunks: list[Chunk]) -> bool:
            source.longest = max(source.longest, silence.renew())
            for chunk in chunks:
                self._accept(source, chunk)
            if delivered.finish is not None:
                return False
            if queue:
                chunks = list(queue)
                written = write(chunks)
                if written < len(chunks):  # the rest is yielded, and waited for, as usual
                    for _ in range(written):
                        queue.popleft()
                    source.push = None
                    return False
                queue.clear()
            return True

        pushed = push(take, running_loop())
        if pushed is None:  # e.g. events of an earlier read still to hand on
            silence.end()
            return False
        try:
            if not await pushed.future:
                source.push = None  # its end was read: told by the next read
        except BaseException as exc:
            if (instead := self._failed(source, exc, silence.since or 0.0)) is None:
                raise
            raise instead from exc
        finally:
            pushed.stop()
            silence.end()
            # raised, a failure's traceback holds this frame, and the push's future the
            # failure: kept here, either makes a cycle
            instead = pushed = None
        return True

    def _failed(self, source: _Source, exc: BaseException, since: float) -> Exception | None:
        """What a read of `source` begun at `since` raises instead of `exc`: a stall when the
        silence limit cancelled it, a provider's error for anything else it raised; None to
        raise `exc` itself (a provider's error already, or a cancellation from elsewhere)."""
        if isinstance(exc, asyncio.CancelledError):
            return (
                self._stalled(source, self.clock.now() - since)
                if source.silence.timed_out()
                else None
            )
        if isinstance(exc, ProviderError) or not isinstance(exc, Exception):
            return None
        return self.attempts.classify(exc)

    @staticmethod
    def _stalled(source: _Source, waited: float) -> AttemptTimeout:
        return AttemptTimeout(
            f"stream stalled: no chunk for {waited:.3g}s", deployment=source.call.slot.name
        )

    def _accept(self, source: _Source, chunk: Chunk) -> None:
        """Queue what the caller gets of one upstream chunk (nothing: skipped or held back)."""
        try:
            body = chunk.body
        except ValueError:
            source.malformed += 1
            if source.malformed > self.policy.max_malformed:
                raise ConnectionFailed(
                    f"more than {self.policy.max_malformed} malformed chunks in one stream",
                    deployment=source.call.slot.name,
                ) from None
            return
        if source.splice is None:
            self.delivered.feed(body)
            self._queue.append(chunk)
            return
        for spliced in source.splice.feed(body):
            self.delivered.feed(spliced)
            self._queue.append(Chunk(spliced))

    # -- endings ---------------------------------------------------------------------------

    async def _finished(self, source: _Source, *, drain: bool) -> None:
        """The answer is whole: record it; a stream still open is read to its end in the
        background, so its connection can be used again (one whose end was read already,
        with its last chunk, is closed at once: the transport waits for any bytes trailing
        its end itself)."""
        self._source = None
        self._whole = True
        source.silence.stop()
        call = source.call
        call.attempt.answer = self.delivered
        if call.attempt.ttft is not None:
            stats = self.attempts.store.stats(call.slot.name)
            stats.observe_stream(call.attempt.ttft, source.longest)
        await self.attempts.record(call, None, success=True)
        if not drain:
            return
        if getattr(source.chunks, "ended", False):  # its end came with its last chunk
            await aclose_quietly(source.chunks)  # (the connection goes back to its pool)
        else:
            _drain_later(source.chunks)

    async def _broke(self, source: _Source, err: ProviderError) -> None:
        call = source.call
        err.deployment = err.deployment or call.slot.name
        call.attempt.delivered = len(self.delivered.text)
        await source.close()
        await self.attempts.record(call, err)
        self._cause = self._cause or err

    async def _close(self, exc: BaseException | None, *, ok: bool) -> None:
        """The caller is done (or gone): stop a recovery, close what is still open, once."""
        if self._done:
            return
        self._done = True
        recovery, self._recovery = self._recovery, None
        if recovery is not None:
            await self._stop(recovery)
        source, self._source = self._source, None
        if source is not None:
            await source.close()
            await self.attempts.record(source.call, None, success=False)
        self._on_end(exc, ok)
        # told, or carried by the error raised: kept, its traceback's frames hold this session
        self._cause = None

    async def _stop(self, recovery: asyncio.Task[_Source | None]) -> None:
        """Cancel a recovery nobody waits for; a stream it already caught up is closed."""
        recovery.cancel()
        await asyncio.wait((recovery,))
        if recovery.cancelled() or recovery.exception() is not None:
            return  # what it had opened was recorded as it unwound
        found = recovery.result()
        if found is not None:
            await found.close()
            await self.attempts.record_cancelled(found.call)

    async def aclose(self) -> None:
        """Stop early: the upstream is closed and nobody is blamed."""
        await self._close(None, ok=False)

    # -- recovery --------------------------------------------------------------------------

    async def _recovering(self, broken: _Source) -> AsyncIterator[Heartbeat]:
        """Recover the break, yielding heartbeats while it takes; raise if it cannot be."""
        self._source = None
        # kept on the session, so that closing the stream (or the caller leaving) stops it
        task = self._recovery = asyncio.ensure_future(self._recover(broken.call.slot))
        while not task.done():
            try:
                async with deadline_scope(self.clock, self.clock.now() + self.policy.heartbeat):
                    await asyncio.wait((task,))
            except TimeoutError:
                yield HEARTBEAT
        self._recovery = None
        if task.cancelled():  # the stream was closed meanwhile: nothing more to send
            return
        source = task.result()
        if source is None:
            self._tell(broken.call.slot.name, "failed")
            raise self._interrupted()
        self.recoveries += 1
        self._source = source
        outcome = "restarted" if source.mode is Resume.RESTART else "continued"
        self._tell(broken.call.slot.name, outcome, by=source.call.slot.name)

    async def _recover(self, broken: Slot) -> _Source | None:
        """A new source finishing the answer, or None when no candidate could."""
        delivered = self.delivered
        if (
            self.policy.resume is Resume.OFF
            or self.recoveries >= self.policy.max_recoveries
            or delivered.other_choices
            or delivered.complete
        ):
            return None
        assert self._cause is not None
        for plan, slot in self._candidates(broken, self._cause):
            if self.clock.now() >= self._deadline:
                return None
            if not self.attempts.available(self.state, plan, slot):
                continue
            found = await self._try(plan, slot)
            if found is not None:
                return found
        return None

    async def _try(self, plan: Plan, slot: Slot) -> _Source | None:
        """Finish the answer on `slot`: continue where it can, else restart and match."""
        if self._can_continue(slot):
            found = await self._open(plan, slot, resume=Resume.CONTINUE)
            if found is not None or slot.name not in self._refused:
                return found
        return await self._open(plan, slot, resume=Resume.RESTART)

    def _can_continue(self, slot: Slot) -> bool:
        delivered = self.delivered
        return (
            self.policy.resume is Resume.CONTINUE
            and slot.deployment.prefill is not Prefill.NONE
            and slot.name not in self._no_prefill
            and slot.name not in self._refused
            and bool(delivered.text.strip())
            and not delivered.tools
            and not delivered.reasoning
        )

    async def _open(self, plan: Plan, slot: Slot, *, resume: Resume) -> _Source | None:
        if not plan.budget.spend():
            if self.hooks.budget:
                self.hooks.exhausted(plan.name, "retry")
            return None
        request, expected = self._request_for(slot, resume)
        state = RequestState(plan, request, self.state.trace, self._deadline, self._opener)
        try:
            opened = await self.attempts.send(
                state, plan, slot, recovery=resume.value, delivered=len(self.delivered.text)
            )
        except Skipped:
            return None
        except BadRequest:
            if resume is Resume.CONTINUE:  # the prefill is all that differs: it was refused
                self._refused.add(slot.name)
                if not self._passed_through(slot):
                    self._no_prefill.add(slot.name)
            return None
        except ProviderError:
            return None
        splice = Splice(self.delivered, expected=expected, strict=resume is Resume.RESTART)
        source = self._new_source(opened, splice, resume)
        if not await self._caught_up(source):
            return None
        return source

    def _passed_through(self, slot: Slot) -> bool:
        """Whether `slot` got the client's own request in its API (not chat built here): a
        prefill refused there may be that request's (Anthropic's extended thinking forbids
        one), so it is not learned for the deployment."""
        opener = self._opener
        source = opener.source if isinstance(opener, OpenStream) else None
        return isinstance(source, NativeSource) and source.passes_through(slot.deployment)

    def _request_for(self, slot: Slot, resume: Resume) -> tuple[dict[str, Any], str]:
        original = self.state.request
        if resume is Resume.CONTINUE:
            return continue_request(original, self.delivered, slot.deployment.prefill)
        return original, self.delivered.text

    async def _caught_up(self, source: _Source) -> bool:
        """Hold the new stream back until it has reproduced what the caller has; what it
        says beyond that in the same chunk is queued for the caller."""
        assert source.splice is not None
        try:
            while not source.splice.matched:
                chunk = await self._read(source)
                if chunk is None:
                    raise Diverged("the new answer ended before it caught up")
                self._accept(source, chunk)
        except Diverged as exc:
            source.call.attempt.message = str(exc)
            source.call.attempt.cancelled = True
            await source.close()
            await self.attempts.record(source.call, None, success=False)
            return False
        except ProviderError as err:
            await source.close()
            await self.attempts.record(source.call, err)
            return False
        except BaseException:  # the caller left (or closed the stream) while it caught up
            await source.close()
            await self.attempts.record_cancelled(source.call)
            raise
        return True

    def _interrupted(self) -> StreamInterrupted:
        cause = self._cause
        assert cause is not None
        return StreamInterrupted(
            f"stream from {cause.deployment} broke after {self.delivered.describe()}: "
            f"{cause.message}",
            trace=self.state.trace,
            last=cause,
        )

    # -- telling observers -----------------------------------------------------------------

    def _tell(self, broken: str, outcome: str, *, by: str | None = None) -> None:
        cause = self._cause
        if self.hooks.stream and cause is not None:
            self.hooks.broke(
                StreamBreak(
                    route=self.state.plan.name,
                    deployment=broken,
                    kind=cause.kind,
                    delivered=len(self.delivered.text),
                    outcome=outcome,
                    by=by,
                )
            )


_DRAINING: set[asyncio.Task[None]] = set()
DRAIN_TIMEOUT = 2.0  # how long a whole answer's stream may take to send its terminator


def _drain_later(chunks: AsyncIterator[Chunk]) -> None:
    """Read a finished stream's last bytes (its terminator) in the background, then close."""
    loop = running_loop()
    task = loop.create_task(_drain(chunks))
    timer = loop.call_later(DRAIN_TIMEOUT, task.cancel)
    _DRAINING.add(task)

    def drained(task: asyncio.Task[None]) -> None:
        _DRAINING.discard(task)
        timer.cancel()

    task.add_done_callback(drained)


async def _drain(chunks: AsyncIterator[Chunk]) -> None:
    try:
        async for _ in chunks:
            pass
    except (Exception, asyncio.CancelledError):  # broken, or too slow: hung up below
        pass
    finally:
        await aclose_quietly(chunks)
