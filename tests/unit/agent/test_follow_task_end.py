"""`FileFollows.tasks_ended` (issue 15): a task's end ends its follows without waiting for
the next poll: the virtual clock never moves here, so no poll comes round."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.testing import assert_eventually_async

from .test_follow import Harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    harness.file.parent.mkdir(parents=True)
    try:
        yield harness
    finally:
        harness.follows.stop_all()


async def test_a_follow_that_sent_everything_sends_eof_at_once_when_its_task_ends(
    h: Harness,
) -> None:
    h.file.write_bytes(b"abc")
    other = h.file.parents[1] / "t2" / "stdout"
    other.parent.mkdir()
    other.write_bytes(b"abc")
    h.follows.start(1, "fw-1", "t1", "stdout", 0)
    h.follows.start(2, "fw-1", "t2", "stdout", 0)  # another task's: left alone
    await assert_eventually_async(lambda: h.data() == b"abc" * 2, timeout_s=5)
    h.live = False
    h.follows.tasks_ended({("fw-1", "t1")})
    # Sent before `tasks_ended` returned: ahead of the terminal update its caller sends next.
    assert [(m.follow_id, m.offset) for m in h.sent if m.eof] == [(1, 3)]
    assert len(h.follows) == 1


async def test_a_follow_with_bytes_left_reads_them_at_once_then_sends_eof(h: Harness) -> None:
    h.file.write_bytes(b"abc")
    h.follows.start(1, "fw-1", "t1", "stdout", 0)
    await assert_eventually_async(lambda: h.data() == b"abc", timeout_s=5)
    with h.file.open("ab") as f:
        f.write(b"last")  # written just before the task ended
    h.live = False
    h.follows.tasks_ended({("fw-1", "t1")})
    assert not any(m.eof for m in h.sent)  # the read goes to a worker thread first
    await assert_eventually_async(lambda: h.sent[-1].eof, timeout_s=5)
    assert h.data() == b"abclast" and h.sent[-1].offset == 7
