"""The one writer for every output file: write to a temp file in the same directory, then rename.

A crash or kill mid-write leaves the previous file (or nothing), never a truncated one.
"""
import contextlib
import json
import os
import shutil
import tempfile

from centerdet.errors import CenterDetError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temp path next to ``path``; on success it is renamed over ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are files like any other
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent=None):
    write_text(path, json.dumps(obj, indent=indent))


def read_text(path, what="file", not_text="is not UTF-8 text", hint=""):
    """The UTF-8 text of ``path``, with one-line errors naming the file when it is missing, empty
    or not text (``not_text`` says how, ``hint`` what the file should have been)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CenterDetError(f"{what} not found: {path}")
    if os.path.getsize(path) == 0:
        raise CenterDetError(f"{what} is empty (0 bytes): {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise CenterDetError(f"{what} {not_text}: {path} (byte {exc.start}){hint}") from None


def read_json(path, what="json file"):
    """Load json with a one-line error naming the file on any problem."""
    text = read_text(path, what, "is not valid json")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CenterDetError(f"{what} is not valid json: {os.fspath(path)} ({exc})") from None


def ensure_writable_dir(path, what="output directory"):
    """Create ``path`` if needed and prove it is writable now, not after hours of work."""
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CenterDetError(f"{what} is not writable: {path} ({exc.strerror})") from None
    return path


def check_free_space(path, needed_bytes, what, advice):
    """Fail now, naming ``what``, if ``path``'s file system has less than ``needed_bytes`` free:
    a full disk found before hours of work, not at the first checkpoint after them."""
    free = shutil.disk_usage(path).free
    if free < needed_bytes:
        raise CenterDetError(f"{what} {path} has {free / 2**20:.0f} MB free but needs about "
                             f"{needed_bytes / 2**20:.0f} MB; {advice}")


def refuse_overwrite(path, what, overwrite=False, hint=""):
    """The rule of every writer: results of an earlier run (a file at ``path``, or a folder holding
    anything) are replaced only when asked (``overwrite``), never silently."""
    path = os.fspath(path)
    if overwrite or not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path)):
        return
    kind = "folder" if os.path.isdir(path) else "file"
    raise CenterDetError(f"{what} {path} already holds an earlier run's results ({kind}): choose another {what}"
                         f"{hint}, or pass --overwrite true to replace them")
