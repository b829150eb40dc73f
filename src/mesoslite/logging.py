"""Logging setup for the daemons' `main()`; only they configure handlers.

With `--log-format json` each line is one JSON object, and the ids and values a message
names are keys of it, not words in `msg`: a call written in the house style,
`logger.info("task launched task_id=%s agent_id=%s", t, a)`, logs
`{"msg": "task launched", "task_id": "...", "agent_id": "...", ...}`. Fields passed with
`extra={"job": name}` become keys too. The text format is unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

# One %-conversion of a format string; `key=` before it makes it a field.
_CONVERSION = re.compile(
    r"(?:(?<![\w.\-])(?P<key>[A-Za-z_][A-Za-z0-9_]*)=)?"
    r"%(?P<spec>[#0\- +]*(?:\d+)?(?:\.\d+)?[hlL]?(?P<conv>[diouxXeEfFgGcrsa%]))"
)
# Keys of every line: a field of the same name stays in `msg`.
_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})
# What every `LogRecord` has; any other attribute came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def split_fields(template: str, args: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """`("offer declined framework_id=%s n=%d", ("f1", 3))` → `("offer declined",
    {"framework_id": "f1", "n": 3})`: the message without its `key=value` parts, and those.

    A template whose conversions do not match `args` is rendered as logging would, with no
    fields.
    """
    fields: dict[str, Any] = {}
    parts: list[str] = []
    pos = 0
    index = 0
    for m in _CONVERSION.finditer(template):
        if m.group("conv") == "%":
            continue
        if index >= len(args):
            return template % args, {}
        arg = args[index]
        index += 1
        key = m.group("key")
        if key and key not in _RESERVED:
            fields[key] = _value(arg, m.group("spec"))
            parts.append(template[pos : m.start()] % ())
        else:
            parts.append(template[pos : m.end()] % (arg,))
        pos = m.end()
    if index != len(args):
        return template % args, {}
    parts.append(template[pos:] % ())
    text = re.sub(r"\s+([:;,.)])", r"\1", "".join(parts))
    return re.sub(r"\s{2,}", " ", text).strip(), fields


def _value(arg: Any, spec: str) -> Any:
    if spec in ("s", "d") and (arg is None or isinstance(arg, str | int | float | bool)):
        return arg
    return ("%" + spec) % (arg,)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, the message's fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        msg, fields = self._message(record)
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": msg,
        }
        doc.update(fields)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _RESERVED:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)

    @staticmethod
    def _message(record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
        if isinstance(record.msg, str) and isinstance(record.args, tuple) and record.args:
            try:
                return split_fields(record.msg, record.args)
            except (TypeError, ValueError):
                pass
        return record.getMessage(), {}


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
                                      "%Y-%m-%d %H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_libraries(handler)


# kazoo repeats the same warning at each reconnect attempt; say each once per this long.
KAZOO_REPEAT_S = 60.0


class OncePer(logging.Filter):
    """Lets a record of a logger under `prefix` through only if its logger and template
    were not seen in the last `every_s` (read on `now`, injectable for tests); the next one
    says how many were dropped. Their tracebacks are dropped too: kazoo's say no more than
    the message. Records of other loggers pass untouched."""

    def __init__(
        self, prefix: str, every_s: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.every_s = every_s
        self.now = now
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self.prefix and not record.name.startswith(self.prefix + "."):
            return True
        key = (record.name, str(record.msg))
        now = self.now()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.every_s:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} (and {seen[1]} more like it in {self.every_s:g}s)"
        record.exc_info = None
        record.exc_text = None
        self._seen[key] = (now, 0)
        return True


def quiet_libraries(handler: logging.Handler) -> None:
    """kazoo logs every failed connection attempt (at WARNING, several a second while
    ZooKeeper is down): keep its WARNING and up, each message once a minute."""
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    handler.addFilter(OncePer("kazoo", KAZOO_REPEAT_S))


def quiet_grpc_core() -> None:
    """gRPC's C core prints its own lines on stderr (`add_port.cc ... Address already in
    use`) before our one-line error says the same; silence it unless the user chose a
    `GRPC_VERBOSITY`. Call before grpc is imported: the core reads it once."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def quiet_cli() -> None:
    """For the `mesoslite` command, which configures no logging: nothing from gRPC's core
    or kazoo reaches the user's terminal; the command's own one-line error says what is
    wrong (kazoo's retries otherwise print through logging's last-resort handler)."""
    quiet_grpc_core()
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
