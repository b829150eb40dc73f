"""`mesoslite framework list`: the frameworks subscribed to the master."""

from __future__ import annotations

import click

from mesoslite.cli import CliConfig

FRAMEWORK_HEADERS = (
    "ID", "NAME", "ROLE", "STATUS", "TASKS", "ALLOCATED", "OFFERED", "SUPPRESSED",
)


@click.group()
def framework() -> None:
    """Inspect frameworks."""


@framework.command("list")
@click.option("--all", "include_completed", is_flag=True, help="include completed frameworks")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array (keys: see below)")
@click.pass_obj
def list_frameworks(cfg: CliConfig, include_completed: bool, as_json: bool) -> None:
    """List frameworks: connected and disconnected ones, and with --all completed ones.

    \b
    JSON keys: id, name, role, user, principal, hostname, status, registered_at,
    failover_timeout_s, task_count, allocated, offered, suppressed, labels.
    Resources are objects such as {"cpus": 2.0, "mem": 1024.0}, mem and disk in MB.
    """
    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        frameworks = client.frameworks(include_completed=include_completed)
    if as_json:
        click.echo(out.to_json(frameworks))
        return
    rows = [
        (
            f.id,
            f.name or out.NONE,
            f.role,
            f.status,
            f.task_count,
            out.human_resources(f.allocated),
            out.human_resources(f.offered),
            out.yes_no(f.suppressed),
        )
        for f in frameworks
    ]
    click.echo(out.table(FRAMEWORK_HEADERS, rows))
