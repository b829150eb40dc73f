"""Text and plot reports of simulation results, several allocators side by side."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesoslite.sim.metrics import GroupStats, SimResult

PLOT_HINT = "--plot needs matplotlib: pip install 'mesoslite[plot]' (or pip install matplotlib)"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _groups(title: str, results: Sequence[SimResult], pick: str) -> list[str]:
    header = ["", "role"] if pick == "frameworks" else [""]
    for r in results:
        header += [f"{r.allocator}:launched", "finished", "share", "wait p50", "p99"]
    rows = [[title] + header[1:]]
    names: list[tuple[str, str]] = []
    for r in results:
        for g in getattr(r, pick):
            if (g.name, g.role) not in names:
                names.append((g.name, g.role))
    for name, role in names:
        row = [name, role] if pick == "frameworks" else [name]
        for r in results:
            found: GroupStats | None = next(
                (x for x in getattr(r, pick) if x.name == name), None
            )
            if found is None:
                row += ["-"] * 5
            else:
                row += [
                    f"{found.launched}/{found.tasks}", str(found.finished),
                    f"{found.mean_share:.3f}", f"{found.wait_p50_s:.1f}s",
                    f"{found.wait_p99_s:.1f}s",
                ]
        rows.append(row)
    return _table(rows)


def _tiers(results: Sequence[SimResult]) -> list[str]:
    """Per priority tier (#16): waits and preemptions; nothing when all is one tier."""
    priorities = sorted({t.priority for r in results for t in r.tiers}, reverse=True)
    if len(priorities) < 2 and not any(t.preempted for r in results for t in r.tiers):
        return []
    header = ["TIER", "roles"]
    for r in results:
        header += [f"{r.allocator}:launched", "wait p50", "p99", "max", "preempted"]
    rows = [header]
    for p in priorities:
        roles = sorted({x for r in results for t in r.tiers if t.priority == p for x in t.roles})
        row = [str(p), ",".join(roles)]
        for r in results:
            t = next((t for t in r.tiers if t.priority == p), None)
            row += ["-"] * 5 if t is None else [
                f"{t.launched}/{t.tasks}", f"{t.wait_p50_s:.1f}s", f"{t.wait_p99_s:.1f}s",
                f"{t.wait_max_s:.1f}s", str(t.preempted),
            ]
        rows.append(row)
    return [*_table(rows), ""]


def format_text(results: Sequence[SimResult]) -> str:
    """Frameworks, roles, priority tiers and the whole run, one column group per allocator."""
    lines = _groups("FRAMEWORK", results, "frameworks")
    lines.append("")
    lines += _groups("ROLE", results, "roles")
    lines.append("")
    lines += _tiers(results)
    rows = [["RUN"] + [r.allocator for r in results]]
    resources = sorted({n for r in results for n in r.utilization})
    for n in resources:
        rows.append([f"utilization {n}"] + [f"{r.utilization.get(n, 0):.3f}" for r in results])
    rows.append(["jain index"] + [f"{r.jain_index:.3f}" for r in results])
    rows.append(["makespan"] + [f"{r.makespan_s:.1f}s" for r in results])
    rows.append(["tasks launched"] + [str(r.launched) for r in results])
    rows.append(["allocation passes"] + [str(r.passes) for r in results])
    lines += _table(rows)
    return "\n".join(lines)


def format_wall_time(results: Sequence[SimResult]) -> str:
    """The wall time each run took: kept out of `format_text`, which depends only on the
    files and the seed, so that two runs of one seed print the same report (#16)."""
    return "wall time: " + ", ".join(
        f"{r.allocator} {r.wall_s:.2f}s ({r.launches_per_s:,.0f} launches/s)" for r in results
    )


def plot(results: Sequence[SimResult], path: Path) -> None:
    """Shares by role and utilization over time, one column per allocator, into `path`.

    Raises:
        ImportError: matplotlib is not installed (`PLOT_HINT` says how to get it).
    """
    # Imported by name: matplotlib is an optional extra (`[plot]`), typed as Any here.
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    fig, axes = plt.subplots(2, len(results), figsize=(5 * len(results), 7), squeeze=False)
    for col, r in enumerate(results):
        top, bottom = axes[0][col], axes[1][col]
        roles = sorted({k for _, s in r.role_shares for k in s})
        times = [t for t, _ in r.role_shares]
        for role in roles:
            top.plot(times, [s.get(role, 0.0) for _, s in r.role_shares], label=role)
        top.set_title(f"{r.allocator}: dominant share by role")
        top.set_ylim(0, 1)
        top.legend(fontsize="small")
        names = sorted({k for _, u in r.utilization_series for k in u})
        utimes = [t for t, _ in r.utilization_series]
        for n in names:
            bottom.plot(utimes, [u.get(n, 0.0) for _, u in r.utilization_series], label=n)
        bottom.set_title(f"{r.allocator}: utilization")
        bottom.set_ylim(0, 1.05)
        bottom.set_xlabel("virtual time (s)")
        bottom.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
