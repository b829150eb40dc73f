"""Which agents the leading master knows: the one question a local cluster asks its master.

A small blocking Operator call of the local cluster's own, so that `mesoslite.local` does
not depend on the CLI: every master of the cluster is asked in turn, and the first that
answers (the leader; a standby refuses with NOT_LEADER) is believed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.transport import PLAIN, Security, open_channel


@dataclass(frozen=True, slots=True)
class AgentSeen:
    """An agent as the leading master reports it: its id and `active`, `disconnected`, ..."""

    id: str
    status: str


def agents_seen(
    masters: Sequence[str], timeout_s: float = 2.0, security: Security = PLAIN
) -> list[AgentSeen]:
    """The agents the first master of `masters` that answers knows; [] if none answers."""
    for address in masters:
        with open_channel(address, security, aio=False) as channel:
            stub = operator_pb2_grpc.OperatorStub(channel)
            try:
                reply = stub.GetAgents(operator_pb2.GetAgentsRequest(), timeout=timeout_s)
            except grpc.RpcError:
                continue
        return [AgentSeen(a.agent_info.id, a.status) for a in reply.agents]
    return []
