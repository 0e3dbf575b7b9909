"""Small readers for ntkspec result files shared by the tools in this folder (h5py only)."""
import h5py


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def effective_config(f):
    """The root `config` attribute (the effective YAML ntkspec prints) as {'section.key': str}.

    Only the two-level layout ntkspec writes is read, so no YAML library is needed."""
    out, section = {}, None
    for line in _text(f.attrs.get("config", "")).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        body = line.split(" #")[0].rstrip()
        if not line.startswith(" "):
            key, _, val = body.partition(":")
            val = val.strip()
            if val:
                out[key.strip()] = val.strip('"')
                section = None
            else:
                section = key.strip()
        elif section:
            key, _, val = body.strip().partition(":")
            out[section + "." + key.strip()] = val.strip().strip('"')
    return out


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
