"""`task logs`: chunked reads from offset 0, and when `--follow` may stop."""

from __future__ import annotations

import time

import pytest

from mesoslite.cli import task as task_cmd
from mesoslite.cli._views import FileChunk
from mesoslite.errors import UnknownTaskError


class FakeClient:
    """Serves a file that grows by scripted steps; each read sees the next step."""

    def __init__(self, steps: list[tuple[bytes, str, bool]]) -> None:
        self.steps = steps  # (whole file content, state, terminal) seen by successive reads
        self.reads: list[int] = []

    def read_file(self, task_id: str, name: str = "stdout", offset: int = 0, length: int = 0,
                  *, framework_id: str = "") -> FileChunk:
        content, state, terminal = self.steps[min(len(self.reads), len(self.steps) - 1)]
        self.reads.append(offset)
        data = content[offset:offset + 4]  # tiny chunks, to exercise the loop
        return FileChunk(data=data, size=len(content), state=state, terminal=terminal)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)


def copy(client: FakeClient, follow: bool) -> bytes:
    out: list[bytes] = []
    task_cmd.copy_file(client, "t1", "stdout", "", follow, out.append)  # type: ignore[arg-type]
    return b"".join(out)


def test_without_follow_the_file_is_read_in_chunks_to_its_current_end() -> None:
    client = FakeClient([(b"hello world\n", "TASK_RUNNING", False)])
    assert copy(client, follow=False) == b"hello world\n"
    assert client.reads == [0, 4, 8]


def test_without_follow_an_empty_file_is_one_read() -> None:
    client = FakeClient([(b"", "TASK_RUNNING", False)])
    assert copy(client, follow=False) == b""
    assert client.reads == [0]


def test_follow_waits_for_new_output_and_stops_after_a_read_made_once_the_task_ended() -> None:
    client = FakeClient([
        (b"one\n", "TASK_RUNNING", False),
        (b"one\n", "TASK_RUNNING", False),
        (b"one\ntwo\n", "TASK_RUNNING", False),
        (b"one\ntwo\n", "TASK_FINISHED", True),
        # The task wrote its last bytes just before it ended: the read after seeing the
        # terminal state must still pick them up.
        (b"one\ntwo\nlast\n", "TASK_FINISHED", True),
    ])
    assert copy(client, follow=True) == b"one\ntwo\nlast\n"


def test_follow_of_a_task_that_already_ended_reads_once_more_then_stops() -> None:
    client = FakeClient([(b"done\n", "TASK_FAILED", True)])
    assert copy(client, follow=True) == b"done\n"
    assert len(client.reads) == 3  # the data, an empty read (ended), a confirming read


def test_an_unknown_task_is_an_error_even_when_following() -> None:
    class Unknown(FakeClient):
        def read_file(self, *a: object, **k: object) -> FileChunk:
            raise UnknownTaskError("task 't1' is not known")

        def tasks(self, **k: object) -> list[object]:
            return []

    with pytest.raises(UnknownTaskError):
        copy(Unknown([]), follow=True)
