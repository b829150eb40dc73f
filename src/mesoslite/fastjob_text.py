"""What `job submit --wait` prints and how it exits, from plain values (issue 15).

One text for both paths: the click commands (`cli/job.py`, `cli/job_wait.py`) call these
with their views' values, the fast path (`fastjob.py`) with what the master's HTTP submit
streams, so that the two print the same lines and exit with the same codes. Nothing is
imported at the top: the fast path's start pays for every import (`time`, a built-in
module, only where a time is formatted).
"""

# Instance states in the order the progress line counts them (RUNNING comes first, as N/M).
COUNTED = ("STAGING", "WAITING", "BACKOFF", "KILLING", "SUCCEEDED", "FAILED", "KILLED")
TERMINAL = ("SUCCEEDED", "FAILED", "KILLED")
# Job states past which the progress line shows the state instead of counts.
SETTLED = (*TERMINAL, "HEALTHY", "SCHEDULED", "SUSPENDED")
EXIT_OK, EXIT_FAILURE = 0, 1  # `cli/exit_codes.py`'s (a test holds them equal)


def verdict(state: str, job_type: str) -> int | None:
    """`--wait`'s exit code for a job of `job_type` ("batch"...) in `state` ("SUCCEEDED"...),
    else None (still going)."""
    if state == "SUCCEEDED":
        return EXIT_OK
    if state in ("FAILED", "KILLED"):
        return EXIT_FAILURE
    if job_type == "service" and state == "HEALTHY":
        return EXIT_OK
    # A suspended cron job is where it will stay: waiting for it to be SCHEDULED would hang.
    if job_type == "cron" and state in ("SCHEDULED", "SUSPENDED"):
        return EXIT_OK
    return None


def counts_text(counts: dict[str, int], wanted: int, unhealthy: int) -> str:
    """`2/3 running (1 unhealthy), 1 waiting`, from instance counts by state name."""
    running = f"{counts.get('RUNNING', 0)}/{wanted} running"
    if unhealthy:
        running += f" ({unhealthy} unhealthy)"
    others = [f"{n} {s.lower()}" for s in COUNTED if (n := counts.get(s, 0))]
    return ", ".join([running, *others])


def summary_line(
    name: str, state: str, counts: dict[str, int], wanted: int, unhealthy: int,
    next_run_at: float | None, message: str, now: float,
) -> str:
    """`web: 2/3 running, 1 waiting: hostname UNIQUE: ...`; once settled `web: SUCCEEDED`."""
    if state in SETTLED or not sum(counts.values()):
        text = f"{name}: {state}"
        if next_run_at is not None and state not in TERMINAL:
            text += f", next run {format_when(next_run_at, now)}"
    else:
        text = f"{name}: {counts_text(counts, wanted, unhealthy)}"
    return text + (f": {message}" if message else "")


def problem_line(source: str, field: str, message: str) -> str:
    """One problem of a spec as `job validate|submit` print it (a problem of the YAML
    itself has no field, and its message names the file already)."""
    return f"mesoslite: {source}: {field}: {message}" if field else f"mesoslite: {message}"


def format_time(timestamp: float | None) -> str:
    """Local time, `2026-11-25 13:00:00 CET`; `-` if unset."""
    import time

    if timestamp is None or timestamp <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(timestamp))


def format_relative(timestamp: float, now: float) -> str:
    """`in 4m`, `in 2h`, `now`, or `5m ago`."""
    if timestamp <= now:
        if now - timestamp < 1:
            return "now"
        seconds = int(now - timestamp)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds // size}{unit} ago"
        return f"{seconds}s ago"
    seconds = int(timestamp - now)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


def format_when(timestamp: float | None, now: float) -> str:
    """`2026-11-25 13:00:00 CET (in 4m)`; `-` if unset."""
    if timestamp is None or timestamp <= 0:
        return "-"
    return f"{format_time(timestamp)} ({format_relative(timestamp, now)})"
