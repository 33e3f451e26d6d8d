"""The Dockerfile's runtime stage installs every shared library the binaries link.

No Docker engine runs here, so this proves the runtime stage from its parts: the stage's
package list (what deploy/Dockerfile's runtime stage installs: `install-deps.sh
--runtime`, plus any package it names itself), and the Debian package (`dpkg -S`) of
every library that `ldd` finds for the built actserve and actctl. `make test-deploy`
then installs exactly that list into a debootstrapped bookworm root and serves from it.

Environment (set by ctest): ACTSERVE_SOURCE_DIR, ACTSERVE_BINARY, ACTCTL_BINARY.
"""

import os
import re
import subprocess
import unittest

import dockerfile

SOURCE_DIR = os.environ["ACTSERVE_SOURCE_DIR"]
BINARIES = {"actserve": os.environ["ACTSERVE_BINARY"],
            "actctl": os.environ["ACTCTL_BINARY"]}
INSTALL_DEPS = os.path.join(SOURCE_DIR, "deploy", "install-deps.sh")


def read(path):
    with open(os.path.join(SOURCE_DIR, path), encoding="utf-8") as f:
        return f.read()


def install_deps_list(mode):
    """`install-deps.sh <mode> --list`: the packages of that set."""
    out = subprocess.run([INSTALL_DEPS, mode, "--list"], check=True, capture_output=True,
                         text=True).stdout
    return out.split()


def runtime_stage_packages(stage):
    """Every package the runtime stage installs: install-deps.sh's runtime set when the
    stage runs it, and the words after `apt-get install` in its own RUN lines."""
    packages = []
    for instruction in stage.instructions:
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", instruction.args):
            words = command.split()
            program = [w for w in words[:2] if w not in ("bash", "sh")][:1]
            if program and program[0].endswith("install-deps.sh"):
                if "--runtime" not in words:
                    raise AssertionError(
                        f"line {instruction.line}: the runtime stage runs install-deps.sh "
                        f"without --runtime: {command.strip()!r}")
                packages += install_deps_list("--runtime")
            if len(words) > 2 and words[0] in ("apt-get", "apt") and "install" in words:
                after = words[words.index("install") + 1:]
                packages += [w for w in after if not w.startswith("-")]
    return packages


def linked_libraries(binary):
    """The absolute path of every shared library `ldd` resolves for `binary`, including
    the dynamic loader; AssertionError for a library it cannot find."""
    if not os.path.isfile(binary):
        raise AssertionError(f"{binary} is not built")
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            raise AssertionError(f"{binary}: ldd cannot find {line}")
        if "=>" in line:
            target = line.split("=>", 1)[1].split()
            if target and target[0].startswith("/"):
                paths.append(target[0])
        elif line.startswith("/"):
            paths.append(line.split()[0])  # the dynamic loader
        # else: linux-vdso.so.1, which the kernel provides
    return paths


def spellings(path):
    """Every name under which dpkg may have recorded `path`: with merged /usr, a package
    ships /usr/lib/... or /lib/... while ldd prints either."""
    names = []
    for p in (path, os.path.realpath(path)):
        names += [p, p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p]
    return list(dict.fromkeys(names))


def owning_packages(paths):
    """{path: the Debian package that installed it} for each of `paths` that one did.
    One dpkg -S call for all of them (it is slow to start)."""
    names = sorted({name for path in paths for name in spellings(path)})
    # Exit status 1 only says that some spellings are unknown, which is expected.
    out = subprocess.run(["dpkg", "-S"] + names, capture_output=True, text=True).stdout
    owner_of = {}
    for line in out.splitlines():
        # "libgrpc29:amd64: /usr/lib/x86_64-linux-gnu/libgrpc.so.29"
        packages, _, recorded = line.partition(": ")
        owner_of[recorded.strip()] = packages.split(",")[0].split(":")[0].strip()
    found = {}
    for path in paths:
        for name in spellings(path):
            if name in owner_of:
                found[path] = owner_of[name]
                break
    return found


class RuntimePackagesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stages = dockerfile.parse(read("deploy/Dockerfile"))
        cls.runtime = dockerfile.stage(cls.stages, "runtime")
        cls.packages = runtime_stage_packages(cls.runtime)

    def test_runtime_stage_is_bookworm_slim_and_installs_the_runtime_set(self):
        self.assertEqual(self.runtime.base, "debian:bookworm-slim")
        self.assertIn("libgrpc++1.51", self.packages)
        copies = [i.exec_form() for i in self.runtime.instructions if i.keyword == "COPY"]
        self.assertIn(["deploy/install-deps.sh", "/tmp/install-deps.sh"], copies,
                      "the runtime stage must copy the one package list in")

    def test_every_linked_library_comes_from_a_listed_package(self):
        missing = {}  # package -> libraries that need it
        for name, binary in BINARIES.items():
            libraries = linked_libraries(binary)
            self.assertTrue(libraries, f"{name}: ldd found no shared library")
            owners = owning_packages(libraries)
            for library in libraries:
                package = owners.get(library)
                self.assertIsNotNone(
                    package, f"{name} links {library}, which no Debian package installed "
                    "(built in this tree?); the image copies only the binaries")
                if package not in self.packages:
                    missing.setdefault(package, []).append(f"{name}: {library}")
        if missing:
            self.fail("add to runtime_packages in deploy/install-deps.sh: " + "; ".join(
                f"{package} (for {needs[0]}"
                f"{f' and {len(needs) - 1} more' if len(needs) > 1 else ''})"
                for package, needs in sorted(missing.items())))

    def test_every_listed_package_is_a_real_installed_package(self):
        # A misspelt name would only fail inside `docker build`; every runtime package is
        # a dependency of the -dev packages this machine builds with.
        self.assertEqual(len(self.packages), len(set(self.packages)), self.packages)
        for package in self.packages:
            status = subprocess.run(
                ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                text=True).stdout
            self.assertEqual(status, "install ok installed", package)

    def test_runtime_stage_copies_both_binaries_and_runs_them(self):
        copied = []
        for instruction in self.runtime.instructions:
            words = instruction.exec_form()
            if instruction.keyword == "COPY" and words and words[0] == "--from=build":
                self.assertEqual(words[-1], "/usr/local/bin/")
                copied += [os.path.basename(w) for w in words[1:-1]]
        self.assertEqual(sorted(copied), ["actctl", "actserve"])
        keywords = {i.keyword: i for i in self.runtime.instructions}
        entrypoint = keywords["ENTRYPOINT"].exec_form()
        self.assertEqual(entrypoint[0], "/usr/local/bin/actserve")
        self.assertIn("--address=0.0.0.0:50051", entrypoint)
        healthcheck = keywords["HEALTHCHECK"].args
        self.assertRegex(healthcheck, r"CMD \[\"/usr/local/bin/actctl\".*\"health\"\]")
        self.assertNotEqual(keywords["USER"].args.split(":")[0], "0")
        self.assertNotEqual(keywords["USER"].args.split(":")[0], "root")

    def test_build_stage_uses_install_deps_and_the_makefile_preset(self):
        build = dockerfile.stage(self.stages, "build")
        self.assertEqual(build.base, "debian:bookworm")
        runs = " && ".join(i.args for i in build.instructions if i.keyword == "RUN")
        self.assertIn("deploy/install-deps.sh --build", runs)
        makefile_preset = re.search(r"^PRESET \?= (\S+)$", read("Makefile"), re.MULTILINE)
        self.assertIsNotNone(makefile_preset)
        self.assertIn(f"cmake --preset {makefile_preset.group(1)}", runs)
        self.assertIn(f"cmake --build --preset {makefile_preset.group(1)}", runs)
        # The build set is a part of the full set that `make` installs.
        self.assertLessEqual(set(install_deps_list("--build")), set(install_deps_list("--list")))


if __name__ == "__main__":
    unittest.main()
