"""The master's registry: what must survive a master restart (agents, frameworks)."""
