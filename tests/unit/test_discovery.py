"""`zk://` URLs, lists of masters, and the `MasterLocator` (no ZooKeeper needed)."""

from __future__ import annotations

import pytest

from mesoslite.discovery import (
    MasterLocator,
    ZkUrl,
    check_master_spec,
    contender_sequence,
    parse_masters,
    parse_zk_url,
)
from mesoslite.errors import ValidationError


def test_zk_url_with_several_hosts_and_a_nested_path_is_parsed() -> None:
    url = parse_zk_url("zk://10.0.0.1:2181,10.0.0.2:2182,zk3/mesos/prod")
    assert url == ZkUrl(("10.0.0.1:2181", "10.0.0.2:2182", "zk3:2181"), "/mesos/prod")
    assert url.hosts_string == "10.0.0.1:2181,10.0.0.2:2182,zk3:2181"
    assert url.election_path == "/mesos/prod/election"
    assert str(url) == "zk://10.0.0.1:2181,10.0.0.2:2182,zk3:2181/mesos/prod"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1:2181/x", "must start with zk://"),
        ("zk://127.0.0.1:2181", "needs a path"),
        ("zk://127.0.0.1:2181/", "needs a path"),
        ("zk:///mesoslite", "names no ZooKeeper host"),
        ("zk://h:99999/m", "bad port '99999'"),
        ("zk://h:abc/m", "bad port 'abc'"),
        ("zk://h:2181,,h2:2181/m", "empty host"),
        ("zk://:2181/m", "empty host name"),
        ("zk://h:2181/a b", "bad path"),
    ],
)
def test_malformed_zk_url_is_rejected_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_zk_url(text)
    assert reason in e.value.message
    assert e.value.field == "zk"


def test_a_list_of_masters_is_parsed_in_order_with_default_ports() -> None:
    assert parse_masters("a:1, b ,c:3") == ["a:1", "b:5050", "c:3"]
    with pytest.raises(ValidationError):
        parse_masters(" , ")
    check_master_spec("zk://h:1/p")
    with pytest.raises(ValidationError):
        check_master_spec("zk://h:1")


def test_contender_sequence_is_the_znode_suffix() -> None:
    assert contender_sequence("master-0000000012") == 12
    assert contender_sequence("junk") == -1


async def test_a_list_locator_moves_on_after_a_failure_and_follows_a_redirect() -> None:
    loc = MasterLocator("a:1,b:2,c:3")
    assert not loc.static
    assert await loc.current() == "a:1"
    loc.failed("a:1")
    assert await loc.current() == "b:2"
    loc.redirect("c:3")
    assert await loc.current() == "c:3"  # the hint, once
    assert await loc.current() == "b:2"
    loc.failed("x:9")  # not the current one: no move
    assert await loc.current() == "b:2"
    assert MasterLocator("a:1").static


def test_zk_locators_cap_the_retry_backoff_so_a_new_leader_is_found_soon() -> None:
    assert MasterLocator("zk://h:1/p").backoff_max_s(2.0) == 0.5
    assert MasterLocator("zk://h:1/p").backoff_max_s(0.2) == 0.2
    assert MasterLocator("a:1,b:2").backoff_max_s(2.0) == 2.0
