"""Defaults of the agent's options and the agent's fixed tunables (seconds in `*_S`)."""

DEFAULT_MASTER = "127.0.0.1:5050"
DEFAULT_WORK_DIR = "/tmp/mesoslite/agent"
# /metrics and /health (agent/http.py).
DEFAULT_HTTP_PORT = 5052
DEFAULT_KILL_GRACE_PERIOD_S = 3.0
DEFAULT_RECONNECT_BACKOFF_MAX_S = 2.0
DEFAULT_STATUS_UPDATE_RETRY_S = 5.0

# Probing: what the agent keeps for the host itself, and the ports it offers by default.
MEM_RESERVE_MAX_MB = 1024  # keep min(1 GiB, 1/8 of total) for the OS and the agent
MEM_RESERVE_FRACTION = 1 / 8
DISK_RESERVE_MAX_MB = 5 * 1024  # keep min(5 GiB, 1/10 of free) on the work dir's filesystem
DISK_RESERVE_FRACTION = 1 / 10
DEFAULT_PORTS = ((31000, 32000),)

# Reconnection to the master: exponential backoff from this first delay.
RECONNECT_BACKOFF_MIN_S = 0.1
# A master that sent no `registered` this long after `register` is treated as gone.
REGISTER_TIMEOUT_S = 10.0
# The master is gone when no ping came for this many ping intervals.
MISSED_PINGS = 3

# Status updates made within this window travel in one message.
STATUS_FLUSH_DELAY_S = 0.001
# Launch at most this many tasks per loop iteration, so that a huge LaunchTasks does not
# stall pings and reaping (a Popen costs ~1 ms).
LAUNCH_CHUNK = 32
# When the agent stops: extra wait for killed tasks beyond their grace period, and how long
# it tries to get their terminal updates acknowledged.
STOP_KILL_SLACK_S = 2.0
STOP_FLUSH_S = 1.0
DEFAULT_SANDBOX_GC_AGE_S = 7 * 24 * 3600.0
# Sandbox GC runs every quarter of its age, at most this far apart.
SANDBOX_GC_MAX_INTERVAL_S = 60.0

# Layout of the work dir.
AGENT_ID_FILE = "agent_id"
SANDBOXES_DIR = "sandboxes"
SANDBOX_FILES = ("stdout", "stderr")
