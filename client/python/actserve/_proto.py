"""The generated wire code (actserve.v1.activation_pb2 and activation_pb2_grpc) and the
activation catalogue (actserve/v1/catalogue.json).

Neither is committed: the CMake build writes them into ``<build>/python/actserve/v1/``,
where the installable package is assembled (``pip install <build>/python``). During
development, ``actserve/__init__.py`` extends the package's search path with every
``actserve`` directory on ``sys.path`` (``pkgutil.extend_path``), so putting
``<build>/python`` on ``PYTHONPATH`` next to ``client/python`` makes ``actserve.v1``
importable too. This module loads both once, with an error message that says how to fix
the path when they are missing.
"""

import json

try:
    from actserve import v1 as _v1
    from actserve.v1 import activation_pb2 as pb
    from actserve.v1 import activation_pb2_grpc as pb_grpc
except ImportError as error:  # pragma: no cover - depends on the user's environment
    raise ImportError(
        "actserve: the generated protobuf modules (actserve.v1.activation_pb2) were not "
        "found. Install the package (pip install <build>/python), or build the project "
        "(cmake --build <build>) and put both the SDK and the build tree's python "
        "directory on PYTHONPATH, e.g. PYTHONPATH=client/python:build/release/python"
    ) from error


def _load_catalogue():
    # Next to the generated modules, written by the same build (catalogue_json.cc).
    path = _v1.__path__[0] + "/catalogue.json"
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as error:  # pragma: no cover - depends on the user's environment
        raise ImportError(f"actserve: {path} is missing; rebuild the package") from error


catalogue = _load_catalogue()

__all__ = ["catalogue", "pb", "pb_grpc"]
