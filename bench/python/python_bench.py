"""The Python SDK against plain C++ clients of the same server, in one run
(`make bench-python`; bench/README.md, "The Python SDK").

Starts the actserve binary as its own process with its default flags (only the two
addresses on free loopback ports), then, interleaved round by round:

- ``compute``: float32 relu, forward, one call at a time, at each payload, by the Python
  SDK (``Client.compute``; once with new result arrays per call, as a first program
  writes it, once with ``out=`` arrays reused from call to call, once in a child process
  whose glibc keeps freed memory, ``KEEP_FREED_MEMORY``) and by ``compute_load``
  (bench/service/compute_load_main.cc: gRPC's generic stub sending one pre-serialized
  request of the same bytes; the transport's own cost);
- ``compute_large``: one tensor of ``--large_bytes`` float32, gelu forward_backward with
  grad_output, by ``Client.compute_large`` in a child Python process (for its peak RSS)
  and by ``giant_tensor`` (the C++ SDK's ``ComputeChunkedInto``), same chunk size and
  window;
- ``RemoteActivation``: forward and backward of a 16 Mi-element float32 tensor through
  ``actserve.torch.RemoteActivation("gelu")`` against ``Client.compute`` forward then
  backward on the same data.

Medians over ``--rounds``. MB/s is 10^6 bytes of input tensor per second. Writes the CSV
given by ``--csv`` and prints it.
"""

import argparse
import csv
import io
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

import actserve

_SERVE_LIMIT_S = 60.0
_PYTHON = sys.executable
# glibc told to keep freed memory for reuse (no mmap for large blocks, no trimming), in
# the environment of one of the Python clients: what a process making many large calls
# can choose (client/python/README.md, "Copies, and what they cost").
KEEP_FREED_MEMORY = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _values(count: int, dtype=np.float32) -> np.ndarray:
    # -4 .. 4 in steps of 1/125, repeating: the same x as compute_load and giant_tensor.
    return (np.arange(count, dtype=np.int64) % 1000).astype(dtype) / dtype(125) - dtype(4)


def _vm_kib(field: str, pid: str = "self") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class Server:
    """The actserve binary with its default flags, on free loopback ports."""

    def __init__(self, binary: str):
        port = _free_port()
        self.target = f"127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [binary, f"--address={self.target}",
             f"--metrics_address=127.0.0.1:{_free_port()}", "--http_address="],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = actserve.Client(self.target, max_attempts=1)
        deadline = time.monotonic() + _SERVE_LIMIT_S
        while True:
            try:
                if client.health() == "SERVING":
                    break
            except actserve.Error:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{binary} did not start serving on {self.target}")
            time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _python_compute(client, x: np.ndarray, min_time: float, reuse: bool):
    out = actserve.Result(output=np.empty_like(x)) if reuse else None
    latencies = []
    start = time.perf_counter()
    while len(latencies) < 3 or time.perf_counter() - start < min_time:
        began = time.perf_counter()
        result = client.compute(x, "relu", mode="forward", out=out)
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    if not np.array_equal(result.output, np.maximum(x, 0)):
        raise RuntimeError("the Python SDK's relu is wrong")
    return x.nbytes * len(latencies) / elapsed / 1e6, statistics.median(latencies) * 1e6


def _tuned_compute(target: str, nbytes: int, min_time: float):
    # In a child process: glibc's settings are read at its start.
    line = subprocess.run(
        [_PYTHON, __file__, "--compute_child", target, f"--payloads={nbytes}",
         f"--min_time={min_time}"],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, GLIBC_TUNABLES=KEEP_FREED_MEMORY)).stdout
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    return float(fields["mb_s"]), float(fields["p50_us"])


def _cpp_compute(compute_load: str, target: str, nbytes: int, min_time: float):
    line = subprocess.run(
        [compute_load, f"--target={target}", f"--bytes={nbytes}", "--activation=relu",
         "--mode=forward", f"--min_time={min_time}s"],
        check=True, capture_output=True, text=True).stdout
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    return float(fields["mb_s"]), float(fields["p50_us"])


def _large_child(target: str, nbytes: int, chunk_bytes: int, reuse: bool) -> None:
    # Runs in its own process so that its peak RSS is the call's.
    baseline_kib = _vm_kib("VmRSS")
    x = _values(nbytes // 4)
    dy = np.full_like(x, 0.5)
    # giant_tensor's result vectors are zero-filled before its clock starts; out= arrays
    # made the same way put both on the same footing.
    out = actserve.Result(np.zeros_like(x), np.zeros_like(x)) if reuse else None
    with actserve.Client(target) as client:
        start = time.perf_counter()
        result = client.compute_large(x, "gelu", grad_output=dy, chunk_bytes=chunk_bytes,
                                      out=out)
        seconds = time.perf_counter() - start
        for index in (0, x.size // 2, x.size - 1):  # each chunk came back, in its place
            expected = client.compute(x[index:index + 1], "gelu",
                                      grad_output=dy[index:index + 1])
            if (result.output[index] != expected.output[0]
                    or result.grad_input[index] != expected.grad_input[0]):
                raise RuntimeError(f"compute_large differs from compute at {index}")
    print(f"seconds={seconds:.3f} peak_kib={_vm_kib('VmHWM')} baseline_kib={baseline_kib}")


def _python_large(target: str, nbytes: int, chunk_bytes: int, reuse: bool):
    line = subprocess.run(
        [_PYTHON, __file__, "--large_child", target, f"--large_bytes={nbytes}",
         f"--chunk_bytes={chunk_bytes}"] + (["--large_out"] if reuse else []),
        check=True, capture_output=True, text=True).stdout
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    return (float(fields["seconds"]), int(fields["peak_kib"]) / 1024,
            int(fields["baseline_kib"]) / 1024)


def _cpp_large(giant_tensor: str, target: str, nbytes: int, chunk_bytes: int) -> float:
    line = subprocess.run(
        [giant_tensor, f"--target={target}", f"--bytes={nbytes}",
         f"--chunk_bytes={chunk_bytes}", "--window=4", "--mode=forward_backward"],
        check=True, capture_output=True, text=True).stdout
    return float(re.search(r"in ([\d.]+) s", line).group(1))


def _torch_round(client, elements: int, bridge_first: bool):
    import torch
    from actserve.torch import RemoteActivation

    layer = RemoteActivation("gelu", client)
    x = torch.from_numpy(_values(elements)).requires_grad_()
    dy = torch.full((elements,), 0.5)
    xn, dyn = x.detach().numpy(), dy.numpy()
    seconds = {}
    for who in (("bridge", "plain") if bridge_first else ("plain", "bridge")):
        start = time.perf_counter()
        if who == "bridge":
            y = layer(x)
            y.backward(dy)
        else:
            forward = client.compute(xn, "gelu", mode="forward")
            backward = client.compute(xn, "gelu", mode="backward", grad_output=dyn)
        seconds[who] = time.perf_counter() - start
    if not (np.array_equal(y.detach().numpy(), forward.output)
            and np.array_equal(x.grad.numpy(), backward.grad_input)):
        raise RuntimeError("RemoteActivation differs from compute")
    return seconds["bridge"], seconds["plain"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actserve_binary", default="build/bench/server/actserve")
    parser.add_argument("--compute_load", default="build/bench/bench/service/compute_load")
    parser.add_argument("--giant_tensor", default="build/bench/bench/service/giant_tensor")
    parser.add_argument("--csv", default="bench/results/python.csv")
    parser.add_argument("--payloads", default="1024,1048576,16777216,67108864")
    parser.add_argument("--min_time", type=float, default=2.0,
                        help="seconds per client per payload per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large_bytes", type=int, default=1 << 30)
    parser.add_argument("--large_rounds", type=int, default=1)
    parser.add_argument("--chunk_bytes", type=int, default=actserve.DEFAULT_CHUNK_BYTES,
                        help="compute_large's and ComputeChunked's chunk (both defaults)")
    parser.add_argument("--torch_elements", type=int, default=16 << 20)
    parser.add_argument("--large_child", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--large_out", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compute_child", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compute_child:
        with actserve.Client(args.compute_child) as client:
            x = _values(int(args.payloads) // 4)
            client.compute(x, "relu", mode="forward")
            mb_s, p50_us = _python_compute(client, x, args.min_time, False)
        print(f"mb_s={mb_s:.3f} p50_us={p50_us:.3f}")
        return 0
    if args.large_child:
        _large_child(args.large_child, args.large_bytes, args.chunk_bytes, args.large_out)
        return 0

    print(f"load average at start: {os.getloadavg()}", flush=True)
    server = Server(args.actserve_binary)
    rows = []
    try:
        client = actserve.Client(server.target)
        for nbytes in (int(p) for p in args.payloads.split(",")):
            x = _values(nbytes // 4)
            client.compute(x, "relu", mode="forward")  # the connection, and the server's pool
            figures = {"python": [], "python_out": [], "python_tuned": [], "cpp": []}
            for round_index in range(args.rounds):
                order = list(figures)
                order = order[round_index % 4:] + order[:round_index % 4]
                for who in order:
                    if who == "cpp":
                        figures[who].append(_cpp_compute(args.compute_load, server.target,
                                                         nbytes, args.min_time))
                    elif who == "python_tuned":
                        figures[who].append(_tuned_compute(server.target, nbytes,
                                                           args.min_time))
                    else:
                        figures[who].append(_python_compute(client, x, args.min_time,
                                                            who == "python_out"))
            cpp_mb_s = statistics.median(f[0] for f in figures["cpp"])
            cpp_p50 = statistics.median(f[1] for f in figures["cpp"])
            for who, label in (("python", "Client.compute"),
                               ("python_out", "Client.compute(out=reused)"),
                               ("python_tuned", "Client.compute, glibc keeping freed memory")):
                mb_s = statistics.median(f[0] for f in figures[who])
                p50 = statistics.median(f[1] for f in figures[who])
                rows.append(["compute", nbytes, label, round(mb_s, 1), round(p50 / 1000, 3),
                             "C++ generic stub", round(cpp_mb_s, 1), round(cpp_p50 / 1000, 3),
                             round(mb_s / cpp_mb_s, 2), round(p50 / cpp_p50, 2), ""])
                print(rows[-1], flush=True)

        large = {"python": [], "python_out": [], "cpp": []}
        memory = {}
        for _ in range(args.large_rounds):
            for who in ("python", "python_out"):
                seconds, peak, baseline = _python_large(server.target, args.large_bytes,
                                                        args.chunk_bytes, who == "python_out")
                large[who].append(seconds)
                memory[who] = (peak, baseline)
            large["cpp"].append(_cpp_large(args.giant_tensor, server.target,
                                           args.large_bytes, args.chunk_bytes))
        cpp_s = statistics.median(large["cpp"])
        arrays_mib = 4 * args.large_bytes / (1 << 20)  # x, grad_output, output, grad_input
        for who, label in (("python", "Client.compute_large"),
                           ("python_out", "Client.compute_large(out=zero-filled)")):
            python_s = statistics.median(large[who])
            peak, baseline = memory[who]
            rows.append(["compute_large gelu forward_backward", args.large_bytes, label,
                         round(args.large_bytes / python_s / 1e6, 1),
                         round(python_s * 1000, 1), "C++ ComputeChunkedInto",
                         round(args.large_bytes / cpp_s / 1e6, 1), round(cpp_s * 1000, 1),
                         round(cpp_s / python_s, 2), round(python_s / cpp_s, 2),
                         f"peak RSS {peak:.0f} MiB = {baseline:.0f} before the arrays + "
                         f"{arrays_mib:.0f} of arrays + {peak - baseline - arrays_mib:.0f}"])
            print(rows[-1], flush=True)

        bridge, plain = [], []
        _torch_round(client, args.torch_elements, True)  # imports torch; not measured
        for round_index in range(max(args.rounds, 4)):
            b, p = _torch_round(client, args.torch_elements, round_index % 2 == 0)
            bridge.append(b)
            plain.append(p)
        bridge_s, plain_s = statistics.median(bridge), statistics.median(plain)
        nbytes = args.torch_elements * 4
        rows.append(["forward+backward gelu", nbytes, "RemoteActivation",
                     round(nbytes / bridge_s / 1e6, 1), round(bridge_s * 1000, 1),
                     "Client.compute x2", round(nbytes / plain_s / 1e6, 1),
                     round(plain_s * 1000, 1), round(plain_s / bridge_s, 2),
                     round(bridge_s / plain_s, 2), ""])
        print(rows[-1], flush=True)
        client.close()
    finally:
        server.stop()
    print(f"load average at end: {os.getloadavg()}; this process's peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["measure", "payload_bytes", "python", "python_mb_s", "python_p50_ms",
                     "reference", "reference_mb_s", "reference_p50_ms", "mb_s_ratio",
                     "time_ratio", "note"])
    writer.writerows(rows)
    with open(args.csv, "w", encoding="ascii") as out:
        out.write(text.getvalue())
    print(text.getvalue(), end="")
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
