"""Every daemon a test starts serves HTTP on a free port unless it asks for one: the defaults
(5051, 5052) would clash between the masters and agents that tests run side by side."""

import os

os.environ.setdefault("MESOSLITE_MASTER_HTTP_PORT", "0")
os.environ.setdefault("MESOSLITE_AGENT_HTTP_PORT", "0")
