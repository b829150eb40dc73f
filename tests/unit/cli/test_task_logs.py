"""`task logs` (without `--follow`): chunked reads from offset 0 to the file's current end.

`--follow` streams (`Operator.FollowFile`): see tests/integration/test_follow_output.py.
"""

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


def copy(client: FakeClient) -> bytes:
    out: list[bytes] = []
    task_cmd.copy_file(client, "t1", "stdout", "", out.append)  # type: ignore[arg-type]
    return b"".join(out)


def test_without_follow_the_file_is_read_in_chunks_to_its_current_end() -> None:
    client = FakeClient([(b"hello world\n", "TASK_RUNNING", False)])
    assert copy(client) == b"hello world\n"
    assert client.reads == [0, 4, 8]


def test_without_follow_an_empty_file_is_one_read() -> None:
    client = FakeClient([(b"", "TASK_RUNNING", False)])
    assert copy(client) == b""
    assert client.reads == [0]


def test_an_unknown_task_is_an_error() -> None:
    class Unknown(FakeClient):
        def read_file(self, *a: object, **k: object) -> FileChunk:
            raise UnknownTaskError("task 't1' is not known")

        def tasks(self, **k: object) -> list[object]:
            return []

    with pytest.raises(UnknownTaskError):
        copy(Unknown([]))
