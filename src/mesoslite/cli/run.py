"""`mesoslite run -- CMD`: run one command on the cluster, stream its output, exit with its code.

It is a tiny framework: it subscribes with failover timeout 0 (so the master kills the task if
this process dies), accepts the first offer that fits, follows the task's output through the
master, and exits with the task's exit code. It fails fast when no agent could ever fit the
task, and after `--placement-timeout` when none has room now.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import click

from mesoslite.cli import exit_codes
from mesoslite.run_exit import exit_code_of

if TYPE_CHECKING:
    from mesoslite.cli._client import OperatorClient
    from mesoslite.model import Offer, TaskStatus
    from mesoslite.resources import Resources
    from mesoslite.scheduler_api import SchedulerDriver

# After a broken output stream, wait this long before following again.
RETRY_S = 0.2
DRAIN_TIMEOUT_S = 10.0
RUN_FAILOVER_S = 10.0
# A task still pending after PENDING_EXPLAIN_S: say why (the allocator's reason, as
# `framework explain` shows it), asking again every EXPLAIN_EVERY_S and saying it again only
# when it changes. PENDING_DEMAND_S before that, `run` tells the master the task's shape
# (a demand) and clears its filters, so that the reason is about the task, not about the
# filters of the offers `run` declined because they were too small.
PENDING_DEMAND_S = 1.5
PENDING_EXPLAIN_S = 2.0
EXPLAIN_EVERY_S = 0.5


class _Refused(click.ClickException):
    """The task cannot be placed; `exit_code` says why (see `exit_codes`)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click types `exit_code` as a ClassVar, but `Command.main` exits with the instance's
        # `e.exit_code`, and the code here depends on the master's answer (`exit_code_for`).
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"mesoslite run: {self.message}", err=True)


class _RunOne:
    """The framework's callbacks: launch one task on the first offer that fits it."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.launched = asyncio.Event()
        # Set once the master took the launch: the task is known to it from then on.
        self.accepted = asyncio.Event()
        self.terminal: asyncio.Future[TaskStatus] = asyncio.get_running_loop().create_future()
        self.agent_id = ""
        # Set before `run` tears its framework down: offers still on their way are then
        # left alone (the teardown returns them), not declined by a framework the master has
        # removed, which failed with "framework ... was removed" (issue 17).
        self.closing = False

    async def on_offers(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        from mesoslite.errors import MesosliteError

        try:
            await self._answer(driver, offers)
        except MesosliteError:
            if not self.closing:
                raise
            # A call that crossed our own teardown: the offers went back with the framework.

    async def _answer(self, driver: SchedulerDriver, offers: list[Offer]) -> None:
        for offer in offers:
            if self.closing:
                return
            if not self.launched.is_set() and offer.resources.contains(self.task.resources):
                self.launched.set()
                self.agent_id = offer.agent_id
                await driver.accept([offer.id], [self.task], refuse_seconds=3600)
                self.accepted.set()
                await driver.suppress()
            else:
                refuse_s = 3600 if self.launched.is_set() else 1
                await driver.decline([offer.id], refuse_seconds=refuse_s)

    def on_update(self, driver: SchedulerDriver, status: TaskStatus) -> None:
        if status.state.terminal and not self.terminal.done():
            self.terminal.set_result(status)

    def on_error(self, driver: SchedulerDriver, message: str) -> None:
        if not self.terminal.done():
            error = _Refused(f"the master ended the run: {message}", exit_codes.EXIT_REJECTED)
            self.terminal.set_exception(error)


class _OutputFollower:
    """Copies the task's stdout and stderr to ours as the master streams them (`FollowFile`).

    A stream that breaks (its agent reconnecting, a master failover) is followed again from
    the byte it got to: while the task runs, for as long as it takes; once it has ended, for
    `DRAIN_TIMEOUT_S`, then the rest of the output is given up with a message.
    """

    def __init__(
        self, client: OperatorClient, task_id: str, framework_id: str,
        terminal: asyncio.Future[TaskStatus],
    ) -> None:
        self.client = client
        self.task_id = task_id
        self.framework_id = framework_id
        self.terminal = terminal
        self.offsets = {"stdout": 0, "stderr": 0}

    async def copy_all(self) -> None:
        await asyncio.gather(self.copy("stdout"), self.copy("stderr"))

    async def copy(self, name: str) -> None:
        """Copy the file to its end; returns once the task has ended and all of it was copied."""
        from mesoslite.errors import MesosliteError

        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            try:
                if await self._copy_stream(name):
                    return
                error = f"the stream of {name} ended early"
            except MesosliteError as e:
                error = e.message
            if self.terminal.done():
                deadline = deadline or loop.time() + DRAIN_TIMEOUT_S
                if loop.time() >= deadline:
                    click.echo(
                        f"mesoslite run: could not read the rest of the output: {error}", err=True
                    )
                    return
            await asyncio.sleep(RETRY_S)

    async def _copy_stream(self, name: str) -> bool:
        """Follow once from the current offset; True if the stream reached the file's end."""
        out = sys.stdout.buffer if name == "stdout" else sys.stderr.buffer
        chunks = self.client.follow_file(
            self.task_id, name, self.offsets[name], framework_id=self.framework_id
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                # A stream starts where asked; skip any overlap rather than print it twice.
                data = chunk.data[max(0, self.offsets[name] - chunk.offset):]
                if data:
                    out.write(data)
                    out.flush()
                    self.offsets[name] += len(data)
                if chunk.end:
                    return True
        return False


async def _first(*aws: Any) -> asyncio.Future[Any]:
    """Wait for the first of `aws` (coroutines or futures) to finish; return it, cancel the
    coroutines of the others (futures passed in are left alone)."""
    futures = [asyncio.ensure_future(a) for a in aws]
    done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    for fut, given in zip(futures, aws, strict=True):
        if fut is not given:
            fut.cancel()
    return next(f for f in futures if f in done)


async def _say_why_pending(
    client: OperatorClient, driver: SchedulerDriver, framework: _RunOne
) -> None:
    """While the task waits for room: after `PENDING_EXPLAIN_S`, print the allocator's
    reason on stderr, and again whenever it changes. Runs until cancelled."""
    from mesoslite.errors import MesosliteError
    from mesoslite.scheduler_api import Demand

    await asyncio.sleep(PENDING_DEMAND_S)
    await driver.request([Demand(framework.task.resources, 1)])
    await driver.revive()
    await asyncio.sleep(PENDING_EXPLAIN_S - PENDING_DEMAND_S)
    said = ""
    while True:
        try:
            reason = (await client.explain_framework(driver.framework_id)).last_reason
        except MesosliteError:
            reason = ""  # the master failing over: ask again, say nothing meanwhile
        if reason and reason != said:
            click.echo(
                f"mesoslite run: task {framework.task.task_id} is pending: {reason}", err=True
            )
            said = reason
        await asyncio.sleep(EXPLAIN_EVERY_S)


async def _wait_launched(
    client: OperatorClient, driver: SchedulerDriver, framework: _RunOne,
    placement_timeout_s: float,
) -> None:
    """Wait for an offer that fits, saying why while there is none; `_Refused` after
    `placement_timeout_s`."""
    explaining = asyncio.ensure_future(_say_why_pending(client, driver, framework))
    try:
        await asyncio.wait_for(framework.launched.wait(), placement_timeout_s)
    except TimeoutError:
        raise _Refused(
            f"no offer could fit the task within {placement_timeout_s:g}s: "
            "the agents that could hold it are busy (see mesoslite agent list)",
            exit_codes.EXIT_TEMPFAIL,
        ) from None
    finally:
        explaining.cancel()
        await asyncio.gather(explaining, return_exceptions=True)


async def _check_fits(client: OperatorClient, wanted: Resources) -> None:
    """Fail at once when no agent could ever hold the task, instead of waiting for offers."""
    from mesoslite.resources import format_resources

    # A disconnected agent may be back soon: after a master failover every agent is
    # disconnected until it re-registers with the new leader.
    agents = [a for a in await client.agents() if a.status in ("active", "disconnected")]
    if not agents:
        raise _Refused(
            "no agents are registered with the master: start one with mesoslite-agent "
            "(or use mesoslite local)",
            exit_codes.EXIT_UNAVAILABLE,
        )
    if not any(a.total.contains(wanted) for a in agents):
        largest = max(agents, key=lambda a: (a.total.scalar("cpus"), a.total.scalar("mem")))
        raise _Refused(
            f"no agent can ever fit {format_resources(wanted)}: "
            f"{'; '.join(largest.total.shortfall(wanted))} "
            f"(largest agent {largest.hostname}: {format_resources(largest.total)})",
            exit_codes.EXIT_REJECTED,
        )


async def _remember_http(client: OperatorClient, master: str) -> None:
    """Cache the master's HTTP port, so that the next runs take the fast path
    (`mesoslite/fastrun_http.py`) even where no convention finds it."""
    from mesoslite.errors import MesosliteError
    from mesoslite.fastrun_http import cache_put

    host, sep, port = master.rpartition(":")
    if not sep or not port.isdigit() or "," in master or "/" in master:
        return  # a zk:// or multi-master spec: the fast path does not take those
    try:
        http = await client._run(client._master_http_address())
    except MesosliteError:
        return  # an old master, or a failover: the next run asks again
    if http:
        cache_put(master, f"{host}:{http.rsplit(':', 1)[1]}")


async def _run(
    master: str, task_args: dict[str, Any], placement_timeout_s: float, grace_s: float
) -> int:
    from mesoslite.cli._client import OperatorClient
    from mesoslite.errors import MesosliteError
    from mesoslite.model import CommandSpec, FrameworkInfo, TaskSpec
    from mesoslite.scheduler_api import SchedulerDriver, TaskId

    client = OperatorClient(master)
    task = TaskSpec(
        task_id=TaskId(task_args["task_id"]),
        command=task_args["command"],
        resources=task_args["resources"],
        name=task_args["name"],
        kill_grace_period_s=grace_s,
    )
    assert isinstance(task.command, CommandSpec)
    framework = _RunOne(task)
    # A short failover timeout: a master restart or a network blip must not kill the task,
    # but if this process dies without a word, the master kills it soon after.
    info = FrameworkInfo(
        name=f"mesoslite-run {task.name}", role=task_args["role"],
        failover_timeout_s=RUN_FAILOVER_S,
    )
    driver = SchedulerDriver(framework, info, master=master, connect_timeout_s=5.0)
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)
    await driver.start()
    try:
        await asyncio.gather(
            _check_fits(client, task.resources), driver.wait_subscribed(10),
            _remember_http(client, master),
        )
        await _wait_launched(client, driver, framework, placement_timeout_s)
        await _first(framework.accepted.wait(), framework.terminal)
        return await _follow(client, driver, framework, interrupted)
    except MesosliteError as e:
        from mesoslite.cli.exit_codes import exit_code_for

        raise _Refused(e.message, exit_code_for(e)) from None
    finally:
        # Tear the framework down: its task has ended (or is killed with it on an error).
        framework.closing = True
        await driver.stop()
        await client.close()


async def _follow(
    client: OperatorClient, driver: SchedulerDriver, framework: _RunOne,
    interrupted: asyncio.Event,
) -> int:
    """Copy the launched task's output until it ends (killing it on a signal); returns the
    exit code `mesoslite run` exits with."""
    from mesoslite.model import TaskState

    task = framework.task
    follower = _OutputFollower(client, task.task_id, driver.framework_id, framework.terminal)
    copying = asyncio.ensure_future(follower.copy_all())
    try:
        stop = asyncio.ensure_future(interrupted.wait())
        killed = await _first(stop, framework.terminal) is stop
        if killed:
            click.echo(f"mesoslite run: killing task {task.task_id}", err=True)
            await driver.kill(task.task_id, agent_id=framework.agent_id)
        stop.cancel()
        status = await framework.terminal
        await copying
        signalled = status.exit_code is not None and status.exit_code < 0
        if status.state != TaskState.FINISHED and (
            status.state != TaskState.FAILED or status.exit_code is None or killed or signalled
        ):
            click.echo(
                f"mesoslite run: task {task.task_id} {status.state.label}"
                f"{': ' + status.message if status.message else ''}",
                err=True,
            )
        return exit_code_of(status, killed)
    finally:
        copying.cancel()  # ends the output streams (the agents stop following)
        await asyncio.gather(copying, return_exceptions=True)


def _check_options(
    cpus: float, mem: float, disk: float, env: tuple[str, ...], placement_timeout_s: float,
    grace_s: float,
) -> tuple[Resources, dict[str, str]]:
    """The task's resources and environment; a `UsageError` names every bad option."""
    from mesoslite.errors import ValidationError
    from mesoslite.resources import Resources

    scalars = {"cpus": cpus, "mem": mem}
    if disk:
        scalars["disk"] = disk
    problems = [f"--{k} must be > 0, got {v:g}" for k, v in scalars.items() if not v > 0]
    problems += [f"--{k} is too large: {v:g}" for k, v in scalars.items() if v > 1e9]
    if placement_timeout_s <= 0 or grace_s < 0:
        problems.append("--placement-timeout must be > 0 and --kill-grace >= 0")
    environment = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"--env must be KEY=VALUE, got {item!r}")
        environment[key] = value
    if problems:
        raise click.UsageError("; ".join(problems))
    try:
        return Resources.of(scalars), environment
    except ValidationError as e:
        raise click.UsageError(e.message) from None


def _check_user(user: str) -> None:
    """A usage error (exit 2) for a malformed `--user` name."""
    if user:
        from mesoslite.agent.users import check_user_name

        problem = check_user_name(user)
        if problem is not None:
            raise click.UsageError(f"--user: {problem}")


@click.command(
    context_settings={"ignore_unknown_options": True},
    short_help="Run one command as a task; exit with its exit code.",
)
@click.option("--cpus", type=float, default=0.1, show_default=True, help="cpus for the task")
@click.option("--mem", type=float, default=32.0, show_default=True, help="memory in MB")
@click.option("--disk", type=float, default=0.0, help="disk in MB")
@click.option("--name", default="", help="task name (default: the command)")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="environment variable")
@click.option("--shell", is_flag=True, help="run the arguments joined as one /bin/sh -c string")
@click.option("--role", default="*", show_default=True, help="the role the task's resources are "
              "allocated to (its weight, quota and reservations apply)")
@click.option(
    "--user",
    default="",
    metavar="NAME",
    help="run the task as this user on the agent (default: the agent's user; an agent "
    "running as root refuses root unless started with --allow-root-tasks)",
)
@click.option(
    "--placement-timeout",
    "placement_timeout_s",
    type=float,
    default=30.0,
    show_default=True,
    help="give up if no agent has room for the task within this many seconds",
)
@click.option(
    "--kill-grace",
    "grace_s",
    type=float,
    default=3.0,
    show_default=True,
    help="seconds between SIGTERM and SIGKILL when the task is killed (Ctrl-C)",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(
    ctx: click.Context,
    cpus: float,
    mem: float,
    disk: float,
    name: str,
    env: tuple[str, ...],
    shell: bool,
    user: str,
    role: str,
    placement_timeout_s: float,
    grace_s: float,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a task on the cluster and exit with its exit code.

    The task's stdout and stderr are streamed here while it runs; Ctrl-C kills it.
    Exit status: the task's own code; 128+N if signal N ended it (143 if it was killed);
    130 after Ctrl-C; 65 if it could not run or no agent can ever fit it; 75 if no agent had
    room within --placement-timeout; 69 if the master cannot be reached.

    Most runs go through a light client to the master's HTTP port (POST /run), which
    behaves the same; see docs/cli.md, "The fast path".

    \b
    Examples:
      mesoslite run -- echo hello
      mesoslite run --cpus 0.5 --mem 64 --name sleepy -- sh -c 'sleep 2; exit 3'
      mesoslite run --shell -- 'echo $HOSTNAME; ls'
      mesoslite run --user nobody -- id -u
    """
    import uuid

    from mesoslite.model import CommandSpec

    resources, environment = _check_options(cpus, mem, disk, env, placement_timeout_s, grace_s)
    _check_user(user)
    cmd = (
        CommandSpec.of_shell(" ".join(command), environment=environment, user=user)
        if shell
        else CommandSpec.of_argv(list(command), environment=environment, user=user)
    )
    task_id = f"run-{uuid.uuid4().hex[:10]}"
    task_args = {
        "task_id": task_id,
        "command": cmd,
        "resources": resources,
        "name": name or " ".join(command)[:200],
        "role": role,
    }
    from mesoslite.discovery import check_master_spec

    # Passed on as given (a list or zk:// too), so that the driver follows a failover.
    master = ctx.obj.master if ctx.obj is not None else "127.0.0.1:5050"
    check_master_spec(master)
    code = asyncio.run(_run(master, task_args, placement_timeout_s, grace_s))
    sys.exit(code)
