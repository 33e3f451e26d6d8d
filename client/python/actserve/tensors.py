"""Arrays in and out: numpy arrays and torch tensors <-> the wire's ``Tensor`` message.

dtypes: ``float32``, ``float64`` and ``float16`` are numpy's own. numpy has no bfloat16,
so bfloat16 travels in one of two forms:

- a torch tensor of dtype ``torch.bfloat16`` (results come back as torch tensors), or
- a numpy ``uint16`` array of bit patterns (the top half of a float32) with
  ``dtype="bfloat16"`` (results come back as ``uint16`` bit patterns).
  ``bfloat16_bits`` and ``bfloat16_to_float32`` convert between float32 and the patterns.

A torch tensor in gives torch tensors out, of the same dtype and device; anything else
gives numpy arrays. torch is imported only when a torch tensor is passed.
"""

import dataclasses
import math
from typing import Callable, Optional, Sequence

import grpc
import numpy as np

from actserve._proto import pb
from actserve.errors import Error, invalid_argument
from actserve.wire import WireTensor

# dtype name -> (wire enum, numpy dtype of the wire bytes: little-endian).
_WIRE = {
    "float32": (pb.DTYPE_FLOAT32, np.dtype("<f4")),
    "float64": (pb.DTYPE_FLOAT64, np.dtype("<f8")),
    "float16": (pb.DTYPE_FLOAT16, np.dtype("<f2")),
    "bfloat16": (pb.DTYPE_BFLOAT16, np.dtype("<u2")),
}
_NAME_OF_WIRE = {wire: name for name, (wire, _) in _WIRE.items()}
_NUMPY_FLOATS = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64",
                 np.dtype(np.float16): "float16"}

DTYPES = tuple(_WIRE)


def bfloat16_bits(values) -> np.ndarray:
    """The bfloat16 bit patterns (``uint16``) of ``values`` (converted to float32 first),
    rounded to nearest, ties to even; NaN stays NaN (a quiet NaN)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded = ((bits + rounding) >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(np.ascontiguousarray(values, dtype=np.float32))
    return np.where(nan, ((bits >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16),
                    rounded)


def bfloat16_to_float32(bits) -> np.ndarray:
    """The float32 values of bfloat16 bit patterns (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(
        np.float32)


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


@dataclasses.dataclass
class HostArray:
    """An input converted for the wire: ``array`` holds the values as the wire carries
    them (little-endian, C order; uint16 bit patterns for bfloat16), ``dtype`` is the
    dtype name, and ``restore`` turns a result array back into what the caller passed
    (a torch tensor of the same dtype and device, or the numpy array itself)."""

    array: np.ndarray
    dtype: str
    restore: Callable[[np.ndarray], object]


def _identity(array: np.ndarray):
    return array


def _from_torch(tensor, what: str) -> HostArray:
    import torch  # the caller passed a torch tensor, so torch is installed

    names = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
             torch.bfloat16: "bfloat16"}
    dtype = names.get(tensor.dtype)
    if dtype is None:
        raise invalid_argument(
            f"{what}: torch dtype {tensor.dtype} is not supported; use float32, float64, "
            "float16 or bfloat16")
    device = tensor.device
    host = tensor.detach().to("cpu").contiguous()
    if dtype == "bfloat16":
        array = host.view(torch.int16).numpy().view(np.uint16)

        def restore(result: np.ndarray):
            out = torch.from_numpy(result.view(np.int16)).view(torch.bfloat16)
            return out.to(device)
    else:
        array = host.numpy()

        def restore(result: np.ndarray):
            return torch.from_numpy(result).to(device)
    return HostArray(_wire_layout(array), dtype, restore)


def _wire_layout(array: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns a 0-d array (a scalar tensor) into shape (1,).
    array = np.asarray(array, dtype=array.dtype.newbyteorder("<"))
    return array if array.flags.c_contiguous else array.copy(order="C")


def to_host(value, what: str, dtype: Optional[str] = None) -> HostArray:
    """Converts an input (numpy array, array-like, or torch tensor) for the wire.

    ``dtype``: None keeps a numpy array's or a tensor's dtype (array-likes such as lists
    become float64); ``"float16"``/``"float32"``/``"float64"`` converts a numpy array or
    array-like to it; ``"bfloat16"`` requires uint16 bit patterns. Raises ``actserve.Error``
    (INVALID_ARGUMENT) for other dtypes, naming ``what``.
    """
    if dtype is not None and dtype not in _WIRE:
        raise invalid_argument(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if _is_torch_tensor(value):
        host = _from_torch(value, what)
        if dtype is not None and dtype != host.dtype:
            raise invalid_argument(
                f"{what}: dtype={dtype!r} but the torch tensor is {host.dtype}; convert the "
                "tensor with .to() instead")
        return host
    if dtype == "bfloat16":
        array = np.asarray(value)
        if array.dtype != np.uint16:
            raise invalid_argument(
                f"{what}: bfloat16 values are passed as uint16 bit patterns (numpy has no "
                f"bfloat16), got {array.dtype}; see actserve.bfloat16_bits")
        return HostArray(_wire_layout(array), "bfloat16", _identity)
    if dtype is not None:
        array = np.asarray(value, dtype=_WIRE[dtype][1])
        return HostArray(_wire_layout(array), dtype, _identity)
    if isinstance(value, np.ndarray) or np.isscalar(value) and isinstance(value, np.generic):
        array = np.asarray(value)
        name = _NUMPY_FLOATS.get(array.dtype.newbyteorder("="))
        if name is None:
            raise invalid_argument(
                f"{what}: numpy dtype {array.dtype} is not supported; use float16, float32 "
                "or float64 (or uint16 bit patterns with dtype='bfloat16')")
        return HostArray(_wire_layout(array), name, _identity)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"{what}: not an array of numbers: {error}") from None
    return HostArray(_wire_layout(array), "float64", _identity)


def like(value, reference: HostArray, what: str) -> np.ndarray:
    """``value`` (numpy, array-like or torch) in the wire layout of ``reference``'s dtype:
    converted to it (float dtypes), or checked (bfloat16 bit patterns, bfloat16 tensors)."""
    if _is_torch_tensor(value):
        import torch

        if reference.dtype == "bfloat16":
            value = value.to(torch.bfloat16)
            return to_host(value, what).array
        value = value.detach().to("cpu").numpy()
    if reference.dtype == "bfloat16":
        return to_host(value, what, "bfloat16").array
    return to_host(value, what, reference.dtype).array


def to_wire(array: np.ndarray, dtype: str) -> WireTensor:
    """The wire ``Tensor`` of ``array`` (already in the wire layout of ``dtype``: C order,
    little-endian), its data a view of the array's memory, not a copy: the array must
    not change until the request is serialized."""
    return WireTensor(_WIRE[dtype][0], array.shape, _bytes_view(array))


def _bytes_view(array: np.ndarray) -> memoryview:
    # A 1-D view of unsigned bytes (reshape of a C-ordered array is a view), so that the
    # request's join copies it as it is and len() counts bytes.
    return memoryview(array.reshape(-1).view(np.uint8))


def to_proto(array: np.ndarray, dtype: str):
    """The wire ``Tensor`` message of ``array`` (already in the wire layout of ``dtype``)."""
    return pb.Tensor(dtype=_WIRE[dtype][0], shape=list(array.shape), data=array.tobytes())


def from_proto(tensor, dtype: str, shape: Optional[Sequence[int]], what: str) -> np.ndarray:
    """``from_wire`` for a ``Tensor`` message."""
    return from_wire(WireTensor(tensor.dtype, tuple(tensor.shape), tensor.data), dtype,
                     shape, what)


def from_wire(tensor: WireTensor, dtype: str, shape: Optional[Sequence[int]], what: str,
              out: Optional[np.ndarray] = None) -> np.ndarray:
    """The array of a ``Tensor`` in a reply, checked against the expected ``dtype`` and
    ``shape`` (None: any shape), copied once: into ``out`` when given (a writable array
    of that shape whose dtype is the wire's, any byte order, any strides, as
    ``out_array`` returns it; reusing one saves mapping fresh memory for every reply),
    else into a new writable array in native byte order. Raises ``actserve.Error``
    (INTERNAL) when the server's reply is malformed."""
    wire_dtype = _NAME_OF_WIRE.get(tensor.dtype)
    if wire_dtype != dtype:
        raise Error(grpc.StatusCode.INTERNAL,
                    f"reply {what}: dtype {wire_dtype or tensor.dtype}, expected {dtype}")
    reply_shape = tuple(tensor.shape)
    if shape is not None and reply_shape != tuple(shape):
        raise Error(grpc.StatusCode.INTERNAL,
                    f"reply {what}: shape {list(reply_shape)}, expected {list(shape)}")
    numpy_dtype = _WIRE[dtype][1]
    count = math.prod(reply_shape)
    if len(tensor.data) != count * numpy_dtype.itemsize:
        raise Error(grpc.StatusCode.INTERNAL,
                    f"reply {what}: {len(tensor.data)} bytes for shape {list(reply_shape)} "
                    f"{dtype}")
    # A read-only view of the received bytes; the one copy is into the result array.
    received = np.frombuffer(tensor.data, dtype=numpy_dtype).reshape(reply_shape)
    if out is None:
        return received.astype(numpy_dtype.newbyteorder("="))
    np.copyto(out, received, casting="equiv")
    return out


def out_array(value, shape: Sequence[int], dtype: str, what: str) -> np.ndarray:
    """The numpy array that a result of ``shape`` and ``dtype`` is written into for the
    caller's ``value``: a numpy array of ``dtype``'s wire type (uint16 bit patterns for
    bfloat16; any byte order and strides), or a CPU torch tensor of the dtype (its
    memory, viewed). Raises INVALID_ARGUMENT, naming ``what``, when it does not fit or is
    read-only."""
    if _is_torch_tensor(value):
        import torch

        if value.device.type != "cpu" or value.requires_grad:
            raise invalid_argument(f"{what}: a torch tensor given to write into must be on "
                                   "the CPU and not require grad")
        if value.dtype == torch.bfloat16:
            out = value.view(torch.int16).numpy().view(np.uint16)
        else:
            out = value.numpy()
    elif isinstance(value, np.ndarray):
        out = value
    else:
        raise invalid_argument(f"{what}: expected a numpy array or a CPU torch tensor, got "
                               f"{type(value).__name__}")
    expected = _WIRE[dtype][1]
    if out.dtype.newbyteorder("<") != expected or tuple(out.shape) != tuple(shape):
        raise invalid_argument(
            f"{what}: shape {list(out.shape)} {out.dtype}, expected {list(shape)} "
            f"{expected.newbyteorder('=')}")
    if not out.flags.writeable:
        raise invalid_argument(f"{what}: the array is read-only")
    return out
