"""`CheckpointStore`: the old checkpoint layout, read once to migrate it to the agent's
checkpoint log (`checkpoint_log.py`, which replaced it: issue 15); and the JSON forms of task
specs and updates both use.

Layout, one directory per task: `WORK/meta/<framework_id>/<task_id>/`
- `task.json`: the task's spec, the pid of its wrapper process (also its process group id),
  the process's start time in clock ticks since boot (so a reused pid is never mistaken for
  the task) and the task's cgroups. Written once the process runs.
- `updates`: an append-only log, one JSON object a line: `{"u": status}` for each update
  the agent made (before it is sent) and `{"a": uuid_hex}` for each acknowledgement. On
  recovery the unacknowledged updates are the ones after the last acknowledged one, in order.
- `killing`: present once the agent started killing the task, so that a task that ends
  after a restart is still reported TASK_KILLED.
- `exit_status`: written by the task's wrapper (`launcher.py`) when the task ends, so its exit
  code is known even if the agent was down: the code, or -signal, and a newline.

The directory goes when the task's terminal update is acknowledged (the sandbox stays).
Writes are plain appends without fsync: they survive the agent being killed (the page cache
keeps them), not the host losing power. A torn last line (the agent killed mid-write) is
skipped on recovery.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from mesoslite.agent.recovered import RecoveredTask as RecoveredTask  # re-exported
from mesoslite.agent.sandbox import SAFE_NAME_RE
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.model import (
    CommandSpec,
    HealthCheckSpec,
    StatusSource,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources, parse_resources

logger = logging.getLogger(__name__)

META_DIR = "meta"
TASK_FILE = "task.json"
UPDATES_FILE = "updates"
EXIT_STATUS_FILE = "exit_status"
KILLING_FILE = "killing"


class CheckpointStore:
    """Reads and writes task checkpoints under `work_dir/meta`. See the module docstring."""

    def __init__(self, work_dir: Path) -> None:
        self.root = work_dir / META_DIR

    def task_dir(self, framework_id: str, task_id: str) -> Path | None:
        if not SAFE_NAME_RE.match(framework_id) or not SAFE_NAME_RE.match(task_id):
            return None
        return self.root / framework_id / task_id

    # ------------------------------------------------------------------ writing

    def prepare_launch(self, framework_id: str, task_id: str) -> Path | None:
        """Make the task's directory and return where its wrapper writes the exit status."""
        d = self.task_dir(framework_id, task_id)
        if d is None:
            return None
        d.mkdir(parents=True, exist_ok=True)
        exit_file = d / EXIT_STATUS_FILE
        exit_file.unlink(missing_ok=True)
        (d / KILLING_FILE).unlink(missing_ok=True)
        return exit_file

    def save_task(
        self, spec: TaskSpec, framework_id: str, pid: int, start_ticks: int, cgroups: list[str]
    ) -> None:
        d = self.task_dir(framework_id, spec.task_id)
        if d is None:
            return
        doc = {
            "spec": spec_to_json(spec),
            "pid": pid,
            "start_ticks": start_ticks,
            "cgroups": cgroups,
        }
        tmp = d / (TASK_FILE + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(d / TASK_FILE)

    def mark_killing(self, framework_id: str, task_id: str) -> None:
        d = self.task_dir(framework_id, task_id)
        if d is not None:
            try:
                (d / KILLING_FILE).touch()
            except OSError:
                pass

    def append_update(self, status: TaskStatus) -> None:
        self._append(status.framework_id, status.task_id, {"u": status_to_json(status)})

    def append_ack(self, framework_id: str, task_id: str, update_uuid: bytes) -> None:
        self._append(framework_id, task_id, {"a": update_uuid.hex()})

    def remove(self, framework_id: str, task_id: str) -> None:
        d = self.task_dir(framework_id, task_id)
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)
            try:
                d.parent.rmdir()  # the framework's directory, once empty
            except OSError:
                pass

    def _append(self, framework_id: str, task_id: str, doc: dict[str, Any]) -> None:
        d = self.task_dir(framework_id, task_id)
        if d is None:
            return  # ids that cannot name a directory: the update lives in memory only
        line = json.dumps(doc, separators=(",", ":")) + "\n"
        try:
            with open(d / UPDATES_FILE, "a") as f:
                f.write(line)
        except FileNotFoundError:
            d.mkdir(parents=True, exist_ok=True)
            with open(d / UPDATES_FILE, "a") as f:
                f.write(line)

    # ------------------------------------------------------------------ reading

    def recover(self) -> list[RecoveredTask]:
        """Every task checkpointed, in no particular order; unreadable parts are skipped."""
        out: list[RecoveredTask] = []
        if not self.root.is_dir():
            return out
        for fdir in sorted(self.root.iterdir()):
            if not fdir.is_dir():
                continue
            for tdir in sorted(fdir.iterdir()):
                if tdir.is_dir():
                    out.append(self._read(FrameworkId(fdir.name), TaskId(tdir.name), tdir))
        return out

    def _read(self, framework_id: FrameworkId, task_id: TaskId, d: Path) -> RecoveredTask:
        task = RecoveredTask(framework_id, task_id)
        try:
            doc = json.loads((d / TASK_FILE).read_text())
            task.spec = spec_from_json(doc["spec"])
            task.pid = int(doc["pid"])
            task.start_ticks = int(doc["start_ticks"])
            task.cgroups = [str(p) for p in doc.get("cgroups", [])]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as e:
            logger.warning("unreadable task checkpoint path=%s: %s", d / TASK_FILE, e)
        acked = 0
        try:
            lines = (d / UPDATES_FILE).read_text().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
                if "u" in entry:
                    task.updates.append(status_from_json(entry["u"]))
                elif "a" in entry:
                    uuid = bytes.fromhex(entry["a"])
                    task.acked.append(uuid)
                    for i, st in enumerate(task.updates):
                        if st.uuid == uuid:
                            acked = max(acked, i + 1)
            except (ValueError, KeyError, TypeError):
                logger.warning("skipped a torn checkpoint line path=%s", d / UPDATES_FILE)
        task.pending = task.updates[acked:]
        try:
            task.exit_status = int((d / EXIT_STATUS_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        task.kill_requested = (d / KILLING_FILE).exists()
        return task


def read_exit_status(exit_file: Path | None) -> int | None:
    """The code the task's wrapper wrote (or -signal), None if it wrote none."""
    if exit_file is None:
        return None
    try:
        return int(exit_file.read_text().strip())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------- JSON forms


def spec_to_json(spec: TaskSpec) -> dict[str, Any]:
    cmd = spec.command
    return {
        "task_id": spec.task_id,
        "name": spec.name,
        "agent_id": spec.agent_id,
        "resources": str(spec.resources),
        "kill_grace_period_s": spec.kill_grace_period_s,
        "labels": dict(spec.labels),
        "command": {
            "shell": cmd.shell,
            "value": cmd.value,
            "argv": list(cmd.argv),
            "environment": dict(cmd.environment),
            "user": cmd.user,
        },
        "extra": spec_extra_to_json(spec),
    }


def spec_from_json(doc: dict[str, Any]) -> TaskSpec:
    c = doc["command"]
    res = doc["resources"]
    return TaskSpec(
        task_id=TaskId(doc["task_id"]),
        command=CommandSpec(
            shell=bool(c["shell"]),
            value=c["value"],
            argv=tuple(c["argv"]),
            environment=dict(c["environment"]),
            user=c["user"],
        ),
        resources=parse_resources(res) if res else Resources.empty(),
        name=doc.get("name", ""),
        agent_id=AgentId(doc.get("agent_id", "")),
        kill_grace_period_s=float(doc.get("kill_grace_period_s", 0.0)),
        labels=dict(doc.get("labels", {})),
        **spec_extra_from_json(doc.get("extra", {})),
    )


def spec_extra_to_json(spec: TaskSpec) -> dict[str, Any]:
    """Fields added to `TaskSpec` after the basic ones: the health check, the allocation role."""
    hc = spec.health_check
    out: dict[str, Any] = {} if hc is None else {"health_check": dataclasses.asdict(hc)}
    if spec.allocation_role:
        out["allocation_role"] = spec.allocation_role
    return out


def spec_extra_from_json(doc: dict[str, Any]) -> dict[str, Any]:
    hc = doc.get("health_check")
    out: dict[str, Any] = {} if hc is None else {"health_check": HealthCheckSpec(**hc)}
    if doc.get("allocation_role"):
        out["allocation_role"] = str(doc["allocation_role"])
    return out


def status_to_json(st: TaskStatus) -> dict[str, Any]:
    return {
        "task_id": st.task_id,
        "framework_id": st.framework_id,
        "agent_id": st.agent_id,
        "state": int(st.state),
        "message": st.message,
        "reason": st.reason,
        "source": int(st.source),
        "uuid": st.uuid.hex(),
        "timestamp": st.timestamp,
        "exit_code": st.exit_code,
        "healthy": st.healthy,
    }


def status_from_json(doc: dict[str, Any]) -> TaskStatus:
    return TaskStatus(
        task_id=TaskId(doc["task_id"]),
        framework_id=FrameworkId(doc["framework_id"]),
        agent_id=AgentId(doc["agent_id"]),
        state=TaskState(doc["state"]),
        message=doc["message"],
        reason=doc["reason"],
        source=StatusSource(doc["source"]),
        uuid=bytes.fromhex(doc["uuid"]),
        timestamp=float(doc["timestamp"]),
        exit_code=doc["exit_code"],
        healthy=doc.get("healthy"),
    )
