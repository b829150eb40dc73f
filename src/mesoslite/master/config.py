"""The master's options: one frozen dataclass from which flags, YAML keys and env names derive."""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.config import option
from mesoslite.master import constants as k


def _check_zk(text: str) -> str | None:
    if not text:
        return None
    from mesoslite.discovery import parse_zk_url
    from mesoslite.errors import ValidationError

    try:
        parse_zk_url(text)
    except ValidationError as e:
        return e.message.removeprefix("zk: ")
    return None


def _check_allocator_options(text: str) -> str | None:
    from mesoslite.allocator.loader import parse_allocator_options
    from mesoslite.errors import ConfigError

    try:
        parse_allocator_options(text, "")
    except ConfigError as e:
        return str(e).removeprefix(": ")
    return None


def _check_roles(text: str) -> str | None:
    from mesoslite.errors import ValidationError
    from mesoslite.master.validation import check_role_value

    roles = [r.strip() for r in text.split(",")]
    if not text.strip():
        return "give at least one role"
    try:
        for role in roles:
            check_role_value("jobs_roles", role)
    except ValidationError as e:
        return e.message.removeprefix("jobs_roles: ")
    if len(set(roles)) != len(roles):
        return "a role appears twice"
    return None


@dataclass(frozen=True, slots=True)
class MasterConfig:
    host: str = option(k.DEFAULT_HOST, "address to bind gRPC on (0.0.0.0 for all interfaces)")
    port: int = option(k.DEFAULT_PORT, "gRPC port (0 picks a free one)", min=0, max=65535)
    advertise_address: str = option("", "host:port that clients should use; default HOST:PORT")
    work_dir: str = option(k.DEFAULT_WORK_DIR, "directory for the registry and master.json")
    zk: str = option(
        "",
        "zk://HOST:PORT[,HOST:PORT...]/PATH: elect a leader and keep the registry in "
        "ZooKeeper (HA); empty runs standalone with SQLite in the work dir",
        check=_check_zk,
    )
    zk_session_timeout_s: float = option(
        k.DEFAULT_ZK_SESSION_TIMEOUT_S,
        "ZooKeeper session timeout: how long a leader cut off from ZooKeeper keeps its place",
        min=0.5, max=600,
    )
    allocator: str = option(k.DEFAULT_ALLOCATOR, "allocator name or package.module:Class")
    allocator_options: str = option(
        "", "the allocator's options, KEY=VALUE[,KEY=VALUE], e.g. resource=mem for fair",
        check=_check_allocator_options,
    )
    allocation_interval_s: float = option(
        k.DEFAULT_ALLOCATION_INTERVAL_S, "seconds between periodic allocation passes",
        min=0.01, max=3600,
    )
    offer_timeout_s: float = option(
        k.DEFAULT_OFFER_TIMEOUT_S, "rescind offers unused for this long (0 disables)",
        min=0, max=86400,
    )
    agent_reregister_timeout_s: float = option(
        k.DEFAULT_AGENT_REREGISTER_TIMEOUT_S,
        "seconds a disconnected agent has to come back before its tasks are unreachable",
        min=0, max=86400,
    )
    agent_ping_interval_s: float = option(
        k.DEFAULT_AGENT_PING_INTERVAL_S, "seconds between pings to agents", min=0.05, max=3600
    )
    agent_ping_timeout_s: float = option(
        k.DEFAULT_AGENT_PING_TIMEOUT_S,
        "an agent from which nothing (no pong, no update) came for this long has missed a "
        "ping; see --max-agent-ping-timeouts",
        min=0.05, max=3600,
    )
    max_agent_ping_timeouts: int = option(
        k.DEFAULT_MAX_AGENT_PING_TIMEOUTS,
        "missed pings in a row after which an agent is unreachable: its stream is closed and "
        "its tasks are TASK_UNREACHABLE until it registers again",
        min=1, max=1000,
    )
    framework_heartbeat_interval_s: float = option(
        k.DEFAULT_FRAMEWORK_HEARTBEAT_INTERVAL_S, "seconds between heartbeats to frameworks",
        min=0.05, max=3600,
    )
    seed: int = option(0, "seed for the allocator's tie breaking", min=0)
    jobs: bool = option(
        True, "run the built-in jobs framework (`mesoslite job ...`) while this master leads"
    )
    jobs_roles: str = option(
        "*", "the roles the jobs framework always holds, comma-separated; it also takes on "
        "the role each submitted job names (its spec's `role`)", check=_check_roles,
    )
    job_retention_s: float = option(
        7 * 24 * 3600.0, "seconds an ended job (SUCCEEDED, FAILED, KILLED) is kept before the "
        "jobs framework removes it; 0 keeps ended jobs until `mesoslite job remove`",
        min=0, max=10 * 365 * 24 * 3600,
    )
    preemption_grace_s: float = option(
        30.0, "seconds a higher priority tier's work may wait, fitting on no agent, before "
        "tasks of lower preemptible tiers are preempted for it (see `mesoslite role "
        "set-priority`); 0 disables preemption", min=0, max=86400,
    )
    http_port: int = option(
        k.DEFAULT_HTTP_PORT,
        "HTTP port on --host for the web UI, /state, /health and /metrics (0 picks a free one "
        "and logs it; -1 serves no HTTP)",
        min=-1, max=65535,
    )
    # ---- authentication and authorization (#14, docs/security.md)
    credentials: str = option(
        "", "file of principals and their secret hashes (`mesoslite credentials hash`); set: "
        "every call (gRPC, and HTTP but /health) must authenticate",
    )
    acls: str = option(
        "", "YAML file of ACL rules (who may register in which role, run as which user, kill "
        "what...); reloaded on SIGHUP, a bad file keeping the rules in force",
    )
    # Limits per caller (issue 14, docs/limits.md; `security/limits*.py`). Rate limits are
    # off by default: without authentication every client of one host is one caller (its
    # peer host), so any default would throttle all of a host's frameworks together.
    rate_limit_qps: float = option(
        0.0, "mutating calls per second each caller (principal, else peer host) may make; "
        "over it: RESOURCE_EXHAUSTED with retry-after (0: no limit)", min=0, max=1e6,
    )
    rate_limit_burst: float = option(
        0.0, "mutating calls a caller may make at once above --rate-limit-qps "
        "(0: twice the qps)", min=0, max=1e7,
    )
    rate_limit_read_qps: float = option(
        0.0, "read calls (state, files, job lists) per second per caller (0: no limit)",
        min=0, max=1e6,
    )
    rate_limit_read_burst: float = option(
        0.0, "read calls a caller may make at once (0: twice --rate-limit-read-qps)",
        min=0, max=1e7,
    )
    max_frameworks: int = option(
        10_000, "frameworks registered at once (0: no cap); a new one over it is refused "
        "with RESOURCE_EXHAUSTED", min=0, max=10_000_000,
    )
    max_tasks_per_accept: int = option(
        100_000, "tasks one Accept may launch; more is INVALID_ARGUMENT", min=1, max=100_000,
    )
    max_streams_per_caller: int = option(
        1000, "open streams (subscriptions, file follows, agent links) per caller (0: no "
        "cap); one more is RESOURCE_EXHAUSTED", min=0, max=1_000_000,
    )
    log_level: str = option("info", "log level", choices=("debug", "info", "warning", "error"))
    log_format: str = option("text", "log format", choices=("text", "json"))
    # ---- TLS and ZooKeeper auth (issue 14; docs/security.md).
    tls_cert: str = option("", "PEM certificate to serve gRPC and HTTP with (TLS on)")
    tls_key: str = option("", "PEM private key of --tls-cert")
    tls_ca: str = option(
        "", "PEM CA certificate: gRPC clients (agents, frameworks, the CLI) must present a "
        "certificate it signed (mutual TLS)"
    )
    insecure: bool = option(
        False, "allow plain text (no --tls-cert) when --host is not a loopback address"
    )
    zk_auth_file: str = option(
        "", "file holding USER:PASSWORD for ZooKeeper digest auth; the registry's znodes are "
        "then readable by that user only"
    )
