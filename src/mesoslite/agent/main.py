"""`mesoslite-agent`: parse the configuration, probe the host, serve the master until signalled."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import click

from mesoslite import __version__
from mesoslite.agent.config import AgentConfig, parse_attributes
from mesoslite.agent.users import RunAsPolicy
from mesoslite.config import click_options
from mesoslite.daemon import run_daemon
from mesoslite.errors import ConfigError

logger = logging.getLogger("mesoslite.agent")


async def serve(config: AgentConfig) -> None:
    """Run the agent until SIGTERM/SIGINT; then leave its tasks running for the next agent
    (`--recover=reconnect`) or kill them and report them (`--recover=cleanup`)."""
    from mesoslite.agent.actor import AgentActor
    from mesoslite.agent.master_link import MasterLink
    from mesoslite.agent.probe import probe_host
    from mesoslite.grpc_probes import start_probe_server
    from mesoslite.resources import parse_reserved_resources

    client, serving = _securities(config)
    work_dir = Path(config.work_dir)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--work-dir: cannot create {work_dir}: {e.strerror or e}") from None
    resources = probe_host(str(work_dir), config.resources)
    actor = AgentActor(
        work_dir=work_dir,
        hostname=config.hostname,
        resources=resources,
        attributes=parse_attributes(config.attributes),
        kill_grace_period_s=config.kill_grace_period_s,
        status_update_retry_s=config.status_update_retry_s,
        recover=config.recover,
        sandbox_gc_age_s=config.sandbox_gc_age_s,
        reserved=parse_reserved_resources(config.resources)[1],
        users=RunAsPolicy(config.switch_user, config.allow_root_tasks),
        task_launcher=config.task_launcher,
    )
    link = MasterLink(
        config.master, actor, backoff_max_s=config.reconnect_backoff_max_s, security=client
    )
    # Before the actor starts: a port in use ends the agent before it touches any task.
    # Health (SERVING once registered with a master) and reflection, for probes.
    probes = await start_probe_server(
        config.grpc_address, lambda: actor.connected, security=serving)
    http = await _start_http(config, actor, work_dir, serving)
    actor.start(link)
    logger.info(
        "agent starting agent_id=%s master=%s resources=%s attributes=%r work_dir=%s grpc=%s",
        actor.agent_id or "(new)", link.address, resources, config.attributes, work_dir,
        probes.address,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(link.run(), name="master-link")
    try:
        await stop.wait()
    finally:
        logger.info("agent stopping")
        if http is not None:
            await http.stop()
        await actor.stop()
        runner.cancel()
        await link.close()
        await asyncio.gather(runner, return_exceptions=True)
        await probes.stop()
    logger.info("agent stopped")


def _securities(config: AgentConfig) -> tuple[Any, Any]:
    """The agent's `Security` towards the master (TLS and credentials) and for what it serves;
    checked before anything listens (TLS files, plain text off loopback, credentials)."""
    from mesoslite.security.tls import check_plain_text_bind
    from mesoslite.tls_settings import daemon_security
    from mesoslite.transport import PLAIN, client_security

    security = daemon_security(config)
    # With --tls-ca alone the agent is a TLS client of the master but serves in plain text.
    serving = security if security.tls_cert else PLAIN
    binds = [("--grpc-address", config.grpc_address.rpartition(":")[0])]
    if config.http_port >= 0:
        binds.append(("--http-host", config.http_host))
    check_plain_text_bind(binds, serving, config.insecure)
    return client_security(config.principal, config.secret_file, base=security), serving


async def _start_http(config: AgentConfig, actor: Any, work_dir: Path, security: Any) -> Any:
    """`/metrics` and `/health` on `--http-port` (None with -1); HTTPS with TLS."""
    if config.http_port < 0:
        return None
    from mesoslite.agent.http import AgentHttpServer
    from mesoslite.security.tls import server_ssl_context

    http = AgentHttpServer(
        actor, config.http_host, config.http_port, server_ssl_context(security)
    )
    await http.start()
    _write_http_port(work_dir, http.port)
    return http


def _write_http_port(work_dir: Path, port: int) -> None:
    """`http.json` in the work dir: the port `/metrics` and `/health` are on (0 picks one)."""
    import json

    (work_dir / "http.json").write_text(json.dumps({"port": port}))


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="YAML file of options"
)
@click.option("--print-config", is_flag=True, help="print the effective options and exit")
@click.version_option(__version__, prog_name="mesoslite-agent")
@click_options(AgentConfig, "agent")
def main(config_path: str | None, print_config: bool, **flags: Any) -> None:
    """Run a mesoslite agent: it offers this host's resources to a master and runs its tasks.

    Options are read from defaults, then --config YAML, then MESOSLITE_AGENT_* environment
    variables, then flags. Resources not given with --resources are probed from the host.

    Tasks outlive the agent: with --recover=reconnect (the default) an agent that stops
    (SIGTERM, SIGINT, even SIGKILL) leaves its tasks running, and the next agent started
    with the same --work-dir re-adopts them, reports the exit codes of those that ended
    meanwhile, resends unacknowledged status updates and keeps the agent id. With
    --recover=cleanup the agent kills its tasks when it stops (SIGTERM, then SIGKILL after
    the grace period) and kills any it finds when it starts.
    """
    from mesoslite.logging import quiet_grpc_core

    quiet_grpc_core()
    run_daemon(
        AgentConfig, "agent", serve,
        flags=flags, config_path=config_path, print_config=print_config,
    )


if __name__ == "__main__":
    main()
