"""Kafka's wire primitives as construct classes.

Every class here reads from and writes to a binary stream (``io.BytesIO`` in
practice) and raises :class:`WireError` (a ``construct.ConstructError``) on
malformed input; :mod:`kafkacompat.protocol.schema` turns that into
``DecodeError``. They keep per-call work small because the schema runs them once
per field of every request: fixed-size scalars are grouped into one
``struct.Struct`` per run by :class:`FieldStruct`, arrays of fixed-size
scalars unpack in one call.

Nullability on the wire: classic strings use an int16 length and classic bytes
and arrays an int32 length, where -1 is null; the compact forms of flexible
versions use an unsigned varint holding length + 1, where 0 is null.
"""

from __future__ import annotations

import io
import struct
import uuid
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from construct import Construct, ConstructError, Container

__all__ = [
    "WireError",
    "Fixed",
    "Varint",
    "UVARINT",
    "VARINT",
    "VARLONG",
    "Uuid",
    "Blob",
    "GatherStream",
    "OutOfBand",
    "Part",
    "IN_MEMORY",
    "part_size",
    "join_parts",
    "Array",
    "NullableStruct",
    "Member",
    "TaggedMember",
    "FieldStruct",
    "read_uvarint",
    "encode_uvarint",
]


class WireError(ConstructError):
    """The bytes do not form a valid value (truncated, overlong, bad length, ...)."""


def _read_exact(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise WireError(f"needed {size} bytes, only {len(data)} left")
    return data


def _view_exact(stream, size: int) -> memoryview:
    """The next ``size`` bytes of an in-memory stream as a view of its buffer, not a copy."""
    start = stream.tell()
    view = stream.getbuffer()[start : start + size]
    if len(view) != size:
        raise WireError(f"needed {size} bytes, only {len(view)} left")
    stream.seek(start + size)
    return view


class OutOfBand(Protocol):
    """Bytes a message carries that are not in memory (a range of a log file): their size, and a way to get them.

    A gathered encoding keeps such a value as a part of its own, for the
    sender to transmit by other means (sendfile); a memoryview has the same two members.
    """

    nbytes: int

    def tobytes(self) -> bytes: ...


Part = bytes | bytearray | memoryview | OutOfBand
# The parts whose bytes are in memory; any other part is out of band.
IN_MEMORY = (bytes, bytearray, memoryview)


def part_size(part: Part) -> int:
    return memoryview(part).nbytes if isinstance(part, IN_MEMORY) else part.nbytes


def join_parts(parts: Iterable[Part]) -> bytes:
    """One buffer from a gathered message, out-of-band parts read in."""
    return b"".join(p if isinstance(p, IN_MEMORY) else p.tobytes() for p in parts)


class GatherStream(io.BytesIO):
    """An encoding stream that keeps large record sets by reference, like writev.

    Small writes coalesce in the BytesIO as usual; :meth:`attach` notes a big
    buffer at the current position without copying it. :meth:`parts` returns
    the whole message as buffers in order, for one join or a gathered send.
    A Fetch response is then assembled without copying the record bytes read
    from the log into an intermediate buffer.
    """

    ATTACH_MIN = 16 * 1024  # below this a copy is cheaper than an extra part

    def __init__(self) -> None:
        super().__init__()
        self._attached: list[tuple[int, Any]] = []

    def attach(self, data: Part) -> None:
        self._attached.append((self.tell(), data))

    def parts(self) -> list[Part]:
        if not self._attached:
            return [self.getvalue()]
        written = self.getvalue()
        parts: list[Part] = []
        start = 0
        for position, data in self._attached:
            if position > start:
                parts.append(written[start:position])
            parts.append(data)
            start = position
        if start < len(written):
            parts.append(written[start:])
        return parts


def _remaining(stream) -> int:
    """Bytes left in an in-memory stream; lets arrays reject absurd counts up front."""
    return stream.getbuffer().nbytes - stream.tell()


def read_uvarint(stream, max_bytes: int = 5) -> int:
    """Read an unsigned LEB128 varint of at most ``max_bytes`` bytes."""
    result = 0
    shift = 0
    for _ in range(max_bytes):
        byte = stream.read(1)
        if not byte:
            raise WireError("truncated varint")
        value = byte[0]
        result |= (value & 0x7F) << shift
        if value < 0x80:
            return result
        shift += 7
    raise WireError(f"varint longer than {max_bytes} bytes")


# One-byte varints are most lengths and counts on the wire; encode them by lookup.
_ONE_BYTE_UVARINTS = tuple(bytes((value,)) for value in range(0x80))


def encode_uvarint(value: int) -> bytes:
    """Unsigned LEB128 encoding of a non-negative integer."""
    if value < 0:
        raise WireError(f"unsigned varint cannot hold {value}")
    if value < 0x80:
        return _ONE_BYTE_UVARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Fixed(Construct):
    """A fixed-size big-endian scalar given by one ``struct`` format character.

    ``?`` is Kafka's bool: any non-zero byte decodes as True, True encodes as 1.
    """

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt
        self._struct = struct.Struct(">" + fmt)
        self.min_size = self._struct.size

    def _parse(self, stream, context, path):
        return self._struct.unpack(_read_exact(stream, self.min_size))[0]

    def _build(self, obj, stream, context, path):
        stream.write(self._struct.pack(obj))
        return obj

    def _sizeof(self, context, path):
        return self.min_size


class Varint(Construct):
    """Kafka's varints: unsigned (lengths, tags) or zigzag-signed (record fields).

    ``bits`` bounds the value (32 for varint, 64 for varlong), which also bounds
    how many bytes a reader will consume before calling the input garbage.
    """

    def __init__(self, bits: int, signed: bool) -> None:
        super().__init__()
        self.bits = bits
        self.signed = signed
        self.max_bytes = (bits + 6) // 7
        self.min_size = 1

    def _parse(self, stream, context, path):
        raw = read_uvarint(stream, self.max_bytes)
        if raw >> self.bits:
            raise WireError(f"varint exceeds {self.bits} bits")
        return (raw >> 1) ^ -(raw & 1) if self.signed else raw

    def _build(self, obj, stream, context, path):
        if self.signed:
            limit = 1 << (self.bits - 1)
            if not -limit <= obj < limit:
                raise WireError(f"{obj} does not fit a {self.bits}-bit varint")
            raw = ((obj << 1) ^ (obj >> (self.bits - 1))) & ((1 << self.bits) - 1)
        else:
            if not 0 <= obj < (1 << self.bits):
                raise WireError(f"{obj} does not fit an unsigned {self.bits}-bit varint")
            raw = obj
        stream.write(encode_uvarint(raw))
        return obj


UVARINT = Varint(32, signed=False)
VARINT = Varint(32, signed=True)
VARLONG = Varint(64, signed=True)


class Uuid(Construct):
    """16 raw bytes, decoded as :class:`uuid.UUID` (all-zero is Kafka's "no id")."""

    min_size = 16

    def _parse(self, stream, context, path):
        return uuid.UUID(bytes=_read_exact(stream, 16))

    def _build(self, obj, stream, context, path):
        stream.write(obj.bytes)
        return obj


_LENGTH_PREFIXES = {"int16": struct.Struct(">h"), "int32": struct.Struct(">i")}


class Blob(Construct):
    """Length-prefixed bytes, or UTF-8 text when ``text`` is set.

    ``prefix`` is ``"int16"`` (classic strings), ``"int32"`` (classic bytes and
    records) or ``"compact"`` (flexible versions). On build, bytes-like values
    (bytes, bytearray, memoryview) are written as they are, without a copy.

    ``by_reference`` is for record sets, the only big values on the hot paths:
    decoding returns a writable memoryview into the decoder's buffer (the log
    patches base offsets in it), and encoding into a :class:`GatherStream`
    attaches a large value instead of copying it into the stream. A record
    set may also be an :class:`OutOfBand` value, whose bytes are not in memory:
    a gathered encoding attaches it for the sender to transmit, any other
    encoding asks it for its bytes.
    """

    def __init__(self, prefix: str, *, nullable: bool, text: bool, by_reference: bool = False) -> None:
        super().__init__()
        self.compact = prefix == "compact"
        self._length = None if self.compact else _LENGTH_PREFIXES[prefix]
        self.nullable = nullable
        self.text = text
        self.by_reference = by_reference
        self.min_size = 1 if self.compact else self._length.size

    def _parse(self, stream, context, path):
        if self.compact:
            size = read_uvarint(stream) - 1
        else:
            size = self._length.unpack(_read_exact(stream, self._length.size))[0]
        if size < 0:
            if size != -1 or not self.nullable:
                raise WireError(f"invalid length {size}")
            return None
        if self.by_reference:
            return _view_exact(stream, size)
        data = _read_exact(stream, size)
        return data.decode("utf-8") if self.text else data

    def _build(self, obj, stream, context, path):
        if obj is None:
            if not self.nullable:
                raise WireError("null given for a non-nullable field")
            stream.write(b"\x00" if self.compact else self._length.pack(-1))
            return obj
        data = obj.encode("utf-8") if self.text else obj
        in_memory = isinstance(data, IN_MEMORY)
        size = part_size(data)
        stream.write(encode_uvarint(size + 1) if self.compact else self._length.pack(size))
        if self.by_reference and isinstance(stream, GatherStream) and (size >= GatherStream.ATTACH_MIN or not in_memory):
            stream.attach(data)
        else:
            stream.write(data if in_memory else data.tobytes())
        return obj


class Array(Construct):
    """A counted array (int32 count, or compact count + 1), optionally nullable.

    Arrays of :class:`Fixed` scalars are read and written with one ``struct``
    call. A count larger than the bytes left is rejected before any element is
    read, so garbage cannot make the decoder loop for long.
    """

    def __init__(self, element: Construct, *, compact: bool, nullable: bool) -> None:
        super().__init__()
        if element.min_size < 1:
            raise ValueError("array elements must occupy at least one byte")
        self.element = element
        self.compact = compact
        self.nullable = nullable
        self.min_size = 1 if compact else 4
        self._scalar_fmt = element.fmt if isinstance(element, Fixed) else None
        # Replica lists and the like: a handful of lengths, built once each.
        self._scalar_layouts: dict[int, struct.Struct] = {}

    def _parse(self, stream, context, path):
        if self.compact:
            count = read_uvarint(stream) - 1
        else:
            count = _INT32.unpack(_read_exact(stream, 4))[0]
        if count < 0:
            if count != -1 or not self.nullable:
                raise WireError(f"invalid array length {count}")
            return None
        if count * self.element.min_size > _remaining(stream):
            raise WireError(f"array of {count} elements overruns the input")
        if self._scalar_fmt is not None:
            layout = struct.Struct(f">{count}{self._scalar_fmt}")
            return list(layout.unpack(stream.read(layout.size)))
        parse = self.element._parse
        return [parse(stream, context, path) for _ in range(count)]

    def _build(self, obj, stream, context, path):
        if obj is None:
            if not self.nullable:
                raise WireError("null given for a non-nullable array")
            stream.write(b"\x00" if self.compact else _INT32.pack(-1))
            return obj
        count = len(obj)
        stream.write(encode_uvarint(count + 1) if self.compact else _INT32.pack(count))
        if self._scalar_fmt is not None:
            layout = self._scalar_layouts.get(count)
            if layout is None:
                layout = struct.Struct(f">{count}{self._scalar_fmt}")
                if count <= _CACHED_SCALAR_COUNTS:
                    self._scalar_layouts[count] = layout
            stream.write(layout.pack(*obj))
        else:
            build = self.element._build
            for item in obj:
                build(item, stream, context, path)
        return obj


class NullableStruct(Construct):
    """A struct that may be null: an int8 marker (-1 null, 1 present), then the struct itself."""

    def __init__(self, inner: Construct) -> None:
        super().__init__()
        self.inner = inner
        self.min_size = 1

    def _parse(self, stream, context, path):
        marker = _read_exact(stream, 1)[0]
        if marker == 0xFF:
            return None
        if marker != 1:
            raise WireError(f"invalid nullable struct marker {marker}")
        return self.inner._parse(stream, context, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            stream.write(b"\xff")
            return obj
        stream.write(b"\x01")
        return self.inner._build(obj, stream, context, path)


_INT32 = struct.Struct(">i")
_MISSING = object()
_CACHED_SCALAR_COUNTS = 64
_NO_TAGGED_FIELDS = b"\x00"


class Member:
    """One named field of a :class:`FieldStruct` in one version.

    ``default`` is what a build uses when the key is missing; ``make_default``
    returns a fresh default for decoded containers (lists and structs must not
    be shared between decodes).
    """

    __slots__ = ("name", "construct", "default", "make_default")

    def __init__(self, name: str, construct: Construct, default: Any, make_default: Callable[[], Any]) -> None:
        self.name = name
        self.construct = construct
        self.default = default
        self.make_default = make_default

    def holds_default(self, value: Any) -> bool:
        """Whether ``value`` equals this member's default (tagged fields are omitted then)."""
        if isinstance(self.construct, FieldStruct):
            return self.construct.holds_defaults(value)
        if isinstance(self.default, list):
            return value is not None and len(value) == 0
        return value == self.default


class TaggedMember(Member):
    """A member carried in the tagged-field section under ``tag``."""

    __slots__ = ("tag",)

    def __init__(self, tag: int, name: str, construct: Construct, default: Any, make_default: Callable[[], Any]) -> None:
        super().__init__(name, construct, default, make_default)
        self.tag = tag


class FieldStruct(Construct):
    """A Kafka struct in one version: its fields in wire order, then (in flexible
    versions) the tagged-field section.

    Decoding gives a :class:`construct.Container` with one key per member,
    tagged members included (their default when absent), plus ``absent``
    entries -- fields of other versions -- set to their defaults, so one shape
    serves all versions. Building reads members from any mapping, using a
    member's default for a missing key, and ignores keys it does not know; a
    tagged member is written only when it differs from its default. Unknown
    tags are skipped on decode.
    """

    def __init__(
        self,
        members: Sequence[Member],
        tagged: Sequence[TaggedMember] | None,
        absent: Iterable[tuple[str, Callable[[], Any]]] = (),
    ) -> None:
        super().__init__()
        self.members = tuple(members)
        self.tagged = None if tagged is None else tuple(sorted(tagged, key=lambda m: m.tag))
        self._tags = {m.tag: m for m in self.tagged or ()}
        self._absent = tuple(absent)
        self._steps = _plan_steps(self.members)
        # The same steps with (name, default) pairs for runs: building is a dict lookup per field.
        self._build_steps = tuple(
            (layout, key, member if layout is None else tuple((m.name, m.default) for m in member))
            for layout, key, member in self._steps
        )
        self.min_size = sum(m.construct.min_size for m in self.members) + (0 if tagged is None else 1)

    def _parse(self, stream, context, path):
        obj = Container()
        for layout, key, member in self._steps:
            if layout is None:
                obj[key] = member.construct._parse(stream, context, path)
            else:
                for name, value in zip(key, layout.unpack(_read_exact(stream, layout.size))):
                    obj[name] = value
        if self.tagged is not None:
            self._parse_tagged(stream, obj, context, path)
        for name, make_default in self._absent:
            obj[name] = make_default()
        return obj

    def _parse_tagged(self, stream, obj, context, path) -> None:
        for _ in range(read_uvarint(stream)):
            tag = read_uvarint(stream)
            data = _read_exact(stream, read_uvarint(stream))
            member = self._tags.get(tag)
            if member is not None:
                obj[member.name] = member.construct._parse(io.BytesIO(data), context, path)
        for member in self.tagged:
            if member.name not in obj:
                obj[member.name] = member.make_default()

    def _build(self, obj: Mapping[str, Any], stream, context, path):
        get = obj.get
        for layout, key, member in self._build_steps:
            if layout is None:
                member.construct._build(get(key, member.default), stream, context, path)
            else:
                stream.write(layout.pack(*[get(name, default) for name, default in member]))
        if self.tagged:
            self._build_tagged(get, stream, context, path)
        elif self.tagged is not None:
            stream.write(_NO_TAGGED_FIELDS)
        return obj

    def _build_tagged(self, get, stream, context, path) -> None:
        sections = []
        for member in self.tagged:
            value = get(member.name, _MISSING)
            if value is _MISSING or member.holds_default(value):
                continue
            body = io.BytesIO()
            member.construct._build(value, body, context, path)
            data = body.getvalue()
            sections.append(encode_uvarint(member.tag) + encode_uvarint(len(data)) + data)
        stream.write(encode_uvarint(len(sections)))
        for section in sections:
            stream.write(section)

    def _sizeof(self, context, path):
        raise WireError("Kafka structs have no fixed size")

    def holds_defaults(self, obj: Mapping[str, Any] | None) -> bool:
        """Whether every member of ``obj`` is missing or at its default."""
        if obj is None:
            return False
        for member in self.members + (self.tagged or ()):
            value = obj.get(member.name, _MISSING)
            if value is not _MISSING and not member.holds_default(value):
                return False
        return True


def _plan_steps(members: Sequence[Member]) -> tuple:
    """Group runs of fixed-size members so each run is one ``struct`` call.

    A step is ``(layout, names, members)`` for a run, ``(None, name, member)``
    for any other member.
    """
    steps: list[tuple] = []
    run: list[Member] = []

    def close_run() -> None:
        if run:
            layout = struct.Struct(">" + "".join(m.construct.fmt for m in run))
            steps.append((layout, tuple(m.name for m in run), tuple(run)))
            run.clear()

    for member in members:
        if isinstance(member.construct, Fixed):
            run.append(member)
        else:
            close_run()
            steps.append((None, member.name, member))
    close_run()
    return tuple(steps)
