"""actserve.torch against a real server: autograd's gradcheck (finite differences in
float64) through the remote activation, and a small network trained with remote
activations that follows the same network trained locally, step for step."""

import copy
import unittest

import grpc
import torch
import torch.nn.functional as F

import actserve
from actserve.torch import RemoteActivation, remote_activation
from server_process import ServerProcess

SERVER = None
CLIENT = None


def setUpModule():
    global SERVER, CLIENT
    torch.set_num_threads(1)
    SERVER = ServerProcess().start()
    CLIENT = actserve.Client(SERVER.target, timeout=60)


def tearDownModule():
    CLIENT.close()
    SERVER.stop_cleanly()


def away_from_kinks(shape, seed, kinks=(0.0,), margin=0.05):
    """Random float64 values at least `margin` from every kink, where finite differences
    would straddle two pieces."""
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    x = x * 3
    for kink in kinks:
        near = (x - kink).abs() < margin
        x = torch.where(near, x + 2 * margin, x)
    return x.requires_grad_()


class GradcheckTest(unittest.TestCase):
    def test_elementwise(self):
        cases = {
            "silu": (0.0,), "gelu": (), "gelu(approximate=tanh)": (), "mish": (),
            "elu(alpha=0.5)": (0.0,), "celu(alpha=2)": (0.0,), "selu": (0.0,),
            "softplus(beta=2, threshold=5)": (2.5,), "tanh": (), "sigmoid": (),
            "logsigmoid": (), "softsign": (0.0,), "tanhshrink": (),
            "leaky_relu(negative_slope=0.2)": (0.0,), "hardswish": (-3.0, 3.0),
            "hardsigmoid": (-3.0, 3.0), "relu6": (0.0, 6.0),
            "hardtanh(min_val=-2, max_val=1.5)": (-2.0, 1.5),
            "softshrink(lambd=0.7)": (-0.7, 0.7), "hardshrink": (-0.5, 0.5),
            "threshold(threshold=0.25, value=-1)": (0.25,),
        }
        for seed, (spec, kinks) in enumerate(cases.items()):
            x = away_from_kinks((3, 5), seed, kinks)
            with self.subTest(spec):
                self.assertTrue(torch.autograd.gradcheck(
                    lambda t: remote_activation(t, spec, CLIENT), (x,)))

    def test_softmax_vector_jacobian_products(self):
        # Not elementwise: dx depends on all of dy along dim. gradcheck probes every
        # direction, so a backward that multiplied dy by a diagonal would fail.
        for seed, spec in enumerate(("softmax", "softmax(dim=0)", "log_softmax(dim=1)",
                                     "log_softmax(dim=-3)")):
            x = away_from_kinks((2, 4, 3), 100 + seed, kinks=())
            with self.subTest(spec):
                self.assertTrue(torch.autograd.gradcheck(
                    lambda t: remote_activation(t, spec, CLIENT), (x,)))

    def test_prelu_input_and_weight(self):
        x = away_from_kinks((4, 3, 2), 7)
        for weight in ([0.25], [0.1, -0.2, 0.3]):
            w = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
            with self.subTest(weight=weight):
                self.assertTrue(torch.autograd.gradcheck(
                    lambda t, v: remote_activation(t, "prelu", CLIENT, v), (x, w)))

    def test_only_the_weight_needs_a_gradient(self):
        x = away_from_kinks((5, 2), 8).detach()
        w = torch.tensor([0.5, 0.25], dtype=torch.float64, requires_grad=True)
        remote_activation(x, "prelu", CLIENT, w).sum().backward()
        expected = torch.stack([x[:, c].clamp(max=0).sum() for c in range(2)])
        torch.testing.assert_close(w.grad, expected, rtol=1e-14, atol=0)


class Mlp(torch.nn.Module):
    """Linear -> silu -> Linear -> PReLU (per channel) -> Linear -> log_softmax."""

    def __init__(self, silu, prelu, log_softmax):
        super().__init__()
        self.hidden1 = torch.nn.Linear(4, 8)
        self.silu = silu
        self.hidden2 = torch.nn.Linear(8, 6)
        self.prelu = prelu
        self.out = torch.nn.Linear(6, 3)
        self.log_softmax = log_softmax

    def forward(self, x):
        return self.log_softmax(self.out(self.prelu(self.hidden2(self.silu(self.hidden1(x))))))


class TrainingTest(unittest.TestCase):
    def train_both(self, dtype, steps):
        torch.manual_seed(0)
        local = Mlp(torch.nn.SiLU(), torch.nn.PReLU(6), torch.nn.LogSoftmax(dim=1)).to(dtype)
        remote = Mlp(RemoteActivation("silu", CLIENT),
                     RemoteActivation("prelu", CLIENT, num_parameters=6, dtype=dtype),
                     RemoteActivation("log_softmax(dim=1)", CLIENT))
        remote.load_state_dict(copy.deepcopy(local.state_dict()))
        remote.to(dtype)
        generator = torch.Generator().manual_seed(1)
        inputs = torch.randn(16, 4, dtype=dtype, generator=generator)
        labels = torch.randint(0, 3, (16,), generator=generator)
        optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (local, remote)]
        history = []
        for _ in range(steps):
            losses = []
            for model, optimizer in zip((local, remote), optimizers):
                optimizer.zero_grad()
                loss = F.nll_loss(model(inputs), labels)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            history.append((losses, [p.detach().clone() for p in local.parameters()],
                            [p.detach().clone() for p in remote.parameters()]))
        return history

    def test_float64_steps_match_local_training(self):
        history = self.train_both(torch.float64, steps=6)
        for step, (losses, local_params, remote_params) in enumerate(history):
            torch.testing.assert_close(losses[1], losses[0], rtol=1e-12, atol=1e-12,
                                       msg=f"loss at step {step}")
            for a, b in zip(remote_params, local_params):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12,
                                           msg=f"parameters after step {step}")
        # It learns: the loss went down.
        self.assertLess(history[-1][0][0].item(), history[0][0][0].item())

    def test_float32_steps_match_local_training(self):
        history = self.train_both(torch.float32, steps=4)
        for step, (losses, local_params, remote_params) in enumerate(history):
            torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6,
                                       msg=f"loss at step {step}")
            for a, b in zip(remote_params, local_params):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6,
                                           msg=f"parameters after step {step}")


class ModuleTest(unittest.TestCase):
    def test_prelu_module_owns_its_weight(self):
        layer = RemoteActivation("prelu(weight=0.1)", CLIENT, num_parameters=3)
        torch.testing.assert_close(layer.weight.detach(), torch.full((3,), 0.1))
        self.assertEqual([name for name, _ in layer.named_parameters()], ["weight"])
        self.assertIn("num_parameters=3", repr(layer))
        self.assertEqual(list(RemoteActivation("relu", CLIENT).parameters()), [])

    def test_half_precision_through_the_layer(self):
        layer = RemoteActivation("gelu(approximate=tanh)", CLIENT)
        for dtype in (torch.float16, torch.bfloat16):
            x = torch.linspace(-3, 3, 13, dtype=dtype, requires_grad=True)
            y = layer(x)
            self.assertEqual(y.dtype, dtype)
            y.sum().backward()
            self.assertEqual(x.grad.dtype, dtype)
            # Within one unit in the last place of PyTorch in float64, rounded.
            reference = x.detach().double().requires_grad_()
            F.gelu(reference, approximate="tanh").sum().backward()
            one_ulp = 2.0 ** -10 if dtype == torch.float16 else 2.0 ** -7
            torch.testing.assert_close(x.grad.double(), reference.grad.to(dtype).double(),
                                       rtol=one_ulp, atol=1e-6)
            torch.testing.assert_close(y.double(), F.gelu(reference, approximate="tanh").to(
                dtype).double(), rtol=one_ulp, atol=1e-6)

    def test_bad_spec_fails_at_construction(self):
        with self.assertRaises(actserve.Error) as caught:
            RemoteActivation("swish", CLIENT)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_actserve_torch_attribute_is_this_module(self):
        import actserve.torch as bridge
        self.assertIs(actserve.torch, bridge)
        self.assertIs(bridge.torch, torch)  # the real PyTorch inside the bridge


if __name__ == "__main__":
    unittest.main()
