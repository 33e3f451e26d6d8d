"""actserve.Client against a real actserve server: every call, every dtype form, the
streaming of large tensors, errors with their codes, bearer tokens and TLS.

Values a reader can check by hand are written out; the systematic comparison with
PyTorch is torch_oracle_test.py."""

import os
import subprocess
import tempfile
import unittest

import grpc
import numpy as np
import torch

import actserve
from server_process import ServerProcess

SERVER = None
CLIENT = None


def setUpModule():
    global SERVER, CLIENT
    SERVER = ServerProcess().start()
    CLIENT = actserve.Client(SERVER.target, timeout=60)


def tearDownModule():
    CLIENT.close()
    SERVER.stop_cleanly()


class DiscoveryTest(unittest.TestCase):
    def test_health(self):
        self.assertEqual(CLIENT.health(), "SERVING")
        self.assertEqual(CLIENT.health("actserve.v1.ActivationService"), "SERVING")
        with self.assertRaises(actserve.Error) as caught:
            CLIENT.health("no.such.Service")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_list_activations_matches_the_sdk_parser(self):
        description = CLIENT.list_activations()
        self.assertEqual(tuple(a.name for a in description.activations),
                         actserve.ACTIVATION_NAMES)
        for activation in description.activations:
            self.assertEqual(tuple(p.name for p in activation.parameters),
                             actserve.spec.parameter_names(activation.name), activation.name)
            # The server's own example parses, and prints back the same way.
            self.assertEqual(str(actserve.parse_activation(activation.example)),
                             activation.example)
            self.assertEqual(activation.elementwise,
                             activation.name not in ("softmax", "log_softmax"))
        by_name = {a.name: a for a in description.activations}
        slope = by_name["leaky_relu"].parameters[0]
        self.assertEqual((slope.type, slope.default_text, slope.required),
                         ("real", "0.01", False))
        self.assertEqual(by_name["gelu"].parameters[0].choices, ("none", "tanh"))
        self.assertTrue(all(p.required for p in by_name["threshold"].parameters))
        self.assertEqual(set(description.server.dtypes), set(actserve.DTYPES))
        self.assertGreater(description.server.threads, 0)
        self.assertTrue(description.server.version)


class ComputeTest(unittest.TestCase):
    def test_modes(self):
        x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
        both = CLIENT.compute(x, "leaky_relu(negative_slope=0.2)")
        np.testing.assert_array_equal(both.output, [-0.4, -0.1, 0.0, 0.5, 2.0])
        np.testing.assert_array_equal(both.grad_input, [0.2, 0.2, 0.2, 1.0, 1.0])
        self.assertIsNone(both.grad_weight)
        forward = CLIENT.compute(x, "leaky_relu(negative_slope=0.2)", mode="forward")
        np.testing.assert_array_equal(forward.output, both.output)
        self.assertIsNone(forward.grad_input)
        dy = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
        backward = CLIENT.compute(x, "leaky_relu(negative_slope=0.2)", mode="backward",
                                  grad_output=dy)
        self.assertIsNone(backward.output)
        np.testing.assert_allclose(backward.grad_input, [0.2, 0.4, 0.6, 4.0, 5.0], rtol=1e-15)

    def test_defaults_are_pytorchs(self):
        x = np.array([-1.0, 1.0])
        np.testing.assert_array_equal(CLIENT.compute(x, "leaky_relu").output, [-0.01, 1.0])
        np.testing.assert_array_equal(CLIENT.compute(x, "prelu").output, [-0.25, 1.0])
        np.testing.assert_array_equal(CLIENT.compute(x, "hardtanh").output, [-1.0, 1.0])
        np.testing.assert_array_equal(
            CLIENT.compute([-3.0, 0.0, 3.0], "threshold(threshold=0, value=7)").output,
            [7.0, 7.0, 3.0])

    def test_prelu_weights(self):
        x = np.array([[-1.0, -2.0], [3.0, -4.0]], np.float32)
        r = CLIENT.compute(x, "prelu", weight=np.array([0.5, 0.25]),
                           grad_output=np.ones((2, 2)))
        np.testing.assert_array_equal(r.output, [[-0.5, -0.5], [3.0, -1.0]])
        np.testing.assert_array_equal(r.grad_input, [[0.5, 0.25], [1.0, 0.25]])
        self.assertEqual(r.grad_weight.dtype, np.float32)
        np.testing.assert_array_equal(r.grad_weight, [-1.0, -6.0])  # sum of x <= 0 per channel
        r = CLIENT.compute(x, "prelu(weight=0.5)")
        np.testing.assert_array_equal(r.output, [[-0.5, -1.0], [3.0, -2.0]])
        np.testing.assert_array_equal(r.grad_weight, [-7.0])

    def test_dtypes_in_and_out(self):
        values = [-1.5, 0.0, 2.0]
        for dtype in (np.float16, np.float32, np.float64):
            r = CLIENT.compute(np.array(values, dtype), "relu")
            self.assertEqual(r.output.dtype, dtype)
            np.testing.assert_array_equal(r.output, [0.0, 0.0, 2.0])
        r = CLIENT.compute(values, "relu", dtype="float16")
        self.assertEqual(r.output.dtype, np.float16)
        bits = actserve.bfloat16_bits(np.array(values, np.float32))
        r = CLIENT.compute(bits, "relu", dtype="bfloat16")
        self.assertEqual(r.output.dtype, np.uint16)
        np.testing.assert_array_equal(actserve.bfloat16_to_float32(r.output), [0.0, 0.0, 2.0])
        np.testing.assert_array_equal(actserve.bfloat16_to_float32(r.grad_input), [0, 0, 1])
        for dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16):
            r = CLIENT.compute(torch.tensor(values, dtype=dtype, requires_grad=True), "relu")
            self.assertIsInstance(r.output, torch.Tensor)
            self.assertEqual(r.output.dtype, dtype)
            self.assertTrue(torch.equal(r.output, torch.tensor([0.0, 0.0, 2.0], dtype=dtype)))

    def test_results_are_writable_arrays_of_their_own(self):
        x = np.array([-1.0, 2.0], np.float32)
        r = CLIENT.compute(x, "relu")
        for array in (r.output, r.grad_input):
            self.assertTrue(array.flags.writeable)
        r.output[0] = 5.0  # the caller's to change; nothing else sees it
        np.testing.assert_array_equal(CLIENT.compute(x, "relu").output, [0.0, 2.0])
        np.testing.assert_array_equal(x, [-1.0, 2.0])

    def test_out_arrays_are_filled_and_returned(self):
        x = np.array([[-1.0, -2.0], [3.0, -4.0]], np.float32)
        out = actserve.Result(np.full((2, 2), 9, np.float32), np.full((2, 2), 9, np.float32),
                              np.zeros(2, np.float32))
        for _ in range(2):  # the same arrays again: reused, not reallocated
            r = CLIENT.compute(x, "prelu", weight=np.array([0.5, 0.25]), out=out)
            for mine, returned in zip(out, r):
                self.assertIs(returned, mine)
            np.testing.assert_array_equal(out.output, [[-0.5, -0.5], [3.0, -1.0]])
            np.testing.assert_array_equal(out.grad_input, [[0.5, 0.25], [1.0, 0.25]])
            np.testing.assert_array_equal(out.grad_weight, [-1.0, -6.0])
        # Part of the results into the caller's arrays, the rest new; strided and
        # big-endian arrays too; torch tensors with a torch input.
        strided = np.zeros((2, 4), ">f4")[:, ::2]
        r = CLIENT.compute(x, "relu", out=(strided,))
        self.assertIs(r.output, strided)
        np.testing.assert_array_equal(strided, [[0.0, 0.0], [3.0, 0.0]])
        np.testing.assert_array_equal(r.grad_input, [[0.0, 0.0], [1.0, 0.0]])
        for dtype in (torch.float32, torch.bfloat16):
            tx = torch.tensor([-1.0, 2.0], dtype=dtype)
            target = torch.empty(2, dtype=dtype)
            r = CLIENT.compute(tx, "relu", mode="forward", out=(target,))
            self.assertIs(r.output, target)
            self.assertTrue(torch.equal(target, torch.tensor([0.0, 2.0], dtype=dtype)))

    def test_out_arrays_that_do_not_fit_are_refused_before_the_call(self):
        x = np.array([1.0, 2.0], np.float32)
        for out, words in (
                ((np.zeros(3, np.float32),), "out.output: shape [3] float32, expected [2]"),
                ((np.zeros(2, np.float64),), "out.output: shape [2] float64"),
                ((None, np.zeros(2, np.float32)), "out.grad_input: relu in mode forward"),
                ((np.frombuffer(b"\0" * 8, np.float32),), "read-only"),
                ((None, None, np.zeros(1, np.float32)), "out.grad_weight: relu"),
                ([np.zeros(2, np.float32)], "out must be an actserve.Result or a tuple"),
                (([0.0, 0.0],), "out.output: expected a numpy array")):
            with self.assertRaises(actserve.Error) as caught:
                CLIENT.compute(x, "relu", mode="forward", out=out)
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT, words)
            self.assertIn(words, caught.exception.message)

    def test_grad_output_takes_x_dtype(self):
        x = np.array([1.0, 2.0], np.float32)
        r = CLIENT.compute(x, "relu", grad_output=np.array([0.1, 0.2]))  # float64 dy
        self.assertEqual(r.grad_input.dtype, np.float32)
        np.testing.assert_array_equal(r.grad_input, np.array([0.1, 0.2], np.float32))

    def test_shapes(self):
        r = CLIENT.compute(np.float64(-2.0), "relu6")
        self.assertEqual(r.output.shape, ())
        r = CLIENT.compute(np.zeros((0, 5), np.float32), "softmax")
        self.assertEqual(r.output.shape, (0, 5))
        self.assertEqual(r.grad_input.shape, (0, 5))
        x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
        self.assertEqual(CLIENT.compute(x, "softmax(dim=1)").output.shape, (2, 3, 4))
        np.testing.assert_allclose(CLIENT.compute(x, "softmax(dim=1)").output.sum(axis=1), 1.0,
                                   rtol=1e-15)

    def test_batch(self):
        self.assertEqual(CLIENT.compute_batch([]), [])
        x = np.array([-1.0, 1.0])
        results = CLIENT.compute_batch([
            actserve.Item(x, "relu"),
            {"x": x.astype(np.float32), "activation": "elu(alpha=2)", "mode": "forward"},
            actserve.Item(x, "prelu", mode="backward", grad_output=[2.0, 2.0], weight=[0.5]),
        ])
        self.assertEqual(len(results), 3)
        np.testing.assert_array_equal(results[0].output, [0.0, 1.0])
        self.assertEqual(results[1].output.dtype, np.float32)
        np.testing.assert_allclose(results[1].output, [2 * (np.exp(-1) - 1), 1.0], rtol=1e-7)
        self.assertIsNone(results[1].grad_input)
        self.assertIsNone(results[2].output)
        np.testing.assert_array_equal(results[2].grad_input, [1.0, 2.0])
        np.testing.assert_array_equal(results[2].grad_weight, [-2.0])

    def test_server_errors_name_the_item(self):
        with self.assertRaises(actserve.Error) as caught:
            CLIENT.compute_batch([actserve.Item([1.0], "relu"),
                                  actserve.Item([1.0], "softplus(beta=0)")])
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("items[1]", caught.exception.message)
        self.assertIn("beta must be nonzero", caught.exception.message)
        for spec, expected in (("hardtanh(min_val=2, max_val=1)", "min_val"),
                               ("threshold(value=1)", "threshold is required"),
                               ("softmax(dim=3)", "dim")):
            with self.assertRaises(actserve.Error, msg=spec) as caught:
                CLIENT.compute(np.zeros((2, 2)), spec)
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(expected, caught.exception.message)
        with self.assertRaises(actserve.Error) as caught:
            CLIENT.compute(np.zeros((2, 3)), "prelu", weight=[1.0, 2.0])
        self.assertIn("channels", caught.exception.message)

    def test_deadline(self):
        # gRPC rounds a deadline up to the next millisecond; sending 8 MiB and computing
        # two million mish elements take far longer than that, so the call cannot finish.
        with actserve.Client(SERVER.target, timeout=1e-9) as hurried:
            with self.assertRaises(actserve.Error) as caught:
                hurried.compute(np.ones(1 << 21, np.float32), "mish")
        self.assertEqual(caught.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)


class ComputeLargeTest(unittest.TestCase):
    """compute_large cuts into chunks and streams them; the joined results are compute's."""

    def setUp(self):
        self.rng = np.random.default_rng(11)

    def assert_same(self, large, whole, grad_weight_rtol=0.0):
        for name in ("output", "grad_input"):
            a, b = getattr(large, name), getattr(whole, name)
            if b is None:
                self.assertIsNone(a, name)
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)
        if whole.grad_weight is None:
            self.assertIsNone(large.grad_weight)
        else:
            np.testing.assert_allclose(large.grad_weight, whole.grad_weight,
                                       rtol=grad_weight_rtol)

    def test_elementwise_many_chunks(self):
        x = self.rng.standard_normal((37, 5, 3)).astype(np.float32)
        dy = self.rng.standard_normal(x.shape).astype(np.float32)
        for chunk_bytes in (1, 60, 61, 1000, 10 ** 9):
            for mode in actserve.MODES:
                large = CLIENT.compute_large(x, "mish", mode=mode, grad_output=dy,
                                             chunk_bytes=chunk_bytes)
                self.assert_same(large, CLIENT.compute(x, "mish", mode=mode, grad_output=dy))

    def test_softmax_along_inner_dims_by_rows_and_along_dim0_by_columns(self):
        x = self.rng.standard_normal((20, 7)).astype(np.float64)
        for spec in ("softmax", "log_softmax(dim=1)", "softmax(dim=0)", "log_softmax(dim=-2)"):
            large = CLIENT.compute_large(x, spec, grad_output=x[::-1].copy(), chunk_bytes=64)
            whole = CLIENT.compute(x, spec, grad_output=x[::-1].copy())
            self.assert_same(large, whole)
        # Along dim 0 the columns sum to 1: had it been split, each chunk's would.
        np.testing.assert_allclose(
            CLIENT.compute_large(x, "softmax(dim=0)", chunk_bytes=64).output.sum(axis=0), 1.0,
            rtol=1e-14)

    def test_softmax_along_dim0_beyond_one_message(self):
        # A client whose messages may not exceed 4 KiB: a 3 x 2000 float64 softmax along
        # dim 0 (48 KB) goes in blocks of columns, as the C++ SDK sends it; a 3-D one too,
        # with dim counted from the end.
        small = actserve.Client(SERVER.target, timeout=60, max_message_bytes=4096)
        self.addCleanup(small.close)
        for shape, spec in (((3, 2000), "softmax(dim=0)"), ((4, 25, 30), "log_softmax(dim=-3)")):
            x = self.rng.standard_normal(shape)
            dy = self.rng.standard_normal(shape)
            with self.assertRaises(actserve.Error) as caught:
                small.compute(x, spec, grad_output=dy)
            self.assertEqual(caught.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            for mode in actserve.MODES:
                self.assert_same(
                    small.compute_large(x, spec, mode=mode, grad_output=dy, chunk_bytes=1000),
                    CLIENT.compute(x, spec, mode=mode, grad_output=dy))
        # Each column is one reduction: every column of the output sums to 1.
        x = self.rng.standard_normal((5, 1000)).astype(np.float32)
        np.testing.assert_allclose(
            small.compute_large(x, "softmax(dim=0)", mode="forward",
                                chunk_bytes=1000).output.sum(axis=0),
            1.0, rtol=1e-6)

    def test_prelu_per_channel(self):
        x = self.rng.standard_normal((50, 4, 6))
        weight = np.array([0.1, 0.2, 0.3, -0.4])
        dy = self.rng.standard_normal(x.shape)
        large = CLIENT.compute_large(x, "prelu", grad_output=dy, weight=weight, chunk_bytes=200)
        whole = CLIENT.compute(x, "prelu", grad_output=dy, weight=weight)
        self.assert_same(large, whole, grad_weight_rtol=1e-12)
        expected = np.array([(np.minimum(x, 0) * dy)[:, c].sum() for c in range(4)])
        np.testing.assert_allclose(large.grad_weight, expected, rtol=1e-12)

    def test_rows_larger_than_a_chunk(self):
        # A client whose messages may not exceed 4 KiB: rows of 12 KB or more must be cut.
        small = actserve.Client(SERVER.target, timeout=60, max_message_bytes=4096)
        self.addCleanup(small.close)
        # Elementwise: one row of 3000 float32 goes in flat runs of 250.
        x = self.rng.standard_normal((2, 3000)).astype(np.float32)
        dy = self.rng.standard_normal(x.shape).astype(np.float32)
        self.assert_same(small.compute_large(x, "silu", grad_output=dy, chunk_bytes=1000),
                         CLIENT.compute(x, "silu", grad_output=dy))
        with self.assertRaises(actserve.Error) as caught:
            small.compute(x, "silu")
        self.assertEqual(caught.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        # Per-channel PReLU: rows of 37 planes of 30 go as runs of 8 planes; planes of
        # 700 as runs within the plane. dy > 0 and x <= 0 in the sum: no cancellation.
        for shape in ((2, 37, 30), (1, 3, 700)):
            x = self.rng.standard_normal(shape).astype(np.float32)
            dy = (0.5 + self.rng.random(shape)).astype(np.float32)
            weight = np.linspace(0.1, 0.9, shape[1]).astype(np.float32)
            large = small.compute_large(x, "prelu", grad_output=dy, weight=weight,
                                        chunk_bytes=1000)
            whole = CLIENT.compute(x, "prelu", grad_output=dy, weight=weight)
            self.assert_same(large, whole, grad_weight_rtol=4e-7)
            expected = np.array([(np.minimum(x, 0).astype(np.float64) * dy)[:, c].sum()
                                 for c in range(shape[1])])
            np.testing.assert_allclose(large.grad_weight, expected, rtol=4e-7)
        # A softmax row larger than a chunk still goes whole, one row per chunk.
        x = self.rng.standard_normal((3, 200))
        self.assert_same(small.compute_large(x, "log_softmax", chunk_bytes=100),
                         CLIENT.compute(x, "log_softmax"))

    def test_per_channel_weight_count_is_checked_before_cutting_planes(self):
        with self.assertRaises(actserve.Error) as caught:
            CLIENT.compute_large(np.zeros((2, 37, 30), np.float32), "prelu",
                                 weight=np.ones(5, np.float32), chunk_bytes=1000)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("37 channels (dimension 1)", caught.exception.message)

    def test_half_precision_and_torch(self):
        x = torch.randn(33, 8, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(1))
        large = CLIENT.compute_large(x, "gelu(approximate=tanh)", chunk_bytes=48)
        whole = CLIENT.compute(x, "gelu(approximate=tanh)")
        self.assertEqual(large.output.dtype, torch.bfloat16)
        self.assertTrue(torch.equal(large.output, whole.output))
        self.assertTrue(torch.equal(large.grad_input, whole.grad_input))
        x16 = self.rng.standard_normal((40, 3)).astype(np.float16)
        large = CLIENT.compute_large(x16, "prelu", weight=[0.5, 0.25, 0.125], chunk_bytes=6)
        whole = CLIENT.compute(x16, "prelu", weight=[0.5, 0.25, 0.125])
        np.testing.assert_array_equal(large.output, whole.output)
        # Each chunk's grad_weight was rounded to float16 before the sum: 1 ULP apart at most.
        self.assertLessEqual(np.max(np.abs(large.grad_weight.astype(np.float64)
                                           - whole.grad_weight)
                                    / np.spacing(np.abs(whole.grad_weight))), 1.0)

    def test_out_arrays(self):
        x = self.rng.standard_normal((37, 5, 3)).astype(np.float32)
        dy = self.rng.standard_normal(x.shape).astype(np.float32)
        whole = CLIENT.compute(x, "softmax(dim=0)", grad_output=dy)
        out = actserve.Result(np.empty_like(x), np.empty_like(x))
        for chunk_bytes in (60, 10 ** 9):  # columns, and one chunk
            large = CLIENT.compute_large(x, "softmax(dim=0)", grad_output=dy,
                                         chunk_bytes=chunk_bytes, out=out)
            self.assertIs(large.output, out.output)
            self.assertIs(large.grad_input, out.grad_input)
            self.assert_same(large, whole)
        x = self.rng.standard_normal((4, 3, 5)).astype(np.float32)
        weight = np.array([0.5, 0.25, 0.125], np.float32)
        grad_weight = np.zeros(3, np.float32)
        large = CLIENT.compute_large(x, "prelu", weight=weight, chunk_bytes=24,
                                     out=(None, None, grad_weight))
        self.assertIs(large.grad_weight, grad_weight)
        self.assert_same(large, CLIENT.compute(x, "prelu", weight=weight), 1e-6)
        with self.assertRaises(actserve.Error) as caught:
            CLIENT.compute_large(x, "relu", chunk_bytes=24,
                                 out=(np.empty((4, 5, 3), np.float32).transpose(0, 2, 1),))
        self.assertIn("C-contiguous", caught.exception.message)

    def test_scalar_and_empty(self):
        self.assertEqual(float(CLIENT.compute_large(np.float32(-1), "relu").grad_input), 0.0)
        self.assertEqual(CLIENT.compute_large(np.zeros((0, 3)), "relu").output.shape, (0, 3))

    def test_a_failed_chunk_fails_the_call(self):
        with self.assertRaises(actserve.Error) as caught:
            CLIENT.compute_large(np.zeros((10, 3)), "prelu", weight=[1.0, 2.0], chunk_bytes=24)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=actserve test CA", cwd=directory)
    with open(os.path.join(directory, "san.ext"), "w") as ext:
        ext.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                 f"/CN={name}", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", "san.ext", cwd=directory)
    return {name: os.path.join(directory, name) for name in (
        "ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


class SecurityTest(unittest.TestCase):
    """Bearer tokens and TLS against servers started with --auth_token_file and --tls_*."""

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory(prefix="actserve-py-security-")
        cls.files = _make_certificates(cls.directory.name)

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def test_bearer_token(self):
        tokens = os.path.join(self.directory.name, "tokens")
        with open(tokens, "w") as file:
            file.write("# test tokens\nsecret-token-1\n")
        with ServerProcess(f"--auth_token_file={tokens}") as server:
            with actserve.Client(server.target, timeout=30) as anonymous:
                self.assertEqual(anonymous.health(), "SERVING")  # health stays open
                with self.assertRaises(actserve.Error) as caught:
                    anonymous.compute([1.0], "relu")
                self.assertEqual(caught.exception.code, grpc.StatusCode.UNAUTHENTICATED)
            with actserve.Client(server.target, token="wrong", timeout=30) as wrong:
                with self.assertRaises(actserve.Error) as caught:
                    wrong.list_activations()
                self.assertEqual(caught.exception.code, grpc.StatusCode.UNAUTHENTICATED)
            with actserve.Client(server.target, token="secret-token-1", timeout=30) as good:
                np.testing.assert_array_equal(good.compute([-1.0, 2.0], "relu").output,
                                              [0.0, 2.0])

    def start_tls_server(self, tls, *flags):
        f = self.files
        server = ServerProcess(f"--tls_cert={f['server.pem']}", f"--tls_key={f['server.key']}",
                               *flags)
        server.start(lambda target: actserve.Client(target, tls=tls, timeout=10))
        self.addCleanup(server.stop)
        return server

    def test_tls(self):
        tls = actserve.Tls(ca_file=self.files["ca.pem"])
        server = self.start_tls_server(tls)
        with actserve.Client(server.target, tls=tls, timeout=30) as client:
            np.testing.assert_array_equal(client.compute([-1.0, 2.0], "relu").output, [0, 2])
        # The certificate names 127.0.0.1 and localhost; another name fails verification.
        with actserve.Client(server.target, tls=actserve.Tls(
                ca_file=self.files["ca.pem"], server_name="other.example"),
                timeout=30, max_attempts=1) as client:
            with self.assertRaises(actserve.Error) as caught:
                client.compute([1.0], "relu")
            self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
        with actserve.Client(server.target, timeout=30, max_attempts=1) as plaintext:
            with self.assertRaises(actserve.Error) as caught:
                plaintext.compute([1.0], "relu")
            self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)

    def test_mutual_tls(self):
        f = self.files
        with_certificate = actserve.Tls(ca_file=f["ca.pem"], cert_file=f["client.pem"],
                                        key_file=f["client.key"], server_name="localhost")
        server = self.start_tls_server(with_certificate, f"--tls_client_ca={f['ca.pem']}")
        with actserve.Client(server.target, tls=with_certificate, timeout=30) as client:
            np.testing.assert_array_equal(client.compute([-1.0, 2.0], "relu").output, [0, 2])
        with actserve.Client(server.target, tls=actserve.Tls(ca_file=f["ca.pem"]), timeout=30,
                             max_attempts=1) as anonymous:
            with self.assertRaises(actserve.Error) as caught:
                anonymous.compute([1.0], "relu")
            self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main()
