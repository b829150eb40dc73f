"""`mesoslite credentials`: make the entries of a master's `--credentials` file (#14)."""

from __future__ import annotations

import sys

import click


@click.group()
def credentials() -> None:
    """Manage the principals a master accepts (its --credentials file)."""


@credentials.command("hash")
@click.argument("principal")
def hash_command(principal: str) -> None:
    """Read PRINCIPAL's secret from stdin; print the line for the --credentials file.

    The secret is the first line of stdin (e.g. `mesoslite credentials hash alice <
    alice.secret >> credentials.yaml`); the line printed holds a salted scrypt hash, never
    the secret.
    """
    from mesoslite.security.credentials import MAX_SECRET_BYTES, check_principal, hash_secret

    bad = check_principal(principal)
    if bad:
        raise click.BadParameter(bad, param_hint="PRINCIPAL")
    if sys.stdin.isatty():
        click.echo("secret (then Enter): ", err=True, nl=False)
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise click.UsageError("no secret on stdin (its first line is empty)")
    if len(secret.encode()) > MAX_SECRET_BYTES:
        raise click.UsageError(f"the secret is longer than {MAX_SECRET_BYTES} bytes")
    click.echo(f"{principal}: {hash_secret(secret)}")
