"""`frozen.maker` builds the same object as the dataclass's `__init__`, and refuses what it
cannot build faithfully."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from mesoslite.frozen import maker
from mesoslite.model import CommandSpec, Offer, StatusSource, TaskSpec, TaskState, TaskStatus
from mesoslite.resources import Resources, parse_resources


def _all_fields(obj: object) -> list[object]:
    return [getattr(obj, f.name) for f in dataclasses.fields(obj)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "obj",
    [
        TaskSpec("t1", CommandSpec.of_shell("true"), parse_resources("cpus:1"), agent_id="a1"),
        TaskStatus("t1", "f1", "a1", TaskState.FINISHED, source=StatusSource.AGENT, timestamp=2.5),
        Offer("o1", "f1", "a1", "h", parse_resources("cpus:1;mem:2"), {"rack": "r1"}, {}, "r"),
        parse_resources("cpus:1;ports:[1-2];disks:{a}"),
    ],
)
def test_a_made_object_equals_the_one_its_init_makes(obj: object) -> None:
    made = maker(type(obj))(*_all_fields(obj))
    assert type(made) is type(obj)
    assert made == obj
    assert repr(made) == repr(obj)


def test_every_field_must_be_given() -> None:
    with pytest.raises(TypeError):
        maker(TaskSpec)("t1", CommandSpec.of_shell("true"), Resources.empty())


def test_classes_it_cannot_build_faithfully_are_refused() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int
        b: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a")

    with pytest.raises(TypeError, match="slotted"):
        maker(NoSlots)
    with pytest.raises(TypeError, match="__post_init__"):
        maker(Checked)
