"""The generated wire code (actserve.v1.activation_pb2 and activation_pb2_grpc).

The generated modules are never committed: the CMake build writes them into
``<build>/python/actserve/v1/``. ``actserve/__init__.py`` extends the package's search
path with every ``actserve`` directory on ``sys.path`` (``pkgutil.extend_path``), so
putting ``<build>/python`` on ``PYTHONPATH`` next to ``client/python`` makes
``actserve.v1`` importable. This module imports it once, with an error message that says
how to fix the path when it is missing.
"""

try:
    from actserve.v1 import activation_pb2 as pb
    from actserve.v1 import activation_pb2_grpc as pb_grpc
except ImportError as error:  # pragma: no cover - depends on the user's environment
    raise ImportError(
        "actserve: the generated protobuf modules (actserve.v1.activation_pb2) were not "
        "found. Build the project (cmake --build <build>) and put both the SDK and the "
        "build tree's python directory on PYTHONPATH, e.g. "
        "PYTHONPATH=client/python:build/release/python"
    ) from error

__all__ = ["pb", "pb_grpc"]
