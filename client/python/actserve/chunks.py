"""How ``Client.compute_large`` cuts one tensor into ComputeStream chunks: the C++ SDK's
plan (``Client::ComputeChunked``), chunk for chunk, so that both SDKs send the same
requests. ``tests/vectors/chunk_plans.json`` holds both to it.

    >>> plan_chunks((4, 6), 4, parse_activation("softmax(dim=0)"), 1, 32)
    [Chunk(shape=(4, 2), offset=0, columns=(0, 2), weights=None), ...]

- elementwise activations (and PReLU with one weight): flat runs of elements, whatever
  the shape;
- PReLU with one weight per channel (dimension 1): whole rows (dimension 0) when a row
  fits a chunk; otherwise runs of whole channel planes of one row, sent as
  ``[1, k, plane]`` with those k weights, or, when a plane is larger than a chunk, runs
  within one plane, sent as ``[1, 1, m]`` with that plane's weight;
- softmax / log_softmax along a dimension other than 0: whole rows;
- softmax / log_softmax along dimension 0: blocks of columns of the ``[shape[0], rest]``
  view, gathered row by row (each column is its own reduction); a 1-D one (or one column)
  is one chunk.

A chunk never holds fewer than one unit (element, row, column), so a row or column larger
than ``chunk_bytes`` is still sent whole. A scalar or an empty tensor is one chunk of its
own shape.
"""

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

from actserve.spec import ActivationSpec


class Chunk(NamedTuple):
    """One request of the stream.

    shape: the shape the chunk is sent with.
    offset: where its elements start in the whole tensor (row-major, in elements), for a
        contiguous chunk; 0 for a ``columns`` chunk.
    columns: ``(first, count)`` of the ``[shape[0], rest]`` view for a gathered chunk;
        None for a contiguous one.
    weights: ``(first, count)`` of the PReLU weights it is sent with; None when it is
        sent with the item's own activation.
    """

    shape: Tuple[int, ...]
    offset: int = 0
    columns: Optional[Tuple[int, int]] = None
    weights: Optional[Tuple[int, int]] = None


def plan_chunks(shape: Sequence[int], itemsize: int, spec: ActivationSpec,
                weight_count: int, chunk_bytes: int) -> List[Chunk]:
    """The chunks of a tensor of ``shape`` with ``itemsize``-byte elements, for ``spec``
    with ``weight_count`` PReLU weights (0 or 1: the item's own single weight), at most
    ``chunk_bytes`` bytes of input each (``chunk_bytes`` > 0), in the order they are sent."""
    shape = tuple(int(d) for d in shape)
    elements = math.prod(shape)
    rank = len(shape)
    per_chunk_elements = max(1, chunk_bytes // itemsize)
    if elements == 0 or rank == 0:
        return [Chunk(shape)]
    per_channel = spec.name == "prelu" and weight_count > 1
    if spec.elementwise and not per_channel:
        return _runs(elements, 1, per_chunk_elements, lambda first, count: (count,))
    rows = shape[0]
    rest = elements // rows
    if per_channel and rest > per_chunk_elements:
        return _planes(rows, shape[1], rest // shape[1], per_chunk_elements)
    dim = spec.value("dim") if not spec.elementwise else 1
    if dim < 0:
        dim += rank
    if spec.elementwise or dim != 0:
        return _runs(rows, rest, per_chunk_elements,
                     lambda first, count: (count,) + shape[1:])
    if rank < 2 or rest <= 1:
        return [Chunk(shape)]  # a 1-D softmax: every element in one reduction
    per_chunk = max(1, per_chunk_elements // rows)
    return [Chunk((rows, min(per_chunk, rest - first)), 0,
                  (first, min(per_chunk, rest - first)))
            for first in range(0, rest, per_chunk)]


def _runs(units: int, unit_elements: int, per_chunk_elements: int, shape_of) -> List[Chunk]:
    # Contiguous runs of whole units (elements or rows).
    per_chunk = max(1, per_chunk_elements // unit_elements)
    return [Chunk(shape_of(first, min(per_chunk, units - first)), first * unit_elements)
            for first in range(0, units, per_chunk)]


def _planes(rows: int, channels: int, plane: int, per_chunk_elements: int) -> List[Chunk]:
    row_elements = channels * plane
    chunks = []
    planes_per_chunk = per_chunk_elements // plane
    for row in range(rows):
        if planes_per_chunk >= 1:
            for first in range(0, channels, planes_per_chunk):
                count = min(planes_per_chunk, channels - first)
                chunks.append(Chunk((1, count, plane), row * row_elements + first * plane,
                                    None, (first, count)))
        else:
            for channel in range(channels):
                for within in range(0, plane, per_chunk_elements):
                    count = min(per_chunk_elements, plane - within)
                    chunks.append(Chunk((1, 1, count),
                                        row * row_elements + channel * plane + within,
                                        None, (channel, 1)))
    return chunks
