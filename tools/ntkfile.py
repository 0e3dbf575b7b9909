"""Small readers for ntkspec result files shared by the tools in this folder (Debian's
python3-h5py and python3-yaml).

The names of the file come from ntk_schema.json beside this file: `ntkspec schema` prints
it from the C table the writer uses (src/io/ntk_schema.c), and the test output_schema
checks that the committed copy equals it."""
import json
import os
import re

import h5py
import yaml

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ntk_schema.json")
_schema = None


def schema():
    """The file format's names (ntk_schema.json) as a dict."""
    global _schema
    if _schema is None:
        with open(SCHEMA_FILE) as f:
            _schema = json.load(f)
    return _schema


def trajectory_names():
    """The /trajectory series in the order a measurement appends them."""
    return [s["name"] for s in schema()["trajectory"]]


def dataset(name):
    """'/GROUP/NAME' for a dataset name ntkspec writes ('trajectory/eigenvalues',
    '/analytic/ntk', 'params/step_0/W'); KeyError for any other, so a renamed dataset fails
    the tools' tests instead of reading as absent."""
    n = name.strip("/")
    group, _, leaf = n.rpartition("/")
    sch = schema()
    if group == "trajectory":
        ok = leaf in trajectory_names()
    else:
        ok = any(g["items"] == "datasets" and leaf in g["names"] and
                 re.fullmatch(re.escape(g["group"].strip("/")).replace(re.escape("<t>"), "[0-9]+"), group)
                 for g in sch["groups"])
    if not ok:
        raise KeyError("%s is not a dataset of the ntkspec file format (%s)" % (name, SCHEMA_FILE))
    return "/" + n


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def parse_config(text):
    """An effective configuration (YAML text) as {'section.key': value}, values as YAML reads
    them (int, float, bool, str, list).  The one reader of stored configurations in tools/:
    the C side has ntk_config_from_text."""
    doc = yaml.safe_load(text or "") or {}
    if not isinstance(doc, dict):
        raise ValueError("the stored configuration is not a mapping of keys")
    out = {}

    def walk(d, prefix):
        for k, v in d.items():
            name = prefix + str(k)
            if isinstance(v, dict):
                walk(v, name + ".")
            else:
                out[name] = v
    walk(doc, "")
    return out


def effective_config(f):
    """The root `config` attribute of a result file (the effective YAML ntkspec writes) as
    {'section.key': value} (parse_config)."""
    return parse_config(_text(f.attrs.get("config", "")))


def timing(f):
    """{phase: {'min', 'avg', 'max', 'flops', 'calls'}} from /timing (empty if absent)."""
    if "timing" not in f:
        return {}
    t = f["timing"]
    names = [_text(x) for x in t["phase"][()]]
    cols = {c: t[c][()] for c in ("min", "avg", "max", "flops") if c in t}
    calls = t["calls"][()] if "calls" in t else [0] * len(names)
    return {n: dict({c: float(v[i]) for c, v in cols.items()}, calls=int(calls[i]))
            for i, n in enumerate(names)}


def attr(f, name, default=None):
    v = f.attrs.get(name, default)
    return _text(v) if isinstance(v, (bytes, str)) else v


def open_file(path):
    return h5py.File(path, "r")


# two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042]


def fit_loglog(x, y):
    """Least-squares slope of log y on log x with a 95% CI (Student's t, n - 2 dof):
    (slope, ci_low, ci_high); None where there are too few positive points (the CI needs 3)."""
    import math
    import numpy as np
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    if len(lx) < 2 or np.ptp(lx) == 0:
        return None, None, None
    slope, icpt = np.polyfit(lx, ly, 1)
    if len(lx) < 3:
        return float(slope), None, None
    res = ly - (slope * lx + icpt)
    se = math.sqrt(res @ res / (len(lx) - 2) / np.sum((lx - lx.mean()) ** 2))
    df = len(lx) - 2
    t = T975[df - 1] if df <= 30 else 1.96 + 2.4 / df
    return float(slope), float(slope - t * se), float(slope + t * se)
