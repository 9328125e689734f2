"""`drop_none`, which every adapter's request fields go through: only None values go (falsy
ones stay), and the fields keep their order."""

from reapi.providers._util import drop_none


def test_only_none_goes_and_the_order_stays():
    fields = {"z": None, "n": 0, "s": "", "b": False, "l": [], "x": None, "a": 1, "d": {}}
    assert list(drop_none(fields).items()) == [
        ("n", 0),
        ("s", ""),
        ("b", False),
        ("l", []),
        ("a", 1),
        ("d", {}),
    ]
    assert drop_none({}) == {} and drop_none({"a": None}) == {}
    assert drop_none(fields) is not fields and "z" in fields  # a new dict; the given one kept
