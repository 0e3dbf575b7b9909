"""Small readers for ntkspec result files shared by the tools in this folder (Debian's
python3-h5py and python3-yaml)."""
import h5py
import yaml


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
