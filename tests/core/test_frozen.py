"""`reapi._frozen.quick_init`: a frozen, slotted dataclass built by its slots' descriptors, as
the generated `__init__` builds it (values, defaults, factories, keyword-only fields, errors,
the signature), and still frozen."""

import dataclasses
import inspect
from dataclasses import InitVar, dataclass, field

import pytest

from reapi._engine import Outcome
from reapi._frozen import quick_init
from reapi.core import AttemptEnd, ImageParams, Shape
from reapi.providers import GeneratedFile, ImageResult, UpstreamRequest, UpstreamResponse


def _kinds(decorate):
    @dataclass(frozen=True, slots=True)
    class Base:
        first: int
        second: str = "two"

    @dataclass(frozen=True, slots=True)
    class Sample(Base):
        third: list[int] = field(default_factory=list)
        fourth: tuple[int, ...] = ()
        fifth: bool = field(default=False, kw_only=True)
        sixth: int | None = field(default=None, kw_only=True, repr=False)

    return decorate(Sample)


PLAIN = _kinds(lambda cls: cls)
QUICK = _kinds(quick_init)

CALLS = [
    ((1,), {}),
    ((1, "b", [3], (4,)), {"fifth": True, "sixth": 6}),
    ((), {"first": 1, "third": [1, 2], "sixth": 0}),
    ((1,), {"second": "s", "fifth": True}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_built_as_the_generated_init_builds_it(args, kwargs):
    plain, quick = PLAIN(*args, **kwargs), QUICK(*args, **kwargs)
    assert dataclasses.astuple(plain) == dataclasses.astuple(quick)
    assert repr(plain).removeprefix("_kinds.<locals>.") == repr(quick).removeprefix(
        "_kinds.<locals>."
    )
    assert QUICK(1) == QUICK(1) != QUICK(2)
    assert dataclasses.replace(quick, first=9).first == 9


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, "b", [], (), True), {}), ((1,), {"seventh": 7}), ((1,), {"first": 1})],
)
def test_wrong_arguments_are_refused_alike(args, kwargs):
    with pytest.raises(TypeError):
        PLAIN(*args, **kwargs)
    with pytest.raises(TypeError):
        QUICK(*args, **kwargs)


def test_same_signature_and_still_frozen():
    assert str(inspect.signature(QUICK)) == str(inspect.signature(PLAIN))
    assert QUICK.__init__.__qualname__ == PLAIN.__init__.__qualname__
    sample = QUICK(1)
    assert QUICK(1).third is not sample.third  # a factory's value is made per object
    for name in ("first", "other"):  # refused as the plain class refuses it
        with pytest.raises(Exception) as plain_error:
            setattr(PLAIN(1), name, 2)
        with pytest.raises(type(plain_error.value)):
            setattr(sample, name, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.first = 2


def test_what_it_cannot_do_exactly_is_refused_at_class_creation():
    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        value: int
        extra: InitVar[int] = 0

    @dataclass(frozen=True, slots=True)
    class Computed:
        value: int
        derived: int = field(init=False, default=0)

    @dataclass(frozen=True)
    class NoSlots:
        value: int

    @dataclass(slots=True)
    class Mutable:
        value: int

    for cls in (Checked, WithInitVar, Computed, NoSlots, Mutable):
        with pytest.raises(TypeError):
            quick_init(cls)


@pytest.mark.parametrize(
    "cls",
    [
        ImageParams,
        Shape,
        UpstreamRequest,
        UpstreamResponse,
        GeneratedFile,
        ImageResult,
        Outcome,
        AttemptEnd,
    ],
)
def test_the_hot_paths_objects_are_built_quickly(cls):
    # The generated `__init__` sets each field through `object.__setattr__`.
    assert "__dataclass_builtins_object__" not in cls.__init__.__code__.co_names
