"""Wire primitives against byte strings worked out by hand from Kafka's protocol guide."""

from __future__ import annotations

import io
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafkacompat.protocol.primitives import (
    UVARINT,
    VARINT,
    VARLONG,
    Array,
    Blob,
    FieldStruct,
    Fixed,
    Member,
    NullableStruct,
    TaggedMember,
    Uuid,
    WireError,
    read_uvarint,
)

INT32 = Fixed("i")
INT16 = Fixed("h")

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001"), ((1 << 32) - 1, "ffffffff0f")],
)
def test_unsigned_varint(value: int, encoded: str) -> None:
    assert UVARINT.build(value).hex() == encoded
    assert UVARINT.parse(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (63, "7e"), (-64, "7f"), (64, "8001"),
     (INT32_MAX, "feffffff0f"), (INT32_MIN, "ffffffff0f")],
)
def test_zigzag_varint(value: int, encoded: str) -> None:
    assert VARINT.build(value).hex() == encoded
    assert VARINT.parse(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (-1, "01"), (INT32_MAX, "feffffff0f"), (INT32_MIN, "ffffffff0f"),
     (INT64_MAX, "feffffffffffffffff01"), (INT64_MIN, "ffffffffffffffffff01")],
)
def test_zigzag_varlong(value: int, encoded: str) -> None:
    assert VARLONG.build(value).hex() == encoded
    assert VARLONG.parse(bytes.fromhex(encoded)) == value


@given(st.integers(INT64_MIN, INT64_MAX))
def test_varlong_round_trips_every_int64(value: int) -> None:
    assert VARLONG.parse(VARLONG.build(value)) == value


@given(st.integers(INT32_MIN, INT32_MAX))
def test_varint_round_trips_every_int32(value: int) -> None:
    assert VARINT.parse(VARINT.build(value)) == value


@pytest.mark.parametrize(
    ("codec", "encoded"),
    [
        (UVARINT, ""),  # nothing at all
        (UVARINT, "80"),  # continuation bit, then end of input
        (UVARINT, "8080808080"),  # more than 5 bytes
        (UVARINT, "ffffffff1f"),  # 5 bytes but more than 32 bits
        (VARINT, "ffffffff1f"),
        (VARLONG, "ffffffffffffffffff7f"),  # 10 bytes but more than 64 bits
        (VARLONG, "8080808080808080808001"),  # 11 bytes
    ],
)
def test_bad_varints_are_rejected(codec, encoded: str) -> None:
    with pytest.raises(WireError):
        codec.parse(bytes.fromhex(encoded))


@pytest.mark.parametrize(("codec", "value"), [(UVARINT, -1), (UVARINT, 1 << 32), (VARINT, INT32_MAX + 1), (VARLONG, INT64_MIN - 1)])
def test_out_of_range_varints_are_not_built(codec, value: int) -> None:
    with pytest.raises(WireError):
        codec.build(value)


def test_read_uvarint_stops_at_its_own_bytes() -> None:
    stream = io.BytesIO(bytes.fromhex("ac02ff"))
    assert read_uvarint(stream) == 300
    assert stream.read() == b"\xff"


@pytest.mark.parametrize(
    ("codec", "value", "encoded"),
    [
        (Blob("int16", nullable=True, text=True), None, "ffff"),
        (Blob("int16", nullable=False, text=True), "", "0000"),
        (Blob("int16", nullable=False, text=True), "ab", "00026162"),
        (Blob("compact", nullable=True, text=True), None, "00"),
        (Blob("compact", nullable=False, text=True), "", "01"),
        (Blob("compact", nullable=False, text=True), "\u00e9", "03c3a9"),
        (Blob("int32", nullable=True, text=False), None, "ffffffff"),
        (Blob("int32", nullable=False, text=False), b"\x00\x01", "000000020001"),
        (Blob("compact", nullable=True, text=False), b"\x07", "0207"),
    ],
)
def test_strings_and_bytes(codec, value, encoded: str) -> None:
    assert codec.build(value).hex() == encoded
    assert codec.parse(bytes.fromhex(encoded)) == value


def test_bytes_build_from_any_bytes_like_value() -> None:
    codec = Blob("compact", nullable=False, text=False)
    for value in (b"xyz", bytearray(b"xyz"), memoryview(b"xyz")):
        assert codec.build(value) == b"\x04xyz"


@pytest.mark.parametrize(
    ("codec", "encoded"),
    [
        (Blob("int16", nullable=False, text=True), "ffff"),  # null where not nullable
        (Blob("int16", nullable=True, text=True), "fffe"),  # -2 is never a length
        (Blob("int16", nullable=True, text=True), "000561"),  # shorter than its length
        (Blob("compact", nullable=False, text=True), "00"),
        (Blob("compact", nullable=False, text=False), "05aa"),
        (Blob("int32", nullable=True, text=False), "7fffffff00"),
    ],
)
def test_bad_strings_are_rejected(codec, encoded: str) -> None:
    with pytest.raises(WireError):
        codec.parse(bytes.fromhex(encoded))


def test_invalid_utf8_is_a_unicode_error() -> None:
    with pytest.raises(UnicodeDecodeError):
        Blob("compact", nullable=False, text=True).parse(b"\x02\xff")


def test_null_is_not_built_where_not_nullable() -> None:
    with pytest.raises(WireError):
        Blob("compact", nullable=False, text=True).build(None)
    with pytest.raises(WireError):
        Array(INT32, compact=False, nullable=False).build(None)


@pytest.mark.parametrize(
    ("codec", "value", "encoded"),
    [
        (Array(INT32, compact=False, nullable=True), None, "ffffffff"),
        (Array(INT32, compact=False, nullable=False), [], "00000000"),
        (Array(INT32, compact=False, nullable=False), [1, -1], "0000000200000001ffffffff"),
        (Array(INT32, compact=True, nullable=True), None, "00"),
        (Array(INT32, compact=True, nullable=False), [], "01"),
        (Array(INT32, compact=True, nullable=False), [1, 2], "030000000100000002"),
        (Array(Blob("compact", nullable=False, text=True), compact=True, nullable=False), ["a", "bc"], "030261036263"),
        (Array(Blob("int16", nullable=False, text=True), compact=False, nullable=False), ["a"], "00000001000161"),
    ],
)
def test_arrays(codec, value, encoded: str) -> None:
    assert codec.build(value).hex() == encoded
    assert codec.parse(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize(
    ("codec", "encoded"),
    [
        (Array(INT32, compact=False, nullable=False), "ffffffff"),  # null where not nullable
        (Array(INT32, compact=False, nullable=True), "fffffffe"),
        (Array(INT32, compact=False, nullable=True), "7fffffff00000001"),  # absurd count
        (Array(INT16, compact=True, nullable=True), "0500010002"),  # 4 elements announced, 2 given
        (Array(Blob("compact", nullable=False, text=True), compact=True, nullable=False), "ffffffff0f01"),
    ],
)
def test_bad_arrays_are_rejected(codec, encoded: str) -> None:
    with pytest.raises(WireError):
        codec.parse(bytes.fromhex(encoded))


def test_uuid() -> None:
    value = uuid.UUID("0123456789abcdef0123456789abcdef")
    assert Uuid().build(value) == value.bytes
    assert Uuid().parse(value.bytes) == value
    with pytest.raises(WireError):
        Uuid().parse(value.bytes[:15])


def test_fixed_scalars_are_big_endian() -> None:
    assert Fixed("q").build(-2).hex() == "fffffffffffffffe"
    assert Fixed("H").build(65535).hex() == "ffff"
    assert Fixed("d").build(1.5).hex() == "3ff8000000000000"
    assert Fixed("?").parse(b"\x02") is True
    assert Fixed("?").build(True) == b"\x01"


def _tagged_struct() -> FieldStruct:
    """An int16, then tag 0 (int32, default -1) and tag 3 (compact string, default null)."""
    tagged = [
        TaggedMember(3, "rack", Blob("compact", nullable=True, text=True), None, lambda: None),
        TaggedMember(0, "leader", INT32, -1, lambda: -1),
    ]
    return FieldStruct([Member("code", INT16, 0, lambda: 0)], tagged)


def test_tagged_fields_are_written_in_tag_order_and_only_when_not_default() -> None:
    codec = _tagged_struct()
    assert codec.build({"code": 5}).hex() == "000500"
    assert codec.build({"code": 5, "leader": -1, "rack": None}).hex() == "000500"
    # count 2; tag 0, size 4, int32 7; tag 3, size 2, compact "r"
    assert codec.build({"code": 5, "rack": "r", "leader": 7}).hex() == "0005" + "02" + "000400000007" + "03020272"


def test_tagged_fields_decode_by_name_and_unknown_tags_are_skipped() -> None:
    codec = _tagged_struct()
    # count 3: tag 0 -> 7, unknown tag 1 with 3 opaque bytes, tag 3 -> "r"
    decoded = codec.parse(bytes.fromhex("0005" + "03" + "000400000007" + "0103aabbcc" + "03020272"))
    assert decoded == {"code": 5, "leader": 7, "rack": "r"}
    assert codec.parse(bytes.fromhex("000500")) == {"code": 5, "leader": -1, "rack": None}


@pytest.mark.parametrize("encoded", ["0005", "000501", "00050100", "0005010005aabb"])
def test_truncated_tagged_sections_are_rejected(encoded: str) -> None:
    with pytest.raises(WireError):
        _tagged_struct().parse(bytes.fromhex(encoded))


def test_struct_runs_of_fixed_fields_keep_wire_order() -> None:
    members = [
        Member("a", INT16, 0, lambda: 0),
        Member("b", Fixed("q"), -1, lambda: -1),
        Member("name", Blob("int16", nullable=False, text=True), "", lambda: ""),
        Member("c", Fixed("b"), 0, lambda: 0),
    ]
    codec = FieldStruct(members, None, absent=[("gone", list)])
    encoded = codec.build({"a": 1, "name": "x", "c": -3, "unrelated": object()})
    assert encoded.hex() == "0001" + "ffffffffffffffff" + "000178" + "fd"
    assert codec.parse(encoded) == {"a": 1, "b": -1, "name": "x", "c": -3, "gone": []}


def test_arrays_refuse_zero_size_elements() -> None:
    with pytest.raises(ValueError):
        Array(FieldStruct([], None), compact=False, nullable=False)


def test_nullable_struct_marks_null_with_minus_one_and_presence_with_one() -> None:
    cursor = NullableStruct(FieldStruct([Member("partition_index", INT32, 0, lambda: 0)], tagged=None))
    assert cursor.build(None).hex() == "ff"
    assert cursor.build({"partition_index": 7}).hex() == "01" + "00000007"
    assert cursor.parse(bytes.fromhex("ff")) is None
    assert cursor.parse(bytes.fromhex("0100000007")).partition_index == 7
    with pytest.raises(WireError):
        cursor.parse(bytes.fromhex("0200000007"))
