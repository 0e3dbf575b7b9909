"""Shared helpers for the Python end-to-end tests: run ntkspec under mpirun.

The ctest harness sets NTKSPEC (the binary) and the Open MPI variables needed as root and
for 4 ranks on 2 cores; nothing here changes a user's environment."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

NTKSPEC = os.environ.get("NTKSPEC") or os.path.join(
    os.environ.get("NTK_BUILD_DIR", "build"), "ntkspec")
SOURCE_DIR = os.environ.get("NTK_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# ctest's NTK_TIMEOUT_SCALE (tests/CMakeLists.txt, 15 by default): the limits the tests write
# are for a scale of 10 and grow in proportion.
_SCALE = float(os.environ.get("NTK_TIMEOUT_SCALE") or 15) / 10


def limit(seconds):
    """A time limit that only catches a hang: `seconds` (chosen many times what the step
    takes on two quiet cores, so that a busy machine or the sanitizer build stays far
    inside it), scaled with NTK_TIMEOUT_SCALE.  Never a check of speed."""
    return seconds * _SCALE


def run(args, np=1, timeout=600, check=False):
    """Run `ntkspec ARGS` on np ranks; returns CompletedProcess (text).  `timeout` is
    passed through limit()."""
    cmd = ["mpirun", "-q", "-np", str(np), NTKSPEC] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=limit(timeout), stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def run_cfg(report, folder, name, text, np_=2, extra=(), expect=0):
    """Write `text` as FOLDER/NAME.yaml and run it to FOLDER/NAME.h5 (overwritten) on np_
    ranks, quietly; checks the exit status `expect` in `report` and prints the time taken.
    Returns (config path, output path, CompletedProcess)."""
    import time
    cfg = write_config(folder, name + ".yaml", text)
    path = os.path.join(folder, name + ".h5")
    t0 = time.time()
    p = run(["run", cfg, "-q", "--set", "output.path=" + path, "--set", "output.overwrite=true"]
            + list(extra), np=np_)
    report.check(p.returncode == expect, "%s: exit status %d, expected %d: %s"
                 % (name, p.returncode, expect, p.stderr[-2000:]))
    print("   %s (%d ranks): %.1f s" % (name, np_, time.time() - t0), flush=True)
    return cfg, path, p


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
        global _any_failed
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            _any_failed = True
            print("FAIL:", what, flush=True)

    def one_error_line(self, p, words, what):
        """A refusal as the standards want it: exit status 2, one line `ntkspec: error: ...`
        on stderr, naming each of `words`."""
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.check(p.returncode == 2, "%s: exit status %d, expected 2: %s" % (what, p.returncode, p.stderr[-600:]))
        self.check(len(lines) == 1 and lines[0].startswith("ntkspec: error:"),
                   "%s: one error line, got %r" % (what, lines[-5:]))
        for w in words:
            self.check(w in p.stderr, "%s: message names %r: %s" % (what, w, p.stderr.strip()[-400:]))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


_scratch = []
_any_failed = False  # a failed Report.check in this process


def _remove_scratch():
    keep = _any_failed or hasattr(sys, "last_value") or os.environ.get("NTK_KEEP_TMP")
    for d in _scratch:
        if keep:
            print("scratch folder kept:", d, file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


def tmpdir():
    """A scratch folder, removed when the test exits; kept (and its path printed) after a
    failed check or an uncaught exception, or with NTK_KEEP_TMP=1, for a look at its files."""
    if not _scratch:
        atexit.register(_remove_scratch)
    _scratch.append(tempfile.mkdtemp(prefix="ntkspec-test-"))
    return _scratch[-1]


def section(name, only=None):
    """Whether to run the test script's section `name`: every section when the script got
    no arguments, else only those it names (`test_x.py kill disk`); prints a header."""
    only = sys.argv[1:] if only is None else only
    run = not only or name in only
    if run:
        print("--", name, flush=True)
    return run


def compact_too_small(path, name):
    """Damage dataset `name` of the HDF5 file `path` the way fuzz_hdf5 found: rewrite it
    with compact layout, then set the size its layout message records to 0, so the object
    header claims fewer stored bytes than the shape needs (HDF5 1.10's H5Dread then reads
    out of bounds).  Returns the dataset's values before the damage."""
    import h5py
    import numpy as np
    with h5py.File(path, "a") as f:
        values = f[name][()]
        del f[name]
        data = np.ascontiguousarray(values)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple(data.shape)
        ds = h5py.h5d.create(f.id, name.encode(), h5py.h5t.py_create(data.dtype), space, dcpl=dcpl)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, data)
        ds.close()
    raw = bytearray(open(path, "rb").read())
    payload = data.tobytes()
    # layout message version 3: version, class (0 = compact), 16-bit size, then the values;
    # HDF5 may leave a stale copy of a moved object header, so every match is patched
    head = b"\x03\x00" + len(payload).to_bytes(2, "little")
    hits = [i for i in range(len(raw)) if raw.startswith(head + payload, i)]
    if not hits:
        raise AssertionError("%s: cannot find the compact layout message of %s" % (path, name))
    for i in hits:
        raw[i + 2:i + 4] = b"\x00\x00"
    open(path, "wb").write(raw)
    return values
