"""The agent daemon: probes its host, runs tasks as processes, reports their status."""
