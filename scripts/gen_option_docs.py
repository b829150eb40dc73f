"""Write the option tables of docs/daemons.md from `MasterConfig` and `AgentConfig`.

Usage: python scripts/gen_option_docs.py [--check] [DOC]   (default DOC: docs/daemons.md)

Each table goes between `<!-- BEGIN GENERATED: <daemon> options -->` and
`<!-- END GENERATED: <daemon> options -->`; everything outside the markers is left alone.
With `--check`, nothing is written: exit 1 (and print a diff) if the tables are stale.
`tests/unit/test_docs_fresh.py` runs the check, so a new or changed option fails CI until
this script is run.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOC = ROOT / "docs" / "daemons.md"

# Defaults computed on the machine that imports the config (so not fit for a committed
# table): what to print instead. The script fails if a field named here disappears.
DYNAMIC_DEFAULTS: dict[tuple[str, str], str] = {
    ("agent", "hostname"): "this host's name (`socket.gethostname()`)",
}


def _daemons() -> list[tuple[str, type[Any]]]:
    sys.path.insert(0, str(ROOT / "src"))
    from mesoslite.agent.config import AgentConfig
    from mesoslite.master.config import MasterConfig

    return [("master", MasterConfig), ("agent", AgentConfig)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(daemon: str, f: dataclasses.Field[Any]) -> str:
    if (daemon, f.name) in DYNAMIC_DEFAULTS:
        return DYNAMIC_DEFAULTS[(daemon, f.name)]
    value = f.default
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value!r}`"


def _allowed(f: dataclasses.Field[Any]) -> str:
    meta = f.metadata
    parts = []
    if meta.get("choices"):
        parts.append(", ".join(f"`{c}`" for c in meta["choices"]))
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        parts.append(f"{lo:g} to {hi:g}")
    elif lo is not None:
        parts.append(f">= {lo:g}")
    elif hi is not None:
        parts.append(f"<= {hi:g}")
    return "; ".join(parts)


def render_table(daemon: str, cls: type[Any]) -> str:
    """One Markdown table: a row per field of `cls`, in declaration order."""
    from mesoslite.config import _field_type, env_name, flag_name

    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    for d, name in DYNAMIC_DEFAULTS:
        if d == daemon and name not in names:
            raise SystemExit(f"DYNAMIC_DEFAULTS names {daemon}.{name}, which is not an option")
    lines = [
        "| flag / YAML key / env | type | default | allowed | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in fields:
        kind = _field_type(f).__name__
        flag = flag_name(f.name)
        if kind == "bool":
            flag = f"{flag}/--no-{flag[2:]}"
        names_cell = f"`{flag}`<br>`{f.name}`<br>`{env_name(daemon, f.name)}`"
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (names_cell, kind, _default(daemon, f), _allowed(f), f.metadata["help"])
            )
            + " |"
        )
    return "\n".join(lines)


def render(doc: str) -> str:
    """`doc` with every marked table regenerated.

    Raises:
        SystemExit: a daemon's markers are missing.
    """
    for daemon, cls in _daemons():
        begin = f"<!-- BEGIN GENERATED: {daemon} options -->"
        end = f"<!-- END GENERATED: {daemon} options -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
        match = pattern.search(doc)
        if match is None:
            raise SystemExit(f"markers for the {daemon} options are missing: add\n{begin}\n{end}")
        table = render_table(daemon, cls)
        doc = f"{doc[: match.start()]}{begin}\n{table}\n{end}{doc[match.end() :]}"
    return doc


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    path = Path(args[0]) if args else DEFAULT_DOC
    old = path.read_text()
    new = render(old)
    if new == old:
        return 0
    if check:
        sys.stdout.writelines(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                str(path),
                f"{path} (regenerated)",
            )
        )
        print(f"{path}: option tables are stale: run python scripts/gen_option_docs.py")
        return 1
    path.write_text(new)
    print(f"{path}: option tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
