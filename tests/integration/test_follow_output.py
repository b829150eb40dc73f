"""`Operator.FollowFile`: a sandbox file streamed from the agent through the master, no polling.

A real master daemon; the agent runs in this process (a real `AgentActor` and `MasterLink`
over gRPC, real task processes) so that the test can see its follows and the messages it
gets from the master.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mesoslite._proto.v1 import common_pb2, operator_pb2, operator_pb2_grpc
from mesoslite.agent.actor import AgentActor
from mesoslite.agent.follow import WINDOW_BYTES
from mesoslite.agent.master_link import MasterLink
from mesoslite.resources import parse_resources
from mesoslite.testing.local_cluster import remove_agent_cgroups_of

from .agent_support import Daemon, Framework, assert_eventually, shell_task, start_master

TS = common_pb2.TaskState


class CountingLink(MasterLink):
    """The agent's real link to the master, counting the kinds of message it gets."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.kinds: Counter[str] = Counter()

    def _dispatch(self, msg: Any) -> None:
        self.kinds[msg.WhichOneof("kind")] += 1
        super()._dispatch(msg)


class Cluster:
    def __init__(self, master: Daemon, address: str, link: CountingLink, fw: Framework) -> None:
        self.master, self.address, self.link, self.fw = master, address, link, fw
        self.channel = grpc.aio.insecure_channel(address)
        self.operator = operator_pb2_grpc.OperatorStub(self.channel)

    def follow(self, task_id: str, name: str = "stdout", offset: int = 0) -> Any:
        return self.operator.FollowFile(
            operator_pb2.FollowFileRequest(
                task_id=task_id, framework_id=self.fw.id, name=name, offset=offset
            )
        )


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    master, address = start_master(tmp_path / "master")
    work = tmp_path / "agent"
    work.mkdir()
    actor = AgentActor(
        work_dir=work,
        hostname="h1",
        resources=parse_resources("cpus:4;mem:1024"),
        attributes={},
        kill_grace_period_s=0.5,
        status_update_retry_s=0.5,
        recover="cleanup",
    )
    link = CountingLink(address, actor, backoff_max_s=0.3)
    actor.start(link)
    runner = asyncio.create_task(link.run())
    fw = Framework(address)
    c = Cluster(master, address, link, fw)
    try:
        await assert_eventually(lambda: link.sessions, what="the agent registered")
        await fw.subscribe()
        yield c
    finally:
        await c.channel.close()
        await fw.close()
        await actor.stop(flush_s=0)
        runner.cancel()
        await link.close()
        await asyncio.gather(runner, return_exceptions=True)
        master.stop()
        remove_agent_cgroups_of([work])


async def test_a_followed_file_streams_lines_as_written_with_no_polling_rpcs(
    cluster: Cluster,
) -> None:
    await cluster.fw.launch(
        shell_task("talk", "for i in 1 2 3; do echo line$i; sleep 0.4; done; exit 3")
    )
    arrivals: list[tuple[float, bytes]] = []
    end = None
    started = time.monotonic()
    async for reply in cluster.follow("talk"):
        if reply.data:
            arrivals.append((time.monotonic() - started, reply.data))
        if reply.end:
            end = reply
    assert b"".join(d for _, d in arrivals) == b"line1\nline2\nline3\n"
    # Pushed as written: line1 came well before the task's last line (0.8 s later).
    first = next(t for t, d in arrivals if d.startswith(b"line1"))
    last = next(t for t, d in arrivals if b"line3" in d)
    assert last - first > 0.5, arrivals
    assert end is not None and end.status.state == TS.TASK_FAILED
    assert end.status.has_exit_code and end.status.exit_code == 3
    assert end.offset == len(b"line1\nline2\nline3\n")
    # One request to the agent, no reads: the agent pushed what it found.
    assert cluster.link.kinds["follow_file"] == 1
    assert cluster.link.kinds["read_file"] == 0
    assert cluster.link.kinds["stop_follow"] == 0
    await assert_eventually(lambda: len(cluster.link.follows) == 0, what="the follow ended")


async def test_cancelling_the_reader_stops_the_agents_follow(cluster: Cluster) -> None:
    await cluster.fw.launch(shell_task("chatty", "while true; do echo tick; sleep 0.05; done"))
    call = cluster.follow("chatty")
    first = await call.read()
    assert first.data.startswith(b"tick\n")
    assert len(cluster.link.follows) == 1
    call.cancel()
    await assert_eventually(
        lambda: len(cluster.link.follows) == 0, timeout_s=5, what="the agent stopped following"
    )
    assert cluster.link.kinds["stop_follow"] == 1
    await cluster.fw.kill("chatty")
    await cluster.fw.wait_state("chatty", TS.TASK_KILLED)


async def test_a_large_output_to_a_slow_reader_arrives_complete_in_order_within_a_window(
    cluster: Cluster,
) -> None:
    count = 800_000  # `seq` writes about 5.9 MB
    expected = "".join(f"{i}\n" for i in range(1, count + 1)).encode()
    await cluster.fw.launch(shell_task("big", f"seq 1 {count}"))
    got = bytearray()
    outstanding = []
    async for reply in cluster.follow("big"):
        assert reply.offset == len(got) or reply.end
        got += reply.data
        outstanding.append(cluster.link.follows.outstanding_bytes())
        if len(outstanding) < 10:
            await asyncio.sleep(0.05)  # a slow reader at first: the agent must wait for it
        if reply.end:
            assert reply.status.state == TS.TASK_FINISHED
    assert len(got) == len(expected) and bytes(got) == expected
    assert max(outstanding) <= WINDOW_BYTES


async def test_a_task_that_never_started_ends_its_follow_at_once(cluster: Cluster) -> None:
    task = shell_task("nope", "")
    task.command.CopyFrom(common_pb2.CommandInfo(shell=False, argv=["/nonexistent/binary"]))
    await cluster.fw.launch(task)
    await cluster.fw.wait_state("nope", TS.TASK_FAILED)
    started = time.monotonic()
    replies = [r async for r in cluster.follow("nope", "stderr")]
    assert time.monotonic() - started < 2
    assert [(r.data, r.end) for r in replies] == [(b"", True)]
    assert replies[0].status.state == TS.TASK_FAILED


async def test_following_an_unknown_task_or_a_bad_name_is_refused(cluster: Cluster) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in cluster.follow("no-such-task")]
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    await cluster.fw.launch(shell_task("t", "true"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in cluster.follow("t", "passwd")]
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stdout, stderr" in (e.value.details() or "")
    assert cluster.link.kinds["follow_file"] == 0
    with contextlib.suppress(Exception):
        await cluster.fw.wait_state("t", TS.TASK_FINISHED)
