"""The Python side of the test vectors both SDKs share (tests/vectors/*.json; the C++
side is tests/client/sdk/shared_vectors_test.cc): the text forms of activation specs with
their canonical form or error, how compute_large cuts a tensor (checked on the plan, and
against a real server for softmax along dimension 0), the retry policy of the default
channel, and the health codec's bytes."""

import json
import os
import unittest

import grpc
import numpy as np

import actserve
from actserve import chunks
from actserve import client as client_module

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "vectors")


def read_vectors(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as file:
        return json.load(file)


class ActivationSpecVectorsTest(unittest.TestCase):
    def test_canonical_forms_and_errors(self):
        cases = read_vectors("activation_specs.json")["cases"]
        self.assertGreater(len(cases), 50)
        for case in cases:
            with self.subTest(text=case["text"]):
                if "canonical" in case:
                    spec = actserve.parse_activation(case["text"])
                    self.assertEqual(spec.canonical, case["canonical"])
                    # The canonical form is a fixed point, and means the same spec.
                    again = actserve.parse_activation(spec.canonical)
                    self.assertEqual(again.canonical, case["canonical"])
                    for name in actserve.spec.parameter_names(spec.name):
                        self.assertEqual(again.value(name), spec.value(name), name)
                else:
                    with self.assertRaises(actserve.Error) as caught:
                        actserve.parse_activation(case["text"])
                    self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
                    self.assertEqual(caught.exception.message, case["error"])


class ChunkPlanVectorsTest(unittest.TestCase):
    def test_plans(self):
        cases = read_vectors("chunk_plans.json")["cases"]
        self.assertGreater(len(cases), 10)
        for case in cases:
            with self.subTest(case["name"]):
                itemsize = {"float32": 4, "float64": 8, "float16": 2,
                            "bfloat16": 2}[case["dtype"]]
                plan = chunks.plan_chunks(case["shape"], itemsize,
                                          actserve.parse_activation(case["activation"]),
                                          case.get("weights", 0), case["chunk_bytes"])
                want = [chunks.Chunk(tuple(c["shape"]), c.get("offset", 0),
                                     tuple(c["columns"]) if "columns" in c else None,
                                     tuple(c["weights"]) if "weights" in c else None)
                        for c in case["chunks"]]
                self.assertEqual(plan, want)


class RetryPolicyVectorsTest(unittest.TestCase):
    def test_default_client_retries_what_the_cpp_sdk_retries(self):
        policy = read_vectors("retry_policy.json")
        defaults = client_module.Client.__init__.__kwdefaults__
        self.assertEqual(defaults["max_attempts"], policy["default_max_attempts"])
        self.assertEqual(defaults["load_balancing_policy"], policy["load_balancing_policy"])
        config = json.loads(client_module._service_config(defaults["load_balancing_policy"],
                                                          defaults["max_attempts"]))
        (method,) = config["methodConfig"]
        self.assertEqual([name["service"] for name in method["name"]], policy["services"])
        retry = method["retryPolicy"]
        self.assertEqual(retry["maxAttempts"], policy["default_max_attempts"])
        self.assertEqual(retry["retryableStatusCodes"], policy["retryable_status_codes"])
        self.assertEqual(retry["initialBackoff"], policy["initial_backoff"])
        self.assertEqual(retry["maxBackoff"], policy["max_backoff"])
        self.assertEqual(retry["backoffMultiplier"], policy["backoff_multiplier"])
        self.assertIn(policy["load_balancing_policy"], config["loadBalancingConfig"][0])
        # Every code named is one gRPC knows.
        for code in policy["retryable_status_codes"]:
            self.assertIn(code, grpc.StatusCode.__members__)


class HealthCodecVectorsTest(unittest.TestCase):
    def test_requests(self):
        for case in read_vectors("health_codec.json")["requests"]:
            if "service" in case:
                service = case["service"]
                expected = bytes.fromhex(case["hex"])
            else:
                text, count = case["service_repeat"]
                service = text * count
                expected = bytes.fromhex(case["hex_prefix"]) + service.encode()
            self.assertEqual(client_module.encode_health_request(service), expected, service)

    def test_responses(self):
        for case in read_vectors("health_codec.json")["responses"]:
            data = bytes.fromhex(case["hex"])
            with self.subTest(hex=case["hex"]):
                if case.get("malformed"):
                    with self.assertRaises(actserve.Error) as caught:
                        client_module.decode_health_response(data)
                    self.assertEqual(caught.exception.code, grpc.StatusCode.INTERNAL)
                else:
                    self.assertEqual(client_module.decode_health_response(data),
                                     case["status"])


if __name__ == "__main__":
    unittest.main()
