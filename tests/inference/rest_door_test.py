"""The Open Inference Protocol's HTTP/REST door of the real `actserve` binary, driven by
two independent HTTP clients: `curl` and Node's built-in fetch (rest_fetch_client.mjs).

Each client sends the same requests: health, metadata, inferences with JSON tensors and
with the binary tensor data extension, forward and backward passes for FP32, FP64, FP16
and BF16, whose values are checked against PyTorch (float64, rounded to the dtype), and
every class of bad request, each checked for its HTTP status and message, with a good
request served afterwards. Separate servers check tokens, TLS and mutual TLS, the body
size limit, metrics and the drain.

Environment (set by ctest): ACTSERVE_BINARY. Needs curl, node (20 or newer) and openssl
on PATH, and /usr/bin/python3 with numpy and torch.
"""

import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

BINARY = os.environ.get("ACTSERVE_BINARY", "")
HERE = os.path.dirname(os.path.abspath(__file__))
FETCH_CLIENT = os.path.join(HERE, "rest_fetch_client.mjs")
_HTTP_PORT_IN_LOG = re.compile(rb"HTTP/REST listening on https?://[^ ]+:(\d+)")
_METRICS_PORT_IN_LOG = re.compile(rb"metrics on port (\d+)")
_START_LIMIT_S = 60.0


class Server:
    """One `actserve` process with its REST door on a free loopback port."""

    def __init__(self, *flags: str, scheme: str = "http"):
        self.dir = tempfile.TemporaryDirectory(prefix="actserve-rest-")
        self.log_path = os.path.join(self.dir.name, "actserve.log")
        self.flags = ["--address=127.0.0.1:0", "--http_address=127.0.0.1:0",
                      "--metrics_address=", "--threads=2", "--shutdown_grace=2s",
                      "--drain_delay=0s", *flags]
        self.scheme = scheme
        self.process = None
        self.port = None

    def log(self) -> str:
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")

    def start(self) -> "Server":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([BINARY, *self.flags], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_LIMIT_S
        while True:
            with open(self.log_path, "rb") as log:
                text = log.read()
            match = _HTTP_PORT_IN_LOG.search(text)
            # The gRPC line comes last: once it is there the server serves.
            if match and b" listening on 127.0.0.1:0 (port " in text:
                self.port = int(match.group(1))
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"actserve did not start; its log:\n{self.log()}")
            time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def metrics_port(self) -> int:
        return int(_METRICS_PORT_IN_LOG.search(self.log().encode()).group(1))

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        self.dir.cleanup()
        return code

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class Response:
    def __init__(self, status: int, headers: Dict[str, str], body: bytes):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:300]!r})"


class Curl:
    """curl, one process per request."""
    name = "curl"

    def __init__(self, *extra_args: str):
        self.extra_args = list(extra_args)

    def request(self, method: str, url: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Response:
        with tempfile.TemporaryDirectory(prefix="curl-") as tmp:
            head_path, body_path = os.path.join(tmp, "head"), os.path.join(tmp, "body")
            command = ["curl", "-sS", "--max-time", "60", "-X", method, "-D", head_path,
                       "-o", body_path, *self.extra_args]
            for name, value in (headers or {}).items():
                command += ["-H", f"{name}: {value}"]
            if body is not None:
                request_path = os.path.join(tmp, "request")
                with open(request_path, "wb") as f:
                    f.write(body)
                command += ["--data-binary", f"@{request_path}"]
            command.append(url)
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise ConnectionError(f"curl exited {done.returncode}: {done.stderr.strip()}")
            with open(head_path, "rb") as f:
                blocks = f.read().decode("latin-1").strip().split("\r\n\r\n")
            # An interim "100 Continue" answers curl's "Expect: 100-continue" (bodies
            # above 1 MiB).
            self.last_had_continue = any(b.startswith("HTTP/1.1 100") for b in blocks)
            head = [b for b in blocks if not b.startswith("HTTP/1.1 100")][-1].split("\r\n")
            status = int(head[0].split()[1])
            fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
            with open(body_path, "rb") as f:
                return Response(status, fields, f.read())


class NodeFetch:
    """Node's built-in fetch (rest_fetch_client.mjs), one node process per request."""
    name = "node fetch"

    def __init__(self, env: Optional[Dict[str, str]] = None):
        self.env = dict(os.environ, **(env or {}))

    def request(self, method: str, url: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Response:
        request = {"method": method, "url": url, "headers": headers or {},
                   "body": None if body is None else base64.b64encode(body).decode()}
        done = subprocess.run(["node", FETCH_CLIENT], input=json.dumps([request]),
                              capture_output=True, text=True, env=self.env, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"node failed: {done.stderr}")
        (answer,) = json.loads(done.stdout)
        if "error" in answer:
            raise ConnectionError(answer["error"])
        return Response(answer["status"], answer["headers"], base64.b64decode(answer["body"]))


CLIENTS = (Curl(), NodeFetch())

# ---------------------------------------------------------------------------------------
# Tensors on the wire.

DATATYPES = ("FP32", "FP64", "FP16", "BF16")
TORCH_DTYPE = {"FP32": torch.float32, "FP64": torch.float64, "FP16": torch.float16,
               "BF16": torch.bfloat16}
# Significand bits (with the implicit one) and the smallest normal exponent.
PRECISION = {"FP32": (24, -126), "FP64": (53, -1022), "FP16": (11, -14), "BF16": (8, -126)}


def representable(values: np.ndarray, datatype: str) -> np.ndarray:
    """float64 values rounded to `datatype` (PyTorch's rounding), back in float64."""
    return torch.from_numpy(np.asarray(values, np.float64)).to(
        TORCH_DTYPE[datatype]).to(torch.float64).numpy()


def to_bytes(values: np.ndarray, datatype: str) -> bytes:
    tensor = torch.from_numpy(np.ascontiguousarray(values, np.float64)).to(TORCH_DTYPE[datatype])
    if datatype == "BF16":
        return tensor.view(torch.int16).numpy().tobytes()
    return tensor.numpy().tobytes()


def from_bytes(data: bytes, datatype: str) -> np.ndarray:
    if datatype == "BF16":
        bits = np.frombuffer(data, np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64)
    numpy_type = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16}[datatype]
    return np.frombuffer(data, numpy_type).astype(np.float64)


def ulp(values: np.ndarray, datatype: str) -> np.ndarray:
    precision, min_exponent = PRECISION[datatype]
    _, exponent = np.frexp(np.abs(values))
    return np.ldexp(1.0, np.maximum(exponent - 1, min_exponent) - precision + 1)


def infer_body(inputs: Dict[str, np.ndarray], datatype: str, *, binary_inputs: bool,
               outputs: Sequence[str] = (), binary_outputs: bool = False,
               parameters: Optional[dict] = None, request_id: Optional[str] = None):
    """(body, headers) of an inference request."""
    header = {"inputs": []}
    if request_id is not None:
        header["id"] = request_id
    parameters = dict(parameters or {})
    if binary_outputs:
        parameters["binary_data_output"] = True
    if parameters:
        header["parameters"] = parameters
    tail = b""
    for name, values in inputs.items():
        entry = {"name": name, "shape": list(values.shape), "datatype": datatype}
        if binary_inputs:
            data = to_bytes(values, datatype)
            entry["parameters"] = {"binary_data_size": len(data)}
            tail += data
        else:
            # Python's repr is the shortest text that reads back as the same double, and
            # the values are exactly representable in the datatype. Nested, as numpy
            # prints a tensor: the server flattens it.
            entry["data"] = values.tolist()
        header["inputs"].append(entry)
    if outputs:
        header["outputs"] = [{"name": name} for name in outputs]
    text = json.dumps(header).encode()
    headers = {"Content-Type": "application/json"}
    if binary_inputs:
        headers = {"Content-Type": "application/octet-stream",
                   "Inference-Header-Content-Length": str(len(text))}
    return text + tail, headers


def read_outputs(response: Response) -> Dict[str, dict]:
    """name -> {"datatype", "shape", "values" (float64), "binary"} of an inference
    response, JSON or binary."""
    length = response.headers.get("inference-header-content-length")
    header_bytes = response.body if length is None else response.body[:int(length)]
    header = json.loads(header_bytes)
    offset = len(header_bytes)
    result = {"_header": header}
    for output in header["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is None:
            values = np.array(output["data"], np.float64)
            binary = False
        else:
            values = from_bytes(response.body[offset:offset + size], output["datatype"])
            offset += size
            binary = True
        result[output["name"]] = {"datatype": output["datatype"], "shape": output["shape"],
                                  "values": values, "binary": binary}
    assert offset == len(response.body), (offset, len(response.body))
    return result


# ---------------------------------------------------------------------------------------
# The oracle: PyTorch in float64.

class Model:
    def __init__(self, name, parameters, forward, inputs=("x",), x_scale=3.0):
        self.name, self.parameters, self.forward = name, parameters, forward
        self.inputs, self.x_scale = inputs, x_scale


MODELS = (
    Model("gelu", {"approximate": "tanh"}, lambda t: F.gelu(t["x"], approximate="tanh")),
    Model("leaky_relu", {"negative_slope": 0.2},
          lambda t: F.leaky_relu(t["x"], negative_slope=0.2)),
    Model("softplus", {"beta": 2, "threshold": 10},
          lambda t: F.softplus(t["x"], beta=2, threshold=10)),
    Model("softmax", {"dim": 1}, lambda t: F.softmax(t["x"], dim=1)),
    Model("prelu", {}, lambda t: F.prelu(t["x"], t["weight"]), inputs=("x", "weight")),
)
# Bounds in ULP of the dtype beyond PyTorch's float64 result rounded to it: FP16 and
# BF16 are computed wider and rounded once; FP32 and FP64 within the kernels' documented
# maxima (tests/kernels/kernel_accuracy_test.cc) plus roundings.
ULPS = {"FP32": 6.0, "FP64": 6.0, "FP16": 1.0, "BF16": 1.0}


def make_inputs(model: Model, datatype: str, seed: int) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors = {"x": representable(rng.standard_normal((4, 3)) * model.x_scale, datatype)}
    if "weight" in model.inputs:
        tensors["weight"] = representable(np.array([0.25, -0.5, 1.5]), datatype)
    return tensors


def reference(model: Model, tensors: Dict[str, np.ndarray], dy: Optional[np.ndarray]):
    """{"y": ..., "dx": ..., ("dweight": ...)} in float64."""
    leaves = {name: torch.tensor(values, dtype=torch.float64, requires_grad=True)
              for name, values in tensors.items()}
    y = model.forward(leaves)
    result = {"y": y.detach().numpy()}
    grad = torch.ones_like(y) if dy is None else torch.tensor(dy, dtype=torch.float64)
    y.backward(grad)
    result["dx"] = leaves["x"].grad.numpy()
    if "weight" in leaves:
        result["dweight"] = leaves["weight"].grad.numpy()
    return result


# ---------------------------------------------------------------------------------------

def skip_unless_tools():
    missing = [tool for tool in ("curl", "node", "openssl") if shutil.which(tool) is None]
    if not BINARY or missing:
        raise unittest.SkipTest(f"needs ACTSERVE_BINARY and {missing}")


class RestDoorTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls):
        skip_unless_tools()
        cls.server = Server().start()

    @classmethod
    def tearDownClass(cls):
        if cls.server.stop() != 0:
            raise AssertionError("actserve did not exit 0 after SIGTERM")

    def url(self, path: str) -> str:
        return self.server.base + path

    def assert_error(self, response: Response, status: int, message: str):
        self.assertEqual(response.status, status, response)
        self.assertIn("application/json", response.headers.get("content-type", ""))
        error = response.json()["error"]
        self.assertIn(message, error)

    def assert_still_serving(self, client):
        body, headers = infer_body({"x": np.array([-1.0, 2.0])}, "FP32", binary_inputs=False,
                                   outputs=["y"])
        response = client.request("POST", self.url("/v2/models/relu/infer"), body, headers)
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.json()["outputs"][0]["data"], [0, 2])

    def test_health_and_metadata(self):
        for client in CLIENTS:
            with self.subTest(client=client.name):
                live = client.request("GET", self.url("/v2/health/live"))
                self.assertEqual((live.status, live.body), (200, b""))
                ready = client.request("GET", self.url("/v2/health/ready"))
                self.assertEqual((ready.status, ready.body), (200, b""))
                self.assertEqual(
                    client.request("GET", self.url("/v2/models/gelu/ready")).status, 200)
                self.assertEqual(client.request(
                    "GET", self.url("/v2/models/gelu/versions/1/ready")).status, 200)
                self.assert_error(client.request("GET", self.url("/v2/models/nope/ready")),
                                  404, "model 'nope'")
                server = client.request("GET", self.url("/v2"))
                self.assertEqual(server.status, 200)
                self.assertEqual(server.json()["name"], "actserve")
                self.assertIn("binary_tensor_data", server.json()["extensions"])
                model = client.request("GET", self.url("/v2/models/prelu/versions/1"))
                self.assertEqual(model.status, 200, model)
                metadata = model.json()
                self.assertEqual((metadata["name"], metadata["versions"], metadata["platform"]),
                                 ("prelu", ["1"], "actserve"))
                self.assertEqual([i["name"] for i in metadata["inputs"]], ["x", "dy", "weight"])
                self.assertEqual([o["name"] for o in metadata["outputs"]],
                                 ["y", "dx", "dweight"])
                self.assertEqual(metadata["inputs"][0]["shape"], [-1])

    def check_values(self, client, model: Model, datatype: str, backward: bool,
                     binary_inputs: bool, binary_outputs: bool, seed: int):
        tensors = make_inputs(model, datatype, seed)
        dy = None
        if backward:
            dy = representable(np.random.default_rng(seed + 1).standard_normal((4, 3)),
                               datatype)
            tensors["dy"] = dy
        outputs = ["dx"] + (["dweight"] if "weight" in tensors else []) if backward else ["y"]
        body, headers = infer_body(tensors, datatype, binary_inputs=binary_inputs,
                                   outputs=outputs, binary_outputs=binary_outputs,
                                   parameters=model.parameters, request_id=f"r{seed}")
        response = client.request("POST", self.url(f"/v2/models/{model.name}/infer"), body,
                                  headers)
        self.assertEqual(response.status, 200, response)
        got = read_outputs(response)
        self.assertEqual(got["_header"]["model_name"], model.name)
        self.assertEqual(got["_header"]["id"], f"r{seed}")
        self.assertEqual([o["name"] for o in got["_header"]["outputs"]], outputs)
        want = reference(model, {k: v for k, v in tensors.items() if k != "dy"}, dy)
        for name in outputs:
            output = got[name]
            self.assertEqual(output["datatype"], datatype)
            self.assertEqual(output["binary"], binary_outputs)
            self.assertEqual(output["shape"], list(want[name].shape))
            values = output["values"].reshape(want[name].shape)
            rounded = representable(want[name], datatype)
            tolerance = ULPS[datatype] * ulp(want[name], datatype)
            if datatype in ("FP32", "FP64"):
                # Where a result is small against the terms that cancel to make it (gelu
                # of a negative x, softmax's dx, a weight gradient's sum), the kernels'
                # bound is absolute: in the scale of those terms.
                eps = 2.0 ** (1 - PRECISION[datatype][0])
                grad = np.ones_like(tensors["x"]) if dy is None else np.abs(dy)
                terms = (1 + np.abs(tensors["x"])) * (1 + grad)
                if name == "dweight":
                    scale = terms.sum()
                else:  # softmax mixes a row
                    scale = terms.max(axis=1, keepdims=True) * terms.shape[1]
                tolerance = tolerance + 8 * eps * scale
            error = np.abs(representable(values, datatype) - rounded)
            self.assertTrue(np.all(error <= tolerance),
                            f"{model.name} {datatype} {name}: {values} vs PyTorch {want[name]}")
        return got

    def test_values_against_pytorch(self):
        seed = 0
        for client in CLIENTS:
            for model in MODELS:
                for datatype in DATATYPES:
                    for backward in (False, True):
                        for binary in (False, True):
                            seed += 1
                            with self.subTest(client=client.name, model=model.name,
                                              datatype=datatype, backward=backward,
                                              binary=binary):
                                self.check_values(client, model, datatype, backward,
                                                  binary_inputs=binary,
                                                  binary_outputs=binary, seed=seed)

    def test_json_and_binary_outputs_carry_the_same_bits(self):
        # The same inputs; JSON numbers read back and rounded to the dtype must give the
        # bits of the binary output exactly (shortest round-trip text).
        rng = np.random.default_rng(7)
        for datatype in DATATYPES:
            x = representable(rng.standard_normal(64) * 4, datatype)
            results = []
            for binary in (False, True):
                body, headers = infer_body({"x": x}, datatype, binary_inputs=binary,
                                           binary_outputs=binary, outputs=["y"],
                                           parameters={"approximate": "none"})
                response = CLIENTS[0].request("POST", self.url("/v2/models/gelu/infer"),
                                              body, headers)
                self.assertEqual(response.status, 200, response)
                results.append(read_outputs(response)["y"]["values"])
            from_json, from_binary = results
            if datatype == "BF16":
                # numpy has no bfloat16: each JSON value must be nearer to the binary
                # output than to its neighbours.
                step = ulp(from_binary, datatype)
                self.assertTrue(np.all(np.abs(from_json - from_binary) <= step / 2),
                                datatype)
            else:
                numpy_type = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16}
                np.testing.assert_array_equal(
                    from_json.astype(numpy_type[datatype]).astype(np.float64), from_binary)

    def test_one_output_binary_the_other_json_and_no_outputs_means_all(self):
        x = np.array([[-1.0, 0.5, 2.0]])
        header = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                              "parameters": {"binary_data_size": 12}}],
                  "outputs": [{"name": "dx", "parameters": {"binary_data": True}},
                              {"name": "y"}]}
        text = json.dumps(header).encode()
        for client in CLIENTS:
            with self.subTest(client=client.name):
                response = client.request(
                    "POST", self.url("/v2/models/relu/infer"), text + to_bytes(x, "FP32"),
                    {"Inference-Header-Content-Length": str(len(text))})
                self.assertEqual(response.status, 200, response)
                got = read_outputs(response)
                self.assertTrue(got["dx"]["binary"])
                self.assertFalse(got["y"]["binary"])
                np.testing.assert_array_equal(got["dx"]["values"], [0, 1, 1])
                np.testing.assert_array_equal(got["y"]["values"], [0, 0.5, 2])
                body, headers = infer_body({"x": x}, "FP64", binary_inputs=False)
                everything = client.request("POST", self.url("/v2/models/relu/infer"), body,
                                            headers)
                self.assertEqual([o["name"] for o in everything.json()["outputs"]],
                                 ["y", "dx"])

    def test_large_inference_on_the_compute_pool(self):
        # 800 KiB of input: above --inline_bytes' 256 KiB, so it computes on the pool.
        x = representable(np.random.default_rng(3).standard_normal(200000) * 3, "FP32")
        dy = representable(np.random.default_rng(4).standard_normal(200000), "FP32")
        want = reference(MODELS[1], {"x": x}, dy)
        for client in CLIENTS:
            with self.subTest(client=client.name):
                body, headers = infer_body({"x": x, "dy": dy}, "FP32", binary_inputs=True,
                                           binary_outputs=True,
                                           parameters={"negative_slope": 0.2})
                response = client.request("POST", self.url("/v2/models/leaky_relu/infer"),
                                          body, headers)
                self.assertEqual(response.status, 200, response)
                if isinstance(client, Curl):
                    # 1.6 MB: curl asked to continue, and the server said so.
                    self.assertTrue(client.last_had_continue)
                got = read_outputs(response)
                for name in ("y", "dx"):
                    # The slope is a float32 (0.2f): within 1 ULP of float64's product.
                    rounded = representable(want[name], "FP32")
                    self.assertLessEqual(
                        np.max(np.abs(got[name]["values"] - rounded) / ulp(rounded, "FP32")), 1)

    def bad_requests(self):
        """(what, method, path, body, headers, status, message)."""
        good_x = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}

        def infer(header, path="/v2/models/gelu/infer", extra_headers=None, tail=b""):
            text = json.dumps(header).encode() if not isinstance(header, bytes) else header
            headers = dict(extra_headers or {})
            if tail:
                headers["Inference-Header-Content-Length"] = str(len(text))
            return ("POST", path, text + tail, headers)

        deep = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":' + \
            b"[" * 5000 + b"]" * 5000 + b"}]}"
        return [
            ("unknown model", *infer({"inputs": [good_x]}, "/v2/models/nope/infer"), 404,
             "model 'nope'"),
            ("bad version", *infer({"inputs": [good_x]}, "/v2/models/gelu/versions/2/infer"),
             404, "has no version '2'"),
            ("unknown input", *infer({"inputs": [good_x, dict(good_x, name="z")]}), 400,
             "inputs[1].name: 'z' is not an input of model 'gelu'"),
            ("missing x", *infer({"inputs": [dict(good_x, name="dy")]}), 400,
             "needs the input 'x'"),
            ("unknown output", *infer({"inputs": [good_x], "outputs": [{"name": "dweight"}]}),
             400, "outputs[0].name: 'dweight' is not an output of model 'gelu'"),
            ("datatype mismatch", *infer({"inputs": [good_x, dict(good_x, name="dy",
                                                                  datatype="FP64")]}),
             400, "inputs[1].datatype: 'dy' is FP64 but 'x' is FP32"),
            ("unsupported datatype", *infer({"inputs": [dict(good_x, datatype="INT32")]}), 400,
             "inputs[0].datatype: 'INT32' is not supported"),
            ("bad parameter type", *infer({"inputs": [good_x],
                                           "parameters": {"approximate": 1}}), 400,
             "parameters.approximate: gelu's approximate is a string"),
            ("bad parameter value", *infer({"inputs": [good_x], "parameters": {"beta": 0}},
                                           "/v2/models/softplus/infer"), 400,
             "softplus: beta must be nonzero, got 0"),
            ("unknown parameter", *infer({"inputs": [good_x], "parameters": {"alpha": 1}}),
             400, "parameters.alpha: not a parameter of model 'gelu'"),
            ("binary_data_output not a boolean",
             *infer({"inputs": [good_x], "parameters": {"binary_data_output": 1}}), 400,
             "parameters.binary_data_output: expected a boolean, got an integer"),
            ("bad JSON", *infer(b'{"inputs": [}'), 400, "invalid JSON at byte 13"),
            ("data count", *infer({"inputs": [dict(good_x, data=[1, 2, 3])]}), 400,
             "inputs[0].data: more than the 2 values of shape [2]"),
            ("binary size against shape",
             *infer({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 8}}]},
                    tail=b"\0" * 8), 400,
             "inputs[0] (x): 8 bytes of contents, but shape [3] FP32 needs 12"),
            ("binary sizes against the body",
             *infer({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 8}}]},
                    tail=b"\0" * 12), 400,
             "add up to 8 bytes, but 12 bytes follow the JSON header"),
            ("header length beyond the body",
             "POST", "/v2/models/gelu/infer", b"{}", {"Inference-Header-Content-Length": "99"},
             400, "Inference-Header-Content-Length '99' is not a byte count"),
            ("too many dimensions", *infer({"inputs": [dict(good_x, shape=[1] * 40)]}), 429,
             "inputs[0].shape: more than 32 dimensions"),
            ("deep nesting", *infer(deep), 429, "the JSON nests deeper than 36 levels"),
            ("deadline", *infer({"inputs": [good_x], "parameters": {"timeout": 1}}), 504,
             "deadline exceeded"),
            ("unknown route", "GET", "/v2/nothing", None, {}, 404, "no route GET /v2/nothing"),
            ("unknown route under a model", "GET", "/v2/models/gelu/stats", None, {}, 404,
             "no route"),
            ("wrong method", "GET", "/v2/models/gelu/infer", None, {}, 405,
             "method GET is not allowed on /v2/models/gelu/infer; use POST"),
            ("wrong method on metadata", "POST", "/v2/models/gelu", b"{}", {}, 405,
             "use GET"),
        ]

    def test_every_bad_request_class(self):
        for client in CLIENTS:
            for what, method, path, body, headers, status, message in self.bad_requests():
                with self.subTest(client=client.name, what=what):
                    response = client.request(method, self.url(path), body, headers)
                    self.assert_error(response, status, message)
                    if status == 405:
                        self.assertEqual(response.headers["allow"],
                                         "POST" if path.endswith("/infer") else "GET")
                    self.assert_still_serving(client)


class RestLimitsTest(unittest.TestCase):
    """A server with a small --max_message_bytes and a token file."""

    @classmethod
    def setUpClass(cls):
        skip_unless_tools()
        cls.tmp = tempfile.TemporaryDirectory(prefix="actserve-rest-tokens-")
        tokens = os.path.join(cls.tmp.name, "tokens")
        with open(tokens, "w") as f:
            f.write("# test token\nsecret-token-1\n")
        cls.server = Server(f"--auth_token_file={tokens}", "--max_message_bytes=65536",
                            "--metrics_address=127.0.0.1:0").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def request(self, client, token: Optional[str], body: bytes, path="/v2/models/relu/infer"):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return client.request("POST", self.server.base + path, body, headers)

    def ok_infer_count(self) -> float:
        """actserve_requests_total of REST ModelInfer calls that ended OK (0 before any)."""
        metrics = Curl().request("GET", f"http://127.0.0.1:{self.server.metrics_port()}/metrics")
        text = metrics.body.decode()
        ok_count = re.search(
            r'actserve_requests_total\{[^}]*code="OK"[^}]*method="REST ModelInfer"[^}]*\} (\S+)|'
            r'actserve_requests_total\{[^}]*method="REST ModelInfer"[^}]*code="OK"[^}]*\} (\S+)',
            text)
        return float(ok_count.group(1) or ok_count.group(2)) if ok_count else 0.0

    def test_tokens_size_limit_and_metrics(self):
        ok_before = self.ok_infer_count()
        good = json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32",
                                       "data": [-3, 4]}]}).encode()
        big = json.dumps({"inputs": [{"name": "x", "shape": [40000], "datatype": "FP32",
                                      "data": [1] * 40000}]}).encode()
        self.assertGreater(len(big), 65536)
        for client in CLIENTS:
            with self.subTest(client=client.name):
                missing = self.request(client, None, good)
                self.assertEqual(missing.status, 401, missing)
                self.assertEqual(missing.headers.get("www-authenticate"), "Bearer")
                self.assertIn("missing credentials", missing.json()["error"])
                wrong = self.request(client, "wrong", good)
                self.assertEqual(wrong.status, 401)
                self.assertEqual(wrong.json()["error"], "invalid bearer token")
                metadata = client.request("GET", self.server.base + "/v2/models/relu")
                self.assertEqual(metadata.status, 401)
                self.assertIn("missing credentials", metadata.json()["error"])
                # Health stays open, as on the gRPC port.
                self.assertEqual(
                    client.request("GET", self.server.base + "/v2/health/ready").status, 200)
                ok = self.request(client, "secret-token-1", good)
                self.assertEqual(ok.status, 200, ok)
                self.assertEqual(ok.json()["outputs"][0]["data"], [0, 4])
                too_large = self.request(client, "secret-token-1", big)
                self.assertEqual(too_large.status, 413, too_large)
                self.assertIn("request body of", too_large.json()["error"])
                self.assertIn("is larger than the 65536 bytes allowed", too_large.json()["error"])
                # And the server keeps serving.
                self.assertEqual(self.request(client, "secret-token-1", good).status, 200)
        self.assertEqual(self.ok_infer_count() - ok_before, 4.0)
        self.assertIn("REST ModelInfer UNAUTHENTICATED", self.server.log())


    def test_a_chunked_body_needs_a_content_length(self):
        # A chunked body would grow outside the tensor memory limit: 411, and the server
        # goes on.
        good = json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32",
                                       "data": [-3, 4]}]}).encode()
        curl = Curl()
        chunked = curl.request("POST", self.server.base + "/v2/models/relu/infer", good,
                               {"Content-Type": "application/json",
                                "Authorization": "Bearer secret-token-1",
                                "Transfer-Encoding": "chunked"})
        self.assertEqual(chunked.status, 411, chunked)
        self.assertEqual(chunked.json()["error"],
                         "the request body needs a Content-Length (chunked bodies are not "
                         "accepted)")
        self.assertEqual(self.request(curl, "secret-token-1", good).status, 200)


def peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class RestHostileTest(unittest.TestCase):
    """Bodies of 32 MiB built to make a JSON reader allocate: each is refused with its
    status and message, and the server's peak memory grows by about the body (held once,
    in a pooled buffer), never by a tree of JSON nodes or by what the body claims."""

    BODY_BYTES = 32 << 20

    def test_hostile_bodies_are_refused_in_bounded_memory(self):
        skip_unless_tools()
        n = self.BODY_BYTES
        x_head = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":'
        cases = [
            ("nesting", x_head + b"[" * (n - len(x_head)), 429,
             "the JSON nests deeper than 36 levels"),
            ("parameters", b'{"parameters":{' + b",".join(
                b'"p%d":1' % i for i in range(n // 12)) + b"}}", 429,
             "the request: more than 64 parameters"),
            ("dimensions", b'{"inputs":[{"name":"x","shape":[' + b"1," * (n // 2) + b"1]}]}",
             429, "inputs[0].shape: more than 32 dimensions"),
            ("a long string", b'{"id":"' + b"a" * n + b'"}', 429,
             "a JSON string at byte 7 is longer than the 4096 bytes"),
            ("values against a huge shape",
             b'{"inputs":[{"name":"x","shape":[1000000,1000000],"datatype":"FP64","data":['
             + b"0," * (n // 2) + b"0]}]}", 400,
             "inputs[0].data: shape [1000000,1000000] needs 1000000000000 values, more than "
             "the request's"),
            ("values before their shape",
             b'{"inputs":[{"data":[' + b"0," * (n // 2) + b'0],"name":"x","shape":[2],'
             b'"datatype":"FP64"}]}', 400, "values, but shape [2] needs 2"),
        ]
        with Server() as server:
            client = Curl("-H", "Expect:")
            baseline = peak_rss_bytes(server.process.pid)
            for what, body, status, message in cases:
                with self.subTest(what=what):
                    response = client.request("POST", server.base + "/v2/models/gelu/infer",
                                              body, {"Content-Type": "application/json"})
                    self.assertEqual(response.status, status, response)
                    self.assertIn(message, response.json()["error"])
            # The body once (and an earlier body's buffer, which the pool keeps for
            # reuse), plus, for values before their shape, 8 bytes of double per (at
            # least) 2 bytes of JSON: at most 6 x the body in all. A JSON tree of the
            # same values would take tens of bytes per value.
            growth = peak_rss_bytes(server.process.pid) - baseline
            self.assertLess(growth, 6 * self.BODY_BYTES + (16 << 20),
                            f"peak grew by {growth} bytes")
            body, headers = infer_body({"x": np.array([1.0])}, "FP32", binary_inputs=False)
            self.assertEqual(client.request("POST", server.base + "/v2/models/relu/infer",
                                            body, headers).status, 200)


class RestQueueTest(unittest.TestCase):
    def test_a_full_compute_queue_refuses_with_429(self):
        skip_unless_tools()
        # No queue: a request large enough for the pool is refused, small ones run inline.
        with Server("--max_queued_batches=0") as server:
            large, headers = infer_body({"x": np.zeros(100000)}, "FP32", binary_inputs=True,
                                        binary_outputs=True)
            small, small_headers = infer_body({"x": np.zeros(4)}, "FP32", binary_inputs=False)
            for client in CLIENTS:
                with self.subTest(client=client.name):
                    refused = client.request("POST", server.base + "/v2/models/relu/infer",
                                             large, headers)
                    self.assertEqual(refused.status, 429, refused)
                    self.assertIn("compute queue full", refused.json()["error"])
                    served = client.request("POST", server.base + "/v2/models/relu/infer",
                                            small, small_headers)
                    self.assertEqual(served.status, 200, served)


class RestTlsTest(unittest.TestCase):
    """TLS and mutual TLS with separate certificate and key files."""

    @classmethod
    def setUpClass(cls):
        skip_unless_tools()
        cls.tmp = tempfile.TemporaryDirectory(prefix="actserve-rest-tls-")
        d = cls.tmp.name

        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                "-out", "ca.pem", "-days", "2", "-subj", "/CN=actserve test CA")
        for name in ("server", "client"):
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                    "-out", f"{name}.csr", "-subj", f"/CN={name}")
            with open(os.path.join(d, f"{name}.ext"), "w") as f:
                f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                    f"{name}.ext")
        cls.paths = {name: os.path.join(d, name) for name in
                     ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def body(self):
        return json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64",
                                       "data": [-2.5]}], "outputs": [{"name": "y"}]}).encode()

    def test_tls(self):
        p = self.paths
        with Server(f"--tls_cert={p['server.pem']}", f"--tls_key={p['server.key']}",
                    scheme="https") as server:
            self.assertIn("HTTP/REST listening on https://", server.log())
            clients = (Curl("--cacert", p["ca.pem"]),
                       NodeFetch({"NODE_EXTRA_CA_CERTS": p["ca.pem"]}))
            for client in clients:
                with self.subTest(client=client.name):
                    response = client.request("POST", server.base + "/v2/models/relu/infer",
                                              self.body())
                    self.assertEqual(response.status, 200, response)
                    self.assertEqual(response.json()["outputs"][0]["data"], [0])
            # Plain HTTP to the TLS port gets no answer, and an unknown CA fails.
            with self.assertRaises(ConnectionError):
                Curl().request("GET", f"http://127.0.0.1:{server.port}/v2/health/live")
            with self.assertRaises(ConnectionError):
                Curl().request("GET", server.base + "/v2/health/live")

    def test_mutual_tls(self):
        p = self.paths
        with Server(f"--tls_cert={p['server.pem']}", f"--tls_key={p['server.key']}",
                    f"--tls_client_ca={p['ca.pem']}", scheme="https") as server:
            with_certificate = Curl("--cacert", p["ca.pem"], "--cert", p["client.pem"],
                                    "--key", p["client.key"])
            response = with_certificate.request("POST", server.base + "/v2/models/relu/infer",
                                                self.body())
            self.assertEqual(response.status, 200, response)
            # Refused during the handshake without a client certificate.
            for client in (Curl("--cacert", p["ca.pem"]),
                           NodeFetch({"NODE_EXTRA_CA_CERTS": p["ca.pem"]})):
                with self.subTest(client=client.name):
                    with self.assertRaises(ConnectionError):
                        client.request("GET", server.base + "/v2/health/live")
            self.assertEqual(with_certificate.request(
                "GET", server.base + "/v2/health/ready").status, 200)


class RestAddressTest(unittest.TestCase):
    def run_binary(self, http_address: str) -> str:
        done = subprocess.run(
            [BINARY, "--address=127.0.0.1:0", "--metrics_address=",
             f"--http_address={http_address}"],
            capture_output=True, text=True, timeout=60)
        self.assertNotEqual(done.returncode, 0)
        return done.stdout + done.stderr

    def test_an_address_that_cannot_serve_stops_the_start_with_its_reason(self):
        skip_unless_tools()
        self.assertIn("http_address '127.0.0.1:99999' is not host:port",
                      self.run_binary("127.0.0.1:99999"))
        self.assertIn("the host 'nohost.invalid' has no IPv4 address",
                      self.run_binary("nohost.invalid:80"))
        with Server() as running:
            self.assertIn(f"HTTP/REST cannot listen on '127.0.0.1:{running.port}'",
                          self.run_binary(f"127.0.0.1:{running.port}"))


class RestDrainTest(unittest.TestCase):
    def test_ready_turns_400_while_draining_and_inference_goes_on(self):
        skip_unless_tools()
        server = Server("--drain_delay=30s").start()
        try:
            client = Curl()
            before = client.request("GET", server.base + "/v2/health/ready")
            self.assertEqual(before.status, 200)
            self.assertNotEqual(before.headers.get("connection"), "close")
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while True:
                ready = client.request("GET", server.base + "/v2/health/ready")
                if ready.status == 400:
                    break
                self.assertLess(time.monotonic(), deadline, "ready never turned 400")
                time.sleep(0.05)
            self.assertIn("shutting down", ready.json()["error"])
            self.assertEqual(client.request("GET", server.base + "/v2/health/live").status, 200)
            # Still serving calls during the drain delay, as the gRPC port does.
            body, headers = infer_body({"x": np.array([1.0])}, "FP32", binary_inputs=False)
            during = client.request("POST", server.base + "/v2/models/relu/infer", body, headers)
            self.assertEqual(during.status, 200)
            # ... each response asking its client to reconnect (elsewhere), so that no idle
            # keep-alive connection carries a request into the door's stop.
            self.assertEqual(during.headers.get("connection"), "close")
            self.assertEqual(ready.headers.get("connection"), "close")
            server.process.send_signal(signal.SIGTERM)  # ends the delay
            self.assertEqual(server.process.wait(timeout=30), 0)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
