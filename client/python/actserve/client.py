"""``actserve.Client``: numpy arrays (or torch tensors) in, activations and gradients out.

    client = actserve.Client("localhost:50051")
    r = client.compute(np.linspace(-3, 3, 7), "gelu(approximate=tanh)")
    r.output      # gelu(x)
    r.grad_input  # gelu'(x): no grad_output was given, so dy = 1

Every call blocks until the reply arrives or ``timeout`` seconds pass, and raises
``actserve.Error`` (with the gRPC status code and message) when it fails. The
activation's text form is parsed locally: an unknown name or a malformed spec fails
before any network traffic. A Client may be shared by threads (gRPC channels are
thread-safe); close it, or use it as a context manager, to release the connection.
"""

import dataclasses
import json
import math
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Union

import grpc
import numpy as np

from actserve import chunks as chunks_module
from actserve import tensors
from actserve import wire
from actserve._proto import pb, pb_grpc
from actserve.errors import Error, from_rpc_error, invalid_argument
from actserve.spec import ActivationSpec, parse_activation

MODES = ("forward", "backward", "forward_backward")
_MODE_TO_WIRE = {"forward": pb.MODE_FORWARD, "backward": pb.MODE_BACKWARD,
                 "forward_backward": pb.MODE_FORWARD_BACKWARD}

DEFAULT_MAX_MESSAGE_BYTES = 256 << 20  # 256 MiB, the server's default limit too
DEFAULT_CHUNK_BYTES = 4 << 20  # 4 MiB of input per streamed chunk

# Text forms already parsed, with their serialized Activation (without a weight tensor):
# parsing and serializing a spec costs more than the rest of a small call's client work.
# Specs are never changed once made; a full cache starts over.
_SPEC_CACHE = {}
_SPEC_CACHE_SIZE = 256

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_COMPUTE = "/actserve.v1.ActivationService/Compute"
_COMPUTE_STREAM = "/actserve.v1.ActivationService/ComputeStream"
HEALTH_STATUSES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")


class Result(NamedTuple):
    """The result of one item. A result the mode did not ask for is None.

    Arrays are numpy arrays (uint16 bit patterns for bfloat16 given as such), or torch
    tensors of the input's dtype and device when the input was a torch tensor.
    """

    output: Any = None       # y = f(x): the input's shape and dtype
    grad_input: Any = None   # dx = dy * f'(x): the input's shape and dtype
    grad_weight: Any = None  # PReLU with a gradient: dL/dw, the weight's shape


@dataclasses.dataclass
class Item:
    """One tensor to compute in a batch; the fields are ``Client.compute``'s arguments."""

    x: Any
    activation: str
    mode: str = "forward_backward"
    grad_output: Any = None
    weight: Any = None
    dtype: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Tls:
    """TLS settings of a channel. Every field is optional.

    Attributes:
        ca_file: PEM file of the CA certificates that sign the server's certificate.
            None: the system's root certificates.
        cert_file, key_file: PEM certificate chain and private key of this client, for
            servers that require mutual TLS (``--tls_client_ca``). Both or neither.
        server_name: the name to verify in the server's certificate when it differs from
            the target's host (e.g. connecting to an IP address). None: the target's host.
    """

    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    server_name: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ParameterDescription:
    name: str                # PyTorch's name, e.g. "negative_slope"
    type: str                # "real", "integer", "choice", "tensor"
    required: bool           # no default (threshold's two parameters)
    default_text: str        # e.g. "0.01", "none"; empty when required
    valid_range: str         # e.g. "nonzero", ">= 0"
    choices: Sequence[str]   # "choice" only, e.g. ("none", "tanh")


@dataclasses.dataclass(frozen=True)
class ActivationDescription:
    name: str                # text-form name, e.g. "leaky_relu"
    description: str         # one line
    formula: str             # forward
    gradient: str            # backward, in terms of g = dy
    parameters: Sequence[ParameterDescription]
    elementwise: bool        # False for softmax and log_softmax
    example: str             # a text-form spec


@dataclasses.dataclass(frozen=True)
class ServerDescription:
    version: str             # e.g. "0.1.0"
    dtypes: Sequence[str]    # e.g. ("float32", "float64", "float16", "bfloat16")
    simd_target: str         # e.g. "AVX3" or "portable"
    threads: int             # compute threads
    max_message_bytes: int   # 0: unlimited
    max_elements: int        # input elements per request; 0: unlimited
    max_inflight: int        # concurrent calls; 0: unlimited


@dataclasses.dataclass(frozen=True)
class ServiceDescription:
    activations: Sequence[ActivationDescription]
    server: ServerDescription


@dataclasses.dataclass
class _Prepared:
    """An item checked and converted for the wire, with what is needed to decode its
    result."""

    parts: wire.ItemParts               # the request's item, its tensors views of the arrays
    activation: Any                     # pb.Activation, as sent; None for a cached spec
    host: tensors.HostArray             # the input
    mode: str
    spec: ActivationSpec
    weight_shape: Optional[tuple]       # None: the server's default weight (or no PReLU)
    grad_output: Optional[np.ndarray]   # in the wire layout, or None
    weight: Optional[np.ndarray]        # in the wire layout, or None


def _service_config(load_balancing_policy: str, max_attempts: int) -> str:
    config = {}
    if max_attempts > 1:  # gRPC rejects a retry policy of fewer than 2 attempts
        config["methodConfig"] = [{
            "name": [{"service": "actserve.v1.ActivationService"},
                     {"service": "grpc.health.v1.Health"}],
            # Every RPC of both services is idempotent, so a retry never applies anything
            # twice. The C++ SDK's policy (client/sdk/channel.cc), code for code
            # (tests/vectors/retry_policy.json): UNAVAILABLE is a server not reachable
            # yet, one that died mid-call or one that is draining; CANCELLED from the
            # server is the rest of a shutdown (a call that reached it after its Shutdown
            # began, or still ran when --shutdown_grace ended). gRPC never retries a call
            # the caller cancelled or whose deadline passed.
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
            },
        }]
    if load_balancing_policy:
        config["loadBalancingConfig"] = [{load_balancing_policy: {}}]
    return json.dumps(config)


def _read(path: Optional[str], what: str) -> Optional[bytes]:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise invalid_argument(f"tls.{what}: cannot read {path!r}: {error.strerror}") from None


def encode_health_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest { string service = 1; }, serialized by hand:
    Debian's python3-grpcio ships no grpc_health module."""
    data = service.encode("utf-8")
    if not data:
        return b""  # proto3 leaves a default field out
    return b"\x0a" + wire.encode_varint(len(data)) + data


def decode_health_response(data: bytes) -> str:
    """The status name in a serialized HealthCheckResponse { ServingStatus status = 1; }.
    "UNKNOWN" when the field is absent or its number is not one of the four; unknown
    fields are skipped. Raises ``actserve.Error`` (INTERNAL) for malformed bytes."""

    status, at = 0, 0
    try:
        while at < len(data):
            key, at = wire.read_varint(data, at)
            field, wire_type = key >> 3, key & 7
            if field == 1 and wire_type == 0:
                status, at = wire.read_varint(data, at)
            else:
                at = wire.skip_field(data, at, wire_type)
    except wire.MalformedMessage:
        raise Error(grpc.StatusCode.INTERNAL,
                    "malformed grpc.health.v1 HealthCheckResponse") from None
    return HEALTH_STATUSES[status] if 0 <= status < len(HEALTH_STATUSES) else "UNKNOWN"


class Client:
    """A connection to an actserve server.

    Args:
        target: gRPC target: ``"localhost:50051"``, ``"dns:///actserve.default.svc:50051"``,
            ``"ipv4:10.0.0.1:50051,10.0.0.2:50051"``. The connection is made lazily: an
            unreachable server shows up as ``Error`` with code UNAVAILABLE on the first call.
        tls: None or False for plaintext; True for TLS with the system's root
            certificates; a ``Tls`` for a CA file, a client certificate (mutual TLS) or a
            server name override.
        token: a bearer token, sent with every call as ``authorization: Bearer <token>``.
            Use it with TLS outside a trusted network.
        timeout: seconds each call may take (for ``compute_large``, the whole stream);
            then it fails with DEADLINE_EXCEEDED and the server stops computing it.
            None: no deadline.
        max_message_bytes: the largest message sent or received. Default 256 MiB.
        load_balancing_policy: gRPC's policy over the addresses the target resolves to:
            "round_robin" (default) spreads calls, "pick_first" uses one, "" gRPC's default.
        max_attempts: tries of a call that fails before any reply with UNAVAILABLE (a
            server not reachable yet, a replica that died or is draining) or with
            CANCELLED from the server (a replica whose shutdown caught the call in
            transit), as the C++ SDK retries; a call cancelled by the caller or past its
            deadline is never retried (1 disables retries; gRPC caps it at 5). Default 3.
    """

    def __init__(self, target: str, tls: Union[None, bool, Tls] = None,
                 token: Optional[str] = None, timeout: Optional[float] = None, *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 load_balancing_policy: str = "round_robin", max_attempts: int = 3):
        if timeout is not None and not timeout > 0:
            raise invalid_argument(f"timeout must be positive seconds or None, got {timeout}")
        if token is not None and (not isinstance(token, str) or not token
                                  or any(c in token for c in "\r\n")):
            raise invalid_argument("token must be a non-empty string of one line")
        self._target = target
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.enable_retries", 1 if max_attempts > 1 else 0),
            ("grpc.service_config", _service_config(load_balancing_policy, max_attempts)),
        ]
        if tls is None or tls is False:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            settings = Tls() if tls is True else tls
            if not isinstance(settings, Tls):
                raise invalid_argument(f"tls must be None, a bool or actserve.Tls, got {tls!r}")
            if (settings.cert_file is None) != (settings.key_file is None):
                raise invalid_argument("tls: cert_file and key_file go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(settings.ca_file, "ca_file"),
                private_key=_read(settings.key_file, "key_file"),
                certificate_chain=_read(settings.cert_file, "cert_file"))
            if settings.server_name:
                options.append(("grpc.ssl_target_name_override", settings.server_name))
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = pb_grpc.ActivationServiceStub(self._channel)
        # No request or response serializer: these calls take and return raw bytes. The
        # compute calls write and read the wire format themselves (actserve.wire), so that
        # tensor data is not copied in and out of generated messages.
        self._health_check = self._channel.unary_unary(_HEALTH_CHECK)
        self._compute = self._channel.unary_unary(_COMPUTE)
        self._compute_stream = self._channel.stream_stream(_COMPUTE_STREAM)

    @property
    def target(self) -> str:
        return self._target

    def close(self) -> None:
        """Closes the channel; calls in progress are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ----------------------------------------------------------------------------------
    # Compute.

    def compute(self, x, activation: str, mode: str = "forward_backward", grad_output=None,
                weight=None, dtype: Optional[str] = None, *, out=None) -> Result:
        """Computes ``activation`` on ``x`` in one Compute call.

        Args:
            x: a numpy array (float16, float32, float64), an array-like (becomes float64),
                a torch tensor (float16, float32, float64, bfloat16), or uint16 bfloat16
                bit patterns with ``dtype="bfloat16"``. Any shape, including scalars and
                empty tensors.
            activation: the text form, e.g. ``"relu"``, ``"leaky_relu(negative_slope=0.2)"``,
                ``"gelu(approximate=tanh)"``, ``"softmax(dim=1)"``, ``"prelu(weight=0.1)"``.
            mode: ``"forward"`` (output only), ``"backward"`` (grad_input, and grad_weight
                for PReLU) or ``"forward_backward"`` (both, in one pass).
            grad_output: dy, of x's shape; converted to x's dtype. None: dy = 1, so
                grad_input is f'(x) (for softmax / log_softmax, the gradient of sum(y)).
            weight: PReLU only: one value, or one per channel (x.shape[1]); converted to
                x's dtype. None: the spec's ``weight=`` value, else PyTorch's 0.25.
            dtype: see ``actserve.tensors.to_host``; None keeps x's dtype.
            out: None, or a ``Result`` (or a tuple in its order) of arrays to write the
                results into, as numpy's ``out=``: for each result the mode gives, a
                writable numpy array of x's shape and wire dtype (uint16 for bfloat16
                bit patterns; any strides) or a CPU torch tensor of x's shape and dtype,
                or None for a new array. The returned ``Result`` holds those same
                objects. Reusing them from call to call spares mapping and first-touching
                fresh memory for every reply (about 12 us per 4 KiB page on a VM).

        The data travel with as few copies as Python's gRPC allows: the request is
        written straight from x's and grad_output's memory (numpy arrays and CPU torch
        tensors in the wire layout are not copied first), and each result is copied once
        from the received bytes into its array.

        Returns a ``Result``. Raises ``actserve.Error``.
        """
        prepared = self._prepare(Item(x, activation, mode, grad_output, weight, dtype), "")
        outs = self._out_arrays(prepared, out)
        results = self._call_compute([prepared.parts])
        self._check_count(len(results), 1)
        return self._decode(prepared, results[0], "results[0]", out, outs)

    def compute_batch(self, items: Iterable[Union[Item, Mapping[str, Any]]]) -> List[Result]:
        """Computes several items in one Compute call (all succeed or the call fails).

        ``items``: ``Item`` objects, or mappings of ``compute``'s keyword arguments
        (``{"x": x, "activation": "relu"}``). Returns one ``Result`` per item, in order;
        an empty batch gives ``[]``. Errors in an item name it (``items[2].grad_output``).
        """
        prepared = []
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                try:
                    item = Item(**item)
                except TypeError as error:
                    raise invalid_argument(f"items[{index}]: {error}") from None
            elif not isinstance(item, Item):
                raise invalid_argument(
                    f"items[{index}]: expected actserve.Item or a mapping, got "
                    f"{type(item).__name__}")
            prepared.append(self._prepare(item, f"items[{index}]."))
        results = self._call_compute([p.parts for p in prepared])
        self._check_count(len(results), len(prepared))
        return [self._decode(p, result, f"results[{i}]")
                for i, (p, result) in enumerate(zip(prepared, results))]

    def compute_large(self, x, activation: str, mode: str = "forward_backward",
                      grad_output=None, weight=None, dtype: Optional[str] = None,
                      chunk_bytes: int = DEFAULT_CHUNK_BYTES, *, out=None) -> Result:
        """Computes a tensor of any size on one ComputeStream call.

        Cuts x (and grad_output) into chunks of at most ``chunk_bytes`` bytes of input,
        sends them pipelined (gRPC sends from a background thread while this one reads the
        replies), and joins the results into arrays of x's shape. It cuts exactly as the
        C++ SDK's ComputeChunked (``actserve.chunks.plan_chunks``): elementwise
        activations (and PReLU with one weight) in flat runs of elements, whatever the
        shape; PReLU with one weight per channel (dimension 1) by rows when a row fits a
        chunk, otherwise by runs of channel planes of one row, or runs within a plane,
        each sent with its channels' weights; softmax / log_softmax by rows when ``dim``
        is not 0, and in blocks of columns of the ``[shape[0], rest]`` view when it is
        (each column is its own reduction; a 1-D one is one chunk). When the plan is a
        single chunk, the item goes as one Compute call instead of a one-message stream.
        Arguments and results are ``compute``'s, and so are the values, with one
        exception: a PReLU grad_weight is the sum of the chunks' grad_weights, added in
        float64 and rounded once to the dtype (each chunk's sum was already rounded, so
        float16 / bfloat16 results may differ from one ``compute`` in the last place).
        ``out`` is ``compute``'s, with C-contiguous arrays (grad_weight's excepted).

        Each chunk is sent straight from x's and grad_output's memory (a block of
        columns is gathered first), and each result chunk is copied once, from the
        received bytes into its place in the result arrays: besides x, grad_output and
        the results, the client holds about a window of chunks in gRPC's buffers.
        """
        if not isinstance(chunk_bytes, int) or chunk_bytes <= 0:
            raise invalid_argument(f"chunk_bytes must be a positive int, got {chunk_bytes!r}")
        prepared = self._prepare(Item(x, activation, mode, grad_output, weight, dtype), "")
        outs = self._out_arrays(prepared, out)
        array = prepared.host.array
        weight_count = 0 if prepared.weight is None else prepared.weight.size
        plan = chunks_module.plan_chunks(array.shape, array.itemsize, prepared.spec,
                                         weight_count, chunk_bytes)
        if len(plan) == 1:
            results = self._call_compute([prepared.parts])
            self._check_count(len(results), 1)
            return self._decode(prepared, results[0], "results[0]", out, outs)
        if any(o is not None and not o.flags.c_contiguous for o in outs[:2]):
            raise invalid_argument("out: compute_large writes into C-contiguous arrays only")
        if any(chunk.weights is not None for chunk in plan):
            channels = array.shape[1]
            if weight_count != channels:
                raise invalid_argument(
                    f"weight: {weight_count} values, but x has shape "
                    f"{list(array.shape)}, {channels} channels (dimension 1); expected 1 or "
                    f"{channels}")

        # Row-major throughout, so that every reshape below is a view: a contiguous chunk
        # is a slice of the flat view, a block of columns a slice of the [rows, rest] view.
        columns_shape = (array.shape[0], array.size // array.shape[0]) if array.ndim else ()
        x_flat = np.ascontiguousarray(array).reshape(-1)
        dy_flat = (None if prepared.grad_output is None
                   else np.ascontiguousarray(prepared.grad_output).reshape(-1))
        weight_flat = None if prepared.weight is None else prepared.weight.reshape(-1)
        activation_bytes = prepared.parts.activation
        # A block of columns is a 2-D tensor whatever the input's rank: its reduction
        # runs along dimension 0, which a `dim` counted from the end of a higher rank
        # would not name.
        column_activation = None
        if any(chunk.columns is not None for chunk in plan):
            column_activation = prepared.spec.with_params(dim=0).to_proto().SerializeToString()
        wire_mode = prepared.parts.mode
        dtype_name = prepared.host.dtype

        def part_of(flat, chunk):
            if chunk.columns is None:
                return flat[chunk.offset:chunk.offset + math.prod(chunk.shape)].reshape(
                    chunk.shape)
            first, count = chunk.columns
            return flat.reshape(columns_shape)[:, first:first + count]

        def activation_for(chunk):
            if chunk.columns is not None:
                return column_activation
            if chunk.weights is None:
                return activation_bytes
            # Only this chunk's channels, and their weights.
            first, count = chunk.weights
            sliced = pb.Activation()
            sliced.CopyFrom(prepared.activation)
            sliced.prelu.weight.CopyFrom(
                tensors.to_proto(weight_flat[first:first + count], dtype_name))
            return sliced.SerializeToString()

        def tensor_of(flat, chunk):
            # A block of columns is strided: gathered into a new array. Other chunks are
            # slices of the caller's memory, sent as they are.
            part = part_of(flat, chunk)
            return tensors.to_wire(part if chunk.columns is None
                                   else np.ascontiguousarray(part), dtype_name)

        def requests():
            # gRPC sends each request from its own thread while this one reads replies;
            # it asks for the next only when the previous one is written, so at most a
            # chunk or two of requests exist at once.
            for chunk in plan:
                yield wire.encode_compute_request([wire.ItemParts(
                    tensor_of(x_flat, chunk), activation_for(chunk), wire_mode,
                    None if dy_flat is None else tensor_of(dy_flat, chunk))])

        wants_output = prepared.mode != "backward"
        wants_grad = prepared.mode != "forward"
        output = grad_input = None
        if wants_output:
            output = (np.empty(array.size, array.dtype) if outs[0] is None
                      else outs[0].reshape(-1))
        if wants_grad:
            grad_input = (np.empty(array.size, array.dtype) if outs[1] is None
                          else outs[1].reshape(-1))
        grad_weight_sum = None
        received = 0
        try:
            replies = self._compute_stream(requests(), timeout=self._timeout,
                                           metadata=self._metadata)
            for reply in replies:
                if received >= len(plan):
                    raise Error(grpc.StatusCode.INTERNAL,
                                f"ComputeStream: more than {len(plan)} replies")
                results = _decode_response(reply)
                self._check_count(len(results), 1)
                chunk = plan[received]
                weight_shape = None if chunk.weights is None else (chunk.weights[1],)
                # Each result chunk is copied once, into its place in the result arrays.
                part = self._decode_arrays(
                    prepared, results[0], f"chunk {received} results[0]", tuple(chunk.shape),
                    weight_shape,
                    (part_of(output, chunk) if wants_output else None,
                     part_of(grad_input, chunk) if wants_grad else None, None))
                if part.grad_weight is not None:
                    widened = _to_float64(part.grad_weight, dtype_name)
                    if chunk.weights is not None:
                        if grad_weight_sum is None:
                            grad_weight_sum = np.zeros(prepared.weight.shape, np.float64)
                        first, count = chunk.weights
                        grad_weight_sum.reshape(-1)[first:first + count] += widened
                    else:
                        grad_weight_sum = widened if grad_weight_sum is None else (
                            grad_weight_sum + widened)
                received += 1
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        if received != len(plan):
            raise Error(grpc.StatusCode.INTERNAL,
                        f"ComputeStream: {received} replies for {len(plan)} chunks")
        grad_weight = None
        if grad_weight_sum is not None:
            grad_weight = _from_float64(grad_weight_sum, dtype_name)
            if outs[2] is not None:
                outs[2][...] = grad_weight
                grad_weight = outs[2]
        return self._restore(
            prepared, out,
            (None if output is None else output.reshape(array.shape),
             None if grad_input is None else grad_input.reshape(array.shape), grad_weight))

    # ----------------------------------------------------------------------------------
    # Discovery and health.

    def list_activations(self) -> ServiceDescription:
        """Every activation the server computes, with its parameters, and the server's
        version, dtypes, SIMD target, threads and limits."""
        response = self._call(self._stub.ListActivations, pb.ListActivationsRequest())
        type_names = {pb.ParameterInfo.TYPE_REAL: "real",
                      pb.ParameterInfo.TYPE_INTEGER: "integer",
                      pb.ParameterInfo.TYPE_CHOICE: "choice",
                      pb.ParameterInfo.TYPE_TENSOR: "tensor"}
        activations = tuple(
            ActivationDescription(
                name=a.name, description=a.description, formula=a.formula,
                gradient=a.gradient, elementwise=a.elementwise, example=a.example,
                parameters=tuple(
                    ParameterDescription(
                        name=p.name, type=type_names.get(p.type, "unspecified"),
                        required=p.required, default_text=p.default_text,
                        valid_range=p.valid_range, choices=tuple(p.choices))
                    for p in a.parameters))
            for a in response.activations)
        dtype_names = {pb.DTYPE_FLOAT32: "float32", pb.DTYPE_FLOAT64: "float64",
                       pb.DTYPE_FLOAT16: "float16", pb.DTYPE_BFLOAT16: "bfloat16"}
        info = response.server
        server = ServerDescription(
            version=info.version,
            dtypes=tuple(dtype_names.get(d, str(d)) for d in info.dtypes),
            simd_target=info.simd_target, threads=info.threads,
            max_message_bytes=info.limits.max_message_bytes,
            max_elements=info.limits.max_elements, max_inflight=info.limits.max_inflight)
        return ServiceDescription(activations, server)

    def health(self, service: str = "") -> str:
        """grpc.health.v1.Health/Check for ``service`` ("" is the server as a whole):
        "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" or "UNKNOWN". Raises ``actserve.Error``
        when the server cannot be reached (UNAVAILABLE), has no health service
        (UNIMPLEMENTED), or does not know ``service`` (NOT_FOUND)."""
        reply = self._call(self._health_check, encode_health_request(service))
        return decode_health_response(reply)

    # ----------------------------------------------------------------------------------
    # Internals.

    def _call(self, method, request):
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    @staticmethod
    def _check_count(got: int, expected: int) -> None:
        if got != expected:
            raise Error(grpc.StatusCode.INTERNAL,
                        f"the reply has {got} results for {expected} items")

    @staticmethod
    def _prepare(item: Item, place: str) -> _Prepared:
        spec = None
        cached = (_SPEC_CACHE.get(item.activation)
                  if isinstance(item.activation, str) and item.weight is None else None)
        if cached is not None:
            spec = cached[0]
        elif isinstance(item.activation, str):
            try:
                spec = parse_activation(item.activation)
            except Error as error:
                if not place:
                    raise
                # A batch names the item, as the C++ SDK's Batch does.
                raise invalid_argument(f"{place}activation: {error.message}") from None
        if spec is None:
            raise invalid_argument(
                f"{place}activation must be text such as 'relu' or 'elu(alpha=0.5)', got "
                f"{type(item.activation).__name__}")
        mode = "forward_backward" if item.mode is None else item.mode
        if mode not in _MODE_TO_WIRE:
            raise invalid_argument(f"{place}mode must be one of {', '.join(MODES)}, got "
                                   f"{mode!r}")
        host = tensors.to_host(item.x, f"{place}x", item.dtype)
        grad_output = None
        if item.grad_output is not None:
            grad_output = tensors.like(item.grad_output, host, f"{place}grad_output")
            if grad_output.shape != host.array.shape:
                raise invalid_argument(
                    f"{place}grad_output: shape {list(grad_output.shape)}, but x has shape "
                    f"{list(host.array.shape)}")

        weight, weight_shape, weight_proto = None, None, None
        if item.weight is not None:
            if spec.name != "prelu":
                raise invalid_argument(f"{place}weight: only prelu takes a weight, not "
                                       f"{spec.name}")
            if "weight" in spec.params:
                raise invalid_argument(
                    f"{place}weight: given both as an argument and in the spec {spec}")
            weight = tensors.like(item.weight, host, f"{place}weight")
        elif "weight" in spec.params:
            # The text form's one value, as a one-element weight in x's dtype.
            value = np.array([spec.params["weight"]], dtype=np.float64)
            weight = (tensors.bfloat16_bits(value) if host.dtype == "bfloat16" else
                      tensors.to_host(value, f"{place}weight", host.dtype).array)
        if weight is not None:
            weight_shape = weight.shape
            weight_proto = tensors.to_proto(weight, host.dtype)
        if cached is not None and weight is None:
            activation, activation_bytes = None, cached[1]
        else:
            activation = spec.to_proto(weight_proto)
            activation_bytes = activation.SerializeToString()
            if weight is None and isinstance(item.activation, str):
                if len(_SPEC_CACHE) >= _SPEC_CACHE_SIZE:
                    _SPEC_CACHE.clear()
                _SPEC_CACHE[item.activation] = (spec, activation_bytes)
        # The tensors go as views of the arrays: the request's join is their one copy.
        parts = wire.ItemParts(
            tensors.to_wire(host.array, host.dtype), activation_bytes,
            _MODE_TO_WIRE[mode],
            None if grad_output is None else tensors.to_wire(grad_output, host.dtype))
        return _Prepared(parts, activation, host, mode, spec, weight_shape, grad_output,
                         weight)

    @staticmethod
    def _out_arrays(prepared: _Prepared, out) -> tuple:
        """The numpy arrays that ``out`` (None, or a Result or tuple of arrays or
        tensors, None where a new array is wanted) asks the results to be written into:
        always three entries. Raises INVALID_ARGUMENT before any call when one does not
        fit the result or the mode gives no such result."""
        shape, dtype = prepared.host.array.shape, prepared.host.dtype
        gives = (prepared.mode != "backward", prepared.mode != "forward",
                 prepared.mode != "forward" and prepared.spec.name == "prelu")
        if out is None:
            given = (None, None, None)
        elif not isinstance(out, tuple) or len(out) > 3:
            raise invalid_argument("out must be an actserve.Result or a tuple of up to 3 "
                                   f"arrays (output, grad_input, grad_weight), got {out!r}")
        else:
            given = tuple(out) + (None,) * (3 - len(out))
        arrays = []
        for name, value, given_by_mode in zip(Result._fields, given, gives):
            if value is None:
                arrays.append(None)
                continue
            if not given_by_mode:
                raise invalid_argument(f"out.{name}: {prepared.spec.name} in mode "
                                       f"{prepared.mode} gives no {name}")
            if name == "grad_weight":
                # Without a weight the server uses its default and the reply says the shape.
                result_shape = (prepared.weight_shape if prepared.weight_shape is not None
                                else getattr(value, "shape", ()))
            else:
                result_shape = shape
            arrays.append(tensors.out_array(value, result_shape, dtype, f"out.{name}"))
        return tuple(arrays)

    def _call_compute(self, items: Sequence[wire.ItemParts]) -> List[wire.WireResult]:
        return _decode_response(self._call(self._compute, wire.encode_compute_request(items)))

    @staticmethod
    def _decode_arrays(prepared: _Prepared, result: wire.WireResult, place: str, shape,
                       weight_shape: Optional[tuple] = None,
                       outs: tuple = (None, None, None)) -> Result:
        """The arrays of one reply, each copied once from the received bytes into the
        array of ``outs`` (``_out_arrays``) or a new one; ``weight_shape`` overrides the
        item's weight shape for a chunk sent with only some of the weights."""
        dtype = prepared.host.dtype
        output = grad_input = grad_weight = None
        if prepared.mode != "backward":
            if result.output is None:
                raise Error(grpc.StatusCode.INTERNAL, f"reply {place} has no output")
            output = tensors.from_wire(result.output, dtype, shape, f"{place}.output",
                                       outs[0])
        if prepared.mode != "forward":
            if result.grad_input is None:
                raise Error(grpc.StatusCode.INTERNAL, f"reply {place} has no grad_input")
            grad_input = tensors.from_wire(result.grad_input, dtype, shape,
                                           f"{place}.grad_input", outs[1])
            if prepared.spec.name == "prelu":
                if result.grad_weight is None:
                    raise Error(grpc.StatusCode.INTERNAL, f"reply {place} has no grad_weight")
                expected = prepared.weight_shape if weight_shape is None else weight_shape
                if outs[2] is not None:
                    expected = outs[2].shape
                grad_weight = tensors.from_wire(result.grad_weight, dtype, expected,
                                                f"{place}.grad_weight", outs[2])
        return Result(output, grad_input, grad_weight)

    def _decode(self, prepared: _Prepared, result: wire.WireResult, place: str,
                out=None, outs: tuple = (None, None, None)) -> Result:
        arrays = self._decode_arrays(prepared, result, place, prepared.host.array.shape,
                                     None, outs)
        return self._restore(prepared, out, arrays)

    @staticmethod
    def _restore(prepared: _Prepared, out, arrays) -> Result:
        # A result written into the caller's array or tensor is returned as that object.
        given = (None, None, None) if out is None else tuple(out) + (None,) * (3 - len(out))
        restore = prepared.host.restore
        return Result(*(None if array is None else mine if mine is not None else
                        restore(array) for array, mine in zip(arrays, given)))


def _decode_response(reply: bytes) -> List[wire.WireResult]:
    try:
        return wire.decode_compute_response(reply)
    except wire.MalformedMessage as error:
        raise Error(grpc.StatusCode.INTERNAL, f"malformed ComputeResponse: {error}") from None


def _to_float64(array: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        return tensors.bfloat16_to_float32(array).astype(np.float64)
    return array.astype(np.float64)


def _from_float64(array: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        # Rounded straight from float64 (one rounding), not through float32.
        return _bfloat16_bits_from_float64(array)
    return array.astype({"float32": np.float32, "float16": np.float16,
                         "float64": np.float64}[dtype])


def _bfloat16_bits_from_float64(values: np.ndarray) -> np.ndarray:
    # float64 -> float32 -> bfloat16 with round-to-nearest twice can round wrongly (a
    # double rounding). Rounding to odd in the first step avoids it, since float32 keeps
    # more than two extra bits: truncate toward zero, and set the last bit when inexact.
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    bits = nearest.view(np.uint32).copy()
    widened = nearest.astype(np.float64)
    inexact = ~np.isnan(values) & (widened != values)
    rounded_away = inexact & (np.abs(widened) > np.abs(values))
    bits[rounded_away] -= np.uint32(1)  # sign-magnitude: one step toward zero
    bits[inexact] |= np.uint32(1)
    return tensors.bfloat16_bits(bits.view(np.float32))
