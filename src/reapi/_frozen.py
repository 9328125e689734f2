"""`quick_init`: a frozen, slotted dataclass whose `__init__` sets each slot through its own
descriptor.

A frozen dataclass's generated `__init__` sets every field with
`object.__setattr__(self, "name", value)`: a global lookup, an attribute lookup and the field's
lookup in the class, per field. The gateway's hot path builds ~17 such objects a request (the
parameters, the upstream request and answer, the images, the attempt's summary, the usage
row's close...), ~60 fields. With slots, each field's member descriptor can be called directly:
the same object, as frozen as before (its `__setattr__` still refuses), ~40% faster to build
(8 fields: 2.1 against 1.2-1.4 us, timeit).

Only for what this can do exactly as the generated `__init__` does (defaults and default
factories included): no `__post_init__`, no `InitVar`, no field left out of `__init__`. Anything
else is refused when the class is made, so a class that grows one fails at import, not later.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, TypeVar

__all__ = ["quick_init"]

T = TypeVar("T")


class _Factory:
    """The default of a field made by its factory (shown as the generated `__init__` shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def quick_init(cls: type[T]) -> type[T]:
    """Decorate a `@dataclass(frozen=True, slots=True)` class (above the `@dataclass`)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not (params.frozen and params.init) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__qualname__}: not a frozen, slotted dataclass")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    declared: dict[str, Any] = getattr(cls, "__dataclass_fields__", {})
    if hasattr(cls, "__post_init__") or len(fields) != len(declared):
        raise TypeError(f"{cls.__qualname__}: __post_init__ or an InitVar")
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    bound: dict[str, Any] = {"_FACTORY": _FACTORY}
    for field in fields:
        if not field.init or field.name == "self":
            raise TypeError(f"{cls.__qualname__}.{field.name}: left out of __init__, or `self`")
        slot = getattr(cls, field.name)
        if not isinstance(slot, types.MemberDescriptorType):
            raise TypeError(f"{cls.__qualname__}.{field.name}: not a slot")
        bound[f"_set_{field.name}"] = slot.__set__
        parameter, value = field.name, field.name
        if field.default is not dataclasses.MISSING:
            bound[f"_default_{field.name}"] = field.default
            parameter += f"=_default_{field.name}"
        elif field.default_factory is not dataclasses.MISSING:
            bound[f"_factory_{field.name}"] = field.default_factory
            parameter += "=_FACTORY"
            value = f"_factory_{field.name}() if {field.name} is _FACTORY else {field.name}"
        (keyword if field.kw_only else positional).append(parameter)
        body.append(f"    _set_{field.name}(self, {value})")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({signature}) -> None:\n" + "\n".join(body or ["    pass"])
    namespace: dict[str, Any] = {}
    exec(source, bound, namespace)  # noqa: S102 - names from the class's own fields only
    generated: Any = cls.__init__
    init = namespace["__init__"]
    init.__qualname__ = generated.__qualname__
    init.__module__ = generated.__module__
    init.__annotations__ = dict(generated.__annotations__)
    init.__doc__ = generated.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
