"""`--master` and `--json` are accepted after the subcommand too, for every command, and
`mesoslite completion SHELL` prints click's script (issue 17)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from mesoslite.cli import _NO_MASTER, cli

# Nothing listens on ports 1 and 2: a command that got as far as calling exits 69 and names
# the address it tried, which tells which `--master` won.
DOWN_1 = "127.0.0.1:1"
DOWN_2 = "127.0.0.1:2"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env_free = {"PATH": "/usr/bin:/bin"}  # no $MESOSLITE_MASTER from the caller
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env_free,
    )


def test_master_after_the_subcommand_is_used() -> None:
    out = run_cli("agent", "list", "--master", DOWN_1)
    assert out.returncode == 69, out.stderr
    assert f"cannot reach the master at {DOWN_1}" in out.stderr
    assert "No such option" not in out.stderr


def test_master_after_the_subcommand_wins_over_the_one_before() -> None:
    out = run_cli("--master", DOWN_2, "task", "list", "--master", DOWN_1)
    assert out.returncode == 69, out.stderr
    assert DOWN_1 in out.stderr and DOWN_2 not in out.stderr


def test_master_before_the_subcommand_still_works() -> None:
    out = run_cli("--master", DOWN_2, "framework", "list")
    assert out.returncode == 69 and DOWN_2 in out.stderr, out.stderr


def test_json_before_the_subcommand_of_a_command_without_json_is_a_usage_error() -> None:
    out = run_cli("--json", "--master", DOWN_1, "agent", "drain", "ag-1")
    assert out.returncode == 2, out.stderr
    assert "--json: 'mesoslite agent drain' has no JSON output" in out.stderr


def _leaves(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        if name in _NO_MASTER:
            continue
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(f"{name} {n}", c) for n, c in _leaves(command, ctx)]
        else:
            found.append((name, command))
    return found


def test_every_command_that_talks_to_a_master_accepts_master_after_it() -> None:
    ctx = click.Context(cli)
    leaves = _leaves(cli, ctx)
    assert len(leaves) > 15
    missing = [n for n, c in leaves if not any("--master" in p.opts for p in c.params)]
    assert not missing


def test_a_command_added_to_the_group_later_gets_the_global_options() -> None:
    seen: list[tuple[str, bool]] = []

    @click.command("probe-later")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def probe(cfg: object, as_json: bool) -> None:
        seen.append((cfg.master, as_json))  # type: ignore[attr-defined]

    cli.add_command(probe)
    try:
        with pytest.raises(SystemExit) as done:
            cli.main(["--json", "probe-later", "--master", DOWN_1], standalone_mode=True)
        assert done.value.code == 0
    finally:
        del cli.commands["probe-later"]
    assert seen == [(DOWN_1, True)]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_shells_script(shell: str) -> None:
    out = run_cli("completion", shell)
    assert out.returncode == 0, out.stderr
    assert f"_MESOSLITE_COMPLETE={shell}_complete" in out.stdout


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    out = run_cli("completion", "tcsh")
    assert out.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in out.stderr
