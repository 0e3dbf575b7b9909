"""The output file as other tools see it: test_output writes it from 2 MPI ranks (and
resumes it once), then h5py (Debian's python3-h5py) reads every value back, with the
shapes, dtypes and attribute types a user gets.  A second run is killed right after its
last flush: its PATH.partial must open and hold every flushed step.

The expected values mirror tests/test_output.c (val(), the arrays, the 4-step trajectory).
Run by ctest (NTK_BUILD_DIR and the MPI environment come from tests/CMakeLists.txt)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)


def val(tag, m, n):
    i = np.arange(m, dtype=np.float64)[:, None]
    j = np.arange(n, dtype=np.float64)[None, :]
    return tag * 1e6 + i * 1000.0 + j + 0.125


def check_matrix(f, name, expect):
    if name not in f:
        check(False, f"{name} missing")
        return
    d = f[name]
    check(d.dtype == np.dtype("<f8"), f"{name} dtype {d.dtype}")
    check(d.shape == expect.shape, f"{name} shape {d.shape} != {expect.shape}")
    if d.shape == expect.shape:
        bad = int(np.count_nonzero(d[()] != expect))
        check(bad == 0, f"{name}: {bad} entries differ")


def run(args, expect_ok=True):
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    exe = os.path.join(os.environ["NTK_BUILD_DIR"], "tests", "test_output")
    cmd = [mpirun, "-np", "2", exe] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=H.limit(600))
    if expect_ok:
        check(p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def check_trajectory(f, T):
    traj = f["trajectory"]
    for name, tail in (("step", ()), ("loss", ()), ("eigenvalues", (4,)), ("ntk", (7, 5))):
        d = traj[name]
        check(d.shape == (T,) + tail, f"trajectory/{name} shape {d.shape}")
        check(d.maxshape == (None,) + tail, f"trajectory/{name} maxshape {d.maxshape}")
    check(traj["step"].dtype == np.dtype("<i8"), f"step dtype {traj['step'].dtype}")
    check(np.array_equal(traj["step"][:T], 10 * np.arange(T)), f"steps {traj['step'][:]}")
    check(np.array_equal(traj["loss"][:T], 0.5 ** np.arange(T)), f"loss {traj['loss'][:]}")
    ev = 100.0 - 10.0 * np.arange(T)[:, None] - np.arange(4)[None, :]
    check(np.array_equal(traj["eigenvalues"][:T], ev), "eigenvalues")
    check(traj["ntk"].chunks == (1, 7, 5), f"ntk chunks {traj['ntk'].chunks}")
    for t in range(T):
        check(np.array_equal(traj["ntk"][t], val(20 + t, 7, 5)), f"trajectory/ntk[{t}]")


def check_main(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        check(a["format"] == "ntkspec", f"format {a['format']!r}")
        check(isinstance(a["status"], str), f"status attribute type {type(a['status'])}")
        check(a["status"] == "interrupted", f"status {a['status']!r}")
        check(int(a["format_version"]) == 1, f"format_version {a['format_version']!r}")
        check(re.fullmatch(r"\d+\.\d+\.\d+", a["version"]) is not None, f"version {a['version']!r}")
        cfg = "".join(f"key_{k:05d}: value\n" for k in range(5000))
        check(a["config"] == cfg, "config text")
        check(int(a["mpi_size"]) == 2, f"mpi_size {a['mpi_size']!r}")
        check(float(a["seed"]) == 0.1, f"seed {a['seed']!r}")
        check(f["analytic"].attrs["kind"] == "test", "analytic kind")
        check(int(f["analytic"].attrs["n"]) == 7, "analytic n")

        check_matrix(f, "analytic/ntk", val(1, 7, 5))
        check_matrix(f, "analytic/nngp", val(2, 5, 7))
        check_matrix(f, "small", val(3, 2, 3))
        check_matrix(f, "big", val(4, 23, 17))
        check_matrix(f, "big2", val(9, 23, 17))
        check_matrix(f, "data/x_train", val(5, 9, 1))
        check_matrix(f, "vec", val(6, 1, 9))
        check_matrix(f, "re", val(8, 7, 5))
        check_matrix(f, "params/step_0/W", np.stack([val(10 + l, 7, 5) for l in range(3)]))
        check_matrix(f, "params/step_0/b", np.arange(6.0).reshape(2, 3) + 0.5)
        check_matrix(f, "arr1", np.array([1.5, -2.25, 1e300, 0.0]))
        ints = f["ints"]
        check(ints.dtype == np.dtype("<i8"), f"ints dtype {ints.dtype}")
        check(np.array_equal(ints[()], [0, -7, 1 << 40, 42, -(1 << 50)]), f"ints {ints[()]}")
        names = [s.decode() for s in f["names"][()]]
        check(names == ["alpha", "b", "gamma delta"], f"names {names}")

        t = f["timing"]
        check([s.decode() for s in t["phase"][()]] == ["setup", "forward", "total"], "phases")
        check(np.array_equal(t["min"][()], [0.5, 1.0, 1.5]), "timing min")
        check(np.array_equal(t["avg"][()], [1, 2, 3]), "timing avg")
        check(np.array_equal(t["max"][()], [2, 3, 4]), "timing max")
        check(np.array_equal(t["flops"][()], [0, 1e9, 2e9]), "timing flops")
        check(np.array_equal(t["calls"][()], [1, 2, 3]), "timing calls")

        check_trajectory(f, 4)
        top = ["analytic", "arr1", "big", "big2", "data", "ints", "names", "params", "re",
               "small", "timing", "trajectory", "vec"]
        check(sorted(f.keys()) == top, f"top level {sorted(f.keys())}")


def main():
    with tempfile.TemporaryDirectory(prefix="ntk_output_py_") as tmp:
        keep = os.path.join(tmp, "keep.h5")
        run(["2", "1", "3", "--keep", keep])
        check(os.path.exists(keep) and not os.path.exists(keep + ".partial"), "kept file")
        if os.path.exists(keep):
            check_main(keep)

        crash = os.path.join(tmp, "crash.h5")
        p = run(["1", "2", "2", "--crash", crash], expect_ok=False)
        check(p.returncode != 0, "the crash run must die")
        check(not os.path.exists(crash), "a killed run must not leave a complete-looking file")
        check(os.path.exists(crash + ".partial"), "a killed run leaves its .partial")
        if os.path.exists(crash + ".partial"):
            with h5py.File(crash + ".partial", "r") as f:
                check(f.attrs["status"] == "running", f"crash status {f.attrs['status']!r}")
                # the 4th step was not flushed: it may or may not have reached the disk
                T = f["trajectory/step"].shape[0]
                check(T in (3, 4), f"crash file has {T} steps")
                check_trajectory(f, 3 if T == 3 else 4)

    print(f"test_output_read: {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
