"""`mesoslite simulate` as a user runs it: text and JSON reports, errors naming the field."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sim"
CLUSTER = str(EXAMPLES / "drf-paper-cluster.yaml")
WORKLOAD = str(EXAMPLES / "drf-paper-workload.yaml")


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesoslite.cli", "simulate", *args],
        capture_output=True, text=True, timeout=60,
    )


def test_several_allocators_are_reported_side_by_side() -> None:
    out = simulate("--cluster", CLUSTER, "--workload", WORKLOAD, "--allocator", "drf,fair")
    assert out.returncode == 0, out.stderr
    assert "drf:launched" in out.stdout and "fair:launched" in out.stdout
    assert "jain index" in out.stdout and "makespan" in out.stdout


def test_json_has_one_object_per_allocator() -> None:
    out = simulate("--cluster", CLUSTER, "--workload", WORKLOAD, "--allocator", "drf,ssf",
                   "--json")
    assert out.returncode == 0, out.stderr
    docs = json.loads(out.stdout)
    assert [d["allocator"] for d in docs] == ["drf", "ssf"]
    assert {f["name"] for f in docs[0]["frameworks"]} == {"A", "B"}
    assert docs[0]["launched"] == 60 and 0 < docs[0]["jain_index"] <= 1


def test_a_bad_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  - count: 1\n    resources: 'cpus:1'\n    colour: red\n")
    out = simulate("--cluster", str(bad), "--workload", WORKLOAD)
    assert out.returncode == 2
    assert out.stderr.strip() == "mesoslite: bad.yaml: agents[0].colour: unknown key"


def test_an_unknown_allocator_lists_the_known_ones() -> None:
    out = simulate("--cluster", CLUSTER, "--workload", WORKLOAD, "--allocator", "nope")
    assert out.returncode == 2 and "available: drf, fair, ssf" in out.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed"
)
def test_plot_without_matplotlib_says_how_to_install_it(tmp_path: Path) -> None:
    out = simulate("--cluster", CLUSTER, "--workload", WORKLOAD, "--plot",
                   str(tmp_path / "p.png"))
    assert out.returncode == 2 and "pip install 'mesoslite[plot]'" in out.stderr


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_plot_draws_a_png(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    out = simulate("--cluster", CLUSTER, "--workload", WORKLOAD, "--allocator", "drf,fair",
                   "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
