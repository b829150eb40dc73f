"""`TaskBook`: the recently completed tasks, and finding a task by id (live or completed).

Live tasks are kept by their framework's record (`FrameworkRecord.tasks`) and indexed by
their agent's (`AgentRecord.tasks`); `tasks.py` moves them between those and this book.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

from mesoslite.errors import UnknownTaskError, ValidationError
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.master import records as rec
from mesoslite.master.constants import MAX_COMPLETED_TASKS

TaskKey = tuple[FrameworkId, TaskId]


class TaskBook(Mapping[TaskKey, rec.TaskRecord]):
    """Completed tasks by (framework, task), oldest first, at most `MAX_COMPLETED_TASKS`."""

    def __init__(self) -> None:
        self._completed: OrderedDict[TaskKey, rec.TaskRecord] = OrderedDict()

    def __getitem__(self, key: TaskKey) -> rec.TaskRecord:
        return self._completed[key]

    def __iter__(self) -> Iterator[TaskKey]:
        return iter(self._completed)

    def __len__(self) -> int:
        return len(self._completed)

    def remember(self, record: rec.TaskRecord) -> None:
        key = (record.framework_id, record.spec.task_id)
        completed = self._completed
        if key in completed:
            completed.move_to_end(key)
        completed[key] = record
        while len(completed) > MAX_COMPLETED_TASKS:
            completed.popitem(last=False)

    def forget(self, record: rec.TaskRecord) -> None:
        """Drop `record` (a task that is live again), if it is still the one kept."""
        key = (record.framework_id, record.spec.task_id)
        if self._completed.get(key) is record:
            del self._completed[key]

    def locate(
        self,
        frameworks: Mapping[FrameworkId, rec.FrameworkRecord],
        task_id: TaskId,
        fid: FrameworkId | None,
    ) -> rec.TaskRecord:
        """A live or recently completed task; `fid` is needed only if the id is ambiguous."""
        found: list[rec.TaskRecord] = []
        if fid:
            live = [frameworks[fid]] if fid in frameworks else []
        else:
            live = list(frameworks.values())
        found = [fw.tasks[task_id] for fw in live if task_id in fw.tasks]
        if not found and fid:
            # `FollowFile` and file reads look a task up by (framework, task): do not scan.
            done = self._completed.get((fid, task_id))
            found = [done] if done is not None else []
        elif not found:
            latest: dict[FrameworkId, rec.TaskRecord] = {}
            for (_, t), r in self._completed.items():
                if t == task_id:
                    latest[r.framework_id] = r
            found = list(latest.values())
        if not found:
            where = f" in framework {fid}" if fid else ""
            raise UnknownTaskError(f"task {task_id!r} is not known{where}")
        if len(found) > 1:
            owners = ", ".join(sorted(r.framework_id for r in found))
            raise ValidationError(
                "framework_id",
                f"task id {task_id!r} is used by several frameworks ({owners}): name one",
            )
        return found[0]
