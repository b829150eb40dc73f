"""`mesoslite role list|set-weight|set-quota|set-priority`: roles' weights, quota and tiers,
changed at run time."""

from __future__ import annotations

import click

from mesoslite.cli import CliConfig
from mesoslite.cli._args import checked
from mesoslite.cli._watch import watchable

ROLE_HEADERS = (
    "ROLE", "WEIGHT", "GUARANTEE", "LIMIT", "ALLOCATED", "FRAMEWORKS", "PRIORITY", "PREEMPTIBLE"
)


@click.group()
def role() -> None:
    """Inspect roles and change their weights, quota and priority tiers (kept in the
    master's registry)."""


@role.command("list")
@watchable
@click.option("--json", "as_json", is_flag=True, help="print a JSON array (keys: see below)")
@click.pass_obj
def list_roles(cfg: CliConfig, as_json: bool) -> None:
    """List every role that has frameworks, a weight, a quota or a tier.

    \b
    JSON keys: role, weight, guarantee, limit (null: none), allocated, framework_count,
    priority, preemptible.
    Resources are objects such as {"cpus": 2.0, "mem": 1024.0}, mem in MB.
    """
    from mesoslite.cli import _output as out
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        roles = client.roles()
    if as_json:
        click.echo(out.to_json(roles))
        return
    rows = [
        (
            r.role,
            out.format_number(r.weight),
            out.human_resources(r.guarantee) if r.guarantee else out.NONE,
            out.NONE if r.limit is None else out.human_resources(r.limit) or "nothing",
            out.human_resources(r.allocated),
            r.framework_count,
            r.priority,
            "yes" if r.preemptible else "no",
        )
        for r in roles
    ]
    click.echo(out.table(ROLE_HEADERS, rows))


@role.command("set-weight")
@click.argument("role_name", metavar="ROLE", callback=checked("role", "role"))
@click.argument("weight", type=float)
@click.pass_obj
def set_weight(cfg: CliConfig, role_name: str, weight: float) -> None:
    """Set ROLE's weight (default 1): a role of weight 2 gets twice the share of one of
    weight 1 under drf and fair. Takes effect at the next allocation pass."""
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(cfg.master) as client:
        client.set_role_weight(role_name, weight)
    click.echo(f"role {role_name} weight {weight:g}")


# Negative priorities (`set-priority batch -5`) are arguments, not unknown options.
@role.command("set-priority", context_settings={"ignore_unknown_options": True})
@click.argument("role_name", metavar="ROLE", callback=checked("role", "role"))
@click.argument("priority", type=int)
@click.option(
    "--preemptible/--not-preemptible", default=None,
    help="whether ROLE's tasks may be preempted for higher tiers' waiting work"
    " (default: unchanged; a new role is not preemptible)",
)
@click.pass_obj
def set_priority(
    cfg: CliConfig, role_name: str, priority: int, preemptible: bool | None
) -> None:
    """Set ROLE's priority tier (default 0, from -1000 to 1000). Higher tiers are served
    strictly first; the allocator's policy orders roles within a tier. A role without a
    tier of its own inherits its parent's. With --preemptible, ROLE's tasks may be killed
    (TASK_KILLED, reason PREEMPTED) when a higher tier's work has waited longer than the
    master's --preemption-grace-s. Takes effect at the next allocation pass."""
    from mesoslite.cli._client import BlockingOperatorClient

    if priority < -1000 or priority > 1000:
        raise click.BadParameter(
            f"must be an integer in [-1000, 1000], got {priority}", param_hint="PRIORITY"
        )
    with BlockingOperatorClient(cfg.master) as client:
        client.set_role_priority(role_name, priority, preemptible)
    extra = "" if preemptible is None else f" {'' if preemptible else 'not '}preemptible"
    click.echo(f"role {role_name} priority {priority}{extra}")


@role.command("set-quota")
@click.argument("role_name", metavar="ROLE", callback=checked("role", "role"))
@click.option("--guarantee", default="", help="resources offered to ROLE first, e.g. cpus:4")
@click.option(
    "--limit", default=None,
    help="resources ROLE may never exceed, e.g. cpus:8 (cpus:0: none; '': nothing at all)",
)
@click.option("--clear", is_flag=True, help="remove ROLE's quota")
@click.pass_obj
def set_quota(
    cfg: CliConfig, role_name: str, guarantee: str, limit: str | None, clear: bool
) -> None:
    """Set ROLE's quota: a guarantee, met before anyone's fair share, and a limit, never
    exceeded (scalars only: cpus, mem, disk, gpus). The new quota replaces the old one
    whole: a guarantee or limit not given is removed."""
    from mesoslite.allocator.quota import parse_limit
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.resources import Resources, parse_resources

    if clear and (guarantee or limit is not None):
        raise click.UsageError("--clear takes no --guarantee or --limit")
    if not clear and not guarantee and limit is None:
        raise click.UsageError("give --guarantee, --limit, or --clear")
    g = parse_resources(guarantee, "--guarantee") if guarantee else Resources.empty()
    # A zero is kept: `cpus:0` means no cpus at all, not no limit on cpus (#16).
    lim = parse_limit(limit, "--limit") if limit is not None else None
    with BlockingOperatorClient(cfg.master) as client:
        client.set_quota(role_name, g, lim)
    if clear:
        click.echo(f"role {role_name} quota removed")
    else:
        click.echo(
            f"role {role_name} quota guarantee {g or 'none'}"
            f" limit {'none' if lim is None else (lim or 'nothing')}"
        )
