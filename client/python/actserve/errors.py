"""The one exception type of the actserve SDK."""

import grpc


class Error(Exception):
    """A failed actserve call, or a request rejected before it was sent.

    Attributes:
        code: the ``grpc.StatusCode``: the server's status (``INVALID_ARGUMENT`` with the
            server's message naming the bad field, ``RESOURCE_EXHAUSTED`` for a limit,
            ``UNAVAILABLE`` when the server cannot be reached, ``DEADLINE_EXCEEDED``, ...),
            or ``INVALID_ARGUMENT`` for a request the SDK refused locally (an unknown
            activation name, a malformed spec, a shape or dtype mismatch), or
            ``INTERNAL`` for a reply that does not match the request.
        message: the human-readable explanation.
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def invalid_argument(message: str) -> Error:
    """An ``Error`` for a request refused before any network traffic."""
    return Error(grpc.StatusCode.INVALID_ARGUMENT, message)


def from_rpc_error(error: grpc.RpcError) -> Error:
    """The ``Error`` for a failed gRPC call (``error`` is also a ``grpc.Call``)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return Error(code or grpc.StatusCode.UNKNOWN, details or "")
