"""The fast path's HTTP client: `POST /run` over a plain socket, the framed answer copied out.

The C modules `_socket` and `_signal` rather than `socket` and `signal` (which import `enum`,
`selectors`, `collections`...), let alone `http.client` (the `email` package) or `json`
(whose decoder imports `re`): this runs on every `mesoslite run`, where each import is paid
for again, and `posix` rather than `os`, which a start without `site` has not loaded. The
protocol is `master/http/run.py`'s: one request, one chunked response of frames (kind
byte, 4-byte big-endian length, payload).
"""

import _signal  # type: ignore[import-not-found,unused-ignore]  # no stub: `signal` without enum
import _socket
import posix

FALLBACK = None
EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERNAL = 2, 69, 70
CONNECT_TIMEOUT_S = 2.0
CACHE_NAME = "http-endpoints"


class _Moved(Exception):
    """This HTTP endpoint is not (or no longer) the given master's: try the next one."""


def run_on_master(master: str, request: dict[str, object]) -> int | None:
    """Run the task on `master`'s fast path; its exit code, or `FALLBACK`."""
    opened = open_answer(master, "/run", request)
    if opened is None:
        return FALLBACK
    sock, status, reader, endpoint = opened
    return _answer(sock, status, reader, endpoint, str(request["task_id"]))


def open_answer(
    master: str, path: str, request: dict[str, object]
) -> tuple[_socket.socket, int, "_Reader", str] | None:
    """POST `request` (with `grpc_port` added) to `path` on `master`'s HTTP endpoint: the
    first endpoint that is the master's answers (the socket, its status, the reader of its
    body, the endpoint); None where none does, or the request cannot be sent as JSON."""
    host, _, grpc_port = master.rpartition(":")
    host = host.strip("[]")
    request["grpc_port"] = int(grpc_port)
    try:
        body = _json(request).encode()
    except UnicodeEncodeError:
        return None  # arguments that are not UTF-8: gRPC carries them as bytes
    cached = _cache_get(master)
    for endpoint in _candidates(master, host, int(grpc_port), cached):
        try:
            sock = _post(endpoint, path, body)
            status, reader = _status(sock)
        except (OSError, _Moved):
            continue
        if status in (404, 405, 421):  # an older master, or another master's HTTP port
            sock.close()
            continue
        if endpoint != cached and status not in (401, 403, 503):
            cache_put(master, endpoint)
        return sock, status, reader, endpoint
    return None


def _candidates(master: str, host: str, grpc_port: int, cached: str | None) -> list[str]:
    given = _env("MESOSLITE_MASTER_HTTP")
    if given:
        return [given]
    out = [cached] if cached else []
    for port in (grpc_port + 1, DEFAULT_HTTP_PORT):
        endpoint = f"{host}:{port}"
        if endpoint not in out:
            out.append(endpoint)
    return out


DEFAULT_HTTP_PORT = 5051


def _connect(host: bytes, port: int) -> _socket.socket:
    """`socket.create_connection`: each address of `host` in turn."""
    error: OSError = OSError(f"no address for {host.decode(errors='replace')}")
    addresses = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)
    for family, kind, proto, _, address in addresses:
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(address)
            sock.settimeout(None)
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error


def _post(endpoint: str, path: str, body: bytes) -> _socket.socket:
    host, _, port = endpoint.rpartition(":")
    # Bytes, not str: a str host goes through the `idna` codec, an import of its own.
    sock = _connect(host.strip("[]").encode(), int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


class _Reader:
    """Reads a chunked HTTP body from a socket (or a plain one up to its close)."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock, self.buf, self.chunked, self.left = sock, b"", False, -1

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("the master closed the connection")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def raw(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("the master closed the connection")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def body(self, n: int) -> bytes:
        """`n` bytes of the (de-chunked) body."""
        if not self.chunked:
            return self.raw(n)
        out = b""
        while len(out) < n:
            if self.left <= 0:
                if self.left == 0:
                    self.line()  # the CRLF after a chunk
                self.left = int(self.line().split(b";")[0], 16)
                if self.left == 0:
                    raise ConnectionError("the answer ended early")
            take = self.raw(min(n - len(out), self.left))
            self.left -= len(take)
            out += take
        return out


def _status(sock: _socket.socket) -> tuple[int, _Reader]:
    reader = _Reader(sock)
    parts = reader.line().split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise _Moved()
    while True:
        line = reader.line()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            reader.chunked = True
    return int(parts[1]), reader


def _answer(
    sock: _socket.socket, status: int, reader: _Reader, endpoint: str, task_id: str
) -> int | None:
    if status != 200:
        text = _rest(reader).decode(errors="replace").strip()
        sock.close()
        if status in (401, 403, 503):
            # Not leading (the click path finds the leader), or the master wants credentials
            # this client does not send: the click path sends them, or reports the refusal.
            return FALLBACK
        code = {400: EXIT_USAGE, 409: 65, 404: 66}.get(status, EXIT_INTERNAL)
        _err(f"mesoslite run: {text}\n".encode())
        return code
    return _copy(sock, reader, endpoint, task_id)


def _rest(reader: _Reader) -> bytes:
    try:
        while reader._fill():
            pass
    except OSError:
        pass
    if reader.chunked:
        return b"".join(reader.buf.split(b"\r\n")[1::2])
    return reader.buf


def _copy(sock: _socket.socket, reader: _Reader, endpoint: str, task_id: str) -> int:
    """Copy the frames to stdout/stderr until the exit code; Ctrl-C (or SIGTERM) asks the
    master to kill the task and goes on reading its end."""
    killing: list[bool] = []

    def interrupted(signum: int, frame: object) -> None:
        if killing:
            return
        killing.append(True)
        try:
            kill = _post(endpoint, f"/run/{task_id}/kill", b"")
            _status(kill)
            kill.close()
        except (OSError, _Moved):
            sock.close()  # the master kills the task of a run whose client went away

    for sig in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(sig, interrupted)
    try:
        while True:
            head = reader.body(5)
            kind, n = head[:1], int.from_bytes(head[1:], "big")
            data = reader.body(n) if n else b""
            if kind == b"o":
                _write(1, data)
            elif kind in (b"e", b"m"):
                _write(2, data)
            elif kind == b"x":
                return int(data)
    except (OSError, ValueError) as e:
        if killing:
            return 130
        _err(f"mesoslite run: lost the master while the task ran: {e}\n".encode())
        return EXIT_UNAVAILABLE
    finally:
        sock.close()


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[posix.write(fd, data):]
    except BrokenPipeError:
        pass


def _err(data: bytes) -> None:
    _write(2, data)


# ---------------------------------------------------------------------- the endpoint cache


def _env(name: str) -> str:
    value = posix.environ.get(name.encode(), b"")
    return value.decode("utf-8", "surrogateescape")


def _cache_path() -> str:
    base = _env("XDG_CACHE_HOME") or (_env("HOME") or _home()) + "/.cache"
    return f"{base}/mesoslite/{CACHE_NAME}"


def _home() -> str:
    """`os.path.expanduser("~")` where HOME is unset (`pwd` is only imported then)."""
    import pwd

    return pwd.getpwuid(posix.getuid()).pw_dir


def _cache_get(master: str) -> str | None:
    """The HTTP endpoint last found for `master` (lines `GRPC_ADDRESS HTTP_ADDRESS`)."""
    try:
        with open(_cache_path()) as f:
            for line in f:
                key, _, value = line.strip().partition(" ")
                if key == master and value:
                    return value
    except OSError:
        pass
    return None


def cache_put(master: str, endpoint: str) -> None:
    """Remember `endpoint` as `master`'s HTTP address (the click path calls this too)."""
    path = _cache_path()
    try:
        with open(path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.partition(" ")[0] != master]
    except OSError:
        lines = []
    lines = [*lines[-63:], f"{master} {endpoint}"]
    try:
        _makedirs(path.rpartition("/")[0])
        tmp = f"{path}.{posix.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        posix.rename(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs the next run a guess


def _makedirs(path: str) -> None:
    """`os.makedirs(path, exist_ok=True)`."""
    try:
        posix.mkdir(path)
    except FileExistsError:
        return
    except FileNotFoundError:
        _makedirs(path.rpartition("/")[0])
        posix.mkdir(path)


# ---------------------------------------------------------------------- JSON, by hand


def _json(value: object) -> str:
    """JSON for the request's plain values (`json` imports `re` through its decoder)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        out = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in out) + '"'
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    assert isinstance(value, dict), value
    return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
