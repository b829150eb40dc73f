"""No source module over 500 lines and no function over 60 (issue 12), unless it says why.

A module or function may be longer if its opening docstring (or, for one without, the
comment just above or below its first line) contains the words "long because" and a reason.
Generated code (`_proto/`) is not ours to size.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mesoslite"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
EXCUSE = "long because"


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "_proto" not in p.relative_to(SRC).parts)


def _comments(text: str) -> dict[int, str]:
    """Line number -> the comment on that line."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _excused(
    node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef, comments: dict[int, str]
) -> bool:
    """The node's docstring, or a comment on the lines just around where it opens, says why."""
    doc = ast.get_docstring(node, clean=False) or ""
    if EXCUSE in doc.lower():
        return True
    first = 1 if isinstance(node, ast.Module) else node.lineno
    if not isinstance(node, ast.Module) and node.decorator_list:
        first = node.decorator_list[0].lineno
    body_start = node.body[0].lineno if node.body else first
    around = range(max(1, first - 2), body_start + 2)
    return any(EXCUSE in comments.get(line, "").lower() for line in around)


def offenders(path: Path, root: Path = SRC.parent) -> list[str]:
    """What in `path` is too long without saying why, one line each (named from `root`)."""
    text = path.read_text()
    tree = ast.parse(text)
    comments = _comments(text)
    name = str(path.relative_to(root))
    out = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES and not _excused(tree, comments):
        out.append(f"{name}: {lines} lines (> {MAX_MODULE_LINES})")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES and not _excused(node, comments):
                out.append(
                    f"{name}:{node.lineno} {node.name}: {length} lines (> {MAX_FUNCTION_LINES})"
                )
    return out


def test_no_module_or_function_is_too_long_without_saying_why() -> None:
    found = [line for path in _modules() for line in offenders(path)]
    assert not found, (
        f"{len(found)} too long (split them, or say why in the opening docstring or comment"
        f" with the words {EXCUSE!r}):\n  " + "\n  ".join(found)
    )


def test_the_size_check_finds_a_long_function_and_honours_an_excuse(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    plain = tmp_path / "plain.py"
    plain.write_text(f"def f() -> None:\n{body}")
    doc = tmp_path / "doc.py"
    doc.write_text(f'def f() -> None:\n    """A table; long because it is one."""\n{body}')
    comment = tmp_path / "comment.py"
    comment.write_text(f"# Long because it is one table.\ndef f() -> None:\n{body}")
    assert offenders(plain, tmp_path) == [
        f"plain.py:1 f: {MAX_FUNCTION_LINES + 1} lines (> {MAX_FUNCTION_LINES})"
    ]
    assert offenders(doc, tmp_path) == []
    assert offenders(comment, tmp_path) == []


def test_the_size_check_finds_a_long_module_and_honours_an_excuse(tmp_path: Path) -> None:
    lines = "".join(f"x{i} = {i}\n" for i in range(MAX_MODULE_LINES + 1))
    plain = tmp_path / "plain.py"
    plain.write_text(lines)
    excused = tmp_path / "excused.py"
    excused.write_text(f'"""Constants; long because they are one table."""\n{lines}')
    assert offenders(plain, tmp_path) == [
        f"plain.py: {MAX_MODULE_LINES + 1} lines (> {MAX_MODULE_LINES})"
    ]
    assert offenders(excused, tmp_path) == []
