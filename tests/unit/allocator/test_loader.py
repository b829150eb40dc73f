"""`load_allocator`: by entry point name, by `package.module:Class`, and its errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mesoslite.allocator.base import ClusterView
from mesoslite.allocator.drf import DRFPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import available_allocators, load_allocator
from mesoslite.errors import ConfigError

PLUGIN = '''
from mesoslite.allocator.base import AllocationRound


class NothingAllocator:
    """An Allocator: never offers anything."""

    def __init__(self, *, patience=1.0):
        self.patience = patience

    def allocate(self, view, now):
        return AllocationRound((), {}, view.seed)


class ByIdPolicy:
    """A Policy: alphabetical order, whatever the shares."""

    name = "by-id"

    def __init__(self, reverse=False):
        self.reverse = reverse

    def order_roles(self, roles, weights, total):
        return sorted(roles, reverse=self.reverse)

    def order_frameworks(self, frameworks, total):
        return sorted(frameworks, reverse=self.reverse)


def make_policy(**options):
    return ByIdPolicy(**options)


INSTANCE = NothingAllocator()
NOT_AN_ALLOCATOR = 42


class Neither:
    pass
'''


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"mesoslite_test_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_drf_loads_by_name_as_a_hierarchical_allocator() -> None:
    allocator = load_allocator("drf")
    assert isinstance(allocator, HierarchicalAllocator)
    assert isinstance(allocator.policy, DRFPolicy)
    assert allocator.allocate(ClusterView((), ()), 0.0).grants == ()


def test_drf_loads_by_module_path() -> None:
    allocator = load_allocator("mesoslite.allocator.drf:DRFPolicy")
    assert isinstance(allocator, HierarchicalAllocator)
    assert isinstance(allocator.policy, DRFPolicy)


def test_available_allocators_lists_the_entry_points() -> None:
    assert "drf" in available_allocators()
    assert available_allocators() == sorted(available_allocators())


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_allocator("foo")
    assert (
        str(info.value)
        == f"unknown allocator 'foo'; available: {', '.join(available_allocators())}"
    )
    assert "drf" in str(info.value)


def test_dotted_name_without_a_colon_hints_at_the_path_syntax() -> None:
    with pytest.raises(ConfigError, match="package.module:Class"):
        load_allocator("mesoslite.allocator.drf.DRFPolicy")


def test_missing_module_is_a_config_error_with_the_reason() -> None:
    with pytest.raises(ConfigError) as info:
        load_allocator("no_such_package.allocators:Mine")
    message = str(info.value)
    assert "cannot import 'no_such_package.allocators'" in message
    assert "No module named 'no_such_package'" in message


def test_missing_attribute_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="module 'mesoslite.allocator.drf' has no attribute 'Nope'"
    ):
        load_allocator("mesoslite.allocator.drf:Nope")


@pytest.mark.parametrize("spec", [":DRFPolicy", "mesoslite.allocator.drf:", ":"])
def test_half_a_path_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="expected NAME or package.module:Class"):
        load_allocator(spec)


def test_module_failing_on_import_is_a_config_error(plugin_module: str) -> None:
    with pytest.raises(ConfigError, match="RuntimeError: half-installed"):
        load_allocator(f"{plugin_module}_broken:Anything")


def test_allocator_class_is_used_directly_with_its_options(plugin_module: str) -> None:
    allocator = load_allocator(f"{plugin_module}:NothingAllocator", {"patience": 3.0})
    assert type(allocator).__name__ == "NothingAllocator"
    assert allocator.patience == 3.0  # type: ignore[attr-defined]


def test_policy_class_is_wrapped_and_given_its_options(plugin_module: str) -> None:
    allocator = load_allocator(f"{plugin_module}:ByIdPolicy", {"reverse": True})
    assert isinstance(allocator, HierarchicalAllocator)
    assert allocator.policy.reverse is True  # type: ignore[attr-defined]
    assert allocator.name == "by-id"


def test_factory_function_is_called_with_the_options(plugin_module: str) -> None:
    allocator = load_allocator(f"{plugin_module}:make_policy", {"reverse": True})
    assert isinstance(allocator, HierarchicalAllocator)
    assert allocator.policy.reverse is True  # type: ignore[attr-defined]


def test_allocator_object_is_used_as_it_is(plugin_module: str) -> None:
    allocator = load_allocator(f"{plugin_module}:INSTANCE")
    assert type(allocator).__name__ == "NothingAllocator"
    with pytest.raises(ConfigError, match="is an object and takes no options, got patience"):
        load_allocator(f"{plugin_module}:INSTANCE", {"patience": 2})


def test_unknown_option_is_a_config_error_naming_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="unknown option resource; allowed: none"):
        load_allocator("drf", {"resource": "cpus"})


def test_unknown_option_of_a_plugin_names_the_allowed_ones(plugin_module: str) -> None:
    with pytest.raises(ConfigError, match="unknown option speed; allowed: patience"):
        load_allocator(f"{plugin_module}:NothingAllocator", {"speed": 1})


@pytest.mark.parametrize("attr", ["NOT_AN_ALLOCATOR", "Neither"])
def test_object_that_is_neither_policy_nor_allocator_is_a_config_error(
    plugin_module: str, attr: str
) -> None:
    with pytest.raises(ConfigError, match="is neither a Policy .* nor an Allocator"):
        load_allocator(f"{plugin_module}:{attr}")


def test_allocator_options_parse_from_key_value_text() -> None:
    from mesoslite.allocator.loader import parse_allocator_options

    assert parse_allocator_options("resource=mem") == {"resource": "mem"}
    assert parse_allocator_options(" a=1 , b = x ,") == {"a": "1", "b": "x"}
    assert parse_allocator_options("") == {}
    with pytest.raises(ConfigError, match="--allocator-options: expected KEY=VALUE, got 'mem'"):
        parse_allocator_options("mem", "--allocator-options")
    fair = load_allocator("fair", parse_allocator_options("resource=mem"))
    assert fair.policy.resource == "mem"
