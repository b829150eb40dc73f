"""Rules shared by the master and the jobs framework (which must not import the master):
what a role name looks like, and the longest duration anyone may ask for."""

from __future__ import annotations

import re

# "*" or path segments like "eng/ml".
ROLE_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*)$")
# The longest `refuse_seconds`, `failover_timeout_s` or job duration we accept: a year.
MAX_DURATION_S = 365 * 24 * 3600.0
