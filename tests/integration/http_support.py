"""Small HTTP helpers for the tests of the master's and agent's HTTP surface."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "state.schema.json"


def get(url: str, *, method: str = "GET", timeout_s: float = 10.0) -> tuple[int, str]:
    """(status, body) of one request; error statuses are returned, not raised."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(url: str) -> dict:  # type: ignore[type-arg]
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, parsed by prometheus-client's own parser."""
    status, body = get(url)
    assert status == 200, body
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def agent_http(work_dir: Path) -> str:
    """`http://127.0.0.1:PORT` of the agent whose work dir is `work_dir`."""
    port = json.loads((work_dir / "http.json").read_text())["port"]
    return f"http://127.0.0.1:{port}"
