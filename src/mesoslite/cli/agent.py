"""`mesoslite agent list`: the agents the master knows, with their resources and tasks."""

from __future__ import annotations

import click

from mesoslite.cli import CliConfig

AGENT_HEADERS = (
    "ID", "HOSTNAME", "STATUS", "CPUS", "MEM", "DISK", "TASKS", "PENDING", "ATTRIBUTES",
)


@click.group()
def agent() -> None:
    """Inspect agents."""


@agent.command("list")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array (keys: see below)")
@click.pass_obj
def list_agents(cfg: CliConfig, as_json: bool) -> None:
    """List the agents registered with the master.

    CPUS, MEM and DISK are used/total; PENDING counts status updates that frameworks have
    not acknowledged yet.

    \b
    JSON keys: id, hostname, status, address, version, registered_at, total, used,
    offered, task_count, pending_updates, attributes. Resources are objects such as
    {"cpus": 2.0, "mem": 1024.0, "ports": "[31000-32000]"}, mem and disk in MB.
    """
    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        agents = client.agents()
    if as_json:
        click.echo(out.to_json(agents))
        return
    rows = [
        (
            a.id,
            a.hostname,
            a.status,
            out.used_of_total(a.used, a.total, "cpus"),
            out.used_of_total(a.used, a.total, "mem"),
            out.used_of_total(a.used, a.total, "disk"),
            a.task_count,
            a.pending_updates,
            out.format_labels(a.attributes),
        )
        for a in agents
    ]
    click.echo(out.table(AGENT_HEADERS, rows))
