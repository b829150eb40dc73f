"""`AgentConfig`: flags, env and YAML layers, and errors that name what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mesoslite.agent.config import AgentConfig, parse_attributes
from mesoslite.agent.main import main
from mesoslite.config import load_config
from mesoslite.errors import ConfigError, ValidationError


def load(flags: dict[str, object], environ: dict[str, str] | None = None) -> AgentConfig:
    config, _ = load_config(AgentConfig, "agent", flags=flags, environ=environ or {})
    return config


def test_attributes_parse_into_a_mapping() -> None:
    assert parse_attributes(" rack:r1 ; zone:z-1;") == {"rack": "r1", "zone": "z-1"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rack", "expected NAME:VALUE, got 'rack'"),
        ("rack:", "expected NAME:VALUE"),
        ("rack:r1;rack:r2", "rack is given twice"),
        ("1rack:r1", "name '1rack' is not valid"),
    ],
)
def test_bad_attributes_are_rejected_with_the_part_named(text: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_attributes(text)


def test_defaults_are_valid() -> None:
    config = load({})
    assert config.master == "127.0.0.1:5050"
    assert config.resources == ""
    assert config.kill_grace_period_s == 3.0
    assert config.status_update_retry_s == 5.0
    assert config.hostname


def test_bad_resources_flag_names_the_flag_and_the_problem() -> None:
    with pytest.raises(ConfigError, match=r"--resources: cpus: 'four' is not a number"):
        load({"resources": "cpus:four"})


def test_every_bad_option_is_reported_at_once_with_its_source() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            {"attributes": "rack", "kill_grace_period_s": -1},
            {"MESOSLITE_AGENT_MASTER": "host:99999"},
        )
    text = str(info.value)
    assert "--attributes: expected NAME:VALUE, got 'rack'" in text
    assert "--kill-grace-period-s: must be >= 0, got -1.0" in text
    assert "$MESOSLITE_AGENT_MASTER: bad port in address 'host:99999'" in text


def test_env_master_is_used_and_flags_win_over_it() -> None:
    assert load({}, {"MESOSLITE_AGENT_MASTER": "m1:5050"}).master == "m1:5050"
    assert load({"master": "m2:5050"}, {"MESOSLITE_AGENT_MASTER": "m1:5050"}).master == "m2:5050"


def test_yaml_config_is_read_and_unknown_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("resources: 'cpus:2;mem:64'\nattributes: 'rack:r9'\n")
    config, sources = load_config(AgentConfig, "agent", flags={}, config_path=str(path), environ={})
    assert (config.resources, config.attributes) == ("cpus:2;mem:64", "rack:r9")
    assert sources["resources"] == "agent.yaml: resources"
    path.write_text("resource: 'cpus:2'\n")
    with pytest.raises(ConfigError, match="agent.yaml: resource: unknown option"):
        load_config(AgentConfig, "agent", flags={}, config_path=str(path), environ={})


def test_bad_flags_exit_2_with_a_clear_message() -> None:
    result = CliRunner().invoke(main, ["--resources", "cpus:-1"])
    assert result.exit_code == 2
    assert "--resources: cpus: must be >= 0, got -1" in result.output


def test_print_config_shows_values_and_their_sources() -> None:
    result = CliRunner().invoke(main, ["--print-config", "--attributes", "rack:r1"], env={})
    assert result.exit_code == 0, result.output
    assert "attributes: 'rack:r1'  # --attributes" in result.output
    assert "work_dir: '/tmp/mesoslite/agent'  # default" in result.output


def test_help_says_that_stopping_an_agent_kills_its_tasks() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "kills its tasks" in result.output
    assert "--status-update-retry-s" in result.output


@pytest.mark.parametrize("text", ["rack", "rack:", ":r1", "a:1;;b"])
def test_attributes_and_resources_split_name_value_parts_the_same_way(text: str) -> None:
    from mesoslite.resources import parse_name_values, parse_resources

    errors = []
    for parse in (parse_attributes, parse_resources, lambda t: parse_name_values(t, "x")):
        try:
            parse(text)
            errors.append("")
        except ValidationError as e:
            errors.append(e.message.split(": ", 1)[1])
    assert len(set(errors)) == 1, errors
