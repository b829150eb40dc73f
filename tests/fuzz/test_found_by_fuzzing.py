"""Regressions for what fuzzing found, each checked without a cluster."""

from __future__ import annotations

import re

import pytest

from mesoslite.errors import ValidationError
from mesoslite.jobs.spec_yaml import load_spec_yaml


def test_deep_flow_nesting_is_refused_while_scanning_not_after_a_second() -> None:
    # PyYAML's scanner is quadratic in flow depth: 1000 levels of `[` held the master's loop
    # ~1 s per request before the depth check moved into the scanner. Where the error points
    # says how far it read: the 65th `[` now (it was column 1092, where the composer stopped).
    spec = "name: x\ntype: batch\ncommand: a\nlabels: " + "[" * 100_000
    with pytest.raises(ValidationError, match="nested more than 64 levels deep") as info:
        load_spec_yaml(spec, "job.yaml")
    column = int(re.search(r"line 4, column (\d+)", info.value.message).group(1))  # type: ignore[union-attr]
    assert column <= len("labels: ") + 65 + 1


def test_a_status_message_is_cut_to_what_a_grpc_trailer_can_carry() -> None:
    from mesoslite.security.limits_interceptor import MAX_DETAILS_BYTES, cut_details

    assert cut_details("short") == "short"
    long = "unknown key 'é" + "é" * 10_000
    cut = cut_details(long)
    assert cut.startswith("unknown key 'éé") and cut.endswith("more bytes cut)")
    assert len(cut.encode()) <= MAX_DETAILS_BYTES + 40
    assert "\ufffd" not in cut  # never a broken character at the cut
