"""The `--print-config` example in docs/daemons.md is what the master really prints (#13: it
once missed 7 options). When an option is added, paste the new output into the example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND = (
    "$ MESOSLITE_MASTER_ALLOCATION_INTERVAL_S=0.5 mesoslite-master --config m.yaml --seed 7 "
    "--print-config"
)


def test_print_config_example_in_daemons_md_is_the_real_output(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "daemons.md").read_text()
    found = re.search(re.escape(COMMAND) + r"\n(.*?)```", text, re.S)
    assert found, "docs/daemons.md no longer shows the --print-config example"
    (tmp_path / "m.yaml").write_text("port: 6060\noffer_timeout_s: 10\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}
    env["MESOSLITE_MASTER_ALLOCATION_INTERVAL_S"] = "0.5"
    real = subprocess.run(
        [sys.executable, "-m", "mesoslite.master.main", "--config", "m.yaml", "--seed", "7",
         "--print-config"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert found.group(1) == real, (
        "the --print-config example in docs/daemons.md is stale; replace it with:\n" + real
    )
