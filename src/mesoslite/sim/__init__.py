"""The trace-driven simulator: the real allocator and master bookkeeping in virtual time."""
