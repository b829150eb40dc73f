"""`ZooKeeperContender` in process against a real server: elected, suspended and resumed
across a ZooKeeper restart, deposed when its session expires; standbys see the leader."""

from __future__ import annotations

import asyncio

from mesoslite.discovery import parse_zk_url
from mesoslite.master.election.base import Change
from mesoslite.master.election.zookeeper import ZooKeeperContender
from mesoslite.testing.zookeeper import ZooKeeperCluster


async def next_change(c: ZooKeeperContender, timeout_s: float = 20.0) -> Change:
    return (await asyncio.wait_for(c.next_change(), timeout_s)).change


async def test_the_first_contender_leads_and_a_second_sees_its_address(
    zookeeper: ZooKeeperCluster,
) -> None:
    url = parse_zk_url(zookeeper.chroot_url())
    a = ZooKeeperContender(url, {"id": "a", "address": "h:1"}, session_timeout_s=4)
    b = ZooKeeperContender(url, {"id": "b", "address": "h:2"}, session_timeout_s=4)
    try:
        await a.start()
        assert await next_change(a) == Change.ELECTED
        await b.start()
        for _ in range(200):
            if b.leader_address == "h:1":
                break
            await asyncio.sleep(0.05)
        assert b.leader_address == "h:1"
        assert b.epoch == 0 and a.epoch == 0  # a's znode has sequence 0
        await a.close()  # its znode goes with its session: b leads
        assert await next_change(b) == Change.ELECTED
        assert b.epoch == 1
    finally:
        await a.close()
        await b.close()


async def test_a_leader_is_suspended_while_zookeeper_restarts_and_deposed_when_its_session_expires(
    zookeeper: ZooKeeperCluster,
) -> None:
    url = parse_zk_url(zookeeper.chroot_url())
    # A long session: the restart (a JVM stop and start) must fit in it even on a busy host.
    a = ZooKeeperContender(url, {"id": "a", "address": "h:1"}, session_timeout_s=30)
    try:
        await a.start()
        assert await next_change(a) == Change.ELECTED
        await asyncio.to_thread(zookeeper.restart)
        assert await next_change(a) == Change.SUSPENDED
        assert await next_change(a, 40.0) == Change.RESUMED
        await asyncio.to_thread(zookeeper.expire_session, a.client)
        # The connection drops first (SUSPENDED), then the session is found expired.
        changes = [await next_change(a)]
        while changes[-1] != Change.DEPOSED:
            changes.append(await next_change(a))
        assert set(changes[:-1]) <= {Change.SUSPENDED}
    finally:
        await a.close()


async def test_a_join_whose_create_timed_out_but_happened_adopts_that_znode(
    zookeeper: ZooKeeperCluster,
) -> None:
    """Every election call is bounded; a create that timed out on our side may still have
    been applied, and a second znode of ours would stand as a leader nobody is."""
    url = parse_zk_url(zookeeper.chroot_url())
    a = ZooKeeperContender(url, {"id": "a", "address": "h:1"}, session_timeout_s=4)
    try:
        a._loop = asyncio.get_running_loop()
        await a._connect()
        # What the timed-out create left: an ephemeral znode of this session.
        path = await asyncio.to_thread(
            a.client.create, f"{url.election_path}/master-", b'{"id": "a"}',
            ephemeral=True, sequence=True, makepath=True,
        )
        await a._join()
        assert a.node == path.rsplit("/", 1)[-1]
        assert len(await asyncio.to_thread(a.client.get_children, url.election_path)) == 1
    finally:
        await a.close()
