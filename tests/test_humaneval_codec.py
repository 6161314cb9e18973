"""The judge/candidate wire format: exact builtin values round-trip; everything else is refused."""

import collections
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible.grade.humaneval import codec
from crucible.grade.humaneval.server import stdlib_container

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
hashables = st.recursive(scalars, lambda c: st.tuples(c, c) | st.frozensets(c, max_size=3), max_leaves=8)
values = st.recursive(
    scalars,
    lambda c: (st.lists(c, max_size=4) | st.tuples(c, c) | st.dictionaries(hashables, c, max_size=3)
               | st.sets(hashables, max_size=3) | st.frozensets(hashables, max_size=3)),
    max_leaves=20)


def same(a, b) -> bool:
    """Equal and of exactly the same types, all the way down."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=200, deadline=None)
@given(values)
def test_round_trip_keeps_values_and_exact_types(value):
    assert same(codec.decode(codec.encode(value)), value)


def test_edge_scalars_round_trip():
    for v in [0, -1, 2**200, -(2**200), 255, -256, float("inf"), -0.0, "\ud800", "", True, False]:
        back = codec.decode(codec.encode(v))
        assert same(back, v) and (math.copysign(1, back) == math.copysign(1, v) if type(v) is float else True)
    assert math.isnan(codec.decode(codec.encode(float("nan"))))


@pytest.mark.parametrize("value", [
    type("RiggedInt", (int,), {"__eq__": lambda s, o: True})(3),
    type("RiggedStr", (str,), {"__eq__": lambda s, o: True})("x"),
    type("RiggedList", (list,), {"__eq__": lambda s, o: True})([1]),
    [1, type("Always", (), {"__eq__": lambda s, o: True})()],
    (x for x in [1]), map(abs, [1]), range(3), b"bytes", 1j, object(),
])
def test_refuses_anything_but_exact_builtins(value):
    with pytest.raises(codec.CodecError):
        codec.encode(value)


def test_refuses_cycles_and_depth():
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(codec.CodecError):
        codec.encode(cyclic)
    deep = []
    for _ in range(codec.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(codec.CodecError):
        codec.encode(deep)


@pytest.mark.parametrize("data", [
    b"", b"i", b"i\x00\x00\x00\x05ab", b"s\x00\x00\x00\x02\xff\xfe",  # truncated, bad utf-8
    b"NN",                                                            # trailing bytes
    b"Q", b"l\xff\xff\xff\xffN",                                      # unknown tag, absurd count
    b"S\x00\x00\x00\x01l\x00\x00\x00\x00",                            # unhashable set item
    b"d\x00\x00\x00\x01d\x00\x00\x00\x00N",                           # unhashable dict key
    b"i" + (codec.MAX_INT_BYTES + 1).to_bytes(4, "big") + b"\x00" * (codec.MAX_INT_BYTES + 1),
    b"l\x00\x00\x00\x01" * (codec.MAX_DEPTH + 2) + b"N",              # too deep
])
def test_decoder_rejects_malformed_input(data):
    with pytest.raises(codec.CodecError):
        codec.decode(data)


def test_frame_length_is_capped():
    with pytest.raises(codec.CodecError):
        codec.frame_length((codec.MAX_FRAME + 2).to_bytes(4, "big"))
    with pytest.raises(codec.CodecError):
        codec.frame_length(b"\x00\x00\x00\x00")


def test_stdlib_containers_cross_as_their_contents():
    point = collections.namedtuple("Point", "x y")(1, 2)
    counter = collections.Counter("abca")
    for value, plain in [(counter, {"a": 2, "b": 1, "c": 1}), (point, (1, 2)),
                         (collections.OrderedDict(a=1), {"a": 1}), (collections.defaultdict(int, a=1), {"a": 1})]:
        back = codec.decode(codec.encode(value, convert=stdlib_container))
        assert same(back, plain)
    rigged = type("Rigged", (dict,), {"__eq__": lambda s, o: True})(a=1)
    with pytest.raises(codec.CodecError):
        codec.encode(rigged, convert=stdlib_container)
