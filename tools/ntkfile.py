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
