"""The docs that are generated from code are up to date (drift fails CI).

- The option tables in docs/daemons.md match `MasterConfig` and `AgentConfig`
  (`scripts/gen_option_docs.py`).
- The example shown in docs/sdk.md is the file that is run: docs/examples/hello_framework.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_option_tables_in_daemons_md_match_the_config_dataclasses() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_option_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_option_tables_name_every_option_of_both_daemons() -> None:
    from mesoslite.agent.config import AgentConfig
    from mesoslite.config import env_name
    from mesoslite.master.config import MasterConfig

    text = (ROOT / "docs" / "daemons.md").read_text()
    for daemon, cls in (("master", MasterConfig), ("agent", AgentConfig)):
        for name in cls.__dataclass_fields__:
            assert f"`{env_name(daemon, name)}`" in text, f"{daemon} option {name} is missing"


def test_the_sdk_guide_shows_the_example_file_verbatim() -> None:
    guide = (ROOT / "docs" / "sdk.md").read_text()
    example = (ROOT / "docs" / "examples" / "hello_framework.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    assert example in blocks, (
        "docs/sdk.md must show docs/examples/hello_framework.py verbatim in a ```python block"
    )
