"""`mesoslite agent list|drain|gone`: the agents the master knows; taking one out of service."""

from __future__ import annotations

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked
from mesoslite.cli._watch import watchable

AGENT_HEADERS = (
    "ID", "HOSTNAME", "STATUS", "CPUS", "MEM", "DISK", "TASKS", "PENDING", "ATTRIBUTES",
)


@click.group()
def agent() -> None:
    """Inspect agents, drain them, mark them gone."""


@agent.command("list")
@watchable
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


@agent.command("drain")
@click.argument("agent_id", callback=checked("agent id"))
@click.pass_obj
def drain(cfg: CliConfig, agent_id: str) -> None:
    """Take AGENT_ID out of service: no more offers of it, its tasks killed.

    Each task is killed with its kill policy (SIGTERM, its grace period, SIGKILL) and
    reported TASK_KILLED. The agent stays registered; `agent list` shows it draining, then
    drained once it runs nothing.
    """
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli._ids import resolve_agent

    with BlockingOperatorClient(cfg.master) as client:
        agent_id = resolve_agent(client, agent_id)
        client.drain_agent(agent_id)
    click.echo(f"draining agent {agent_id}")


@agent.command("gone")
@click.argument("agent_id", callback=checked("agent id"))
@click.pass_obj
def gone(cfg: CliConfig, agent_id: str) -> None:
    """Mark AGENT_ID gone for good (e.g. its host is destroyed).

    Its tasks are reported TASK_GONE at once, it leaves the registry, and it may not
    register again with this id. If it is still connected, its tasks are killed and its
    stream closed.
    """
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli._ids import resolve_agent

    with BlockingOperatorClient(cfg.master) as client:
        agent_id = resolve_agent(client, agent_id)
        client.mark_agent_gone(agent_id)
    click.echo(f"agent {agent_id} marked gone")
