"""`CheckpointLog`: what the agent launched and the updates it owes, in one append-only file.

Layout: `WORK/meta/log`, one JSON object a line, each naming its task (`f`, `t`):
- `{"o":"P","x":tag}` a launch is about to be tried (written, with the rest of its launch
  chunk, before the processes are spawned): a task with this and no `L` is TASK_LOST after a
  restart, and the task supervisor's process with its tag, if any, is killed first.
- `{"o":"L","spec":…,"pid":…,"st":…,"cg":[…],"x":tag}` the process runs: its spec, pid
  (its wrapper's, also its process group), start time in clock ticks since boot (so a reused
  pid is never mistaken for it), cgroups, and the tag its wrapper writes its exit code under.
- `{"o":"U","s":status}` an update the agent made (written before it is sent);
  `{"o":"A","a":uuid_hex}` an acknowledgement; `{"o":"K"}` the agent started killing it;
  `{"o":"R"}` its terminal update was acknowledged: the task is forgotten.
Exit codes live beside it in `WORK/meta/exits` (`exit_log.py`), appended by the wrappers.

Cost: records are buffered and written with one `write` per batch (`flush`): the actor
flushes before it sends updates or signals a task, after each launch chunk, and at the end of
any loop iteration that made records. A record lost with its unflushed batch was never acted
upon outside the agent (an unsent update, an ack the master will resend, a launch whose
`P` is on disk), so recovery stays exact. Writes survive the agent being killed (page cache),
not the host losing power (no fsync).

Compaction: when the file is `COMPACT_FACTOR` times the live records (and at least
`COMPACT_MIN_BYTES`), the live tasks' records are written to `log.new`, which is then renamed
over `log`. The rename is the commit: a crash before it leaves `log` whole and a stray `log.new`
(removed at open); a crash after it leaves the compacted log. A torn last line (the agent
killed mid-write) is skipped on reading.

The old layout (a directory per task under `meta/`, `checkpoint.py`) is read once at open and
migrated: see `_migrate`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mesoslite.agent.checkpoint import (
    META_DIR,
    CheckpointStore,
    spec_from_json,
    spec_to_json,
    status_from_json,
    status_to_json,
)
from mesoslite.agent.exit_log import EXITS_FILE, ExitLog, ExitSink
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.agent.sandbox import SAFE_NAME_RE
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.model import TaskSpec, TaskStatus

logger = logging.getLogger(__name__)

LOG_FILE = "log"
COMPACT_FACTOR = 4
COMPACT_MIN_BYTES = 1 << 20

Key = tuple[str, str]
Schedule = Callable[[Callable[[], None]], object]


class CheckpointLog:
    """The agent's checkpoint log (see the module docstring). Same calls as the old
    `CheckpointStore`, plus `flush`.

    Args:
        work_dir: the agent's work dir; the log is `work_dir/meta/log`.
        schedule: runs a callable soon (`loop.call_soon`): buffered records are then flushed
            at the end of the loop iteration that made them. None: only explicit `flush`.
    """

    def __init__(self, work_dir: Path, schedule: Schedule | None = None) -> None:
        self.root = work_dir / META_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / LOG_FILE
        self.exits = ExitLog(self.root / EXITS_FILE)
        self.compact_min_bytes = COMPACT_MIN_BYTES
        self._schedule = schedule
        self._scheduled = False
        self._buffer: list[str] = []
        # Each live task's records as written, for compaction and the exit tag.
        self._live: dict[Key, list[str]] = {}
        self._live_bytes = 0
        self._tags: dict[Key, str] = {}
        # Each task's line prefix (`{"f":…,"t":…,`), made once: its ids need no escaping.
        self._prefix: dict[Key, str] = {}
        (self.root / (LOG_FILE + ".new")).unlink(missing_ok=True)  # a crash mid-compaction
        replay = Replay()
        replay.read(self.path)
        self._found = list(replay.tasks.values())
        self._live, self._live_bytes, self._tags = replay.live, replay.live_bytes, replay.tags
        # Tasks this agent did not spawn: their exit codes may be needed from `exits`.
        self._adopted = {(r.framework_id, r.task_id) for r in self._found}
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = _cut_torn_tail(self._fd)
        self._migrate()
        # Directories of the old layout (`meta/<framework>/`) are looked for at each `remove`
        # only if there were any at open (a stat per task saved, issue 15).
        self._legacy = _has_dirs(self.root)

    # ------------------------------------------------------------------ writing

    def prepare_launch(self, framework_id: str, task_id: str) -> ExitSink | None:
        """Note that `task_id` is about to be spawned; returns where its wrapper writes the
        exit code (None: ids that cannot be checkpointed)."""
        if not _safe(framework_id, task_id):
            return None
        tag = os.urandom(8).hex()
        self._tags[(framework_id, task_id)] = tag
        self._add_tail(framework_id, task_id, '"o":"P","x":"' + tag + '"}\n')
        return ExitSink(self.exits.path, tag)

    def save_task(
        self, spec: TaskSpec, framework_id: str, pid: int, start_ticks: int, cgroups: list[str]
    ) -> None:
        key = (framework_id, spec.task_id)
        doc = {"o": "L", "spec": spec_to_json(spec), "pid": pid, "st": start_ticks, "cg": cgroups}
        doc["x"] = self._tags.get(key, "")
        self._add(framework_id, spec.task_id, doc)

    def mark_killing(self, framework_id: str, task_id: str) -> None:
        self._add_tail(framework_id, task_id, '"o":"K"}\n')

    def append_update(self, status: TaskStatus) -> None:
        doc = _dumps(status_to_json(status))
        self._add_tail(status.framework_id, status.task_id, '"o":"U","s":' + doc + "}\n")

    def append_ack(self, framework_id: str, task_id: str, update_uuid: bytes) -> None:
        self._add_tail(framework_id, task_id, '"o":"A","a":"' + update_uuid.hex() + '"}\n')

    def remove(self, framework_id: str, task_id: str) -> None:
        key = (framework_id, task_id)
        self._tags.pop(key, None)
        self._adopted.discard(key)
        prefix = self._prefix.pop(key, None)
        records = self._live.pop(key, None)
        if records is not None:
            self._live_bytes -= sum(map(len, records))
            self._buffer.append((prefix or _prefix(framework_id, task_id)) + '"o":"R"}\n')
            self._soon()
        if not self._legacy:
            return
        legacy = self.legacy_dir(framework_id, task_id)
        if legacy is not None and legacy.is_dir():
            shutil.rmtree(legacy, ignore_errors=True)
            with contextlib.suppress(OSError):
                legacy.parent.rmdir()

    def exit_sink(self, framework_id: str, task_id: str) -> ExitSink | None:
        """Where the wrapper of this (recovered) task writes its exit code."""
        tag = self._tags.get((framework_id, task_id))
        if tag is None:
            return None
        if tag.startswith("/"):  # migrated from the old layout: its own file
            return ExitSink(Path(tag), "")
        return ExitSink(self.exits.path, tag)

    def flush(self) -> None:
        """Write the buffered records in one `write`, then compact if the log grew enough."""
        self._scheduled = False
        if not self._buffer:
            return
        data = "".join(self._buffer).encode()
        self._buffer.clear()
        if self._fd < 0:  # written after `close`: open again
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)
        if self._size > max(self.compact_min_bytes, COMPACT_FACTOR * self._live_bytes):
            self.compact()

    def compact(self) -> None:
        """Rewrite the live records to `log.new` and rename it over `log` (the commit)."""
        new = self.root / (LOG_FILE + ".new")
        data = "".join(r for recs in self._live.values() for r in recs).encode()
        with open(new, "wb") as f:
            f.write(data)
        new.replace(self.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(data)
        if not self._adopted:
            self.exits.rotate()

    def close(self) -> None:
        """Flush and release the file (a later record opens it again)."""
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _add(self, framework_id: str, task_id: str, doc: dict[str, Any]) -> None:
        self._add_tail(framework_id, task_id, _dumps(doc)[1:] + "\n")

    def _add_tail(self, framework_id: str, task_id: str, tail: str) -> None:
        """Append the record whose JSON after the task's ids is `tail` (`"o":…}` and the
        newline): the same line `_line` makes, without encoding the ids each time."""
        key = (framework_id, task_id)
        prefix = self._prefix.get(key)
        if prefix is None:
            if not _safe(framework_id, task_id):
                return  # ids that cannot be checkpointed: the update lives in memory only
            prefix = self._prefix[key] = _prefix(framework_id, task_id)
        line = prefix + tail
        live = self._live.get(key)
        if live is None:
            self._live[key] = [line]
        else:
            live.append(line)
        self._live_bytes += len(line)
        self._buffer.append(line)
        if not self._scheduled:
            self._soon()

    def _soon(self) -> None:
        if self._schedule is not None and not self._scheduled:
            self._scheduled = True
            self._schedule(self.flush)

    # ------------------------------------------------------------------ reading

    def recover(self) -> list[RecoveredTask]:
        """Every task checkpointed, in order of first record; torn lines are skipped."""
        self.flush()
        return [self._with_exit(r) for r in self._found]

    def _with_exit(self, r: RecoveredTask) -> RecoveredTask:
        sink = self.exit_sink(r.framework_id, r.task_id)
        r.exit_status = self.exits.read(sink) if sink is not None else None
        return r

    # ------------------------------------------------------------------ the old layout

    def legacy_dir(self, framework_id: str, task_id: str) -> Path | None:
        if not _safe(framework_id, task_id):
            return None
        return self.root / framework_id / task_id

    def _migrate(self) -> None:
        """Take over checkpoints of the old layout (`meta/<framework>/<task>/`): each task's
        records are appended here, then its old files but `exit_status` are removed (its
        wrapper, if it still runs, writes there: the directory goes with the task)."""
        legacy = [r for r in CheckpointStore(self.root.parent).recover() if _has_record(self, r)]
        if not legacy:
            return
        for r in legacy:
            self._forget_found(r)
            self._found.append(r)
            self._write_migrated(r)
        self.flush()
        for r in legacy:
            d = self.legacy_dir(r.framework_id, r.task_id)
            for name in ("task.json", "updates", "killing"):
                (d / name).unlink(missing_ok=True)  # type: ignore[operator]
        logger.info("migrated checkpoints from the old layout tasks=%d", len(legacy))

    def _forget_found(self, r: RecoveredTask) -> None:
        key = (r.framework_id, r.task_id)
        self._found = [f for f in self._found if (f.framework_id, f.task_id) != key]
        self._live_bytes -= sum(map(len, self._live.pop(key, [])))
        self._adopted.add(key)

    def _write_migrated(self, r: RecoveredTask) -> None:
        fid, tid = r.framework_id, r.task_id
        d = self.legacy_dir(fid, tid)
        self._add(fid, tid, {"o": "P"})
        if r.spec is not None:
            self._tags[(fid, tid)] = str(d / "exit_status")  # type: ignore[operator]
            self.save_task(r.spec, fid, r.pid, r.start_ticks, r.cgroups)
        for st in r.updates:
            self.append_update(st)
        for uuid in r.acked:
            self.append_ack(fid, tid, uuid)
        if r.kill_requested:
            self.mark_killing(fid, tid)


class Replay:
    """The log read back: each live task (in order of first record), its records as
    written, and its exit tag."""

    def __init__(self) -> None:
        self.tasks: dict[Key, RecoveredTask] = {}
        self.live: dict[Key, list[str]] = {}
        self.live_bytes = 0
        self.tags: dict[Key, str] = {}

    def read(self, path: Path) -> None:
        for line in _lines(path):
            try:
                doc = json.loads(line)
                key = (str(doc["f"]), str(doc["t"]))
                if doc["o"] == "R":
                    self.tasks.pop(key, None)
                    self.live_bytes -= sum(map(len, self.live.pop(key, [])))
                    self.tags.pop(key, None)
                    continue
                task = self.tasks.get(key)
                if task is None:
                    task = self.tasks[key] = RecoveredTask(FrameworkId(key[0]), TaskId(key[1]))
                self._apply(task, doc)
            except (ValueError, KeyError, TypeError):
                logger.warning("skipped a torn checkpoint record path=%s", path)
                continue
            self.live.setdefault(key, []).append(line + "\n")
            self.live_bytes += len(line) + 1
        for task in self.tasks.values():
            task.pending = _unacknowledged(task)

    def _apply(self, task: RecoveredTask, doc: dict[str, Any]) -> None:
        op = doc["o"]
        if op == "L":
            task.spec = spec_from_json(doc["spec"])
            task.pid, task.start_ticks = int(doc["pid"]), int(doc["st"])
            task.cgroups = [str(p) for p in doc.get("cg", [])]
            self.tags[(task.framework_id, task.task_id)] = str(doc.get("x", ""))
        elif op == "P":
            task.kill_requested = False
            if "x" in doc:  # the launch's tag (older logs have none)
                self.tags[(task.framework_id, task.task_id)] = str(doc["x"])
        elif op == "U":
            task.updates.append(status_from_json(doc["s"]))
        elif op == "A":
            task.acked.append(bytes.fromhex(doc["a"]))
        elif op == "K":
            task.kill_requested = True
        else:
            raise ValueError(f"unknown record {op!r}")


def read_checkpoints(work_dir: Path) -> list[RecoveredTask]:
    """The tasks an agent's log holds, read without touching it (for tools and tests)."""
    replay = Replay()
    replay.read(work_dir / META_DIR / LOG_FILE)
    return list(replay.tasks.values())


def _has_record(log: CheckpointLog, r: RecoveredTask) -> bool:
    """An old-layout directory that still holds records (not one migrated already)."""
    d = log.legacy_dir(r.framework_id, r.task_id)
    return d is not None and any((d / n).exists() for n in ("task.json", "updates", "killing"))


def _unacknowledged(task: RecoveredTask) -> list[TaskStatus]:
    acked = 0
    for uuid in task.acked:
        for i, st in enumerate(task.updates):
            if st.uuid == uuid:
                acked = max(acked, i + 1)
    return task.updates[acked:]


def _lines(path: Path) -> Iterator[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for raw in data.split(b"\n"):
        if raw:
            yield raw.decode("utf-8", "replace")


def _line(framework_id: str, task_id: str, doc: dict[str, Any]) -> str:
    return json.dumps({"f": framework_id, "t": task_id, **doc}, separators=(",", ":")) + "\n"


# One encoder, as `_line` encodes (compact, ASCII): `json.dumps` with arguments makes one
# per call.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _prefix(framework_id: str, task_id: str) -> str:
    """`_line`'s start for ids that pass `_safe` (no character JSON would escape)."""
    return '{"f":"' + framework_id + '","t":"' + task_id + '",'


def _has_dirs(root: Path) -> bool:
    try:
        with os.scandir(root) as entries:
            return any(e.is_dir(follow_symlinks=False) for e in entries)
    except OSError:
        return True


def _safe(framework_id: str, task_id: str) -> bool:
    return bool(SAFE_NAME_RE.match(framework_id) and SAFE_NAME_RE.match(task_id))


def _cut_torn_tail(fd: int) -> int:
    """Drop a torn last line (the agent killed mid-write), so the next record starts on a
    line of its own; returns the file's size."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
    keep = size - len(tail) + tail.rfind(b"\n") + 1
    os.ftruncate(fd, keep)
    return keep
