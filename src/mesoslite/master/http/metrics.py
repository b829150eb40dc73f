"""`/metrics`: the master's Prometheus metrics, in a `CollectorRegistry` of its own.

Most values are read from the master's state when scraped (`StateCollector`: no hooks, no
cost between scrapes). What state does not keep is fed by small hooks (`MetricsObserver`,
which `MasterActor.observer` calls): ended tasks by terminal state, how long allocation
passes and registry writes take.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.master.events import SendToFramework, UpdateEvent
from mesoslite.master.http.state_json import StateSource
from mesoslite.model import REASON_RECONCILIATION, TaskStatus

PREFIX = "mesoslite_master_"
# Agents' update uuids remembered, so that a resent update is not counted twice.
SEEN_UUIDS = 50_000
PASS_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class MetricsObserver:
    """The hooks' side: counters and histograms fed from `MasterActor` as things happen."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.terminal = Counter(
            PREFIX + "tasks_terminal", "tasks that reached a terminal state, by state",
            ["state"], registry=registry,
        )
        self.allocation = Histogram(
            PREFIX + "allocation_pass_seconds", "time an allocation pass took (CPU on the loop)",
            buckets=PASS_BUCKETS, registry=registry,
        )
        self.registry_write = Histogram(
            PREFIX + "registry_write_seconds", "time a (group) registry write took",
            buckets=WRITE_BUCKETS, registry=registry,
        )
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        # Bumped by every effect: the live view (`events.py`) sends state only when it moved.
        self.changes = 0

    def effect(self, effect: Any) -> None:
        self.changes += 1
        if isinstance(effect, SendToFramework) and isinstance(effect.event, UpdateEvent):
            for status in effect.event.statuses:
                if status.state.terminal and self._first(status):
                    self.terminal.labels(status.state.label).inc()

    def _first(self, status: TaskStatus) -> bool:
        """Whether this update is news: not a resend, not a reconciliation answer."""
        if not status.uuid:
            return status.reason != REASON_RECONCILIATION
        if status.uuid in self._seen:
            return False
        self._seen[status.uuid] = None
        if len(self._seen) > SEEN_UUIDS:
            self._seen.popitem(last=False)
        return True

    def allocation_pass(self, seconds: float) -> None:
        self.allocation.observe(seconds)

    def registry_written(self, seconds: float) -> None:
        self.registry_write.observe(seconds)


def _gauge(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> Any:
    g = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for key, value in sorted(values.items()):
        g.add_metric(list(key), value)
    return g


class StateCollector(Collector):
    """Gauges read from the master's state at scrape time (on the master's loop)."""

    def __init__(self, src: StateSource) -> None:
        self.src = src

    def collect(self) -> Iterator[Any]:
        lead = self.src.leadership
        yield _gauge("elected", "1 while this master leads", [], {(): float(lead.leading)})
        if not lead.leading:
            return
        state = self.src.actor.state
        agents = Tally(a.status for a in state.agents.values())
        for status in ("active", "disconnected", "unreachable"):
            agents.setdefault(status, 0)
        yield _gauge("agents", "agents by state", ["state"], {(k,): v for k, v in agents.items()})
        fws = Tally(f.status for f in state.frameworks.values())
        fws.setdefault("connected", 0)
        yield _gauge("frameworks", "frameworks by state", ["state"],
                     {(k,): v for k, v in fws.items()})
        yield _gauge("offers_outstanding", "offers made and not yet answered", [],
                     {(): float(len(state.offers))})
        tasks = Tally(t.status.state for f in state.frameworks.values() for t in f.tasks.values())
        yield _gauge("tasks", "tasks not ended, by state", ["state"],
                     {(k.label,): v for k, v in tasks.items()})
        yield _gauge("status_updates_pending", "updates agents hold unacknowledged", [],
                     {(): float(sum(a.pending_updates for a in state.agents.values()))})
        yield from self._resources(state)
        yield from self._jobs()

    def _resources(self, state: Any) -> Iterator[Any]:
        total: dict[tuple[str, ...], float] = {}
        used: dict[tuple[str, ...], float] = {}
        for a in state.agents.values():
            if a.status != "active":
                continue
            for name in a.info.resources.scalars:
                total[(name,)] = total.get((name,), 0.0) + a.info.resources.scalar(name)
        for r in state.role_statuses():
            for name in r.allocated.scalars:
                used[(r.role, name)] = r.allocated.scalar(name)
        yield _gauge("resources_total", "scalar resources of active agents", ["resource"], total)
        yield _gauge("resources_used", "scalar resources allocated, by role", ["role", "resource"],
                     used)

    def _jobs(self) -> Iterator[Any]:
        runner = self.src.jobs.jobs if self.src.jobs is not None else None
        if runner is None:
            return
        jobs = runner.list()
        by_state = Tally(j.state.value for j in jobs)
        yield _gauge("jobs", "jobs by state", ["state"], {(k,): v for k, v in by_state.items()})
        started = missed = 0
        for j in jobs:
            if j.type.value != "cron":
                continue
            done = [r for r in j.runs if r.state.value == "SKIPPED"]
            missed += len(done) + j.older_runs.skipped
            started += len(j.runs) - len(done) + j.older_runs.runs - j.older_runs.skipped
        yield _gauge("cron_runs", "runs of the cron jobs kept: started, or missed (skipped)",
                     ["outcome"], {("started",): started, ("missed",): missed})


def new_metrics(src: StateSource) -> tuple[CollectorRegistry, MetricsObserver]:
    """A registry of this master's own (never the process-wide default one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(src))
    return registry, MetricsObserver(registry)
