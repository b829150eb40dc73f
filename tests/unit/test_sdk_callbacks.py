"""The SDK's checks when a driver is made (#17): misspelled callbacks, bad options, and the
first connection's default deadline. No sockets: the driver is only constructed."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest

from mesoslite.errors import ValidationError
from mesoslite.scheduler_api import FrameworkInfo, Scheduler, SchedulerDriver
from mesoslite.scheduler_api.driver import DEFAULT_CONNECT_TIMEOUT_S
from mesoslite.scheduler_api.events import KNOWN_CALLBACKS

INFO = FrameworkInfo(name="t")
SDK_DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


class Misspelled:
    def on_offer(self, driver: object, offers: object) -> None:  # meant on_offers
        pass

    def on_update(self, driver: object, status: object) -> None:
        pass


class Correct:
    def on_offers(self, driver: object, offers: object) -> None:
        pass

    def on_update(self, driver: object, status: object) -> None:
        pass

    on_helper_value = 3  # not callable: not a callback either way

    def handle(self) -> None:  # no `on_` prefix: none of the driver's business
        pass


def test_a_misspelled_callback_is_warned_about_naming_the_closest_known_one() -> None:
    with pytest.warns(
        UserWarning, match=r"Misspelled defines on_offer \(did you mean on_offers\?\)"
    ):
        SchedulerDriver(Misspelled(), INFO)


def test_the_warning_points_at_the_line_that_made_the_driver() -> None:
    with pytest.warns(UserWarning) as record:
        SchedulerDriver(Misspelled(), INFO)
    assert record[0].filename == __file__


def test_strict_callbacks_refuses_a_scheduler_with_an_unknown_callback() -> None:
    with pytest.raises(ValidationError, match=r"^scheduler: Misspelled defines on_offer \(did"):
        SchedulerDriver(Misspelled(), INFO, strict_callbacks=True)


def test_a_name_far_from_every_callback_is_listed_with_the_known_ones() -> None:
    class Odd:
        def on_zzz(self) -> None:
            pass

    with pytest.raises(ValidationError, match=r"defines on_zzz, which .* callbacks are on_sub"):
        SchedulerDriver(Odd(), INFO, strict_callbacks=True)


def test_a_scheduler_with_only_known_callbacks_gets_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SchedulerDriver(Correct(), INFO, strict_callbacks=True)
        SchedulerDriver(Correct(), INFO)


def test_the_known_callbacks_are_the_methods_of_the_scheduler_protocol() -> None:
    declared = {n for n in vars(Scheduler) if n.startswith("on_")}
    assert set(KNOWN_CALLBACKS) == declared
    assert {"on_offers", "on_update", "on_subscribed", "on_error"} <= declared


def test_every_callback_is_documented_in_sdk_md() -> None:
    table = SDK_DOC.read_text().split("## The callbacks", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(on_\w+)\(", table, re.MULTILINE))
    assert documented == set(KNOWN_CALLBACKS)


def test_the_first_connection_has_a_30_second_deadline_by_default() -> None:
    assert DEFAULT_CONNECT_TIMEOUT_S == 30.0
    assert SchedulerDriver(Correct(), INFO).connect_timeout_s == 30.0


@pytest.mark.parametrize("value", [0, -1, math.nan, "30", True])
def test_a_bad_connect_timeout_is_refused_naming_it(value: object) -> None:
    with pytest.raises(ValidationError, match=r"^connect_timeout_s: must be > 0, or None to retry"):
        SchedulerDriver(Correct(), INFO, connect_timeout_s=value)  # type: ignore[arg-type]


def test_retrying_forever_is_an_explicit_choice() -> None:
    assert SchedulerDriver(Correct(), INFO, connect_timeout_s=None).connect_timeout_s is None
    assert (
        SchedulerDriver(Correct(), INFO, connect_timeout_s=math.inf).connect_timeout_s == math.inf
    )


def test_an_unknown_callback_error_policy_is_refused_naming_the_choices() -> None:
    with pytest.raises(
        ValidationError, match=r"on_callback_error: must be 'raise' or 'log', got 'x'"
    ):
        SchedulerDriver(Correct(), INFO, on_callback_error="x")
