"""`mesoslite-master`: parse the configuration, start the servers, run until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mesoslite import __version__
from mesoslite.config import click_options
from mesoslite.daemon import run_daemon
from mesoslite.errors import MesosliteError
from mesoslite.master.config import MasterConfig
from mesoslite.master.constants import EXIT_GRACE_S

# How long an orderly stop waits for registry writes in flight before leaving the election.
HANDOVER_SETTLE_S = 2.0

if TYPE_CHECKING:
    from mesoslite.master.build import Master
    from mesoslite.model import MasterInfo

logger = logging.getLogger("mesoslite.master")

class LeadershipLostError(MesosliteError):
    """Raised when a leading master lost leadership for good; it exits (code 1) so that a
    supervisor restarts it as a standby, as Mesos's master does."""


async def serve(config: MasterConfig) -> None:
    """Run the master until cancelled or signalled (or, in HA, until deposed)."""
    from mesoslite.master.build import build_master
    from mesoslite.master.leadership import ExitWatchdog, LeadershipFollower, Stopping

    master = build_master(config)
    leadership, actor = master.leadership, master.actor
    stopping, watchdog = Stopping(), ExitWatchdog()

    def fenced(reason: str) -> None:
        if stopping.event.is_set() and not stopping.lost:
            return  # our own hand-over deleted the znode: a write refused then is no loss
        leadership.leading = False
        stopping.lose(f"another master took the registry over ({reason})")
        watchdog.arm(EXIT_GRACE_S, stopping.lost[-1])

    master.on_fenced.append(fenced)
    if not config.zk:
        # Standalone: recover before serving, so that the first call finds a leader.
        await actor.start()
        leadership.leading, leadership.reason = True, ""
    await master.servers.start()
    if leadership.leading:
        await master.jobs.start()
    info_file = master.work_dir / "master.json"
    _write_info(info_file, master.info, leadership.leading, _http_address(master))
    logger.info(
        "master listening address=%s allocator=%s work_dir=%s zk=%s",
        master.info.address, config.allocator, master.work_dir, config.zk or "(standalone)",
    )
    follower = LeadershipFollower(
        master.contender, leadership, actor,
        start_leading=master.jobs.start,
        changed=lambda: _write_info(
            info_file, master.info, leadership.leading, _http_address(master)
        ),
        watchdog=watchdog, stopping=stopping, session_timeout_s=config.zk_session_timeout_s,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.event.set)
    loop.add_signal_handler(signal.SIGHUP, master.authz.reload)  # `--acls` (#14)
    await master.contender.start()
    following = asyncio.create_task(follower.run(), name="leadership")
    try:
        await stopping.event.wait()
    finally:
        logger.info("master stopping")
        if stopping.lost:
            watchdog.arm(EXIT_GRACE_S, f"no longer leading: {stopping.lost[0]}")
        await _shut_down(master, following, info_file)
    if stopping.lost:
        raise LeadershipLostError(f"no longer leading: {stopping.lost[0]}; exiting")


async def _shut_down(master: Master, following: asyncio.Task[None], info_file: Path) -> None:
    """The orderly stop: leadership goes first, so a standby leads at once (#15); then the
    slow steps (the jobs framework, gRPC's grace, the actor)."""
    from mesoslite.master.leadership import hand_over

    leadership = master.leadership
    was_leading, leadership.leading = leadership.leading, False
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    await hand_over(
        leadership, master.actor, master.contender, was_leading=was_leading,
        settle_s=HANDOVER_SETTLE_S,
        changed=lambda: _write_info(info_file, master.info, False, _http_address(master)),
    )
    await master.jobs.stop()
    await master.servers.stop(grace_s=1.0)
    await master.actor.stop()
    info_file.unlink(missing_ok=True)
    logger.info("master stopped")


def _http_address(master: Any) -> str:
    http = master.servers.http
    return http.src.http_address if http is not None else ""


def _write_info(path: Path, info: MasterInfo, leading: bool, http_address: str = "") -> None:
    """`master.json` in the work dir: where this master listens (gRPC, and HTTP as
    `http_address`, '' without) and whether it leads."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "address": info.address, "pid": os.getpid(), "id": info.id, "leading": leading,
        "http_address": http_address,
    }))
    tmp.replace(path)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of options"
)
@click.option("--print-config", is_flag=True, help="print the effective options and exit")
@click.version_option(__version__, prog_name="mesoslite-master")
@click_options(MasterConfig, "master")
def main(config_path: str | None, print_config: bool, **flags: Any) -> None:
    """Run a mesoslite master: it turns agents' resources into offers for frameworks.

    Options are read from defaults, then --config YAML, then MESOSLITE_MASTER_* environment
    variables, then flags.
    """
    from mesoslite.logging import quiet_grpc_core

    quiet_grpc_core()
    # A deposed leader exits 1, so that a supervisor restarts it as a standby.
    run_daemon(
        MasterConfig, "master", serve,
        flags=flags, config_path=config_path, print_config=print_config,
        exit_codes={LeadershipLostError: 1},
    )


if __name__ == "__main__":
    main()
