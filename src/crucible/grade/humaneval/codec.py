"""The wire format between the judge and the candidate: exact builtin values, strictly decoded.

Why by hand: pickle and marshal rebuild whatever the bytes describe (pickle runs code), and the
candidate writes those bytes; JSON loses tuples, sets, non-str keys, big ints and NaN. This tagged
format carries exactly None, bool, int, float, str, list, tuple, dict, set and frozenset, recognised
with `type(x) is T` (a subclass is refused: its rigged `__eq__` never reaches the judge). The decoder
caps message size, nesting depth, int size and item count, and only ever builds exact builtins.

A frame is a 4-byte big-endian length, then a one-byte kind, then one encoded value.

Not covered: bytes, complex, user classes (HumanEval passes and returns none of them). This file
also runs inside the sandbox (the server imports it), so it uses the standard library only.
"""

from __future__ import annotations

import struct

MAX_FRAME = 16 << 20    # bytes in one message
MAX_DEPTH = 64          # nesting of containers
MAX_INT_BYTES = 1 << 16  # a 524,288-bit int is plenty for HumanEval
MAX_ITEMS = 2_000_000   # values in one message (bounds what a small frame can expand into)

_U32 = struct.Struct(">I")
_F64 = struct.Struct("<d")
_SEQUENCES = {list: b"l", tuple: b"t", set: b"S", frozenset: b"z"}


class CodecError(ValueError):
    """A value that may not cross, or bytes that are not a well-formed message."""


def encode(value, convert=None) -> bytes:
    """Encode `value`; `convert(x)` may map a non-builtin to a builtin stand-in (or return None)."""
    out = bytearray()
    _encode(value, out, 0, convert)
    if len(out) > MAX_FRAME:
        raise CodecError(f"value is larger than {MAX_FRAME} bytes")
    return bytes(out)


def _encode(x, out: bytearray, depth: int, convert) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"value is nested deeper than {MAX_DEPTH}")
    if len(out) > MAX_FRAME:
        raise CodecError(f"value is larger than {MAX_FRAME} bytes")
    t = type(x)
    if x is None:
        out += b"N"
    elif t is bool:
        out += b"T" if x else b"F"
    elif t is int:
        raw = x.to_bytes(x.bit_length() // 8 + 1, "little", signed=True)
        if len(raw) > MAX_INT_BYTES:
            raise CodecError(f"int is larger than {MAX_INT_BYTES} bytes")
        out += b"i" + _U32.pack(len(raw)) + raw
    elif t is float:
        out += b"f" + _F64.pack(x)
    elif t is str:
        raw = x.encode("utf-8", "surrogatepass")
        out += b"s" + _U32.pack(len(raw)) + raw
    elif t in _SEQUENCES:
        out += _SEQUENCES[t] + _U32.pack(len(x))
        for item in x:
            _encode(item, out, depth + 1, convert)
    elif t is dict:
        out += b"d" + _U32.pack(len(x))
        for k, v in x.items():
            _encode(k, out, depth + 1, convert)
            _encode(v, out, depth + 1, convert)
    else:
        stand_in = convert(x) if convert is not None else None
        if stand_in is None:
            raise CodecError(f"a {t.__name__} cannot be sent (only exact builtin types)")
        if type(stand_in) not in (dict, tuple, list):
            raise CodecError(f"a {t.__name__} cannot be sent (only exact builtin types)")
        _encode(stand_in, out, depth, convert)


def decode(data: bytes):
    """The value `data` encodes; CodecError for anything malformed, oversized or trailing."""
    if len(data) > MAX_FRAME:
        raise CodecError(f"message is larger than {MAX_FRAME} bytes")
    reader = _Reader(bytes(data))
    try:
        value = reader.value(0)
    except (TypeError, UnicodeDecodeError, struct.error) as e:  # unhashable key, bad utf-8
        raise CodecError(f"malformed value: {e}") from None
    if reader.pos != len(reader.data):
        raise CodecError("trailing bytes after the value")
    return value


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos, self.items = data, 0, 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise CodecError("truncated message")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def count(self) -> int:
        n = _U32.unpack(self.take(4))[0]
        if n > len(self.data) - self.pos:  # every item takes at least one byte
            raise CodecError("container claims more items than the message holds")
        return n

    def value(self, depth: int):
        if depth > MAX_DEPTH:
            raise CodecError(f"value is nested deeper than {MAX_DEPTH}")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CodecError(f"more than {MAX_ITEMS} values")
        tag = self.take(1)
        if tag == b"N":
            return None
        if tag == b"T":
            return True
        if tag == b"F":
            return False
        if tag == b"i":
            n = _U32.unpack(self.take(4))[0]
            if n > MAX_INT_BYTES:
                raise CodecError(f"int is larger than {MAX_INT_BYTES} bytes")
            return int.from_bytes(self.take(n), "little", signed=True)
        if tag == b"f":
            return _F64.unpack(self.take(8))[0]
        if tag == b"s":
            return self.take(_U32.unpack(self.take(4))[0]).decode("utf-8", "surrogatepass")
        if tag == b"d":
            n = self.count()
            out = {}
            for _ in range(n):
                k = self.value(depth + 1)
                out[k] = self.value(depth + 1)
            return out
        if tag in (b"l", b"t", b"S", b"z"):
            n = self.count()
            items = [self.value(depth + 1) for _ in range(n)]
            return {b"l": list, b"t": tuple, b"S": set, b"z": frozenset}[tag](items)
        raise CodecError(f"unknown tag {tag!r}")


def frame(kind: bytes, payload: bytes) -> bytes:
    """One message: length, kind byte, encoded value."""
    return _U32.pack(len(payload) + 1) + kind + payload


def frame_length(header: bytes) -> int:
    n = _U32.unpack(header)[0]
    if not 1 <= n <= MAX_FRAME + 1:
        raise CodecError(f"bad frame length {n}")
    return n
