"""`job submit --wait` / `job update --wait`: follow a job until it settles (issue 15).

The master streams the job's summary as it changes (`Jobs.Watch`): counts per instance
state and its state once durable, not a view of every instance, and the last word as soon
as the job ended rather than at the next poll. A master without `Watch` (older) is polled
with `job status` as before (`poll_for`). A stream that breaks (the master failing
over) is opened again on the leader, found through `job status` and its redirects.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mesoslite.cli._client import BlockingOperatorClient
    from mesoslite.jobs.model import JobState, JobType
    from mesoslite.jobs.summary import JobSummary

# How long between two progress summaries while the job's state stays the same.
SUMMARY_INTERVAL_S = 0.5


class NoWatch(Exception):
    """Raised when the master has no `Jobs.Watch` (an older one): poll instead."""


class StillGoing(Exception):
    """Raised when the wait's deadline passed first."""


def watch(client: BlockingOperatorClient, name: str, timeout_s: float | None) -> Iterator[
        JobSummary]:
    """The job's summaries from the master `client` last reached (the leader, once
    something was submitted through it)."""
    import grpc

    from mesoslite._proto.v1 import jobs_pb2
    from mesoslite.cli._client import _map_error
    from mesoslite.jobs.convert import summary_from_pb

    if client._stub is None:  # nothing called yet: let a plain call find the leader
        client.job_status(name)
    request = jobs_pb2.WatchJobRequest(name=name, min_interval_s=SUMMARY_INTERVAL_S)
    call = client._stub.jobs.Watch(request, timeout=timeout_s)
    try:
        for message in call:
            yield summary_from_pb(message)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise NoWatch from None
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and timeout_s is not None:
            raise StillGoing from None
        raise _map_error(exc, client.address, client.timeout_s) from None
    finally:
        call.cancel()


def outcome(s: JobSummary) -> int | None:
    """The exit code of `--wait` once the job is where it waits for (as `job.outcome`)."""
    return verdict(s.state, s.type)


def verdict(state: JobState, type_: JobType) -> int | None:
    """`--wait`'s exit code for a job in `state`, else None: the one rule for a job's view
    (`job.outcome`), a watched summary and the fast path (`fastjob_text.verdict`)."""
    from mesoslite.fastjob_text import verdict as by_name

    return by_name(state.value, type_.value)


def summary_line(s: JobSummary, now: float) -> str:
    """As `job.progress_line`, from a summary (the fast path prints the same line)."""
    from mesoslite.fastjob_text import summary_line as line

    counts = {k.value: n for k, n in s.counts.items()}
    return line(s.name, s.state.value, counts, s.instances_wanted, s.unhealthy,
                s.next_run_at, s.message, now)


class _Progress:
    """The progress line on stderr: rewritten in place on a terminal, else one line per
    change."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.last = tty, ""

    def show(self, line: str) -> None:
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            click.echo("\r" + line[:width] + "\x1b[K", err=True, nl=False)
        elif line != self.last:
            click.echo(line, err=True)
        self.last = line

    def end(self) -> None:
        if self.tty:
            click.echo("", err=True)


def poll_for(
    client: BlockingOperatorClient, name: str, *, timeout_s: float = 0, tty: bool = False,
    said_s: float | None = None,
) -> int:
    """`wait_for` for a master without `Watch`: ask for the job's status every
    `job.WAIT_INTERVAL_S` until `job.outcome` says it is done."""
    from mesoslite.cli import job as job_cli
    from mesoslite.cli.exit_codes import EXIT_TEMPFAIL

    deadline = time.monotonic() + timeout_s if timeout_s else None
    progress = _Progress(tty)
    while True:
        view = client.job_status(name)
        progress.show(job_cli.progress_line(view, time.time()))
        code = job_cli.outcome(view)
        if code is not None or (deadline is not None and time.monotonic() >= deadline):
            progress.end()
            if code is None:
                click.echo(f"mesoslite: job {name} is still {view.state.value} after "
                           f"{timeout_s if said_s is None else said_s:g}s", err=True)
                return EXIT_TEMPFAIL
            return code
        time.sleep(job_cli.WAIT_INTERVAL_S)


def wait_for(
    client: BlockingOperatorClient, name: str, *, timeout_s: float = 0, tty: bool = False,
    said_s: float | None = None,
) -> int:
    """Follow the job until `outcome` says it is done; returns the exit code (75 if
    `timeout_s` passed first; the message names `said_s` if given: the whole `--timeout` of
    a fast-path wait that handed its rest over)."""
    from mesoslite.cli import job as job_cli
    from mesoslite.cli.exit_codes import EXIT_TEMPFAIL
    from mesoslite.errors import UnavailableError

    deadline = time.monotonic() + timeout_s if timeout_s else None
    progress = _Progress(tty)
    state = ""
    while True:
        left = None if deadline is None else max(0.01, deadline - time.monotonic())
        try:
            for summary in watch(client, name, left):
                state = summary.state.value
                progress.show(summary_line(summary, time.time()))
                code = outcome(summary)
                if code is not None:
                    progress.end()
                    return code
        except NoWatch:
            return poll_for(client, name, timeout_s=timeout_s, tty=tty, said_s=said_s)
        except StillGoing:
            progress.end()
            said = timeout_s if said_s is None else said_s
            click.echo(f"mesoslite: job {name} is still {state} after {said:g}s", err=True)
            return EXIT_TEMPFAIL
        except UnavailableError:
            # The stream broke (a failover?): find the leader the way every call does,
            # then watch again; a master that stays away ends the wait with its error.
            time.sleep(job_cli.WAIT_INTERVAL_S)
            client._drop_channel()
            client.job_status(name)
