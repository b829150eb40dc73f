"""The small C and perl programs an agent runs its tasks with, built once into its work dir:
the per-task wrapper (`wrappers/wrapper.c`, `wrapper.pl`) and the task supervisor
(`wrappers/supervisor.c`); see `launcher.py` and `supervisor.py`."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)


def _wrapper_source(name: str) -> str:
    return resources.files("mesoslite.agent").joinpath("wrappers", name).read_text()


# The task wrapper (see the module docstring), shipped as package data in `wrappers/`.
# Arguments: the exit log, the launch's tag, cgroup.procs files separated by spaces (may be
# empty), then the command's argv.
WRAPPER_C = _wrapper_source("wrapper.c")
WRAPPER_PERL = _wrapper_source("wrapper.pl")
SUPERVISOR_C = _wrapper_source("supervisor.c")


def find_wrapper(work_dir: Path) -> list[str] | None:
    """The compiled C wrapper (built into `work_dir/bin` once), else perl's, else None."""
    digest = hashlib.sha1(("static\n" + WRAPPER_C).encode()).hexdigest()[:10]
    binary = work_dir / "bin" / f"mesoslite-wrapper-{digest}"
    if os.access(binary, os.X_OK):
        return [str(binary)]
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is not None:
        try:
            binary.parent.mkdir(parents=True, exist_ok=True)
            src = binary.with_suffix(".c")
            src.write_text(WRAPPER_C)
            tmp = binary.with_suffix(".tmp")
            _compile(cc, src, tmp)
            tmp.replace(binary)
            return [str(binary)]
        except (OSError, subprocess.SubprocessError) as e:
            logger.warning("cannot compile the task wrapper with %s: %s; trying perl", cc, e)
    perl = shutil.which("perl")
    if perl is not None:
        return [perl, "-e", WRAPPER_PERL]
    logger.warning(
        "no C compiler and no perl: tasks run unwrapped, and the exit status of a task "
        "that ends while the agent is down is lost"
    )
    return None


def _compile(cc: str, src: Path, out: Path) -> None:
    """Link statically where the host has a static libc: no dynamic loader at each task's
    exec, ~0.2-0.4 ms of CPU less per task on our machines (bench/RESULTS.md, issue 15)."""
    for flags in (["-O2", "-static"], ["-O2"]):
        try:
            subprocess.run(
                [cc, *flags, "-o", str(out), str(src)], check=True, capture_output=True, timeout=60
            )
            return
        except subprocess.CalledProcessError:
            if "-static" not in flags:
                raise


def find_supervisor(work_dir: Path) -> str | None:
    """The supervisor binary, compiled into `work_dir/bin` once; None without a compiler."""
    digest = hashlib.sha1(SUPERVISOR_C.encode()).hexdigest()[:10]
    binary = work_dir / "bin" / f"mesoslite-supervisor-{digest}"
    if os.access(binary, os.X_OK):
        return str(binary)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        logger.warning("no C compiler: no task supervisor, tasks run under the wrapper")
        return None
    try:
        binary.parent.mkdir(parents=True, exist_ok=True)
        src = binary.with_suffix(".c")
        src.write_text(SUPERVISOR_C)
        tmp = binary.with_suffix(f".tmp{os.getpid()}")
        _compile(cc, src, tmp)
        tmp.replace(binary)
        return str(binary)
    except (OSError, subprocess.SubprocessError) as e:
        logger.warning(
            "cannot compile the task supervisor with %s: %s; tasks run under the wrapper", cc, e
        )
        return None
