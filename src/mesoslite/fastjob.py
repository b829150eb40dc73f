"""`mesoslite job submit|update [--wait]` and `job wait` on the fast path (issue 15).

As `mesoslite run`'s (`fastrun.py`): no grpc, protobuf, click, asyncio or YAML. The spec's
text goes to the master as it is (`POST /jobs/submit`, `master/http/jobs.py`), which checks
it with the code `job validate` uses, submits it and, with `--wait`, streams the job's
summaries as `Jobs.Watch` does; this prints what the click commands print
(`fastjob_text.py` holds the text both use) and exits with the same codes.

Anything else goes to the click command, unchanged: options it does not know, values it
would refuse, `-` (stdin: it could not be read twice), a file it cannot read as UTF-8, and
the cases of `run`'s fast path (TLS or credentials, which `fastrun.try_fast_argv` checks; a
zk:// or list `--master`, no HTTP endpoint, a master that is not leading). A master that is
down falls back too: the click path then says so in its own words (exit 69). Once the job
is submitted nothing can fall back any more: a watch that breaks (a failover) hands over to
the click path's `job wait NAME`, which finds the new leader, with the time left of
`--timeout`.
"""

import _socket
import posix
import sys

from mesoslite import fastjob_text as text
from mesoslite.fastrun_http import _env as env
from mesoslite.fastrun_http import _Reader, open_answer

FALLBACK = None
EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERNAL, EXIT_TEMPFAIL = 2, 69, 70, 75
EXIT_INTERRUPTED = 130
# `cli/exit_codes.py`'s codes by gRPC status (a test holds the two equal).
EXIT_BY_STATUS = {
    "INVALID_ARGUMENT": 2, "NOT_FOUND": 66, "FAILED_PRECONDITION": 65, "ALREADY_EXISTS": 65,
    "PERMISSION_DENIED": 77, "UNAUTHENTICATED": 77, "UNAVAILABLE": 69, "DEADLINE_EXCEEDED": 75,
    "RESOURCE_EXHAUSTED": 2,
}
MAX_SPEC_BYTES = 1024 * 1024  # `limits.MAX_SPEC_BYTES`: a larger file is the click path's
MAX_JOB_NAME = 63


class Call:
    """One parsed command: `verb` "submit", "update" or "wait"; `arg` the spec file or the
    job's name."""

    def __init__(self, master: str, verb: str, arg: str, wait: bool, timeout_s: float) -> None:
        self.master, self.verb, self.arg = master, verb, arg
        self.wait, self.timeout_s = wait, timeout_s


def try_fast(argv: list[str], master: str) -> int | None:
    """`mesoslite ARGV` (`[--master M] job VERB ...`) on the fast path, `master` the one
    given by the environment (`fastrun.try_fast_argv` has checked it allows the fast path):
    its exit code, or `FALLBACK` (`sys.argv` may then name the click command to run
    instead)."""
    call = parse(argv, master)
    if call is None:
        return FALLBACK
    if call.verb == "wait":
        return _follow(call, {"name": call.arg}, "/jobs/watch", call.arg)
    spec = _read_spec(call.arg)
    if spec is None:
        return FALLBACK
    request: dict[str, object] = {
        "spec_yaml": spec, "source": call.arg, "update": call.verb == "update",
        "wait": call.wait,
    }
    return _follow(call, request, "/jobs/submit", "")


def parse(argv: list[str], master: str) -> Call | None:
    """The command, or None where the click command must decide (an option unknown here,
    a value it would refuse, `--help`, `-`...)."""
    i = 0
    while i < len(argv) and argv[i] != "job":  # the group's own options
        name, eq, value = argv[i].partition("=")
        if name != "--master" or (not eq and i + 1 >= len(argv)):
            return None
        master, i = (value, i + 1) if eq else (argv[i + 1], i + 2)
    if i + 1 >= len(argv) or argv[i + 1] not in ("submit", "update", "wait"):
        return None
    verb, args = argv[i + 1], argv[i + 2:]
    wait, timeout_s, positional = verb == "wait", 0.0, []
    j = 0
    while j < len(args):
        name, eq, value = args[j].partition("=")
        if name == "--wait" and not eq and verb != "wait":
            wait = True
        elif name in ("--timeout", "--master") and (eq or j + 1 < len(args)):
            if not eq:
                j, value = j + 1, args[j + 1]
            if name == "--master":
                master = value
            else:
                number = _number(value)
                if number is None:
                    return None
                timeout_s = number
        elif args[j].startswith("-"):
            return None  # `-` (stdin), `--`, `--help`, an option unknown here
        else:
            positional.append(args[j])
        j += 1
    host, _, port = master.rpartition(":")
    if len(positional) != 1 or not host or not port.isdigit() or "," in host or "/" in host:
        return None
    if verb == "wait" and not _job_name(positional[0]):
        return None  # the click command words the refusal
    return Call(master, verb, positional[0], wait, timeout_s)


def _number(value: str) -> float | None:
    """`--timeout`'s value as `click.FloatRange(min=0)` takes it, else None."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number < float("inf") else None


def _job_name(name: str) -> bool:
    """`limits.JOB_NAME_RE`: a DNS label."""
    ok = "abcdefghijklmnopqrstuvwxyz0123456789-"
    return 0 < len(name) <= MAX_JOB_NAME and all(c in ok for c in name) and \
        name[0] != "-" and name[-1] != "-"


def _read_spec(path: str) -> str | None:
    """The file as `click.File("r")` reads it (UTF-8, universal newlines), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
        spec = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if len(data) > MAX_SPEC_BYTES or sys.getfilesystemencoding() != "utf-8":
        return None
    return spec.replace("\r\n", "\n").replace("\r", "\n")


def _follow(call: Call, request: dict[str, object], path: str, name: str) -> int | None:
    try:
        opened = open_answer(call.master, path, request)
    except KeyboardInterrupt:
        _err("\nAborted!\n")  # as click
        return 1
    if opened is None:
        return FALLBACK
    sock, status, reader, _ = opened
    if status != 200:
        sock.close()
        if status in (401, 403, 413, 503):
            return FALLBACK  # the click path finds the leader, or sends credentials
        _err(f"mesoslite: HTTP {status} from the master's {path}\n")
        return EXIT_USAGE if status == 400 else EXIT_INTERNAL
    return _Answer(call, sock, reader, name).read()


class _Answer:
    """The frames of a submit or a watch, printed as the click command prints them."""

    def __init__(self, call: Call, sock: _socket.socket, reader: _Reader, name: str) -> None:
        import time

        self.call, self.sock, self.reader, self.name = call, sock, reader, name
        self.clock = time
        self.deadline: float | None = None
        if name:  # `job wait`; a submit's wait starts once it is answered, as click's
            self._start_clock()
        self.tty, self.last, self.state = posix.isatty(2), "", ""

    def _start_clock(self) -> None:
        if self.call.timeout_s:
            self.deadline = self.clock.monotonic() + self.call.timeout_s

    def read(self) -> int | None:
        try:
            return self._frames()
        except KeyboardInterrupt:
            if not self.name:
                _err("\nAborted!\n")
                return 1
            _err(f"\nstopped waiting; job {self.name} keeps running\n")
            return EXIT_INTERRUPTED
        finally:
            self.sock.close()

    def _frames(self) -> int | None:
        while True:
            try:
                kind, data = self._next()
            except TimeoutError:
                self._end()
                _err(f"mesoslite: job {self.name} is still {self.state} after "
                     f"{self.call.timeout_s:g}s\n")
                return EXIT_TEMPFAIL
            except (OSError, ValueError):
                return self._lost()
            if kind == b"s":
                code = self._summary(data.decode())
                if code is not None:
                    return code
            elif kind == b"n":
                self.name = data.decode()
                _write(1, data + b"\n")
                if not self.call.wait:
                    return 0
                self._start_clock()
            elif kind == b"p":
                field, _, message = data.decode().partition("\0")
                _err(text.problem_line(self.call.arg, field, message) + "\n")
            elif kind == b"r":
                status, _, message = data.decode().partition("\0")
                if status == "UNAVAILABLE" and self.name and self.call.wait:
                    return self._lost()  # this master stopped leading: find the next one
                _err(f"mesoslite: {message}\n")
                return EXIT_BY_STATUS.get(status, EXIT_INTERNAL)
            elif kind == b"x":
                return int(data)

    def _next(self) -> tuple[bytes, bytes]:
        """The next frame; `TimeoutError` once `--timeout` has passed."""
        if self.deadline is not None:
            left = self.deadline - self.clock.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
        head = self.reader.body(5)
        n = int.from_bytes(head[1:], "big")
        return head[:1], self.reader.body(n) if n else b""

    def _summary(self, payload: str) -> int | None:
        name, type_, state, message, wanted, next_run, unhealthy, counts = payload.split("\0")
        self.state = state
        by_state: dict[str, int] = {}
        for item in counts.split(",") if counts else ():
            key, _, n = item.partition("=")
            by_state[key] = int(n)
        line = text.summary_line(name, state, by_state, int(wanted), int(unhealthy),
                                 float(next_run) if next_run else None, message,
                                 self.clock.time())
        self._show(line)
        code = text.verdict(state, type_)
        if code is not None:
            self._end()
        return code

    def _show(self, line: str) -> None:
        """`job_wait._Progress.show`."""
        if self.tty:
            width = _columns() - 1
            _err("\r" + line[:width] + "\x1b[K")
        elif line != self.last:
            _err(line + "\n")
        self.last = line

    def _end(self) -> None:
        if self.tty:
            _err("\n")

    def _lost(self) -> int | None:
        """The answer broke off: before the submit was answered, the click path says why
        (the master is gone: 69); after it, its `job wait` finds the leader and waits on."""
        if not self.name:
            _err("mesoslite: lost the master before it answered the submit\n")
            return EXIT_UNAVAILABLE
        if not self.call.wait:
            return 0
        left = 0.0
        if self.deadline is not None:
            left = max(0.001, self.deadline - self.clock.monotonic())
        sys.argv[1:] = ["--master", self.call.master, "job", "wait", self.name,
                        "--timeout", repr(left), "--timeout-given", repr(self.call.timeout_s)]
        return FALLBACK


def _columns() -> int:
    """`shutil.get_terminal_size().columns` (of stdout, as it is there)."""
    value = env("COLUMNS") or ""
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return posix.get_terminal_size(1).columns or 80
    except (OSError, ValueError):
        return 80


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[posix.write(fd, data):]
    except BrokenPipeError:
        pass


def _err(message: str) -> None:
    """`click.echo(message, err=True, nl=False)`: escape sequences dropped unless stderr is
    a terminal."""
    if "\x1b[" in message and not posix.isatty(2):
        message = strip_ansi(message)
    _write(2, message.encode("utf-8", "backslashreplace"))


def strip_ansi(text: str) -> str:
    """`click._compat.strip_ansi` without `re`: drops each `ESC [ [0-?]* [ -/]* [@-~]`."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("\x1b[", i):
            j = i + 2
            while j < n and "0" <= text[j] <= "?":
                j += 1
            while j < n and " " <= text[j] <= "/":
                j += 1
            if j < n and "@" <= text[j] <= "~":
                i = j + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)
