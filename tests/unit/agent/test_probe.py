"""The host probe's arithmetic and how `--resources` overrides it."""

from __future__ import annotations

from mesoslite.agent.probe import (
    MB,
    HostReadings,
    disk_reserve_mb,
    given_names,
    mem_reserve_mb,
    override,
    resources_from_readings,
)
from mesoslite.resources import parse_resources

GB = 1024 * MB


def test_memory_reserve_is_an_eighth_of_a_small_host() -> None:
    assert mem_reserve_mb(4096) == 512


def test_memory_reserve_is_capped_at_one_gib_on_a_large_host() -> None:
    assert mem_reserve_mb(64 * 1024) == 1024


def test_disk_reserve_is_a_tenth_of_free_space_capped_at_five_gib() -> None:
    assert disk_reserve_mb(10_000) == 1000
    assert disk_reserve_mb(1_000_000) == 5 * 1024


def test_resources_from_readings_subtract_the_reserves_and_add_default_ports() -> None:
    res = resources_from_readings(HostReadings(8, 16 * GB, 100 * GB))
    assert res == parse_resources(
        f"cpus:8;mem:{16 * 1024 - 1024};disk:{100 * 1024 - 5 * 1024};ports:[31000-32000]"
    )


def test_resources_from_readings_round_partial_megabytes_down() -> None:
    res = resources_from_readings(HostReadings(2, 8 * MB + 123, 10 * MB + 5))
    assert res.scalar("mem") == 7  # 8 - 8 // 8
    assert res.scalar("disk") == 9  # 10 - 10 // 10


def test_a_host_with_no_free_disk_offers_no_disk_but_still_cpus() -> None:
    res = resources_from_readings(HostReadings(0, 0, 0))
    assert res.scalar("cpus") == 1
    assert "disk" not in res.names()


def test_given_resources_replace_probed_ones_of_the_same_name_only() -> None:
    probed = parse_resources("cpus:8;mem:15360;disk:97280;ports:[31000-32000]")
    merged = override(probed, parse_resources("cpus:2;ports:[5000-5001];gpus:1"))
    assert merged == parse_resources("cpus:2;mem:15360;disk:97280;ports:[5000-5001];gpus:1")


def test_a_resource_given_as_zero_removes_the_probed_one() -> None:
    text = "disk:0;cpus:1"
    merged = override(
        parse_resources("cpus:8;disk:100;mem:10"), parse_resources(text), given_names(text)
    )
    assert merged == parse_resources("cpus:1;mem:10")
