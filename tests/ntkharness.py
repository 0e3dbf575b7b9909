"""Shared helpers for the Python end-to-end tests: run ntkspec under mpirun.

The ctest harness sets NTKSPEC (the binary) and the Open MPI variables needed as root and
for 4 ranks on 2 cores; nothing here changes a user's environment."""
import os
import subprocess
import sys
import tempfile

NTKSPEC = os.environ.get("NTKSPEC") or os.path.join(
    os.environ.get("NTK_BUILD_DIR", "build"), "ntkspec")
SOURCE_DIR = os.environ.get("NTK_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(args, np=1, timeout=600, check=False):
    """Run `ntkspec ARGS` on np ranks; returns CompletedProcess (text)."""
    cmd = ["mpirun", "-q", "-np", str(np), NTKSPEC] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def write_config(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class Report:
    """Counts checks and prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


def tmpdir():
    return tempfile.mkdtemp(prefix="ntkspec-test-")


def section(name, only=None):
    """Whether to run the test script's section `name`: every section when the script got
    no arguments, else only those it names (`test_x.py kill disk`); prints a header."""
    only = sys.argv[1:] if only is None else only
    run = not only or name in only
    if run:
        print("--", name, flush=True)
    return run
