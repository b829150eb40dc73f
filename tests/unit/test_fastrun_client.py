"""The fast `mesoslite run` client's own parts (issue 15): which command lines it takes and
which it leaves to the click command, its JSON, and its reading of a chunked answer."""

from __future__ import annotations

import json
import socket

import pytest

from mesoslite.fastrun import parse_run
from mesoslite.fastrun_http import _json, _status

M = "127.0.0.1:5050"


def test_the_common_command_lines_are_taken_with_click_s_defaults() -> None:
    master, req = parse_run(["run", "--", "echo", "hi"], M) or ("", {})
    assert master == M
    assert req["argv"] == ["echo", "hi"] and req["env"] == {} and req["role"] == "*"
    assert (req["cpus"], req["mem"], req["placement_timeout_s"], req["kill_grace_s"]) == (
        0.1, 32.0, 30.0, 3.0)
    assert str(req["task_id"]).startswith("run-") and len(str(req["task_id"])) == 14
    master, req = parse_run(
        ["--master=h:7", "run", "--cpus=0.5", "--mem", "64", "--env", "A=b=c", "--env", "B=",
         "--shell", "--name", "n", "--role", "eng", "--", "x"], M) or ("", {})
    assert master == "h:7"
    assert (req["cpus"], req["mem"], req["env"], req["shell"], req["name"], req["role"]) == (
        0.5, 64.0, {"A": "b=c", "B": ""}, True, "n", "eng")
    assert parse_run(["run", "--master", "h:8", "--", "x"], M)[0] == "h:8"  # type: ignore[index]


@pytest.mark.parametrize("argv", [
    ["run", "--help", "--", "x"], ["--json", "run", "--", "x"], ["run", "echo", "hi"],
    ["run", "--bogus", "--", "x"], ["run", "--cpus", "-1", "--", "x"],
    ["run", "--cpus", "nan", "--", "x"], ["run", "--mem", "lots", "--", "x"],
    ["run", "--env", "NOEQUALS", "--", "x"], ["run", "--env", "=v", "--", "x"],
    ["run", "--placement-timeout", "0", "--", "x"], ["run", "--kill-grace", "-1", "--", "x"],
    ["run", "--"], ["run", "--shell=1", "--", "x"], ["run", "--cpus"],
    ["run", "--master", "zk://h:2181/m", "--", "x"], ["run", "--master", "a:1,b:2", "--", "x"],
    ["--tls-ca", "ca.pem", "run", "--", "x"],
])
def test_anything_else_is_left_to_the_click_command(argv: list[str]) -> None:
    assert parse_run(argv, M) is None


def test_the_hand_made_json_is_json() -> None:
    value = {"a": ["x\"y\\z\n\t\x01é", 1.5, 3, True, False], "b": {"k": "v"}}
    assert json.loads(_json(value)) == value


def test_a_chunked_answer_is_read_across_chunk_and_packet_boundaries() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n")
        status, reader = _status(ours)
        assert status == 200 and reader.chunked
        assert reader.body(2) == b"ab"
        assert reader.body(6) == b"cdefgh"
        with pytest.raises(ConnectionError):
            reader.body(1)
