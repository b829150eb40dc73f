"""One cluster for all fuzz tests (a master and one agent), with daemon logs on failure,
and the real ids the strategies mix into string fields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from mesoslite._proto.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from mesoslite.cli._client import BlockingOperatorClient
from mesoslite.testing import LocalCluster
from mesoslite.testing.pytest_plugin import pytest_runtest_makereport
from mesoslite.transport import open_channel
from tests.fuzz import strategies

__all__ = ["FuzzTarget", "fuzz_target", "pytest_runtest_makereport"]


@dataclass
class FuzzTarget:
    cluster: LocalCluster
    channel: grpc.Channel
    client: BlockingOperatorClient


@pytest.fixture(scope="package")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    work: Path = tmp_path_factory.mktemp("fuzz")
    with LocalCluster(work / "cluster", agents=1) as cluster:
        channel = open_channel(cluster.master_address, aio=False)
        subscription: Any = None
        try:
            # A real framework, kept subscribed, so fuzzed calls can name a real id.
            info = common_pb2.FrameworkInfo(name="fuzz-victim", failover_timeout_s=3600)
            subscription = scheduler_pb2_grpc.SchedulerStub(channel).Subscribe(
                scheduler_pb2.SubscribeRequest(framework_info=info)
            )
            fid = next(subscription).subscribed.framework_id
            strategies.KNOWN_IDS[:] = [fid, *cluster.agent_ids]
            with cluster.client() as client:
                yield FuzzTarget(cluster, channel, client)
        finally:
            strategies.KNOWN_IDS.clear()
            if subscription is not None:
                subscription.cancel()
            channel.close()
