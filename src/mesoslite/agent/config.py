"""The agent's options: one frozen dataclass from which flags, YAML keys and env names derive."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from mesoslite.agent import constants as k
from mesoslite.config import option
from mesoslite.errors import ValidationError
from mesoslite.limits import check_range, range_limit
from mesoslite.resources import parse_name_values, parse_reserved_resources

ATTRIBUTE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def parse_attributes(text: str, field: str = "attributes") -> dict[str, str]:
    """Parse `rack:r1;zone:z1` into `{"rack": "r1", "zone": "z1"}`.

    Raises:
        ValidationError: naming the part that is wrong.
    """
    out: dict[str, str] = {}
    for name, value in parse_name_values(text, field):
        if not ATTRIBUTE_NAME_RE.match(name):
            raise ValidationError(
                field, f"name {name!r} is not valid (a letter, then letters, digits, _ . -)"
            )
        if name in out:
            raise ValidationError(field, f"{name} is given twice")
        out[name] = value
    return out


def _problem(e: ValidationError, field: str) -> str:
    """The error text without its field path: the config layer names the flag already."""
    for prefix in (f"{field}: ", f"{field}."):
        if e.message.startswith(prefix):
            return e.message[len(prefix) :]
    return e.message


def _check_resources(text: str) -> str | None:
    try:
        total, _ = parse_reserved_resources(text)
        # The master refuses an agent whose ranges run past their limit (ports: 65535).
        for name, ranges in total.ranges.items():
            for begin, end in ranges:
                check_range(name, begin, end, range_limit(name))
    except ValidationError as e:
        return _problem(e, "resources")
    return None


def _check_attributes(text: str) -> str | None:
    try:
        parse_attributes(text)
    except ValidationError as e:
        return _problem(e, "attributes")
    return None


def _check_master(text: str) -> str | None:
    from mesoslite.discovery import check_master_spec

    try:
        check_master_spec(text)
    except ValidationError as e:
        return _problem(e, "master")
    return None


def _check_grpc_address(text: str) -> str | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return f"must be HOST:PORT with a port from 0 to 65535, got {text!r}"
    return None


def _check_hostname(text: str) -> str | None:
    return None if text.strip() else "must not be empty"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    master: str = option(
        k.DEFAULT_MASTER,
        "the master: HOST:PORT, a list HOST:PORT,HOST:PORT (a standby redirects to the "
        "leader), or zk://HOST:PORT[,...]/PATH (the leader in ZooKeeper)",
        check=_check_master,
    )
    work_dir: str = option(k.DEFAULT_WORK_DIR, "directory for the agent id and task sandboxes")
    resources: str = option(
        "",
        "resources to offer, e.g. 'cpus:4;mem:1024;disk:10000;ports:[31000-32000]'; each one "
        "given replaces the probed one of that name, the others are probed from the host; "
        "NAME(ROLE):VALUE reserves that much for a role, e.g. 'cpus(ml):4;cpus:2'",
        check=_check_resources,
    )
    attributes: str = option("", "attributes, e.g. 'rack:r1;zone:z1'", check=_check_attributes)
    hostname: str = option(
        socket.gethostname(), "the host name reported to the master", check=_check_hostname
    )
    kill_grace_period_s: float = option(
        k.DEFAULT_KILL_GRACE_PERIOD_S,
        "seconds between SIGTERM and SIGKILL when a kill gives no grace period of its own",
        min=0,
        max=3600,
    )
    reconnect_backoff_max_s: float = option(
        k.DEFAULT_RECONNECT_BACKOFF_MAX_S,
        "longest wait between attempts to reach the master (backoff starts at 0.1s)",
        min=0.1,
        max=3600,
    )
    status_update_retry_s: float = option(
        k.DEFAULT_STATUS_UPDATE_RETRY_S,
        "resend status updates not acknowledged after this many seconds",
        min=0.05,
        max=3600,
    )
    sandbox_gc_age_s: float = option(
        k.DEFAULT_SANDBOX_GC_AGE_S,
        "remove the sandbox of a task the agent is done with once unchanged this long, "
        "sooner as the work dir's disk fills (age x (0.9 - used fraction)); 0 keeps them",
        min=0,
        max=10 * 365 * 86400,
    )
    recover: str = option(
        "reconnect",
        "'reconnect': tasks outlive the agent; on start it re-adopts them from --work-dir "
        "and learns the exit codes of those that ended meanwhile. 'cleanup': on start it "
        "kills the tasks it finds, and on stop it kills its tasks",
        choices=("reconnect", "cleanup"),
    )
    http_port: int = option(
        k.DEFAULT_HTTP_PORT,
        "HTTP port for /metrics and /health (0 picks a free one and logs it; -1 serves no HTTP)",
        min=-1,
        max=65535,
    )
    http_host: str = option(
        "127.0.0.1", "address to bind --http-port on (0.0.0.0 for all interfaces)"
    )
    # ---- authentication (#14, docs/security.md)
    principal: str = option(
        "", "the principal this agent authenticates as to a master that has --credentials"
    )
    secret_file: str = option(
        "", "file whose first line is --principal's secret (never put the secret itself in a "
        "flag, env or config: they show in `ps` and --print-config)",
    )
    log_level: str = option("info", "log level", choices=("debug", "info", "warning", "error"))
    log_format: str = option("text", "log format", choices=("text", "json"))
    grpc_address: str = option(
        "127.0.0.1:0",
        "HOST:PORT where the agent serves gRPC health checking and reflection, for probes "
        "(port 0 picks a free one, logged at start)",
        check=_check_grpc_address,
    )
    # ---- TLS (issue 14; docs/security.md).
    tls_cert: str = option(
        "", "PEM certificate the agent presents to the master (mutual TLS) and serves its "
        "probe gRPC and HTTP with"
    )
    tls_key: str = option("", "PEM private key of --tls-cert")
    tls_ca: str = option(
        "", "PEM CA certificate the master's certificate must be signed by (TLS to the "
        "master on); probe clients must present a certificate it signed"
    )
    insecure: bool = option(
        False, "allow plain text (no --tls-cert) when --grpc-address or --http-host is not "
        "a loopback address"
    )
    switch_user: bool = option(
        True,
        "run each task as the user it names (CommandInfo.user, else its framework's user); "
        "needs an agent running as root. --no-switch-user runs every task as the agent's user",
    )
    allow_root_tasks: bool = option(
        True,
        "let a root agent run tasks as root (tasks naming root, and tasks naming no user) "
        "when the master allows it (its run_as ACL refuses root by default once "
        "authentication is on); --no-allow-root-tasks refuses them here whatever the master "
        "says: they fail (TASK_FAILED) saying why",
    )
    # ---- task launch (issue 15; docs/agent.md)
    task_launcher: str = option(
        "supervisor",
        "'supervisor' (the default): one long-lived process per agent (C, compiled into "
        "--work-dir/bin with cc when the agent starts) is the parent of every task and records "
        "its exit code, so a task costs one process; 'wrapper': a small wrapper process per "
        "task does that (about twice the agent's CPU per task). Without a C compiler, or if "
        "the supervisor cannot start, the agent logs a warning and uses the wrapper",
        choices=("supervisor", "wrapper"),
    )
