"""The fast path's HTTP client: `POST /run` over a plain socket, the framed answer copied out.

Plain `socket` rather than `http.client` (which imports the `email` package) or `json`
(whose decoder imports `re`): this runs on every `mesoslite run`, where each import is
paid for again. The protocol is `master/http/run.py`'s: one request, one chunked response
of frames (kind byte, 4-byte big-endian length, payload).
"""

from __future__ import annotations

import os
import signal
import socket
import struct

FALLBACK = None
EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERNAL = 2, 69, 70
CONNECT_TIMEOUT_S = 2.0
CACHE_NAME = "http-endpoints"


class _Moved(Exception):
    """This HTTP endpoint is not (or no longer) the given master's: try the next one."""


def run_on_master(master: str, request: dict[str, object]) -> int | None:
    """Run the task on `master`'s fast path; its exit code, or `FALLBACK`."""
    host, _, grpc_port = master.rpartition(":")
    host = host.strip("[]")
    request["grpc_port"] = int(grpc_port)
    try:
        body = _json(request).encode()
    except UnicodeEncodeError:
        return FALLBACK  # arguments that are not UTF-8: gRPC carries them as bytes
    cached = _cache_get(master)
    for endpoint in _candidates(master, host, int(grpc_port), cached):
        try:
            sock = _post(endpoint, "/run", body)
            status, reader = _status(sock)
        except (OSError, _Moved):
            continue
        if status in (404, 405, 421):  # an older master, or another master's HTTP port
            sock.close()
            continue
        if endpoint != cached and status not in (401, 403, 503):
            cache_put(master, endpoint)
        return _answer(sock, status, reader, endpoint, str(request["task_id"]))
    return FALLBACK


def _candidates(master: str, host: str, grpc_port: int, cached: str | None) -> list[str]:
    given = os.environ.get("MESOSLITE_MASTER_HTTP")
    if given:
        return [given]
    out = [cached] if cached else []
    for port in (grpc_port + 1, DEFAULT_HTTP_PORT):
        endpoint = f"{host}:{port}"
        if endpoint not in out:
            out.append(endpoint)
    return out


DEFAULT_HTTP_PORT = 5051


def _post(endpoint: str, path: str, body: bytes) -> socket.socket:
    host, _, port = endpoint.rpartition(":")
    # Bytes, not str: a str host goes through the `idna` codec, an import of its own.
    address = (host.strip("[]").encode(), int(port))
    sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)  # type: ignore[arg-type]
    sock.settimeout(None)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


class _Reader:
    """Reads a chunked HTTP body from a socket (or a plain one up to its close)."""

    def __init__(self, sock: socket.socket) -> None:
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


def _status(sock: socket.socket) -> tuple[int, _Reader]:
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
    sock: socket.socket, status: int, reader: _Reader, endpoint: str, task_id: str
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


def _copy(sock: socket.socket, reader: _Reader, endpoint: str, task_id: str) -> int:
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

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupted)
    try:
        while True:
            kind, n = struct.unpack(">cI", reader.body(5))
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
            data = data[os.write(fd, data):]
    except BrokenPipeError:
        pass


def _err(data: bytes) -> None:
    _write(2, data)


# ---------------------------------------------------------------------- the endpoint cache


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mesoslite", CACHE_NAME)


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
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs the next run a guess


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
