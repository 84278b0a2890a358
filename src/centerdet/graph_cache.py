"""A compile cache for inference graphs, keyed by what each graph is made of.

MindSpore can save a compiled graph and load it in a later process instead of compiling again
(MS_COMPILER_CACHE_ENABLE), but it names its files by compile order alone: a changed network (say
another ``head_conv``) loads the old graph and fails or computes the wrong thing. Here every graph
gets a folder of its own under the cache root, named by a hash of the network's structure (every
cell's class and public attributes, its primitives' attributes, the parameters' names, shapes and
dtypes), the inputs' shapes and dtypes, how it is compiled, MindSpore's version, centerdet's files
and the environment variables that steer compilation; the weights are not part of the graph, so
another checkpoint of the same network reuses it. A folder appears only once complete (written
aside, then renamed), so concurrent runs never read half a graph.

MindSpore binds its cache path at a process's first cached compile and numbers the graphs after
it, so only the first graph of a process goes through the cache; later ones compile as usual.
"""
import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Optional, Sequence

from centerdet.errors import CenterDetError

ENV_VAR = "CENTERDET_COMPILE_CACHE"
MAX_ENTRIES = 64
_MARKER = "entry.json"
_root: Optional[str] = None
_bound = False  # MindSpore's cache path is taken for this process
stats = {"loaded": 0, "stored": 0}


def default_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "centerdet", "graphs")


def configure(setting: str = "auto") -> Optional[str]:
    """Select the cache root from config ``compile_cache``: "auto" ($CENTERDET_COMPILE_CACHE, else
    $XDG_CACHE_HOME/centerdet/graphs or ~/.cache/centerdet/graphs), "off", or a folder. Returns the
    root in use, None when off. An "auto" root that cannot be created turns the cache off."""
    global _root
    explicit = setting not in ("auto", "")
    if not explicit:
        setting = os.environ.get(ENV_VAR, "") or default_root()
    if setting == "off":
        _root = None
        return None
    root = os.path.abspath(os.path.expanduser(setting))
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        if explicit:
            raise CenterDetError(f"config key 'compile_cache' is {setting!r}, which cannot be created "
                                 f"({e.strerror}); give a writable folder or 'off'") from None
        print(f"centerdet: warning: the graph cache {root} cannot be created ({e.strerror}); "
              f"graphs are compiled every run", file=sys.stderr)
        root = None
    _root = root
    return root


def _describe(value: Any):
    """A JSON-able account of an attribute a graph can depend on; None for what it cannot."""
    import mindspore as ms

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, ms.Parameter):
        return None  # listed with the parameters; its values are not in the graph
    if isinstance(value, ms.Tensor):
        array = value.asnumpy()
        return ["tensor", list(array.shape), str(array.dtype), hashlib.sha256(array.tobytes()).hexdigest()]
    if isinstance(value, ms.ops.Primitive):
        return ["primitive", type(value).__qualname__, value.name, _describe(dict(value.attrs))]
    if isinstance(value, ms.nn.Cell):
        return None  # walked on its own
    if callable(value):
        return ["callable", getattr(value, "__module__", ""), getattr(value, "__qualname__", type(value).__qualname__)]
    return ["object", type(value).__module__, type(value).__qualname__]


def _entry_script() -> Optional[str]:
    """The script MindSpore's cache hashes as the graph's source (sys.argv[0]); None when that is
    no file (``python -c``, some notebooks), where MindSpore's cache fails."""
    path = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=1)
def _process_key() -> str:
    """What every graph of this process depends on beside the network: versions, centerdet's files,
    the entry script, the CPU, the environment that steers compilation."""
    import mindspore as ms

    package = os.path.dirname(os.path.abspath(__file__))
    files = []
    for folder, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".py", ".so", ".so.3", ".yaml")):
                st = os.stat(os.path.join(folder, name))
                files.append([os.path.relpath(os.path.join(folder, name), package), st.st_size, st.st_mtime_ns])
    main = _entry_script()
    script = ""
    if main:
        with open(main, "rb") as f:
            script = hashlib.sha256(f.read()).hexdigest()
    flags = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    env = {k: v for k, v in sorted(os.environ.items())
           if k.startswith(("MS_DEV_", "CENTERDET_", "ONEDNN_")) or k in ("RANK_ID", "RANK_SIZE", "MS_WORKER_NUM")}
    env.pop(ENV_VAR, None)
    return json.dumps([ms.__version__, files, main, script, flags, env])


def fingerprint(cell, inputs: Sequence[Any], kind: str) -> str:
    """The hash naming ``cell``'s graph for these inputs, compiled as ``kind`` ("cell" or "jit")."""
    import mindspore as ms

    cells = []
    for name, sub in cell.cells_and_names():
        attrs = {k: _describe(v) for k, v in sorted(vars(sub).items()) if not k.startswith("_")}
        cells.append([name, type(sub).__module__, type(sub).__qualname__,
                      {k: v for k, v in attrs.items() if v is not None}])
    params = [[name, list(p.shape), str(p.dtype), bool(p.requires_grad)] for name, p in cell.parameters_and_names()]
    shapes = [[list(x.shape), str(x.dtype)] if isinstance(x, ms.Tensor) else _describe(x) for x in inputs]
    text = json.dumps([_process_key(), kind, ms.get_context("mode"), ms.get_context("device_target"),
                       cells, params, shapes])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def lookup(cell, inputs: Sequence[Any], kind: str) -> Optional[str]:
    """The entry folder of this graph when the cache holds it and this process can still load it."""
    if _root is None or _bound or _entry_script() is None:
        return None
    entry = os.path.join(_root, fingerprint(cell, inputs, kind))
    return entry if os.path.isfile(os.path.join(entry, _MARKER)) else None


_REPORTS = ("compile_cache_manager.cc", "Load MindIR file failed")


@contextlib.contextmanager
def _cache_reports():
    """Yields the list that receives the lines MindSpore's C++ side writes to stderr (fd 2) about
    its compile cache meanwhile: each load and each miss is a warning that would alarm for
    nothing, so they are not shown; every other line passes."""
    reports: list = []
    sys.stderr.flush()
    saved, captured = os.dup(2), tempfile.TemporaryFile()
    os.dup2(captured.fileno(), 2)
    try:
        yield reports
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        captured.seek(0)
        for line in captured.read().decode(errors="replace").splitlines(keepends=True):
            if any(r in line for r in _REPORTS):
                reports.append(line)
            else:
                sys.stderr.write(line)
        captured.close()
        sys.stderr.flush()


@contextlib.contextmanager
def _mindspore_cache(path: Optional[str]):
    """MindSpore's compile cache on (at ``path``, yielding its reports) or off for one compile."""
    previous = {k: os.environ.get(k) for k in ("MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH")}
    os.environ["MS_COMPILER_CACHE_ENABLE"] = "1" if path else "0"
    if path:
        os.environ["MS_COMPILER_CACHE_PATH"] = path
    try:
        if path:
            with _cache_reports() as reports:
                yield reports
        else:
            yield []
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _prune(root: str) -> None:
    """Keep the MAX_ENTRIES most recently used entries."""
    entries = []
    for name in os.listdir(root):
        marker = os.path.join(root, name, _MARKER)
        if os.path.isfile(marker):
            entries.append((os.stat(marker).st_mtime, name))
    for _, name in sorted(entries, reverse=True)[MAX_ENTRIES:]:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def compile_cached(run: Callable[[], Any], cell, inputs: Sequence[Any], kind: str = "cell") -> Any:
    """``run()`` (the call that compiles ``cell``'s graph for ``inputs``) through the cache: the
    graph is loaded when an earlier process stored it, else compiled and stored. Returns run()'s
    result. Without a cache root, and after this process's first cached graph, it is just run()."""
    global _bound
    if _root is None or _entry_script() is None:
        return run()
    if _bound:  # a later graph of this process: MindSpore would number it into the first one's entry
        with _mindspore_cache(None):
            return run()
    _bound = True
    key = fingerprint(cell, inputs, kind)
    entry = os.path.join(_root, key)
    marker = os.path.join(entry, _MARKER)
    if os.path.isfile(marker):
        with _mindspore_cache(entry) as reports:
            result = run()
        with contextlib.suppress(OSError):  # the last use, for _prune; a read-only cache keeps its order
            os.utime(marker)
        if any("Use the compilation cache" in line for line in reports):
            stats["loaded"] += 1
        else:  # MindSpore compiled it anew and rewrote the entry
            print(f"centerdet: warning: the graph cache entry {entry} could not be loaded; it was compiled "
                  f"again and replaced", file=sys.stderr)
        return result
    try:
        work = tempfile.mkdtemp(prefix=f".{key}.", dir=_root)
    except OSError as e:  # a read-only cache: its entries load, new graphs are not kept
        print(f"centerdet: warning: the graph cache {_root} is not writable ({e.strerror}); this graph is "
              f"not kept", file=sys.stderr)
        with _mindspore_cache(None):
            return run()
    try:
        with _mindspore_cache(work):
            result = run()
        if os.path.isfile(os.path.join(work, _rank_dir(), "graph_cache", "compile_cache_0.mindir")):
            _store(work, entry, cell, inputs, kind)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _rank_dir() -> str:
    return f"rank_{os.environ.get('RANK_ID', '0')}"


def _store(work: str, entry: str, cell, inputs: Sequence[Any], kind: str) -> None:
    import mindspore as ms

    with open(os.path.join(work, _MARKER), "w") as f:
        json.dump({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "kind": kind, "cell": type(cell).__qualname__,
                   "inputs": [list(getattr(x, "shape", ())) for x in inputs], "mindspore": ms.__version__}, f)
    try:
        os.rename(work, entry)
        stats["stored"] += 1
    except OSError:  # another process stored it first
        return
    _prune(os.path.dirname(entry))
