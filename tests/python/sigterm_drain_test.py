"""SIGTERM under load loses no call of a plain gRPC client.

Three real ``actserve`` processes, and a stock grpcio channel over all three, as a client
of pods behind a headless Service would have: ``ipv4:a,b,c``, round_robin, a retry policy
for UNAVAILABLE only, no health checking, no wait_for_ready, no actserve SDK. Threads
send unary Compute calls without pause; two ComputeStreams, opened on the replica about
to be stopped before the signal, go on sending batches after it. One replica gets
SIGTERM mid-load; the load goes on until it has exited and a while after. The streams
go on until the replica has begun refusing new calls (its log says "shutting down:
draining"), send a few more batches and close. Every unary call and every stream must end
OK with the right values, and the replica must exit 0. Then the stopped replica is
replaced and the next round stops another one. Only the generated messages of
actserve.v1 are used, not the SDK's client.

Nothing here waits for a time: "mid-load" and "a while after" are numbers of calls, and
the only waits are bounded polls for a process to start or exit.

ACTSERVE_DRAIN_ROUNDS (default 6) and ACTSERVE_DRAIN_FLAGS (extra server flags, e.g.
"--drain_delay=3s") let the same test be run for longer by hand:

    ACTSERVE_BINARY=build/release/server/actserve ACTSERVE_DRAIN_ROUNDS=20 \
        PYTHONPATH=build/release/python:tests/python \
        /usr/bin/python3 -m unittest -v sigterm_drain_test
"""

import array
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

from actserve.v1 import activation_pb2

_PORT_IN_LOG = re.compile(rb"\(port (\d+)")
_POLL_INTERVAL_S = 0.02
_START_LIMIT_S = 60.0
_EXIT_LIMIT_S = 60.0

ROUNDS = int(os.environ.get("ACTSERVE_DRAIN_ROUNDS", "6"))
EXTRA_FLAGS = os.environ.get("ACTSERVE_DRAIN_FLAGS", "").split()
LOAD_THREADS = 4
STREAMS = 2
CALLS_BEFORE_SIGNAL = 200  # per round, over all threads
CALLS_AFTER_EXIT = 200     # per round, over all threads, after the stopped replica exited
STREAM_BATCHES_WHILE_DRAINING = 20
# The log line of the replica that starts refusing new calls (server/server.cc).
DRAINING_LOG_LINE = "shutting down: draining"
# A bound on a stream that never sees it (the test then fails on that stream).
STREAM_BATCH_LIMIT = 100000
# A bound on the load when the replica does not exit (the test then fails on its exit).
CALLS_AFTER_SIGNAL_LIMIT = 200000

# Exactly what a client of a headless Service would write: no health checking, no
# waitForReady, retries on UNAVAILABLE only.
SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": "actserve.v1.ActivationService"}],
        "retryPolicy": {
            "maxAttempts": 5,
            "initialBackoff": "0.05s",
            "maxBackoff": "0.5s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
})

# relu of these float32 values, checked on every reply.
INPUT = [-2.0, -1.0, 0.0, 1.0, 2.0]
EXPECTED = [0.0, 0.0, 0.0, 1.0, 2.0]


def relu_request():
    request = activation_pb2.ComputeRequest()
    item = request.items.add()
    item.input.dtype = activation_pb2.DTYPE_FLOAT32
    item.input.shape.append(len(INPUT))
    item.input.data = array.array("f", INPUT).tobytes()
    item.activation.relu.SetInParent()
    item.mode = activation_pb2.MODE_FORWARD
    return request


def relu_output(response):
    values = array.array("f")
    values.frombytes(response.results[0].output.data)
    return list(values)


def health(channel):
    """grpc.health.v1.Health/Check for "", as raw bytes: 1 SERVING, 2 NOT_SERVING."""
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    reply = check(b"", timeout=5)
    return reply[1] if len(reply) == 2 and reply[0] == 0x08 else 0


class Replica:
    """One actserve process on a free loopback port, its log in a temporary file."""

    def __init__(self, directory, name):
        binary = os.environ.get("ACTSERVE_BINARY")
        if not binary:
            raise RuntimeError("set ACTSERVE_BINARY to the actserve binary (ctest does)")
        self.log_path = os.path.join(directory, name + ".log")
        flags = ["--address=127.0.0.1:0", "--metrics_address=", "--http_address=",
                 "--threads=1",
                 "--shutdown_grace=30s", "--drain_delay=200ms", "--log_level=info",
                 *EXTRA_FLAGS]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([binary, *flags], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.port = None
        self._log_lock = threading.Lock()
        self._log_seen = 0
        self._log_tail = ""
        deadline = time.monotonic() + _START_LIMIT_S
        while self.port is None:
            match = _PORT_IN_LOG.search(self.read_log().encode())
            if match:
                self.port = int(match.group(1))
            else:
                self._check_alive(deadline)
                time.sleep(_POLL_INTERVAL_S)
        with grpc.insecure_channel(self.address) as channel:
            while True:
                try:
                    if health(channel) == 1:
                        break
                except grpc.RpcError:
                    pass
                self._check_alive(deadline)
                time.sleep(_POLL_INTERVAL_S)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def read_log(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")

    def log_has(self, text):
        """Whether the log has `text` yet; reads only what was added since the last
        call (lines are at most a few hundred bytes, so one never splits unseen).
        Thread-safe."""
        with self._log_lock:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_seen)
                new = log.read()
            tail = self._log_tail + new.decode("utf-8", "replace")
            self._log_seen += len(new)
            self._log_tail = tail[-1000:]
            return text in tail

    def _check_alive(self, deadline):
        if self.process.poll() is not None:
            raise RuntimeError(f"actserve exited at start:\n{self.read_log()}")
        if time.monotonic() > deadline:
            self.kill()
            raise RuntimeError(f"actserve did not start:\n{self.read_log()}")

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)

    def exited(self):
        return self.process.poll() is not None

    def wait_for_exit(self):
        """The exit code (negative: a signal), or None when still running."""
        try:
            return self.process.wait(timeout=_EXIT_LIMIT_S)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Round:
    """One SIGTERM under load: the counts of what the client saw."""

    def __init__(self, replicas, victim):
        self.replicas = replicas
        self.victim = victim
        self.lock = threading.Lock()
        self.codes = collections.Counter()  # unary calls by final status code
        self.wrong_values = 0
        self.stream_results = []  # (status code name, batches answered, batches sent)
        self.calls_started = 0
        self.signal_sent = threading.Event()
        self.victim_exited = threading.Event()
        self.calls_after_signal = 0
        self.calls_after_exit = 0

    def _next_call(self):
        """Whether to make one more call; sends the signal at the right call number."""
        with self.lock:
            if self.victim_exited.is_set():
                if self.calls_after_exit >= CALLS_AFTER_EXIT:
                    return False
                self.calls_after_exit += 1
            elif self.signal_sent.is_set():
                self.calls_after_signal += 1
                if self.victim.exited() or self.calls_after_signal > CALLS_AFTER_SIGNAL_LIMIT:
                    self.victim_exited.set()
            self.calls_started += 1
            if self.calls_started == CALLS_BEFORE_SIGNAL:
                self.victim.terminate()
                self.signal_sent.set()
            return True

    def _load(self, stub, request):
        while self._next_call():
            try:
                response = stub.Compute(request, timeout=60)
                code = grpc.StatusCode.OK
                wrong = relu_output(response) != EXPECTED
            except grpc.RpcError as error:
                code = error.code()
                wrong = False
            with self.lock:
                self.codes[code.name] += 1
                self.wrong_values += wrong

    def _stream(self, stub, request):
        # Opened and served once before the signal; then a batch after each reply until
        # STREAM_BATCHES_WHILE_DRAINING batches have been answered after the replica began
        # refusing new calls (it waits for this stream), then closed.
        sent = 0
        answered = 0
        outbox = collections.deque()
        ready = threading.Condition()
        done = [False]

        def requests():
            nonlocal sent
            while True:
                with ready:
                    ready.wait_for(lambda: outbox or done[0])
                    if not outbox:
                        return
                    outbox.popleft()
                sent += 1
                yield request

        def push(last=False):
            with ready:
                if last:
                    done[0] = True
                else:
                    outbox.append(1)
                ready.notify()

        push()
        code = grpc.StatusCode.OK
        draining = False
        while_draining = 0
        try:
            for response in stub.ComputeStream(requests(), timeout=60):
                answered += 1
                if relu_output(response) != EXPECTED:
                    with self.lock:
                        self.wrong_values += 1
                if answered == 1:
                    self.stream_open.release()
                    self.signal_sent.wait()
                draining = draining or self.victim.log_has(DRAINING_LOG_LINE)
                while_draining += draining
                push(last=while_draining >= STREAM_BATCHES_WHILE_DRAINING
                     or answered >= STREAM_BATCH_LIMIT)
        except grpc.RpcError as error:
            code = error.code()
        with self.lock:
            self.stream_results.append((code.name, answered, sent, while_draining))

    def run(self):
        request = relu_request()
        target = "ipv4:" + ",".join(r.address for r in self.replicas)
        options = [("grpc.service_config", SERVICE_CONFIG)]
        with grpc.insecure_channel(target, options=options) as balanced, \
                grpc.insecure_channel(self.victim.address) as direct:
            stub = _Stub(balanced)
            direct_stub = _Stub(direct)
            # The streams are opened on the replica that will be stopped, before the signal.
            self.stream_open = threading.Semaphore(0)
            streams = [threading.Thread(target=self._stream, args=(direct_stub, request))
                       for _ in range(STREAMS)]
            for thread in streams:
                thread.start()
            for _ in streams:
                self.stream_open.acquire()
            load = [threading.Thread(target=self._load, args=(stub, request))
                    for _ in range(LOAD_THREADS)]
            for thread in load:
                thread.start()
            for thread in load:
                thread.join()
            for thread in streams:
                thread.join()
        return self.victim.wait_for_exit()


class _Stub:
    """The two methods, over a raw channel: serialized protobuf in and out."""

    def __init__(self, channel):
        self.Compute = channel.unary_unary(
            "/actserve.v1.ActivationService/Compute",
            request_serializer=activation_pb2.ComputeRequest.SerializeToString,
            response_deserializer=activation_pb2.ComputeResponse.FromString)
        self.ComputeStream = channel.stream_stream(
            "/actserve.v1.ActivationService/ComputeStream",
            request_serializer=activation_pb2.ComputeRequest.SerializeToString,
            response_deserializer=activation_pb2.ComputeResponse.FromString)


class SigtermDrainTest(unittest.TestCase):
    def test_no_call_fails_when_a_replica_is_stopped_under_load(self):
        directory = tempfile.TemporaryDirectory(prefix="actserve-drain-")
        self.addCleanup(directory.cleanup)
        started = 0
        replicas = []

        def start():
            nonlocal started
            started += 1
            replica = Replica(directory.name, f"replica{started}")
            self.addCleanup(replica.kill)
            return replica

        replicas = [start() for _ in range(3)]
        totals = collections.Counter()
        problems = []
        for number in range(ROUNDS):
            victim = replicas[number % 3]
            outcome = Round(replicas, victim)
            exit_code = outcome.run()
            failed = {code: n for code, n in outcome.codes.items() if code != "OK"}
            totals.update(outcome.codes)
            line = (f"round {number}: unary {dict(outcome.codes)}, "
                    f"{outcome.calls_after_signal} calls between the signal and the exit, "
                    f"streams {outcome.stream_results}, exit {exit_code}")
            print(line, file=sys.stderr, flush=True)
            if (failed or outcome.wrong_values or exit_code != 0
                    or len(outcome.stream_results) != STREAMS
                    or any(code != "OK" or answered != sent
                           or while_draining != STREAM_BATCHES_WHILE_DRAINING
                           for code, answered, sent, while_draining
                           in outcome.stream_results)):
                problems.append(line + "\n  its log ends:\n" + "\n".join(victim.read_log().splitlines()[-12:]))
            replicas[number % 3] = start()
        print(f"all rounds: {dict(totals)}", file=sys.stderr, flush=True)
        self.assertEqual(problems, [], "\n".join(problems))


if __name__ == "__main__":
    unittest.main()
