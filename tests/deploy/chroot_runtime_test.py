"""`make test-deploy`: the Dockerfile's runtime stage, run without Docker.

debootstraps a minimal Debian 12 root (variant minbase, cached under --cache-dir so that
reruns skip it), then carries out deploy/Dockerfile's runtime stage in a fresh copy of it
with chroot, instruction by instruction: COPY from the source tree, RUN (so
`install-deps.sh --runtime` installs exactly the runtime packages, from Debian's mirror),
COPY --from=build of the built actserve and actctl. Then it starts the ENTRYPOINT inside
the root as the image's USER, on loopback ports, and checks from outside that
`actctl health` says SERVING, that one Compute call returns relu's values, and that
/metrics answers; inside, that the HEALTHCHECK command passes. SIGTERM must drain and
exit 0. Processes, mounts and the copied root are removed at the end, pass or fail.

Needs root (chroot, mount) and Debian's mirror (apt). Exit status 0 when every check
passes; the last line says PASS or FAIL.

    python3 tests/deploy/chroot_runtime_test.py --build-dir=build/release \
        --cache-dir=build/test-deploy
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile  # noqa: E402  (after the path it lives in)

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Readiness polling: bounded attempts of a short wait; nothing asserts on time.
POLL_ATTEMPTS, POLL_INTERVAL_S = 600, 0.05
SUITE = "bookworm"
# The apt sources of the debian:bookworm-slim image.
SLIM_SOURCES = """Types: deb
URIs: {mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class CheckFailed(Exception):
    pass


def log(message):
    print(f"test-deploy: {message}", flush=True)


def run(argv, **kwargs):
    log("$ " + " ".join(shlex.quote(a) for a in argv))
    return subprocess.run(argv, check=True, **kwargs)


def base_root(cache_dir, mirror):
    """The cached minbase root, debootstrapped on first use (into a temporary name, so an
    interrupted run leaves nothing that looks finished)."""
    base = os.path.join(cache_dir, "base")
    if os.path.isfile(os.path.join(base, "etc", "debian_version")):
        log(f"reusing the debootstrapped root {base}")
        return base
    partial = base + ".tmp"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(cache_dir, exist_ok=True)
    run(["debootstrap", "--variant=minbase", SUITE, partial, mirror])
    os.rename(partial, base)
    return base


class Root:
    """A copy of the base root with /proc, /dev and the apt package cache mounted; every
    mount is undone and the copy removed by close()."""

    def __init__(self, base, cache_dir, mirror, security_mirror):
        self.path = os.path.join(cache_dir, "root")
        self.mounts = []
        shutil.rmtree(self.path, ignore_errors=True)
        run(["cp", "-a", base, self.path])
        # What the image has and debootstrap's root lacks or has otherwise.
        sources_list = os.path.join(self.path, "etc/apt/sources.list")
        if os.path.exists(sources_list):
            os.remove(sources_list)
        with open(os.path.join(self.path, "etc/apt/sources.list.d/debian.sources"), "w",
                  encoding="utf-8") as f:
            f.write(SLIM_SOURCES.format(mirror=mirror, security=security_mirror))
        shutil.copyfile("/etc/resolv.conf", os.path.join(self.path, "etc/resolv.conf"))
        with open(os.path.join(self.path, "etc/hosts"), "w", encoding="utf-8") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        archives = os.path.join(cache_dir, "apt-archives")
        os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
        self._mount(["-t", "proc", "proc"], "proc")
        self._mount(["--bind", "/dev"], "dev")
        self._mount(["--bind", archives], "var/cache/apt/archives")

    def _mount(self, how, where):
        target = os.path.join(self.path, where)
        os.makedirs(target, exist_ok=True)
        run(["mount"] + how + [target])
        self.mounts.append(target)

    def close(self):
        for target in reversed(self.mounts):
            if subprocess.run(["umount", target]).returncode != 0:
                subprocess.run(["umount", "--lazy", target])
        self.mounts = []
        for target in ("proc", "dev", "var/cache/apt/archives"):
            if os.path.ismount(os.path.join(self.path, target)):
                raise CheckFailed(f"{target} is still mounted; not removing {self.path}")
        shutil.rmtree(self.path, ignore_errors=True)


class RuntimeImage:
    """What the runtime stage leaves behind besides the files: user, entrypoint, ..."""

    def __init__(self):
        self.env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "DEBIAN_FRONTEND": "noninteractive"}
        self.user = "0:0"
        self.workdir = "/"
        self.entrypoint, self.cmd, self.healthcheck = [], [], []
        self.exposed = []
        self.stop_signal = "SIGTERM"


def build_runtime_stage(root, stage, binaries):
    """Carries out the runtime stage's instructions in `root`."""
    image = RuntimeImage()
    if stage.base != "debian:bookworm-slim":
        raise CheckFailed(f"the runtime stage is FROM {stage.base}, not debian:bookworm-slim")
    for instruction in stage.instructions:
        keyword, words = instruction.keyword, None
        if keyword == "COPY":
            words = instruction.exec_form()
            sources, destination = words[:-1], words[-1]
            from_build = sources and sources[0] == "--from=build"
            if from_build:
                sources = sources[1:]
            if any(s.startswith("--") for s in sources):
                raise CheckFailed(f"line {instruction.line}: COPY option not emulated")
            for source in sources:
                if from_build:
                    name = os.path.basename(source)
                    if name not in binaries:
                        raise CheckFailed(f"line {instruction.line}: no built {name}")
                    origin = binaries[name]
                else:
                    origin = os.path.join(SOURCE_DIR, source)
                target = os.path.join(root.path, destination.lstrip("/"))
                if destination.endswith("/"):
                    os.makedirs(target, exist_ok=True)
                    target = os.path.join(target, os.path.basename(source))
                else:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(origin, target)  # keeps the mode, as COPY does
                log(f"COPY {origin} -> {destination}")
        elif keyword == "RUN":
            run(["chroot", root.path, "/bin/sh", "-c",
                 f"cd {shlex.quote(image.workdir)} && {instruction.args}"],
                env=image.env)
        elif keyword == "USER":
            image.user = instruction.args
        elif keyword == "WORKDIR":
            image.workdir = instruction.args
        elif keyword == "ENV":
            name, _, value = instruction.args.partition("=")
            image.env[name.strip()] = value.strip().strip('"')
        elif keyword == "EXPOSE":
            image.exposed = dockerfile.exposed_ports(stage)
        elif keyword == "HEALTHCHECK":
            cmd = instruction.args[instruction.args.index("CMD ") + 4:]
            image.healthcheck = json.loads(cmd)
        elif keyword == "ENTRYPOINT":
            image.entrypoint = instruction.exec_form()
        elif keyword == "CMD":
            image.cmd = instruction.exec_form()
        elif keyword == "STOPSIGNAL":
            image.stop_signal = instruction.args
        elif keyword not in ("LABEL",):
            raise CheckFailed(f"line {instruction.line}: {keyword} is not emulated here")
    return image


def packages(path):
    """The packages installed in the root at `path`."""
    return subprocess.run(["chroot", path, "dpkg-query", "-W", "-f=${Package}\\n"],
                          capture_output=True, text=True, check=True).stdout.split()


def number_after(text, key):
    at = text.find(key)
    if at < 0:
        return 0
    digits = ""
    for ch in text[at + len(key):]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply.decode(errors="replace")


def serve_and_check(root, image, actctl, work):
    uid, gid = image.user.split(":")
    if uid in ("0", "root"):
        raise CheckFailed("the image runs as root")
    # The image's command line, then loopback addresses on free ports for this run (the
    # last occurrence of a flag wins).
    argv = image.entrypoint + image.cmd + ["--address=127.0.0.1:0",
                                           "--metrics_address=127.0.0.1:0",
                                           "--http_address=127.0.0.1:0", "--threads=1"]
    log_path = os.path.join(work, "actserve.log")
    with open(log_path, "w", encoding="utf-8") as log_file:
        log("$ " + " ".join(["chroot", f"--userspec={uid}:{gid}", root.path] + argv))
        server = subprocess.Popen(["chroot", f"--userspec={uid}:{gid}", root.path] + argv,
                                  stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                  env={k: v for k, v in image.env.items()
                                       if k != "DEBIAN_FRONTEND"})
    try:
        port = metrics_port = 0
        for _ in range(POLL_ATTEMPTS):
            with open(log_path, encoding="utf-8") as f:
                text = f.read()
            port = number_after(text, "(port ")
            metrics_port = number_after(text, "metrics on port ")
            if (port and metrics_port) or server.poll() is not None:
                break
            time.sleep(POLL_INTERVAL_S)
        with open(log_path, encoding="utf-8") as f:
            text = f.read()
        if not port or not metrics_port:
            raise CheckFailed(f"actserve did not start in the root:\n{text}")
        log(f"actserve (pid {server.pid}) serves on port {port}, metrics on {metrics_port}")
        log("  " + text.strip().splitlines()[0])

        with open(f"/proc/{server.pid}/status", encoding="utf-8") as f:
            uid_line = next(l for l in f if l.startswith("Uid:"))
        if uid_line.split()[1:3] != [uid, uid]:
            raise CheckFailed(f"actserve runs as {uid_line.strip()}, not uid {uid}")
        log(f"actserve runs as uid {uid} (/proc/{server.pid}/status)")

        target = f"--target=127.0.0.1:{port}"
        health = None
        for _ in range(POLL_ATTEMPTS):
            health = subprocess.run([actctl, target, "--deadline=2s", "health"],
                                    capture_output=True, text=True)
            if health.returncode == 0:
                break
            time.sleep(POLL_INTERVAL_S)
        log(f"outside: actctl health -> exit {health.returncode}: {health.stdout.strip()}")
        if health.returncode != 0 or "SERVING" not in health.stdout:
            raise CheckFailed(f"actctl health failed: {health.stdout}{health.stderr}")

        compute = subprocess.run([actctl, target, "compute", "--activation=relu",
                                  "--values=-2,-0.5,0,1.5,3"], capture_output=True, text=True)
        log("outside: actctl compute --activation=relu --values=-2,-0.5,0,1.5,3 ->")
        for line in compute.stdout.strip().splitlines():
            log("  " + line)
        rows = [[float(c) for c in line.split("|")] for line in compute.stdout.splitlines()
                if line.count("|") == 2 and not line.strip().startswith("x")]
        if compute.returncode != 0 or rows != [[-2, 0, 0], [-0.5, 0, 0], [0, 0, 0],
                                               [1.5, 1.5, 1], [3, 3, 1]]:
            raise CheckFailed(f"compute: exit {compute.returncode}, rows {rows}\n"
                              f"{compute.stdout}{compute.stderr}")

        metrics = http_get(metrics_port, "/metrics")
        ok = [l for l in metrics.splitlines() if l.startswith("actserve_requests_total")]
        log(f"outside: GET /metrics -> {ok}")
        if 'actserve_requests_total{code="OK",method="Compute"} 1' not in metrics:
            raise CheckFailed(f"metrics do not count the call:\n{metrics[:2000]}")

        # The image's HEALTHCHECK, inside the root as the image's user, on this run's port.
        check = [a.replace("localhost:50051", f"localhost:{port}") for a in image.healthcheck]
        inside = subprocess.run(["chroot", f"--userspec={uid}:{gid}", root.path] + check,
                                capture_output=True, text=True, env=image.env)
        log(f"inside: HEALTHCHECK {' '.join(check)} -> exit {inside.returncode}: "
            f"{inside.stdout.strip()}")
        if inside.returncode != 0:
            raise CheckFailed(f"HEALTHCHECK failed in the root: {inside.stdout}{inside.stderr}")

        server.send_signal(getattr(signal, image.stop_signal))
        for _ in range(POLL_ATTEMPTS):
            if server.poll() is not None:
                break
            time.sleep(POLL_INTERVAL_S)
        log(f"{image.stop_signal}: actserve exited with {server.returncode}")
        if server.returncode != 0:
            with open(log_path, encoding="utf-8") as f:
                raise CheckFailed(f"actserve did not drain and exit 0:\n{f.read()}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True, help="holds server/actserve, client/actctl")
    parser.add_argument("--cache-dir", required=True,
                        help="the debootstrapped root and the downloaded packages stay here")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian")
    parser.add_argument("--security-mirror", default="http://deb.debian.org/debian-security")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("test-deploy: needs root (debootstrap, chroot, mount)", file=sys.stderr)
        return 2
    binaries = {"actserve": os.path.abspath(os.path.join(args.build_dir, "server/actserve")),
                "actctl": os.path.abspath(os.path.join(args.build_dir, "client/actctl"))}
    cache_dir = os.path.abspath(args.cache_dir)
    with open(os.path.join(SOURCE_DIR, "deploy/Dockerfile"), encoding="utf-8") as f:
        stage = dockerfile.stage(dockerfile.parse(f.read()), "runtime")

    root = None
    try:
        base = base_root(cache_dir, args.mirror)
        root = Root(base, cache_dir, args.mirror, args.security_mirror)
        image = build_runtime_stage(root, stage, binaries)
        added = sorted(set(packages(root.path)) - set(packages(base)))
        log(f"the runtime stage added {len(added)} packages: {' '.join(added)}")
        serve_and_check(root, image, binaries["actctl"], cache_dir)
    except (CheckFailed, subprocess.CalledProcessError) as error:
        log(f"FAIL: {error}")
        return 1
    finally:
        if root is not None:
            root.close()
    log("PASS: the runtime stage's packages run actserve and actctl as the non-root user")
    return 0


if __name__ == "__main__":
    sys.exit(main())
