"""The `mesoslite` console script's entry: `mesoslite run` (and `job submit|update|wait`,
`fastjob.py`) on a fast path, the rest via click.

`mesoslite run -- CMD` is meant to cost little more than the task (issue 15). Importing
grpc, protobuf, click and asyncio costs far more than the task itself, so this module
imports none of them: it parses `run`'s options itself and posts the task to the master's
`POST /run` (`master/http/run.py`) over a plain socket, copying the framed answer (output,
messages, the exit code) as it streams. Anything it does not handle the same way as the
click command falls back to it, unchanged: options it does not know or values it would
refuse (click then prints its own error), `--help`, a zk:// or multi-master `--master`,
TLS or credentials (`MESOSLITE_TLS_*`, `MESOSLITE_PRINCIPAL`, `MESOSLITE_SECRET_FILE`), a
master whose HTTP endpoint cannot be found or that is not leading. `MESOSLITE_NO_FASTRUN=1`
always takes the click path.

What it imports is what a bare interpreter has already loaded (`sys`, `posix`) and, for the
request, `_socket` and `_signal` (`fastrun_http.py`): not `os`, `socket`, `signal` or `enum`,
which cost more than the request's own parts. The `mesoslite` command (`scripts/mesoslite`)
runs it without `site`, and hands over to the click CLI with `site` when it falls back.

The HTTP endpoint is found from the gRPC address the user gives: `MESOSLITE_MASTER_HTTP`
if set, else the one cached for that address (`$XDG_CACHE_HOME/mesoslite/http-endpoints`),
else the conventions (the gRPC port + 1, then the default 5051, on the same host). The
master refuses (421) a request naming a gRPC port that is not its own, so a wrong guess
runs nothing.
"""

import posix
import sys

GATING_ENV = (
    "MESOSLITE_TLS_CA", "MESOSLITE_TLS_CERT", "MESOSLITE_TLS_KEY", "MESOSLITE_PRINCIPAL",
    "MESOSLITE_SECRET_FILE",
)
DEFAULT_MASTER = "127.0.0.1:5050"
DEFAULT_HTTP_PORT = 5051
FALLBACK = None  # what `try_fast` returns to hand over to the click command


def main() -> None:
    """`mesoslite` run with `site` (`python -m`, or `python scripts/mesoslite`)."""
    code = try_fast_argv(sys.argv[1:])
    if code is not FALLBACK:
        sys.exit(code)
    from mesoslite.cli import main as cli_main

    cli_main()


def env(name: str) -> str | None:
    """`os.environ.get(name)` without `os` (the same decoding)."""
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def try_fast_argv(argv: list[str]) -> int | None:
    """`mesoslite ARGV` on the fast path if it is a `run` or a `job submit|update|wait` for
    it (`fastjob.py`): its exit code, or `FALLBACK` when the click command must handle it."""
    if env("MESOSLITE_NO_FASTRUN"):
        return FALLBACK
    command = _command(argv)
    if command == "run":
        return try_fast(argv)
    if command == "job" and not any(env(name) for name in GATING_ENV):
        from mesoslite.fastjob import try_fast as try_fast_job

        return try_fast_job(argv, env("MESOSLITE_MASTER") or DEFAULT_MASTER)
    return FALLBACK


def _command(argv: list[str]) -> str:
    """The command word after the group's `--master` options (all the fast paths take)."""
    i = 0
    while i < len(argv) and argv[i].startswith("--master"):
        i += 1 if "=" in argv[i] else 2
    return argv[i] if i < len(argv) else ""


def try_fast(argv: list[str]) -> int | None:
    """Run `argv` (`[--master M] run OPTIONS -- CMD`) on the fast path; its exit code, or
    `FALLBACK` when the click command must handle it."""
    if any(env(name) for name in GATING_ENV):
        return FALLBACK
    parsed = parse_run(argv, env("MESOSLITE_MASTER") or DEFAULT_MASTER)
    if parsed is None:
        return FALLBACK
    from mesoslite.fastrun_http import run_on_master

    return run_on_master(*parsed)


# `run`'s options as the click command has them: name -> (request key, kind).
_VALUED = {
    "--cpus": ("cpus", float), "--mem": ("mem", float), "--disk": ("disk", float),
    "--name": ("name", str), "--env": ("env", list), "--role": ("role", str),
    "--placement-timeout": ("placement_timeout_s", float), "--kill-grace": ("kill_grace_s", float),
    "--master": ("master", str),
}
_DEFAULTS = {
    "cpus": 0.1, "mem": 32.0, "disk": 0.0, "name": "", "role": "*", "shell": False,
    "placement_timeout_s": 30.0, "kill_grace_s": 3.0,
}


def parse_run(argv: list[str], master: str) -> tuple[str, dict[str, object]] | None:
    """`(master, request)` for `POST /run`, or None where the click command must decide (an
    option unknown here, a value it would refuse, no `--` before the command)."""
    i = 0
    while i < len(argv) and argv[i] != "run":  # the group's own options
        name, eq, value = argv[i].partition("=")
        if name != "--master" or (not eq and i + 1 >= len(argv)):
            return None
        master, i = (value, i + 1) if eq else (argv[i + 1], i + 2)
    opts: dict[str, object] = dict(_DEFAULTS, env=[], master=master)
    i += 1
    while i < len(argv) and argv[i] != "--":
        name, eq, value = argv[i].partition("=")
        if name == "--shell" and not eq:
            opts["shell"] = True
        elif name in _VALUED and (eq or i + 1 < len(argv)):
            if not eq:
                i, value = i + 1, argv[i + 1]
            key, kind = _VALUED[name]
            if kind is list:
                opts[key].append(value)  # type: ignore[attr-defined]
            else:
                opts[key] = value if kind is str else _number(value)
        else:
            return None  # a command not after `--`, `--help`, an unknown option
        i += 1
    command = argv[i + 1:]
    if not command or not _valid(opts):
        return None
    env = {}
    for item in opts.pop("env"):  # type: ignore[attr-defined]
        key, _, value = item.partition("=")
        env[key] = value
    opts.update(argv=command, env=env, task_id="run-" + posix.urandom(5).hex())
    return str(opts.pop("master")), opts


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _valid(opts: dict[str, object]) -> bool:
    """What `cli/run.py: _check_options` accepts, and a master given as one HOST:PORT."""
    numbers = [opts[k] for k in ("cpus", "mem", "disk", "placement_timeout_s", "kill_grace_s")]
    if any(not isinstance(n, float) for n in numbers):
        return False
    cpus, mem, disk, timeout_s, grace_s = (float(n) for n in numbers)  # type: ignore[arg-type]
    if not (0 < cpus <= 1e9 and 0 < mem <= 1e9 and 0 <= disk <= 1e9):
        return False
    if not (timeout_s > 0 and grace_s >= 0):
        return False
    if any(not item.partition("=")[1] or item.startswith("=") for item in opts["env"]):  # type: ignore[attr-defined]
        return False
    host, _, port = str(opts["master"]).rpartition(":")
    return bool(host) and port.isdigit() and "," not in host and "/" not in host
