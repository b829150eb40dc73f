"""Taking back what the last agent in this work dir left: tasks, processes and updates.

Design:
- `recover` gets every task checkpointed (`checkpoint.py` reads them): its unacknowledged
  updates go back into the update streams in order, uuids unchanged; a terminal task whose
  updates were all acknowledged is forgotten; one whose process was never recorded is
  TASK_LOST; for the others the shell is asked to watch the process again (`AdoptProcess`).
- `adopted` takes the answer: a live process is RUNNING again (killed at once with
  `recover="cleanup"`, or if the last agent had started killing it); one that ended while
  the agent was down is reported with the exit code its wrapper wrote, if it wrote one.
- Pure, like `AgentState`: it changes the `TaskBook` and returns effects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mesoslite.agent import effects as fx
from mesoslite.agent.effects import Effect, TaskKey
from mesoslite.agent.outcome import describe_exit, exit_outcome
from mesoslite.agent.recovered import RecoveredTask
from mesoslite.agent.task_book import AgentTask, TaskBook, placeholder_spec
from mesoslite.model import REASON_AGENT_RESTARTED, REASON_TASK_KILLED, TaskState

logger = logging.getLogger(__name__)


def recover(book: TaskBook, found: Sequence[RecoveredTask], now: float) -> list[Effect]:
    """Take back the checkpointed tasks and updates (see the module docstring)."""
    out: list[Effect] = []
    for r in found:
        for st in r.pending:
            book.updates.restore(st, now)
        out += _recover_task(book, r, now)
    return out


def _recover_task(book: TaskBook, r: RecoveredTask, now: float) -> list[Effect]:
    key = (r.framework_id, r.task_id)
    spec = r.spec or placeholder_spec(r.task_id)
    last = r.last_state
    if last is not None and last.terminal:
        if r.pending:
            book.tasks[key] = AgentTask(r.framework_id, spec, last)
            return []
        return [fx.RemoveCheckpoint(key)]
    task = AgentTask(r.framework_id, spec, TaskState.STAGING)
    if book.free.contains(spec.resources):
        book.free = book.free - spec.resources
    else:
        logger.warning(
            "recovered task does not fit the agent's resources task_id=%s: %s",
            r.task_id,
            "; ".join(book.free.shortfall(spec.resources)),
        )
        task.counted = False
    book.tasks[key] = task
    if r.spec is None:
        message = "the agent restarted before the task's process was recorded"
        return book.finish(task, TaskState.LOST, REASON_AGENT_RESTARTED, message, now)
    book.adopting[key] = r
    return [fx.AdoptProcess(key, r.pid, r.start_ticks, tuple(r.cgroups))]


def adopted(
    book: TaskBook, key: TaskKey, alive: bool, exit_code: int | None, now: float
) -> list[Effect]:
    """The shell's answer to `AdoptProcess`: the process runs (`alive`), or it ended and
    its wrapper wrote `exit_code` (None: it wrote nothing)."""
    r = book.adopting.pop(key)
    task = book.tasks[key]
    if alive:
        task.has_process = True
        task.state = TaskState.RUNNING
        out: list[Effect] = []
        if r.last_state is None:
            out += book.update(task, TaskState.RUNNING, now)
        if book.recover_mode == "cleanup" or r.kill_requested:
            # Killed by a previous agent (the grace restarts) or by this cleanup.
            return out + book.kill(task, book.grace(task, 0.0), now)
        return out + book.start_health_checks(task, now)
    code = exit_code
    if r.kill_requested:
        message = "killed; " + (describe_exit(code) if code is not None else "exit status lost")
        return book.finish(task, TaskState.KILLED, REASON_TASK_KILLED, message, now, code)
    if code is None:
        message = "the task's process ended while the agent was down and left no exit status"
        return book.finish(task, TaskState.FAILED, REASON_AGENT_RESTARTED, message, now)
    state, reason, message = exit_outcome(code, killed=False)
    return book.finish(task, state, reason, f"{message} (while the agent was down)", now, code)
