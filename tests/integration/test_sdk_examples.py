"""The SDK's documented examples run as written: the blocking `run()` from the package
docstring, and `docs/examples/hello_framework.py` with implicit and explicit acks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mesoslite.scheduler_api as api
from mesoslite.testing import LocalCluster

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_docstring_example_runs_with_the_blocking_run(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    doc = api.__doc__ or ""
    code = "\n".join(line[4:] for line in doc.split("::", 1)[1].splitlines() if line.strip())
    assert 'SchedulerDriver(Hello(), FrameworkInfo(name="hello")).run()' in code
    code = code.replace(
        'FrameworkInfo(name="hello"))',
        f'FrameworkInfo(name="hello"), master="{cluster.master_address}")',
    )
    script = tmp_path / "hello.py"
    script.write_text(code + '\nprint("done")\n')
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "done\n"), out.stderr
    assert "Traceback" not in out.stderr and "never retrieved" not in out.stderr
    with cluster.client() as c:
        (task,) = c.tasks(include_completed=True)
    assert (task.id, task.state) == ("hello-1", "TASK_FINISHED")


def test_the_docs_hello_framework_runs_with_implicit_and_explicit_acks(
    cluster: LocalCluster,
) -> None:
    example = ROOT / "docs" / "examples" / "hello_framework.py"
    for extra in ([], ["--explicit-acks"]):
        out = subprocess.run(
            [sys.executable, str(example), "--master", cluster.master_address, *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "3/3 tasks finished" in out.stdout
