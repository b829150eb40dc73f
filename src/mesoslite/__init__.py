"""mesoslite: a Mesos-style two-level cluster scheduler."""

__version__ = "0.1.0"
