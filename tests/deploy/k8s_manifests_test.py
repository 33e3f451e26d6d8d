"""deploy/k8s agrees with itself, with deploy/Dockerfile and with the real actserve.

Parses the kustomize base (every resource kustomization.yaml names) and checks: the
selectors pick the pod template's labels; container ports are the ports of the flags in
the ConfigMap, of actserve's own defaults (`actserve --helpfull`) and of the Dockerfile's
EXPOSE; both probes are native gRPC probes on the gRPC port; the grace period covers
--drain_delay + --shutdown_grace; the pod runs as the image's non-root user on a read-only
root; and the real binary starts with the ConfigMap's flag file, as the pod would run it.

Environment (set by ctest): ACTSERVE_SOURCE_DIR, ACTSERVE_BINARY.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import yaml

import dockerfile

SOURCE_DIR = os.environ["ACTSERVE_SOURCE_DIR"]
ACTSERVE = os.environ["ACTSERVE_BINARY"]
K8S_DIR = os.path.join(SOURCE_DIR, "deploy", "k8s")
# Readiness polling: bounded attempts of a short wait; nothing asserts on time.
POLL_ATTEMPTS, POLL_INTERVAL_S = 600, 0.05


def load_resources():
    """{kind: [resource, ...]} of every document in the files kustomization.yaml lists."""
    with open(os.path.join(K8S_DIR, "kustomization.yaml"), encoding="utf-8") as f:
        kustomization = yaml.safe_load(f)
    resources = {}
    for name in kustomization["resources"]:
        with open(os.path.join(K8S_DIR, name), encoding="utf-8") as f:
            for document in yaml.safe_load_all(f):
                if document:
                    resources.setdefault(document["kind"], []).append(document)
    return kustomization, resources


def helpfull_defaults():
    """{flag: default as actserve --helpfull prints it, quotes removed}."""
    result = subprocess.run([ACTSERVE, "--helpfull"], capture_output=True, text=True)
    text = " ".join((result.stdout + result.stderr).split())
    defaults = {}
    for match in re.finditer(r"--(\w+) \(.*?\); default: (\"[^\"]*\"|[^;]*);", text):
        value = match.group(2)
        defaults[match.group(1)] = value[1:-1] if value.startswith('"') else value
    return defaults


def parse_flagfile(text):
    """[(flag, value)] of a --flagfile text, in order."""
    flags = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"--(\w+)=(.*)", line)
        if not match:
            raise AssertionError(f"flag file line {line!r} is not --name=value")
        flags.append((match.group(1), match.group(2)))
    return flags


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def seconds(duration):
    """An absl duration without fractions ("20s", "1m", "1m30s", "500ms") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"cannot read the duration {duration!r}")
    return sum(float(n) * units[u] for n, u in parts)


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


class K8sManifestsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.kustomization, cls.resources = load_resources()
        (cls.deployment,) = cls.resources["Deployment"]
        cls.pod = cls.deployment["spec"]["template"]
        (cls.container,) = cls.pod["spec"]["containers"]
        cls.ports = {p["name"]: p["containerPort"] for p in cls.container["ports"]}
        (configmap,) = cls.resources["ConfigMap"]
        cls.configmap = configmap
        cls.flagfile_path = next(a for a in cls.container["args"]
                                 if a.startswith("--flagfile=")).split("=", 1)[1]
        cls.flag_key = os.path.basename(cls.flagfile_path)
        cls.flags = dict(parse_flagfile(configmap["data"][cls.flag_key]))
        cls.defaults = helpfull_defaults()
        with open(os.path.join(SOURCE_DIR, "deploy", "Dockerfile"), encoding="utf-8") as f:
            cls.runtime = dockerfile.stage(dockerfile.parse(f.read()), "runtime")

    def test_base_has_every_kind(self):
        self.assertEqual(sorted(self.resources),
                         ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                          "PodDisruptionBudget", "Service"])
        self.assertEqual(len(self.resources["Service"]), 2)
        self.assertEqual(self.container["image"],
                         self.kustomization["images"][0]["name"])

    def test_selectors_pick_the_pods(self):
        labels = self.pod["metadata"]["labels"]
        self.assertTrue(selects(self.deployment["spec"]["selector"]["matchLabels"], labels))
        for service in self.resources["Service"]:
            selector = service["spec"]["selector"]
            self.assertTrue(selector and selects(selector, labels), service["metadata"]["name"])
        (pdb,) = self.resources["PodDisruptionBudget"]
        self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"], labels))
        (hpa,) = self.resources["HorizontalPodAutoscaler"]
        self.assertEqual(hpa["spec"]["scaleTargetRef"],
                         {"apiVersion": "apps/v1", "kind": "Deployment",
                          "name": self.deployment["metadata"]["name"]})
        self.assertGreaterEqual(hpa["spec"]["minReplicas"], 2)
        self.assertLessEqual(pdb["spec"]["maxUnavailable"], hpa["spec"]["minReplicas"] - 1)

    def test_ports_agree_with_flags_defaults_and_expose(self):
        grpc_port, metrics_port = self.ports["grpc"], self.ports["metrics"]
        http_port = self.ports["http"]
        # The server's own defaults: the ports of --address, --http_address and
        # --metrics_address.
        self.assertEqual(port_of(self.defaults["address"]), grpc_port)
        self.assertEqual(port_of(self.defaults["http_address"]), http_port)
        self.assertEqual(port_of(self.defaults["metrics_address"]), metrics_port)
        # The ConfigMap's flags, which the pod runs with, listen on every interface there.
        self.assertEqual(self.flags["address"], f"0.0.0.0:{grpc_port}")
        self.assertEqual(self.flags["http_address"], f"0.0.0.0:{http_port}")
        self.assertEqual(self.flags["metrics_address"], f"0.0.0.0:{metrics_port}")
        # The image: EXPOSE, and the addresses its ENTRYPOINT starts with.
        self.assertEqual(sorted(dockerfile.exposed_ports(self.runtime)),
                         sorted([grpc_port, http_port, metrics_port]))
        entrypoint = next(i for i in self.runtime.instructions
                          if i.keyword == "ENTRYPOINT").exec_form()
        self.assertIn(f"--address=0.0.0.0:{grpc_port}", entrypoint)
        self.assertIn(f"--http_address=0.0.0.0:{http_port}", entrypoint)
        self.assertIn(f"--metrics_address=0.0.0.0:{metrics_port}", entrypoint)
        self.assertIn(str(metrics_port), self.pod["metadata"]["annotations"]["prometheus.io/port"])

    def test_services_route_to_named_container_ports(self):
        by_name = {s["metadata"]["name"]: s for s in self.resources["Service"]}
        headless = [s for s in by_name.values() if s["spec"].get("clusterIP") == "None"]
        cluster_ip = [s for s in by_name.values() if s["spec"].get("clusterIP") != "None"]
        self.assertEqual(len(headless), 1, "one headless Service for client-side balancing")
        self.assertEqual(len(cluster_ip), 1)
        self.assertEqual(cluster_ip[0]["spec"].get("type", "ClusterIP"), "ClusterIP")
        # Headless: gRPC only (clients connect to pod IPs on the container port itself).
        self.assertEqual([(p["port"], p["targetPort"]) for p in headless[0]["spec"]["ports"]],
                         [(self.ports["grpc"], "grpc")])
        for service in by_name.values():
            for port in service["spec"]["ports"]:
                self.assertIn(port["targetPort"], self.ports)
                self.assertEqual(port["port"], self.ports[port["targetPort"]])

    def test_probes_are_native_grpc_on_the_grpc_port(self):
        for probe in ("readinessProbe", "livenessProbe"):
            spec = self.container[probe]
            self.assertEqual(spec["grpc"]["port"], self.ports["grpc"], probe)
            # The server reports its overall status under service "".
            self.assertEqual(spec["grpc"].get("service", ""), "", probe)
        # A draining pod answers NOT_SERVING for up to --drain_delay + --shutdown_grace:
        # readiness takes it out at once, liveness must not kill it meanwhile.
        liveness = self.container["livenessProbe"]
        self.assertGreater(liveness["periodSeconds"] * liveness["failureThreshold"],
                           self.drain_seconds())

    def drain_seconds(self):
        """The longest a SIGTERM'd pod runs: --drain_delay, then --shutdown_grace."""
        return sum(seconds(self.flags.get(flag, self.defaults[flag]))
                   for flag in ("drain_delay", "shutdown_grace"))

    def test_termination_grace_covers_the_drain(self):
        margin = self.pod["spec"]["terminationGracePeriodSeconds"] - self.drain_seconds()
        self.assertGreaterEqual(margin, 5)
        self.assertLessEqual(margin, 30)

    def test_runs_as_the_image_user_on_a_read_only_root(self):
        pod_security = self.pod["spec"]["securityContext"]
        user = next(i for i in self.runtime.instructions if i.keyword == "USER").args
        uid, gid = (int(x) for x in user.split(":"))
        self.assertTrue(pod_security["runAsNonRoot"])
        self.assertEqual((pod_security["runAsUser"], pod_security["runAsGroup"]), (uid, gid))
        container_security = self.container["securityContext"]
        self.assertTrue(container_security["readOnlyRootFilesystem"])
        self.assertFalse(container_security["allowPrivilegeEscalation"])
        self.assertEqual(container_security["capabilities"]["drop"], ["ALL"])

    def test_flags_are_actserve_flags_and_threads_follow_the_cpu_request(self):
        for flag in self.flags:
            self.assertIn(flag, self.defaults, f"--{flag} is not an actserve flag")
        cpu = str(self.container["resources"]["requests"]["cpu"])
        self.assertRegex(cpu, r"^\d+$", "a whole number of cores, so --threads can match")
        self.assertEqual(self.flags["threads"], cpu)
        mount = next(m for m in self.container["volumeMounts"]
                     if os.path.join(m["mountPath"], self.flag_key) == self.flagfile_path)
        volume = next(v for v in self.pod["spec"]["volumes"] if v["name"] == mount["name"])
        self.assertEqual(volume["configMap"]["name"], self.configmap["metadata"]["name"])
        self.assertLess(seconds(self.flags["max_connection_age_grace"]),
                        seconds(self.flags["max_connection_age"]))

    def test_actserve_starts_with_the_configmap_flags(self):
        # As the pod runs it: the image's entrypoint, then the Deployment's args (the flag
        # file); then loopback addresses on free ports for this test, which win as the
        # last occurrence of a flag does.
        entrypoint = next(i for i in self.runtime.instructions
                          if i.keyword == "ENTRYPOINT").exec_form()
        work = tempfile.mkdtemp(prefix="actserve_k8s_")
        try:
            flagfile = os.path.join(work, self.flag_key)
            with open(flagfile, "w", encoding="utf-8") as f:
                f.write(self.configmap["data"][self.flag_key])
            args = [a.replace(self.flagfile_path, flagfile) for a in self.container["args"]]
            log_path = os.path.join(work, "actserve.log")
            with open(log_path, "w", encoding="utf-8") as log:
                server = subprocess.Popen(
                    [ACTSERVE] + entrypoint[1:] + args +
                    ["--address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
                     "--http_address=127.0.0.1:0"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                line = ""
                for _ in range(POLL_ATTEMPTS):
                    with open(log_path, encoding="utf-8") as f:
                        # The gRPC port's line (the REST door logs its own first).
                        line = next((l for l in f if " listening on " in l
                                     and "HTTP/REST" not in l), "")
                    if line or server.poll() is not None:
                        break
                    time.sleep(POLL_INTERVAL_S)
                with open(log_path, encoding="utf-8") as f:
                    self.assertIn(" listening on 127.0.0.1:0 ", line, f.read())
                self.assertIn(f" {self.flags['threads']} compute threads", line)
                self.assertIn(f"max_inflight={self.flags['max_inflight']}", line)
                self.assertIn(f"max_message_bytes={self.flags['max_message_bytes']}", line)
            finally:
                server.send_signal(signal.SIGTERM)
                self.assertEqual(server.wait(), 0)
        finally:
            shutil.rmtree(work)


if __name__ == "__main__":
    unittest.main()
