"""tools/ntkspec-plot end to end.

Runs the plot tool on the real quickstart output (`ntkspec run configs/quickstart.yaml` on 2
ranks), on a training trajectory (synthetic file with the names the trainer writes, and a
partial one with ragged rows as a killed run leaves it), on a sweep file (synthetic
n^-1/2 data, and a real `ntkspec sweep` when the command works), and on a scaling report
(CSV).  Each PNG must exist, have the documented pixel size and not be blank: it has
coloured (data) pixels, not only the grey/black frame, text and note boxes.  Bad inputs
exit with status 2 and one line.  The pictures in docs/images are small and the README's
quick start shows one."""
import csv
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

TOOL = os.path.join(H.SOURCE_DIR, "tools", "ntkspec-plot")
RUN_FIGURES = {"spectrum.png": (640, 400), "eigenvalue_trajectories.png": (960, 400),
               "drift_condition.png": (960, 400), "loss.png": (640, 400),
               "layer_contributions.png": (640, 400)}


# ------------------------------------------------------------- synthetic files --

def _common_attrs(f, status):
    f.attrs["format"] = "ntkspec"
    f.attrs["format_version"] = np.int64(1)
    f.attrs["version"] = "0.1.0"
    f.attrs["status"] = status
    f.attrs["config"] = ("seed: 1\nmodel:\n  width: 256\n  depth: 3\n  activation: relu\n"
                         "data:\n  source: synthetic_1d\n  n_train: 64\n  n_test: 16\n"
                         "train:\n  steps: 1000\n  optimizer: gd\n  lr: 0.0\n  lr_scale: 0.5\n")
    f.attrs["command_line"] = "ntkspec run synthetic.yaml"
    f.attrs["mpi_size"] = np.int64(2)
    f.attrs["process_grid"] = "2x1"


def training_series(T=11, N=64, L=3):
    """A plausible kernel-regime trajectory: slowly drifting spectrum, decaying losses."""
    steps = np.array([0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000][:T], dtype=np.int64)
    t = steps.astype(float)
    i = np.arange(1, N + 1)
    lam0 = 100.0 * i ** -1.5
    grow = 0.05 * (1 - np.exp(-t / 200.0))
    eig = lam0[None, :] * (1 + grow[:, None] * np.linspace(1, 0.2, N)[None, :])
    s = {"step": steps, "eigenvalues": eig}
    s["lambda_max"] = eig[:, 0]
    s["lambda_min"] = eig[:, -1]
    s["condition_number"] = eig[:, 0] / eig[:, -1]
    s["effective_rank"] = eig.sum(1) ** 2 / (eig ** 2).sum(1)
    s["trace"] = eig.sum(1)
    s["drift"] = 0.04 * (1 - np.exp(-t / 300.0))
    s["eigenvalue_drift"] = np.abs(eig - eig[0]).max(1) / eig[0, 0]
    s["kernel_target_alignment"] = 0.3 + 0.05 * (1 - np.exp(-t / 200.0))
    s["train_loss"] = 0.5 * np.exp(-t / 150.0) + 1e-4
    s["predicted_train_loss"] = 0.5 * np.exp(-t / 140.0) + 1e-4
    s["test_loss"] = 0.6 * np.exp(-t / 200.0) + 2e-2
    s["weyl_ok"] = np.ones(T, dtype=np.int64)
    lt = np.tile(np.array([0.0, 30.0, 4, 4, 4, 50.0])[None, :], (T, 1))
    lt[:, -1] *= 1 + grow
    s["layer_trace"] = lt[:, : L + 3] if L + 3 <= 6 else lt
    return s


def write_training_file(path, status="complete", rows=None):
    """A run file with a training trajectory.  rows: {name: n} cuts datasets short, as a
    run killed between appends leaves them."""
    s = training_series()
    with h5py.File(path, "w") as f:
        _common_attrs(f, status)
        for name, v in s.items():
            n = (rows or {}).get(name, (rows or {}).get("*", len(v)))
            v = v[:n]
            f.create_dataset("trajectory/" + name, data=v, maxshape=(None,) + v.shape[1:],
                             chunks=(1,) + v.shape[1:])
    return s


def write_sweep_file(path, widths=(64, 128, 256, 512, 1024), seeds=4, rng_seed=7):
    """Distances following c n^-1/2 with multiplicative noise; slope and 95% CI fitted here."""
    rng = np.random.default_rng(rng_seed)
    w = np.array(widths, dtype=np.int64)
    dist = 2.0 * w[:, None] ** -0.5 * np.exp(0.05 * rng.standard_normal((len(w), seeds)))
    x = np.repeat(np.log(w), seeds)
    y = np.log(dist.reshape(-1))
    slope, icpt = np.polyfit(x, y, 1)
    res = y - (slope * x + icpt)
    se = np.sqrt(res @ res / (len(x) - 2) / np.sum((x - x.mean()) ** 2))
    with h5py.File(path, "w") as f:
        _common_attrs(f, "complete")
        g = f.create_group("sweep")
        g["widths"] = w
        g["seeds"] = np.arange(seeds, dtype=np.int64)
        g["distance"] = dist
        g["distance_mean"] = dist.mean(1)
        g["eigenvalue_error"] = 0.5 * dist
        g.attrs["slope"] = slope
        g.attrs["slope_ci_low"] = slope - 2.0 * se
        g.attrs["slope_ci_high"] = slope + 2.0 * se
        g.attrs["top_k"] = np.int64(8)
    return slope


SCALING_HEADER = ("ranks,nodes,N,n,L,time_total,time_forward,time_backward,time_gram,time_hadamard,"
                  "time_eigensolve,time_output,time_comm_wait,speedup,efficiency,gflops_per_rank")


def write_scaling_csv(path):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SCALING_HEADER.split(","))
        t1 = 100.0
        for p in [1, 2, 4, 8, 16]:
            eff = 1.0 / (1 + 0.04 * np.log2(p))
            tt = t1 / p / eff
            w.writerow([p, max(1, p // 8), 4096, 4096, 4, "%.4f" % tt, "%.4f" % (0.2 * tt), "%.4f" % (0.2 * tt),
                        "%.4f" % (0.3 * tt), "%.4f" % (0.02 * tt), "%.4f" % (0.2 * tt), "%.4f" % (0.03 * tt),
                        "%.4f" % (0.05 * tt * np.log2(2 * p)), "%.4f" % (t1 / tt), "%.4f" % eff, "%.3f" % (5 * eff)])


# ------------------------------------------------------------------- checks --

def plot(args):
    return subprocess.run(["/usr/bin/python3", TOOL] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=H.limit(600), stdin=subprocess.DEVNULL)


def png_stats(path):
    """(width, height, coloured pixels, distinct colours)."""
    import matplotlib.image as mpimg
    a = mpimg.imread(path)[:, :, :3]
    h, w = a.shape[:2]
    chroma = a.max(2) - a.min(2)
    coloured = int(np.sum(chroma > 0.25))  # data lines, markers, bars; not text, frames, notes
    distinct = len(np.unique((a * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    return w, h, coloured, distinct


def check_pngs(R, outdir, expected, what, scale=1.0):
    for name, (w, h) in expected.items():
        p = os.path.join(outdir, name)
        if not os.path.exists(p):
            R.check(False, "%s: %s written" % (what, name))
            continue
        pw, ph, coloured, distinct = png_stats(p)
        R.check((pw, ph) == (round(w * scale), round(h * scale)),
                "%s: %s is %dx%d, expected %dx%d" % (what, name, pw, ph, round(w * scale), round(h * scale)))
        R.check(coloured > 150 * scale * scale and distinct > 30,
                "%s: %s not blank (%d coloured pixels, %d colours)" % (what, name, coloured, distinct))


def one_error_line(p):
    lines = p.stderr.strip().splitlines()
    return p.returncode == 2 and len(lines) == 1 and lines[0].startswith("ntkspec-plot: error: ")


def main():
    R = H.Report()
    tmp = H.tmpdir()

    # 1. the quickstart (2 ranks): its training shortened to 20 steps to keep the test
    #    quick (the trajectory keeps its log-spaced measurements), and without training
    #    (one measurement: spectrum, and notes instead of empty trajectory panels)
    quick = os.path.join(H.SOURCE_DIR, "configs", "quickstart.yaml")
    qs = os.path.join(tmp, "quickstart.h5")
    p = H.run(["run", quick, "--set", "output.path=" + qs, "--set", "train.steps=20", "-q"], np=2)
    R.check(p.returncode == 0, "quickstart run: %s" % p.stderr)
    if p.returncode == 0:
        with h5py.File(qs, "r") as f:
            T = f["trajectory/step"].shape[0]
        out = os.path.join(tmp, "qs_png")
        q = plot([qs, "-o", out])
        R.check(q.returncode == 0, "plot quickstart (%d measurements): %s" % (T, q.stderr))
        R.check(sorted(os.path.basename(x) for x in q.stdout.split()) == sorted(RUN_FIGURES),
                "plot prints the files it wrote: %r" % q.stdout)
        check_pngs(R, out, RUN_FIGURES, "quickstart")
        # the pixel size follows --dpi
        out50 = os.path.join(tmp, "qs_png50")
        q = plot([qs, "-o", out50, "--dpi", "50", "--top", "3"])
        R.check(q.returncode == 0, "plot --dpi 50: %s" % q.stderr)
        check_pngs(R, out50, {"spectrum.png": (640, 400)}, "quickstart dpi 50", scale=0.5)
    qs1 = os.path.join(tmp, "quickstart_step0.h5")
    p1 = H.run(["run", quick, "--set", "output.path=" + qs1, "--set", "train.steps=0", "-q"], np=2)
    R.check(p1.returncode == 0, "quickstart run without training: %s" % p1.stderr)
    if p1.returncode == 0:
        out = os.path.join(tmp, "qs1_png")
        q = plot([qs1, "-o", out])
        R.check(q.returncode == 0, "plot a single-step file: %s" % q.stderr)
        check_pngs(R, out, RUN_FIGURES, "single step")

    # 2. a training trajectory, complete and partial (ragged rows of a killed run)
    for status, rows in [("complete", None), ("running", {"*": 6, "train_loss": 5, "layer_trace": 5})]:
        path = os.path.join(tmp, "train_%s.h5" % status)
        write_training_file(path, status, rows)
        out = os.path.join(tmp, "train_png_" + status)
        q = plot([path, "-o", out])
        R.check(q.returncode == 0, "plot training file (%s): %s" % (status, q.stderr))
        check_pngs(R, out, RUN_FIGURES, "training " + status)
    # a trajectory with more lines draws more data than a single step
    if p1.returncode == 0:
        c1 = png_stats(os.path.join(tmp, "qs1_png", "loss.png"))[2]
        c2 = png_stats(os.path.join(tmp, "train_png_complete", "loss.png"))[2]
        R.check(c2 > c1, "training loss panel has more data pixels than one step (%d > %d)" % (c2, c1))

    # 3. sweeps: synthetic n^-1/2 data, and the real command when it works
    sw = os.path.join(tmp, "sweep.h5")
    write_sweep_file(sw)
    out = os.path.join(tmp, "sweep_png")
    q = plot(["--sweep", sw, "-o", out])
    R.check(q.returncode == 0, "plot --sweep: %s" % q.stderr)
    check_pngs(R, out, {"distance_vs_width.png": (960, 400)}, "sweep")
    q = plot(["--sweep", qs, "-o", out])
    R.check(one_error_line(q) and "not a sweep file" in q.stderr, "--sweep on a run file: %s" % q.stderr)

    cfg = H.write_config(tmp, "sweep.yaml", "seed: 3\nmodel: {width: 32, depth: 2, activation: relu}\n"
                         "fourier: {features: 8, scale: 0.5}\ndata: {source: sphere, n_train: 32, dim: 3}\n"
                         "grid: {block_size: 8}\noutput: {save_data: false}\n")
    real = os.path.join(tmp, "real_sweep.h5")
    p = H.run(["sweep", cfg, "--widths", "32,64,128,256", "--seeds", "2", "--top-k", "4",
               "--set", "output.path=" + real, "-q"], np=2)
    if "unknown command" in p.stderr:
        print("note: ntkspec sweep not available; real sweep skipped")
    else:
        R.check(p.returncode == 0, "real sweep: %s" % p.stderr)
        if p.returncode == 0:
            out = os.path.join(tmp, "real_sweep_png")
            q = plot(["--sweep", real, "-o", out])
            R.check(q.returncode == 0, "plot real sweep: %s" % q.stderr)
            check_pngs(R, out, {"distance_vs_width.png": (960, 400)}, "real sweep")

    # 3b. a SLURM-style sweep: one run file per width and seed (jobs/sweep_task.sbatch)
    members = []
    for width in (32, 128):
        for seed in (1, 2):
            path = os.path.join(tmp, "member_w%d_s%d.h5" % (width, seed))
            p = H.run(["run", cfg, "--set", "model.width=%d" % width, "--set", "seed=%d" % seed,
                       "--set", "analytic.enabled=true", "--set", "output.save_ntk=true",
                       "--set", "output.path=" + path, "-q"], np=1)
            R.check(p.returncode == 0, "sweep member run: %s" % p.stderr)
            members.append(path)
    out = os.path.join(tmp, "members_png")
    q = plot(["--sweep"] + members + ["-o", out])
    R.check(q.returncode == 0, "plot --sweep on run files: %s" % q.stderr)
    check_pngs(R, out, {"distance_vs_width.png": (960, 400)}, "sweep from run files")
    q = plot(["--sweep", members[0], "-o", out])
    R.check(one_error_line(q) and "at least two widths" in q.stderr, "one member is not a sweep: %s" % q.stderr)
    q = plot([members[0], members[1], "-o", out])
    R.check(one_error_line(q) and "one input file" in q.stderr, "several run files without --sweep: %s" % q.stderr)

    # 4. scaling report
    csvp = os.path.join(tmp, "scaling.csv")
    write_scaling_csv(csvp)
    out = os.path.join(tmp, "scaling_png")
    q = plot(["--scaling", csvp, "-o", out])
    R.check(q.returncode == 0, "plot --scaling: %s" % q.stderr)
    check_pngs(R, out, {"scaling.png": (1280, 400)}, "scaling")

    # 5. bad input: one line, status 2
    bad_csv = H.write_config(tmp, "bad.csv", "procs,seconds\n1,2\n")
    notntk = os.path.join(tmp, "plain.h5")
    with h5py.File(notntk, "w") as f:
        f["x"] = np.arange(3.0)
    textfile = H.write_config(tmp, "text.h5", "not hdf5\n")
    for args, words in [([os.path.join(tmp, "missing.h5"), "-o", tmp], "no such file"),
                        ([notntk, "-o", tmp], "not an ntkspec file (no format attribute)"),
                        ([textfile, "-o", tmp], "not an ntkspec file"),
                        (["--scaling", bad_csv, "-o", tmp], "not a scaling report"),
                        (["--scaling", os.path.join(tmp, "none.csv"), "-o", tmp], "no such file")]:
        q = plot(args)
        R.check(one_error_line(q) and words in q.stderr, "%s -> status 2, one line with %r: %d %r"
                % (args[:2], words, q.returncode, q.stderr))

    # 6. the shipped pictures: small, the documented size, and the README shows one
    img_dir = os.path.join(H.SOURCE_DIR, "docs", "images")
    pngs = sorted(x for x in os.listdir(img_dir) if x.endswith(".png")) if os.path.isdir(img_dir) else []
    R.check(len(pngs) >= 3, "docs/images has the pictures (%s)" % pngs)
    for name in pngs:
        path = os.path.join(img_dir, name)
        R.check(os.path.getsize(path) < 200 * 1024, "docs/images/%s under 200 KB" % name)
        w, h, coloured, distinct = png_stats(path)
        R.check(coloured > 150 and distinct > 30, "docs/images/%s not blank" % name)
    readme = open(os.path.join(H.SOURCE_DIR, "README.md")).read()
    quick = readme.split("## Quick start", 1)[-1].split("\n## ", 1)[0]
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", quick)
    R.check(len(shown) >= 1, "README quick start shows a picture")
    for s in shown:
        R.check(os.path.exists(os.path.join(H.SOURCE_DIR, s)), "README picture %s exists" % s)
    guide = open(os.path.join(H.SOURCE_DIR, "docs", "GUIDE.md")).read() \
        if os.path.exists(os.path.join(H.SOURCE_DIR, "docs", "GUIDE.md")) else ""
    for s in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", guide):
        R.check(os.path.exists(os.path.join(H.SOURCE_DIR, "docs", s)), "GUIDE picture %s exists" % s)
    R.check("docs/GUIDE.md" in readme, "README links the guide")
    status = R.finish()
    if status == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
