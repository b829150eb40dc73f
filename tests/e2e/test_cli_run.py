"""`mesoslite run`, `task logs` and `task kill` on real tasks, the CLI run as a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from mesoslite.cli import exit_codes
from mesoslite.testing import LocalCluster, assert_eventually
from tests.e2e.conftest import MESOSLITE, CliRunner


def tasks(mesoslite: CliRunner, cluster: LocalCluster) -> list[dict[str, object]]:
    out = mesoslite("task", "list", "--all", "--json", master=cluster.master_address)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def wait_running(mesoslite: CliRunner, cluster: LocalCluster, name: str) -> None:
    assert_eventually(
        lambda: any(
            t["name"] == name and t["state"] == "TASK_RUNNING" for t in tasks(mesoslite, cluster)
        ),
        timeout_s=20,
    )


def test_run_prints_the_output_and_exits_with_the_tasks_code(
    mesoslite: CliRunner, cluster: LocalCluster
) -> None:
    out = mesoslite("run", "--", "echo", "hello", master=cluster.master_address)
    assert (out.returncode, out.stdout) == (0, "hello\n"), out.stderr
    out = mesoslite(
        "run", "--", "sh", "-c", "echo to-err >&2; exit 3", master=cluster.master_address
    )
    assert out.returncode == 3
    assert "to-err" in out.stderr and out.stdout == ""


def test_run_asks_for_the_given_resources_and_name(
    mesoslite: CliRunner, cluster: LocalCluster
) -> None:
    out = mesoslite(
        "run",
        "--cpus",
        "0.5",
        "--mem",
        "64",
        "--name",
        "sized",
        "--",
        "sh",
        "-c",
        "echo $MESOSLITE_TASK_ID",
        master=cluster.master_address,
    )
    assert out.returncode == 0, out.stderr
    (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "sized"]
    assert task["resources"] == {"cpus": 0.5, "mem": 64.0}
    assert task["state"] == "TASK_FINISHED" and task["exit_code"] == 0
    assert out.stdout.strip() == task["id"]
    # The output stays readable in the sandbox afterwards.
    logs = mesoslite("task", "logs", str(task["id"]), master=cluster.master_address)
    assert (logs.returncode, logs.stdout) == (0, out.stdout)


def test_run_streams_output_while_the_task_runs(cluster: LocalCluster) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "run", "--", "sh", "-c", "echo first; sleep 4; echo second"],
        env=cluster.cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        assert proc.stdout.readline() == "first\n"
        assert time.monotonic() - started < 3.5, "the first line came only when the task ended"
        assert proc.poll() is None
        assert proc.stdout.readline() == "second\n"
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_kills_the_task(mesoslite: CliRunner, cluster: LocalCluster) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "run", "--name", "interrupted", "--", "sleep", "60"],
        env=cluster.cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_running(mesoslite, cluster, "interrupted")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == exit_codes.EXIT_INTERRUPTED
    finally:
        proc.kill()
        proc.wait()
    (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "interrupted"]
    assert task["state"] == "TASK_KILLED"


def test_a_task_no_agent_can_fit_fails_fast(mesoslite: CliRunner, cluster: LocalCluster) -> None:
    started = time.monotonic()
    out = mesoslite("run", "--cpus", "64", "--", "true", master=cluster.master_address)
    assert out.returncode == exit_codes.EXIT_REJECTED
    assert "no agent can ever fit" in out.stderr and "cpus" in out.stderr
    assert time.monotonic() - started < 10


def test_a_task_that_does_not_fit_now_times_out_with_a_message(
    mesoslite: CliRunner, cluster: LocalCluster
) -> None:
    # Fill both agents (4 cpus each), then ask for more than is left anywhere.
    hogs = [
        subprocess.Popen(
            [str(MESOSLITE), "run", "--cpus", "3.5", "--name", f"hog{i}", "--", "sleep", "60"],
            env=cluster.cli_env(),
            stdout=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    try:
        assert_eventually(
            lambda: sum(t["state"] == "TASK_RUNNING" for t in tasks(mesoslite, cluster)) == 2,
            timeout_s=20,
        )
        out = mesoslite(
            "run",
            "--cpus",
            "1",
            "--placement-timeout",
            "1",
            "--",
            "true",
            master=cluster.master_address,
        )
        assert out.returncode == exit_codes.EXIT_TEMPFAIL
        assert "no offer could fit the task within 1s" in out.stderr
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGINT)
        for hog in hogs:
            hog.wait(20)


def test_task_kill_kills_a_running_task(mesoslite: CliRunner, cluster: LocalCluster) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "run", "--name", "victim", "--", "sleep", "60"],
        env=cluster.cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_running(mesoslite, cluster, "victim")
        (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "victim"]
        out = mesoslite("task", "kill", str(task["id"]), master=cluster.master_address)
        assert out.returncode == 0, out.stderr
        # Killed by SIGTERM: the run exits like a shell does for a signal, 128 + 15.
        assert proc.wait(20) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "victim"]
    assert task["state"] == "TASK_KILLED"


def test_task_logs_follow_and_stderr(mesoslite: CliRunner, cluster: LocalCluster) -> None:
    proc = subprocess.Popen(
        [
            str(MESOSLITE),
            "run",
            "--name",
            "talker",
            "--",
            "sh",
            "-c",
            "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.5; done",
        ],
        env=cluster.cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert_eventually(
            lambda: any(t["name"] == "talker" for t in tasks(mesoslite, cluster)), timeout_s=20
        )
        (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "talker"]
        follow = mesoslite(
            "task", "logs", "--follow", str(task["id"]), master=cluster.master_address
        )
        assert (follow.returncode, follow.stdout) == (0, "out1\nout2\nout3\n")
        err = mesoslite("task", "logs", "--stderr", str(task["id"]), master=cluster.master_address)
        assert err.stdout == "err1\nerr2\nerr3\n"
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_killing_a_task_that_already_ended_does_nothing(
    mesoslite: CliRunner, cluster: LocalCluster
) -> None:
    out = mesoslite("run", "--name", "quick", "--", "true", master=cluster.master_address)
    assert out.returncode == 0, out.stderr
    (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "quick"]
    # Its framework (the `run`) is gone by now; the kill is still a no-op, not an error.
    kill = mesoslite("task", "kill", str(task["id"]), master=cluster.master_address)
    assert kill.returncode == 0, kill.stderr
    (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "quick"]
    assert task["state"] == "TASK_FINISHED"


def test_a_killed_task_that_exits_0_on_sigterm_is_reported_killed(
    mesoslite: CliRunner, cluster: LocalCluster
) -> None:
    proc = subprocess.Popen(
        [
            str(MESOSLITE),
            "run",
            "--name",
            "polite",
            "--",
            "sh",
            "-c",
            "trap 'exit 0' TERM; sleep 60 & wait",
        ],
        env=cluster.cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_running(mesoslite, cluster, "polite")
        (task,) = [t for t in tasks(mesoslite, cluster) if t["name"] == "polite"]
        assert (
            mesoslite("task", "kill", str(task["id"]), master=cluster.master_address).returncode
            == 0
        )
        assert proc.wait(20) == 128 + signal.SIGTERM
        assert proc.stderr is not None and "TASK_KILLED" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_run_survives_a_master_restart_and_prints_all_output(cluster: LocalCluster) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "run", "--", "sh", "-c", "echo before; sleep 4; echo after"],
        env=cluster.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "before\n"
        cluster.restart_master()
        assert proc.wait(40) == 0, proc.stderr.read() if proc.stderr else ""
        assert proc.stdout.read() == "after\n"
    finally:
        proc.kill()
        proc.wait()


def test_run_prints_each_line_as_the_task_writes_it(cluster: LocalCluster) -> None:
    proc = subprocess.Popen(
        [str(MESOSLITE), "run", "--", "sh", "-c", "echo a; sleep 1; echo b"],
        env=cluster.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "a\n"
        a_at = time.monotonic()
        assert proc.stdout.readline() == "b\n"
        # The task sleeps 1 s between them: b was not sent with a.
        assert time.monotonic() - a_at > 0.5
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
        assert proc.stdout.read() == ""
    finally:
        proc.kill()
        proc.wait()


def test_run_of_a_missing_executable_fails_fast_with_the_real_reason(
    mesoslite: CliRunner, cluster: LocalCluster
) -> None:
    # Regression for issue 17: it took ~10 s and first printed "could not read the rest of
    # the output: ... has no sandbox", retrying reads of a sandbox that never existed.
    started = time.monotonic()
    out = mesoslite("run", "--", "/nonexistent/binary", master=cluster.master_address)
    elapsed = time.monotonic() - started
    assert out.returncode == exit_codes.EXIT_REJECTED, out.stderr
    assert out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("mesoslite run: task run-") and "TASK_FAILED" in line, line
    assert "/nonexistent/binary" in line or "not found" in line, line
    assert elapsed < 5, f"took {elapsed:.1f}s"
