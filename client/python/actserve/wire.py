"""ComputeRequest and ComputeResponse in protobuf's wire format, written and read here
instead of by the generated classes, so that tensor bytes are copied as little as
Python's gRPC allows.

The generated path copied a 64 MiB tensor about eight times on its way through the
client (``ndarray.tobytes``, into a ``Tensor`` message, into the item, into the
serialized request; out of the reply into a message, out of it into a native array),
each copy into freshly mapped memory. Here a request is one ``bytes.join`` over the
small header fields and the callers' arrays themselves (exposed through the buffer
protocol): one copy. A reply is scanned in place and each tensor's data is a
``memoryview`` slice of the received bytes: no copy until the caller's array is filled
(``actserve.tensors.from_wire``).

The bytes are what protobuf's serializer writes for the same message (fields in number
order, proto3 defaults left out, ``shape`` packed); ``tests/python/sdk_unit_test.py``
compares the two byte for byte. The reader accepts anything a protobuf parser accepts
for these messages: fields in any order, unknown fields (skipped), ``shape`` packed or
not, a field repeated (the last scalar wins, messages merge).

    request = encode_compute_request([ItemParts(
        tensors.to_wire(x, "float32"), activation_bytes, pb.MODE_FORWARD, None)])
    results = decode_compute_response(reply_bytes)   # [WireResult, ...]
"""

from typing import List, NamedTuple, Optional, Sequence, Tuple

# Field keys, (field number << 3) | wire type: 0 varint, 2 length-delimited.
_VARINT, _LENGTH_DELIMITED = 0, 2
_KEY_ITEMS = b"\x0a"          # ComputeRequest.items = 1
_KEY_INPUT = b"\x0a"          # ComputeItem.input = 1
_KEY_ACTIVATION = b"\x12"     # ComputeItem.activation = 2
_KEY_MODE = b"\x18"           # ComputeItem.mode = 3
_KEY_GRAD_OUTPUT = b"\x22"    # ComputeItem.grad_output = 4
_KEY_DTYPE = b"\x08"          # Tensor.dtype = 1
_KEY_SHAPE = b"\x12"          # Tensor.shape = 2 (packed)
_KEY_DATA = b"\x1a"           # Tensor.data = 3
_UINT64 = (1 << 64) - 1
_SMALL_VARINTS = tuple(bytes((value,)) for value in range(128))


class MalformedMessage(Exception):
    """Bytes that are not a valid message of the expected type."""


def encode_varint(value: int) -> bytes:
    """``value`` as a protobuf varint; a negative int64 takes ten bytes (two's
    complement), as protobuf writes it."""
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    value &= _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data, at: int) -> Tuple[int, int]:
    """The varint at ``data[at:]`` and the position after it. Raises MalformedMessage
    when it runs past the end or past ten bytes."""
    value, shift, end = 0, 0, len(data)
    while True:
        if at >= end or shift > 63:
            raise MalformedMessage("truncated or overlong varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        shift += 7
        if not byte & 0x80:
            return value, at


def skip_field(data, at: int, wire_type: int) -> int:
    """The position after the value of an unknown field of ``wire_type`` at ``at``."""
    if wire_type == _VARINT:
        return read_varint(data, at)[1]
    if wire_type == 1:  # fixed64
        at += 8
    elif wire_type == _LENGTH_DELIMITED:
        length, at = read_varint(data, at)
        at += length
    elif wire_type == 5:  # fixed32
        at += 4
    else:  # groups (3, 4) and the undefined 6, 7: not in proto3
        raise MalformedMessage(f"wire type {wire_type}")
    if at > len(data):
        raise MalformedMessage("a field runs past the end")
    return at


class WireTensor(NamedTuple):
    """A ``Tensor``: ``dtype`` (the wire enum's number), ``shape``, and ``data``: bytes,
    or a one-dimensional memoryview of bytes (format "B", so that ``len`` counts bytes):
    over an array to send, or a slice of the received bytes."""

    dtype: int
    shape: Tuple[int, ...]
    data: memoryview


class ItemParts(NamedTuple):
    """A ``ComputeItem``: the input, the ``Activation`` message already serialized (a
    few bytes; PReLU's weight included), the wire mode, and grad_output or None."""

    input: WireTensor
    activation: bytes
    mode: int
    grad_output: Optional[WireTensor]


class WireResult(NamedTuple):
    """A ``ComputeResult``; a field the reply left out is None."""

    output: Optional[WireTensor]
    grad_input: Optional[WireTensor]
    grad_weight: Optional[WireTensor]


def _tensor_parts(tensor: WireTensor, parts: List, key: bytes) -> None:
    # Appends key, length and the fields of `tensor` to `parts`; the data goes in as the
    # caller's buffer, copied only by the final join.
    header = []
    if tensor.dtype:
        header.append(_KEY_DTYPE + encode_varint(tensor.dtype))
    if tensor.shape:
        packed = b"".join(encode_varint(dim) for dim in tensor.shape)
        header.append(_KEY_SHAPE + encode_varint(len(packed)) + packed)
    size = len(tensor.data)
    if size:
        header.append(_KEY_DATA + encode_varint(size))
    header_bytes = b"".join(header)
    parts.append(key + encode_varint(len(header_bytes) + size) + header_bytes)
    if size:
        parts.append(tensor.data)


def encode_compute_request(items: Sequence[ItemParts]) -> bytes:
    """A serialized ``ComputeRequest`` of ``items``: one copy of each tensor's data."""
    parts: List = []
    for item in items:
        item_parts: List = []
        _tensor_parts(item.input, item_parts, _KEY_INPUT)
        item_parts.append(_KEY_ACTIVATION + encode_varint(len(item.activation)) +
                          item.activation)
        if item.mode:
            item_parts.append(_KEY_MODE + encode_varint(item.mode))
        if item.grad_output is not None:
            _tensor_parts(item.grad_output, item_parts, _KEY_GRAD_OUTPUT)
        parts.append(_KEY_ITEMS + encode_varint(sum(len(part) for part in item_parts)))
        parts.extend(item_parts)
    return b"".join(parts)


def _read_key(view: memoryview, at: int) -> Tuple[int, int, int]:
    """The field number and wire type of the key at ``view[at:]``, and the position
    after it; one byte for every field number below 16, the common case."""
    key = view[at]
    if key < 0x80:
        return key >> 3, key & 7, at + 1
    key, at = read_varint(view, at)
    return key >> 3, key & 7, at


def _decode_tensor(view: memoryview, at: int, end: int,
                   merged: Optional[WireTensor]) -> WireTensor:
    # A Tensor in view[at:end]; a second occurrence of the field merges into the first,
    # as protobuf's parser does (scalars: the last wins; repeated: appended).
    dtype, shape, data = (0, [], view[at:at]) if merged is None else (
        merged.dtype, list(merged.shape), merged.data)
    while at < end:
        field, wire_type, at = _read_key(view, at)
        if field == 1 and wire_type == _VARINT:
            dtype, at = read_varint(view, at)
            dtype &= 0xFFFFFFFF  # an enum is an int32 on the wire
            if dtype >= 1 << 31:
                dtype -= 1 << 32
        elif field == 2 and wire_type == _LENGTH_DELIMITED:
            length, at = read_varint(view, at)
            stop = at + length
            if stop > end:
                raise MalformedMessage("Tensor.shape runs past the end")
            while at < stop:
                dim = view[at]
                if dim < 0x80:
                    at += 1
                else:
                    dim, at = read_varint(view, at)
                    if dim >= 1 << 63:
                        dim -= 1 << 64
                shape.append(dim)
            if at != stop:
                raise MalformedMessage("Tensor.shape: a varint runs past its field")
        elif field == 2 and wire_type == _VARINT:
            dim, at = read_varint(view, at)
            shape.append(dim - (1 << 64) if dim >= 1 << 63 else dim)
        elif field == 3 and wire_type == _LENGTH_DELIMITED:
            length, at = read_varint(view, at)
            if at + length > end:
                raise MalformedMessage("Tensor.data runs past the end")
            data = view[at:at + length]
            at += length
        else:
            at = skip_field(view, at, wire_type)
        if at > end:
            raise MalformedMessage("a Tensor field runs past the end")
    return WireTensor(dtype, tuple(shape), data)


def _decode_result(view: memoryview, at: int, end: int) -> WireResult:
    tensors = [None, None, None]  # output = 1, grad_input = 2, grad_weight = 3
    while at < end:
        field, wire_type, at = _read_key(view, at)
        if 1 <= field <= 3 and wire_type == _LENGTH_DELIMITED:
            length, at = read_varint(view, at)
            if at + length > end:
                raise MalformedMessage("ComputeResult field runs past the end")
            tensors[field - 1] = _decode_tensor(view, at, at + length, tensors[field - 1])
            at += length
        else:
            at = skip_field(view, at, wire_type)
            if at > end:
                raise MalformedMessage("a ComputeResult field runs past the end")
    return WireResult(*tensors)


def decode_compute_response(data: bytes) -> List[WireResult]:
    """The results of a serialized ``ComputeResponse``, in order. Tensor data are
    memoryview slices of ``data`` (which they keep alive): read-only, not copied.
    Raises MalformedMessage."""
    view = memoryview(data)
    results = []
    at, end = 0, len(view)
    while at < end:
        field, wire_type, at = _read_key(view, at)
        if field == 1 and wire_type == _LENGTH_DELIMITED:
            length, at = read_varint(view, at)
            if at + length > end:
                raise MalformedMessage("ComputeResponse.results runs past the end")
            results.append(_decode_result(view, at, at + length))
            at += length
        else:
            at = skip_field(view, at, wire_type)
    return results
