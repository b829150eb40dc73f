"""`/health` and `/state` of a local HA cluster (issue 13): 200 on the leader, 503 on a
standby, whose `/state` names the leader; after the leader is killed, a standby takes over
and its `/health` turns 200."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from mesoslite.testing.eventually import assert_eventually
from mesoslite.testing.ha_cluster import HACluster
from tests.integration.http_support import SCHEMA, get, get_json


def test_health_is_200_on_the_leader_and_503_on_a_standby_whose_state_names_the_leader(
    tmp_path: Path, zk_url: str
) -> None:
    with HACluster(tmp_path / "ha", zk_url, masters=2, agents=1) as ha:
        leader = ha.wait_for_leader()
        standby = 1 - leader
        assert get(ha.http_url(leader) + "health") == (200, "leading\n")
        status, body = get(ha.http_url(standby) + "health")
        assert status == 503 and body.endswith(f"leader is {ha.addresses[leader]}\n"), body
        state = get_json(ha.http_url(standby) + "state")
        jsonschema.validate(state, json.loads(SCHEMA.read_text()))
        assert state["master"]["leading"] is False
        assert state["master"]["leader"] == ha.addresses[leader]
        assert state["agents"] == [] and state["masters"][0] == {
            "id": "", "address": ha.addresses[leader], "leading": True}
        assert len(get_json(ha.http_url(leader) + "state")["agents"]) == 1
        status, body = get(ha.http_url(standby) + "tasks/some-task/stdout")
        assert status == 503 and f"leader is {ha.addresses[leader]}" in body, body

        ha.kill_master(leader)
        assert ha.wait_for_leader(other_than=leader) == standby
        assert_eventually(lambda: get(ha.http_url(standby) + "health")[0] == 200, timeout_s=10)
