"""`zk://` URLs, lists of masters, the `MasterLocator`, the followers' backoff
(`leader.Backoff`) and the deposed master's `ExitWatchdog` (no ZooKeeper needed)."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from mesoslite.discovery import (
    MasterLocator,
    ZkUrl,
    bounded_zk_client,
    check_master_spec,
    contender_sequence,
    parse_masters,
    parse_zk_url,
)
from mesoslite.errors import ValidationError
from mesoslite.leader import Backoff, LeaderFollower
from mesoslite.master.leadership import ExitWatchdog


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


# -- the followers' backoff


def test_backoff_delays_are_fully_jittered_below_a_doubling_ceiling() -> None:
    b = Backoff(0.1, 2.0, random.Random(7))
    ceilings, delays = [], []
    for _ in range(8):
        ceilings.append(b.ceiling())
        delays.append(b.next())
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    # Full jitter: the delays are not the ceilings, nor a fixed fraction of them.
    ratios = {round(d / c, 6) for d, c in zip(delays, ceilings, strict=True)}
    assert len(ratios) == len(delays)
    # The same seed gives the same schedule (what lets a test replay it).
    again = Backoff(0.1, 2.0, random.Random(7))
    assert [again.next() for _ in range(8)] == delays


def test_backoff_never_exceeds_its_cap_and_starts_over_after_reset() -> None:
    b = Backoff(0.1, 0.5, random.Random(1))
    delays = [b.next() for _ in range(2000)]  # far past where 2**n would overflow a float
    assert max(delays) <= 0.5
    assert max(delays) > 0.45  # it does reach up to the cap
    b.reset()
    assert b.ceiling() == 0.1
    assert b.next() <= 0.1


def test_two_followers_with_different_seeds_do_not_retry_in_step() -> None:
    a, b = Backoff(0.1, 2.0, random.Random(1)), Backoff(0.1, 2.0, random.Random(2))
    assert [a.next() for _ in range(5)] != [b.next() for _ in range(5)]


def test_backoff_refuses_non_positive_times() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError, match="backoff_max_s must be > 0"):
        LeaderFollower("a:1", backoff_max_s=0)


def test_reconnect_backoff_max_bounds_the_zookeeper_client_retry_too() -> None:
    f = LeaderFollower("zk://127.0.0.1:1/p", backoff_max_s=0.3, rng=random.Random(3))
    assert f.backoff.max_s == 0.3
    assert f.locator.reconnect_max_s == 0.3
    # With --reconnect-backoff-max-s above 1 s, ZooKeeper's reconnects stay within 1 s and
    # the attempts to reach a leader within 0.5 s.
    g = LeaderFollower("zk://127.0.0.1:1/p", backoff_max_s=30.0)
    assert g.locator.reconnect_max_s == 1.0
    assert g.backoff.max_s == 0.5
    assert LeaderFollower("a:1,b:2", backoff_max_s=30.0).backoff.max_s == 30.0
    client = bounded_zk_client("127.0.0.1:1", session_timeout_s=1.0, reconnect_max_s=1.0)
    retry = client._conn_retry
    assert retry.max_tries == -1
    assert retry.max_delay * (1 + retry.max_jitter) <= 1.0 + 1e-9


def _long_wait() -> float:
    return 30.0


async def test_a_follower_pause_is_cut_short_when_zookeeper_reports_a_change() -> None:
    f = LeaderFollower("zk://127.0.0.1:1/p", backoff_max_s=0.5)
    f.backoff.next = _long_wait  # type: ignore[method-assign]  # a long wait to cut short
    timer = threading.Timer(0.05, f.locator._signal_change)  # a watch fires, on kazoo's thread
    timer.start()
    waited = await asyncio.wait_for(f.pause(), 5.0)
    assert waited < 2.0


def test_a_blocking_pause_is_cut_short_too_and_a_list_pause_is_the_drawn_delay() -> None:
    f = LeaderFollower("zk://127.0.0.1:1/p", backoff_max_s=0.5)
    f.backoff.next = _long_wait  # type: ignore[method-assign]
    threading.Timer(0.05, f.locator._signal_change).start()
    assert f.pause_blocking() < 2.0
    g = LeaderFollower("a:1,b:2", backoff_max_s=0.2, rng=random.Random(9))
    expected = Backoff(0.1, 0.2, random.Random(9)).next()
    assert g.pause_blocking() == pytest.approx(expected, abs=0.05)


# -- the deposed master's watchdog


def test_an_armed_watchdog_exits_with_status_1_and_a_disarmed_one_does_not() -> None:
    codes: list[int] = []
    done = threading.Event()

    def record(code: int) -> None:
        codes.append(code)
        done.set()

    w = ExitWatchdog(exit=record)
    w.arm(5.0, "ZooKeeper is away")
    w.disarm()
    w.arm(0.05, "deposed")
    assert done.wait(5.0)
    assert codes == [1]

    calm = ExitWatchdog(exit=record)
    calm.arm(0.1, "suspended")
    calm.disarm()  # contact came back in time
    time.sleep(0.3)
    assert codes == [1]


def test_a_later_deadline_does_not_postpone_an_earlier_one() -> None:
    done = threading.Event()
    w = ExitWatchdog(exit=lambda code: done.set())
    started = time.monotonic()
    w.arm(0.1, "deposed")
    w.arm(60.0, "suspended")  # the session-timeout backstop must not push the exit back
    assert done.wait(5.0)
    assert time.monotonic() - started < 3.0
