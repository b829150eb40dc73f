"""The host's resources: cpus, memory, disk and ports, from psutil readings.

`resources_from_readings` is pure arithmetic so that tests can feed it any machine;
`probe_host` reads the real one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.agent import constants as k
from mesoslite.resources import Resources, parse_reserved_resources

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HostReadings:
    """What psutil says about the host."""

    logical_cpus: int
    mem_total_bytes: int
    disk_free_bytes: int


def mem_reserve_mb(total_mb: int) -> int:
    """What the agent keeps for the OS and itself: min(1 GiB, 1/8 of total)."""
    return min(k.MEM_RESERVE_MAX_MB, int(total_mb * k.MEM_RESERVE_FRACTION))


def disk_reserve_mb(free_mb: int) -> int:
    """What the agent leaves free on the work dir's filesystem: min(5 GiB, 1/10 of free)."""
    return min(k.DISK_RESERVE_MAX_MB, int(free_mb * k.DISK_RESERVE_FRACTION))


def resources_from_readings(r: HostReadings) -> Resources:
    """`cpus`, `mem` and `disk` in whole MB after the reserves, and the default `ports`."""
    mem_mb = r.mem_total_bytes // MB
    disk_mb = r.disk_free_bytes // MB
    return Resources.of(
        {
            "cpus": float(max(1, r.logical_cpus)),
            "mem": float(max(0, mem_mb - mem_reserve_mb(mem_mb))),
            "disk": float(max(0, disk_mb - disk_reserve_mb(disk_mb))),
        },
        {"ports": k.DEFAULT_PORTS},
    )


def read_host(work_dir: str) -> HostReadings:
    """Ask psutil; `work_dir` must exist (its filesystem is the one measured)."""
    import psutil

    return HostReadings(
        logical_cpus=psutil.cpu_count(logical=True) or 1,
        mem_total_bytes=psutil.virtual_memory().total,
        disk_free_bytes=psutil.disk_usage(work_dir).free,
    )


def given_names(text: str) -> set[str]:
    """The resource names in a `--resources` text, including those given as 0 (`gpus:0`),
    which `Resources` does not store but which still replace the probed value."""
    names = set()
    for part in text.split(";"):
        if part.strip():
            names.add(part.partition(":")[0].partition("(")[0].strip())
    return names


def override(probed: Resources, given: Resources, names: set[str] | None = None) -> Resources:
    """`probed` with every resource named in `given` (or in `names`) replaced by the given one."""
    names = given.names() | (names or set())
    return Resources(
        {**{n: v for n, v in probed.scalars.items() if n not in names}, **given.scalars},
        {**{n: v for n, v in probed.ranges.items() if n not in names}, **given.ranges},
        {**{n: v for n, v in probed.sets.items() if n not in names}, **given.sets},
    )


def probe_host(work_dir: str, given_text: str) -> Resources:
    """The agent's total resources: the probed host, overridden by what the operator gave.

    Raises:
        ValidationError: if `given_text` does not parse.
    """
    given, _ = parse_reserved_resources(given_text)  # the total, reserved parts included
    return override(resources_from_readings(read_host(work_dir)), given, given_names(given_text))
