"""`FileFollows` on a virtual clock: it reads when the clock says, within its window, to eof."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.agent.follow import CHUNK_BYTES, POLL_S, WINDOW_BYTES, FileFollows
from mesoslite.agent.messages import FileDataOut
from mesoslite.clock import VirtualClock
from mesoslite.testing import assert_eventually_async


class Harness:
    def __init__(self, work: Path) -> None:
        self.clock = VirtualClock()
        self.sent: list[FileDataOut] = []
        self.live = True
        self.follows = FileFollows(work, lambda fid, tid: self.live, self.send, self.clock)
        self.file = work / "sandboxes" / "fw-1" / "t1" / "stdout"

    def send(self, item: FileDataOut) -> bool:
        self.sent.append(item)
        return True

    def data(self) -> bytes:
        return b"".join(m.data for m in self.sent)

    async def settle(self) -> None:
        """Let the follow's worker-thread reads finish (real time: they are real reads)."""
        for _ in range(20):
            await asyncio.sleep(0.005)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.follows.stop_all()
        await asyncio.sleep(0)


async def test_new_bytes_are_read_when_the_clock_comes_round_not_before(h: Harness) -> None:
    h.follows.start(1, "fw-1", "t1", "stdout", 0)
    await h.settle()
    assert h.sent == [] and len(h.follows) == 1  # no file yet: the task is staging
    h.file.parent.mkdir(parents=True)
    h.file.write_bytes(b"one\n")
    await h.settle()
    assert h.sent == []  # the clock did not move: nothing was looked at
    h.clock.advance(POLL_S)
    await assert_eventually_async(lambda: h.data() == b"one\n", timeout_s=5)
    with h.file.open("ab") as f:
        f.write(b"two\n")
    h.clock.advance(POLL_S)
    await assert_eventually_async(lambda: h.data() == b"one\ntwo\n", timeout_s=5)
    assert [m.offset for m in h.sent] == [0, 4] and not any(m.eof for m in h.sent)


async def test_a_follow_ends_with_eof_after_the_last_bytes_once_the_task_ended(h: Harness) -> None:
    h.file.parent.mkdir(parents=True)
    h.file.write_bytes(b"abc")
    h.follows.start(1, "fw-1", "t1", "stdout", 1)
    await assert_eventually_async(lambda: h.data() == b"bc", timeout_s=5)
    with h.file.open("ab") as f:
        f.write(b"last")  # written just before the task ended
    h.live = False
    h.clock.advance(POLL_S)
    await assert_eventually_async(lambda: h.sent and h.sent[-1].eof, timeout_s=5)
    assert h.data() == b"bclast" and h.sent[-1].offset == 7
    await assert_eventually_async(lambda: len(h.follows) == 0, timeout_s=5)


async def test_a_task_that_never_started_ends_at_once_with_eof_only(h: Harness) -> None:
    h.live = False
    h.follows.start(1, "fw-1", "t1", "stdout", 0)
    await assert_eventually_async(lambda: h.sent, timeout_s=5)
    assert h.sent == [FileDataOut(1, 0, eof=True)]


async def test_at_most_a_window_is_sent_before_credits_come_back(h: Harness) -> None:
    h.file.parent.mkdir(parents=True)
    content = bytes(i % 251 for i in range(3 * WINDOW_BYTES))
    h.file.write_bytes(content)
    h.follows.start(1, "fw-1", "t1", "stdout", 0)
    await assert_eventually_async(lambda: len(h.data()) == WINDOW_BYTES, timeout_s=5)
    h.clock.advance(10 * POLL_S)
    await h.settle()
    assert len(h.data()) == WINDOW_BYTES  # the reader is slow: the follow waits for it
    assert all(len(m.data) <= CHUNK_BYTES for m in h.sent)
    assert h.follows.outstanding_bytes() == WINDOW_BYTES
    h.follows.credit(1, WINDOW_BYTES // 2)  # wakes it at once, no clock needed
    await assert_eventually_async(
        lambda: len(h.data()) == WINDOW_BYTES + WINDOW_BYTES // 2, timeout_s=5
    )
    h.live = False
    h.follows.credit(1, len(content))  # credits beyond what was sent count up to it only
    assert h.follows.outstanding_bytes() == 0
    for _ in range(10):
        h.follows.credit(1, len(h.data()))
        await h.settle()
    await assert_eventually_async(lambda: h.sent[-1].eof, timeout_s=5)
    assert h.data() == content


async def test_stop_ends_a_follow_and_unknown_ids_are_ignored(h: Harness) -> None:
    h.follows.start(1, "fw-1", "t1", "stdout", 0)
    h.follows.start(2, "fw-1", "t1", "stderr", 0)
    assert len(h.follows) == 2
    h.follows.stop(1)
    h.follows.stop(99)
    h.follows.credit(99, 10)
    assert len(h.follows) == 1
    h.follows.stop_all()
    assert len(h.follows) == 0
    h.clock.advance(POLL_S)
    await h.settle()
    assert h.sent == []
