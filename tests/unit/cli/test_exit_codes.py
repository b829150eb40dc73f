"""Each kind of error maps to its documented exit code."""

from __future__ import annotations

import pytest

from mesoslite import errors
from mesoslite.cli import exit_codes as ec


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ValidationError("x", "bad"), ec.EXIT_USAGE),
        (errors.UnknownTaskError("task 't' is not known"), ec.EXIT_NOT_FOUND),
        (errors.NotFoundError("gone"), ec.EXIT_NOT_FOUND),
        (errors.ConflictError("not yours"), ec.EXIT_REJECTED),
        (errors.AlreadyExistsError("taken"), ec.EXIT_REJECTED),
        (errors.PermissionDeniedError("no"), ec.EXIT_NOPERM),
        (errors.UnavailableError("down"), ec.EXIT_UNAVAILABLE),
        (errors.NotLeaderError("not leading", ""), ec.EXIT_UNAVAILABLE),
        (errors.DeadlineExceededError("slow"), ec.EXIT_TEMPFAIL),
        (errors.ResourceExhaustedError("message too large"), ec.EXIT_USAGE),
        (errors.MesosliteError("boom"), ec.EXIT_INTERNAL),
    ],
)
def test_errors_map_to_their_exit_codes(error: errors.MesosliteError, code: int) -> None:
    assert ec.exit_code_for(error) == code


def test_exit_codes_are_distinct_and_fit_in_a_byte() -> None:
    codes = [v for k, v in vars(ec).items() if k.startswith("EXIT_")]
    assert len(codes) == len(set(codes))
    assert all(0 <= c < 256 for c in codes)
    assert (ec.EXIT_OK, ec.EXIT_USAGE, ec.EXIT_REJECTED, ec.EXIT_NOT_FOUND,
            ec.EXIT_UNAVAILABLE) == (0, 2, 65, 66, 69)
