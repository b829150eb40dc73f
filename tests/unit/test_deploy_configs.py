"""The example configs and systemd units in deploy/ stay valid as the options change."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from mesoslite.agent.config import AgentConfig
from mesoslite.config import flag_name, load_config
from mesoslite.master.config import MasterConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DAEMONS: list[tuple[str, type[Any]]] = [("master", MasterConfig), ("agent", AgentConfig)]


@pytest.mark.parametrize(("daemon", "cls"), DAEMONS)
def test_example_config_loads_with_the_daemons_config_class(daemon: str, cls: type[Any]) -> None:
    path = DEPLOY / "config" / f"{daemon}.yaml"
    config, sources = load_config(cls, daemon, flags={}, config_path=str(path), environ={})
    assert isinstance(config, cls)
    assert any(source.startswith(f"{daemon}.yaml: ") for source in sources.values())


@pytest.mark.parametrize(("daemon", "cls"), DAEMONS)
def test_example_config_mentions_every_option(daemon: str, cls: type[Any]) -> None:
    text = (DEPLOY / "config" / f"{daemon}.yaml").read_text()
    # Set (`name: value`) or shown commented out (`# name: value`).
    named = set(re.findall(r"^(?:# )?([a-z_]+):", text, re.M))
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in named]
    assert not missing, f"deploy/config/{daemon}.yaml does not mention {missing}"


@pytest.mark.parametrize(("daemon", "cls"), DAEMONS)
def test_systemd_unit_runs_the_daemon_with_real_flags(daemon: str, cls: type[Any]) -> None:
    unit = (DEPLOY / "systemd" / f"mesoslite-{daemon}.service").read_text()
    (line,) = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0].endswith(f"/mesoslite-{daemon}")
    known = {flag_name(f.name) for f in dataclasses.fields(cls)} | {"--config"}
    assert [a for a in argv[1:] if a.startswith("--") and a not in known] == []
    assert argv[argv.index("--config") + 1] == f"/etc/mesoslite/{daemon}.yaml"
    config, _ = load_config(
        cls, daemon, flags={}, config_path=str(DEPLOY / "config" / f"{daemon}.yaml"), environ={}
    )
    state_dir = re.search(r"^StateDirectory=(\S+)$", unit, re.M)
    assert state_dir is not None
    assert config.work_dir == f"/var/lib/{state_dir.group(1)}"
