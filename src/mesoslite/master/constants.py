"""Defaults of the master's options (seconds in `*_S`)."""

# The longest `refuse_seconds` or `failover_timeout_s` we accept (a year) is a rule shared
# with the jobs framework, kept in `limits`.
from mesoslite.limits import MAX_DURATION_S as MAX_DURATION_S

DEFAULT_PORT = 5050
DEFAULT_HOST = "127.0.0.1"
# The web UI, /state, /health and /metrics (master/http/).
DEFAULT_HTTP_PORT = 5051
DEFAULT_WORK_DIR = "/tmp/mesoslite/master"
DEFAULT_ALLOCATOR = "drf"
DEFAULT_ALLOCATION_INTERVAL_S = 1.0
# Coalesce event-driven allocation passes over this window.
ALLOCATION_BATCH_S = 0.002
DEFAULT_OFFER_TIMEOUT_S = 30.0
DEFAULT_AGENT_REREGISTER_TIMEOUT_S = 10.0
DEFAULT_AGENT_PING_INTERVAL_S = 2.0
# An agent silent for AGENT_PING_TIMEOUT_S x MAX_AGENT_PING_TIMEOUTS is unreachable.
DEFAULT_AGENT_PING_TIMEOUT_S = 5.0
DEFAULT_MAX_AGENT_PING_TIMEOUTS = 3
DEFAULT_ZK_SESSION_TIMEOUT_S = 10.0
DEFAULT_FRAMEWORK_HEARTBEAT_INTERVAL_S = 5.0
TICK_INTERVAL_S = 0.1
# Completed tasks and frameworks kept in memory for `task list --all`.
MAX_COMPLETED_TASKS = 10_000
MAX_COMPLETED_FRAMEWORKS = 1_000
READ_FILE_TIMEOUT_S = 5.0
MAX_READ_LENGTH = 1024 * 1024
# How long a master that lost leadership has for its orderly shutdown before the
# watchdog ends it (a stuck registry call must not keep a deposed leader alive).
EXIT_GRACE_S = 3.0
