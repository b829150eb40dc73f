"""`mesoslite simulate`: compare allocators on a cluster and workload in virtual time."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--cluster", "cluster_path", required=True, type=click.Path(dir_okay=False),
    help="cluster YAML: agents (count, resources, attributes), roles (weight, quota, "
    "priority, preemptible) and preemption_grace_s",
)
@click.option(
    "--workload", "workload_path", required=True, type=click.Path(dir_okay=False),
    help="workload YAML: frameworks, their role, tasks, arrival, demands, locality",
)
@click.option(
    "--allocator", "allocators", default="drf", show_default=True,
    help="allocator name(s), comma-separated (drf,fair,ssf), or package.module:Class",
)
@click.option(
    "--allocator-options", default="",
    help="options for every allocator given, KEY=VALUE[,KEY=VALUE] (resource=mem for fair)",
)
@click.option("--seed", default=0, show_default=True, help="tie-break seed")
@click.option(
    "--sample-interval-s", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
    help="virtual seconds between share samples",
)
@click.option("--json", "as_json", is_flag=True, help="print the results as a JSON array")
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False),
    help="draw shares and utilization over time into this PNG (needs matplotlib)",
)
def simulate(
    cluster_path: str,
    workload_path: str,
    allocators: str,
    allocator_options: str,
    seed: int,
    sample_interval_s: float,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """Run the real allocator and master bookkeeping on a workload, with no daemons.

    Reports per framework and role: tasks launched and finished, mean dominant share, task
    wait p50/p99; for the run: utilization of each resource, Jain's fairness index over the
    frameworks' weighted shares, makespan. With several allocators, side by side. The same
    files and --seed print the same report (the wall time goes to stderr). The file
    formats are in docs/simulator.md; examples in examples/sim/.

    \b
    JSON: an array, one object per allocator, with keys allocator, frameworks, roles
    (each: name, role, tasks, launched, finished, wait_p50_s, wait_p99_s, mean_share),
    utilization, jain_index, makespan_s, launched, finished, allocation_passes, wall_s,
    launches_per_wall_s, shares and role_shares ([{t, shares: {name: share}}]), and tiers
    (each: priority, roles, tasks, launched, wait_p50_s, wait_p99_s, wait_max_s, preempted).
    """
    import json

    from mesoslite.allocator.loader import parse_allocator_options
    from mesoslite.cli._progress import run_with_progress
    from mesoslite.sim.engine import Simulation
    from mesoslite.sim.report import format_text, format_wall_time, plot
    from mesoslite.sim.trace import load_cluster, load_workload

    names = [a.strip() for a in allocators.split(",") if a.strip()]
    if not names:
        raise click.UsageError("--allocator: name at least one allocator")
    if plot_path:
        _check_matplotlib()
    cluster = load_cluster(cluster_path)
    workload = load_workload(workload_path)
    options = parse_allocator_options(allocator_options, "--allocator-options")
    results = [
        run_with_progress(
            Simulation(cluster, workload, name, seed=seed, sample_interval_s=sample_interval_s,
                       allocator_options=options),
            f"simulate {name} [{i}/{len(names)}]", workload,
        )
        for i, name in enumerate(names, 1)
    ]
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        click.echo(format_text(results))
        click.echo(format_wall_time(results), err=True)
    if plot_path:
        plot(results, Path(plot_path))
        if not as_json:
            click.echo(f"plot written to {plot_path}")


def _check_matplotlib() -> None:
    """--plot needs matplotlib: say so before the run, not after it."""
    import importlib.util

    from mesoslite.errors import ConfigError
    from mesoslite.sim.report import PLOT_HINT

    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(PLOT_HINT)
