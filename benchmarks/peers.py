"""The peers the benchmarks time (PyTorch, onnxruntime) come with the test extra, not the package."""
import importlib.util
import sys


def require(module: str, flag: str = "") -> None:
    """Exit with one line when ``module`` (a peer) is not installed, before any timing starts."""
    if importlib.util.find_spec(module) is None:
        what = f"{flag} times" if flag else "this benchmark times"
        sys.exit(f"error: {what} {module} as its peer, and it is not installed in {sys.prefix}; install the "
                 f"test extra: {sys.executable} -m pip install -e '.[test]'")
