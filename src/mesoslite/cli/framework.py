"""`mesoslite framework list|explain`: the frameworks subscribed to the master, and why one is
or is not getting offers."""

from __future__ import annotations

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked
from mesoslite.cli._watch import watchable

FRAMEWORK_HEADERS = (
    "ID", "NAME", "ROLE", "STATUS", "TASKS", "ALLOCATED", "OFFERED", "SUPPRESSED",
)


@click.group()
def framework() -> None:
    """Inspect frameworks."""


@framework.command("list")
@watchable
@click.option("--all", "include_completed", is_flag=True, help="include completed frameworks")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array (keys: see below)")
@click.pass_obj
def list_frameworks(cfg: CliConfig, include_completed: bool, as_json: bool) -> None:
    """List frameworks: connected and disconnected ones, and with --all completed ones.

    \b
    JSON keys: id, name, role (its roles, comma-separated), user, principal, hostname,
    status, registered_at, failover_timeout_s, task_count, allocated, offered, suppressed,
    labels, roles (a list).
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


@framework.command("explain")
@click.argument("framework_id", callback=checked("framework id"))
@click.option("--json", "as_json", is_flag=True, help="print a JSON object (keys: see below)")
@click.pass_obj
def explain(cfg: CliConfig, framework_id: str, as_json: bool) -> None:
    """Say why FRAMEWORK_ID is or is not getting offers: its dominant share, role and
    weight, suppression, filters, outstanding demands, its role's quota, and what the
    allocator said about it in its last pass.

    \b
    JSON keys: framework_id, status, role, role_weight, dominant_share, allocated,
    offered, suppressed, filters ({agent id: seconds left}), demands, quota, last_reason,
    roles (per role: role, weight, dominant_share, allocated, offered, suppressed,
    filters, quota, last_reason). A framework in several roles is shown per role too;
    role is then its roles joined by commas.
    """
    import json

    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.cli._ids import resolve_framework

    with BlockingOperatorClient(cfg.master) as client:
        e = client.explain_framework(resolve_framework(client, framework_id))
    if as_json:
        click.echo(json.dumps(e.to_json(), indent=2))
        return
    filters = ", ".join(f"{a} ({s:.1f}s left)" for a, s in e.filters.items()) or "none"
    lines = [
        f"framework   {e.framework_id} ({e.status})",
        f"role        {e.role} (weight {out.format_number(e.role_weight)})",
        f"share       {e.dominant_share:.3f} dominant",
        f"allocated   {out.human_resources(e.allocated) or 'nothing'}",
        f"offered     {out.human_resources(e.offered) or 'nothing'}",
        f"suppressed  {out.yes_no(e.suppressed)}",
        f"filters     {filters}",
        f"demands     {'; '.join(e.demands) if e.demands else 'none (whole-agent offers)'}",
        f"quota       {e.quota or 'none'}",
        f"last pass   {e.last_reason}",
    ]
    if len(e.roles) > 1:
        # Several roles: the allocator treats it as a client in each; say each one's part.
        for r in e.roles:
            role_filters = (
                ", ".join(f"{a} ({s:.1f}s left)" for a, s in r.filters.items()) or "none"
            )
            lines += [
                f"in role {r.role} (weight {out.format_number(r.weight)}):",
                f"  share       {r.dominant_share:.3f} dominant",
                f"  allocated   {out.human_resources(r.allocated) or 'nothing'}",
                f"  offered     {out.human_resources(r.offered) or 'nothing'}",
                f"  suppressed  {out.yes_no(r.suppressed)}",
                f"  filters     {role_filters}",
                f"  quota       {r.quota or 'none'}",
                f"  last pass   {r.last_reason}",
            ]
    click.echo("\n".join(lines))
