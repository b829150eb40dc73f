"""The master's HTTP surface: web UI, `/state`, `/health`, `/metrics`, live events, task files."""
