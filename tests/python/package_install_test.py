"""The Python package installs and works on its own: a fresh virtual environment of
Debian's interpreter (``--system-site-packages``, for python3-grpcio, -protobuf, -numpy),
``pip install --no-index --no-build-isolation`` of the package the build assembled
(``<build>/python``: pyproject.toml with setuptools as the backend, the sources, the
generated wire code and catalogue), then ``import actserve`` and one real call against
the real server, with no PYTHONPATH anywhere.

ctest sets ACTSERVE_PYTHON_PACKAGE (the assembled package) and ACTSERVE_BINARY.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Runs in the virtual environment: the package must come from there, and only
# server_process (which starts the server) from this directory.
_CHECK = textwrap.dedent("""
    import os, sys
    import actserve
    import actserve.v1.activation_pb2 as generated
    venv = os.path.realpath(sys.prefix)
    for module in (actserve, generated):
        path = os.path.realpath(module.__file__)
        assert path.startswith(venv + os.sep), f"{module.__name__} from {path}, not {venv}"
    sys.path.append(sys.argv[1])
    import numpy as np
    from server_process import ServerProcess
    with ServerProcess() as server, actserve.Client(server.target, timeout=30) as client:
        result = client.compute(np.array([-2.0, 0.5]), "leaky_relu(negative_slope=0.25)")
        assert result.output.tolist() == [-0.5, 0.5], result.output
        assert result.grad_input.tolist() == [0.25, 1.0], result.grad_input
        try:
            actserve.parse_activation("softplus(beta=0)")
        except actserve.Error as error:
            assert error.message == "softplus: beta must be nonzero, got 0", error.message
        else:
            raise AssertionError("softplus(beta=0) parsed")
        print("installed", actserve.__file__, client.health())
""")


def _clean_environment():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


class PackageInstallTest(unittest.TestCase):
    def setUp(self):
        self.package = os.environ.get("ACTSERVE_PYTHON_PACKAGE")
        if not self.package or not os.path.isfile(os.path.join(self.package, "pyproject.toml")):
            self.fail("set ACTSERVE_PYTHON_PACKAGE to the assembled package, <build>/python "
                      "(ctest does)")
        self.work = tempfile.mkdtemp(prefix="actserve-pip-")
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)

    def run_checked(self, *command, cwd=None):
        done = subprocess.run(command, cwd=cwd or self.work, env=_clean_environment(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=240)
        self.assertEqual(done.returncode, 0, f"{' '.join(command)}:\n{done.stdout}\n"
                                             f"{done.stderr}")
        return done.stdout

    def test_pip_install_into_a_fresh_venv_then_a_real_call(self):
        # pip builds in the source directory: build a copy, so the build tree stays as is.
        source = os.path.join(self.work, "actserve-package")
        shutil.copytree(self.package, source,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        venv = os.path.join(self.work, "venv")
        self.run_checked("/usr/bin/python3", "-m", "venv", "--system-site-packages", venv)
        python = os.path.join(venv, "bin", "python")
        self.run_checked(python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                         "--no-cache-dir", source)
        listed = self.run_checked(python, "-m", "pip", "show", "actserve")
        self.assertIn("Name: actserve", listed)
        # From a directory with no actserve in it, so that only the installed one exists.
        output = self.run_checked(python, "-c", _CHECK, TESTS_DIR, cwd=self.work)
        self.assertIn("installed " + os.path.realpath(venv), output.replace(
            venv, os.path.realpath(venv)))
        self.assertTrue(output.strip().endswith("SERVING"), output)


if __name__ == "__main__":
    unittest.main()
