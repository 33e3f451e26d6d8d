"""actserve: a Python client for the actserve activation service.

    import numpy as np
    import actserve

    with actserve.Client("localhost:50051") as client:
        r = client.compute(np.array([-2.0, 0.0, 2.0]), "leaky_relu(negative_slope=0.2)")
        print(r.output, r.grad_input)

``actserve.torch`` (imported on first use, so that ``import actserve`` does not load
PyTorch) runs a model's activation on the service, forward and backward.

The generated wire code and catalogue (``actserve.v1``) are written by the build, which
assembles the installable package in ``<build>/python`` (``pip install --no-index
--no-build-isolation build/release/python``). Working from the source tree instead, put
both directories on the path, e.g. ``PYTHONPATH=client/python:build/release/python``: the
``extend_path`` call below makes every ``actserve`` directory on ``sys.path`` part of this
package, which is how ``actserve.v1`` is found in the build tree.
"""

import importlib
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

from actserve.client import (  # noqa: E402  (after the path is extended)
    DEFAULT_CHUNK_BYTES,
    HEALTH_STATUSES,
    MODES,
    ActivationDescription,
    Client,
    Item,
    ParameterDescription,
    Result,
    ServerDescription,
    ServiceDescription,
    Tls,
)
from actserve.errors import Error  # noqa: E402
from actserve.spec import ACTIVATION_NAMES, ActivationSpec, parse_activation  # noqa: E402
from actserve.tensors import DTYPES, bfloat16_bits, bfloat16_to_float32  # noqa: E402

__all__ = [
    "ACTIVATION_NAMES", "DEFAULT_CHUNK_BYTES", "DTYPES", "HEALTH_STATUSES", "MODES",
    "ActivationDescription", "ActivationSpec", "Client", "Error", "Item",
    "ParameterDescription", "Result", "ServerDescription", "ServiceDescription", "Tls",
    "bfloat16_bits", "bfloat16_to_float32", "parse_activation",
]


def __getattr__(name):
    # `actserve.torch` without an explicit import; torch itself is loaded only then.
    if name == "torch":
        return importlib.import_module("actserve.torch")
    raise AttributeError(f"module 'actserve' has no attribute {name!r}")
