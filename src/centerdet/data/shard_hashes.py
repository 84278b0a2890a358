"""MindRecord shards checked against what the conversion wrote: the size and SHA-256 of every file
(each shard and its ``.db`` index), recorded beside them as ``.<prefix>.sha256.json``.

A sampled hash misses most flipped bytes, so every byte is hashed. The sizes are compared at once
(a truncated copy is found before MindSpore opens it); the hashes in a thread while the network is
built (hashlib releases the GIL), and the run waits for the verdict before its first step.
"""
import hashlib
import json
import os
import threading
from typing import Callable, Dict, List, Optional

from centerdet.errors import CenterDetError

CHUNK = 8 << 20


def record_path(mindrecord_dir: str, prefix: str) -> str:
    return os.path.join(mindrecord_dir, f".{prefix}.sha256.json")


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def write_record(folder: str, prefix: str) -> None:
    """Hash the conversion's files in ``folder`` (before they move into place)."""
    names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and not n.startswith("."))
    record = {n: {"size": os.path.getsize(os.path.join(folder, n)), "sha256": file_sha256(os.path.join(folder, n))}
              for n in names}
    with open(record_path(folder, prefix), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)


def _damaged(path: str, prefix: str, why: str) -> CenterDetError:
    folder = os.path.dirname(path)
    return CenterDetError(f"MindRecord shard {path} is damaged ({why}); rebuild it: delete {folder}/{prefix}* and "
                          f"run again (training converts the data on first use), or "
                          f"scripts/convert_dataset_to_mindrecord.sh")


class ShardCheck:
    """``start`` compares sizes now and hashes in a thread; ``wait`` returns once every file
    matched, or raises the one-line error naming the first damaged one."""

    def __init__(self, files: List[str], prefix: str, log: Callable[[str], None] = print):
        self.files, self.prefix, self.log = files, prefix, log
        self._error: Optional[CenterDetError] = None
        self._thread: Optional[threading.Thread] = None
        self._record: Dict[str, Dict] = {}

    def start(self) -> "ShardCheck":
        folder = os.path.dirname(self.files[0]) if self.files else ""
        path = record_path(folder, self.prefix)
        if not os.path.isfile(path):
            self.log(f"note: MindRecord '{self.prefix}' in {folder} has no hash record (converted elsewhere or by "
                     f"an older centerdet): its shards are not verified")
            return self
        try:
            with open(path, encoding="utf-8") as f:
                self._record = json.load(f)
            wanted = {n: (int(v["size"]), str(v["sha256"])) for n, v in self._record.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise CenterDetError(f"{path}: the hash record of MindRecord '{self.prefix}' is damaged; rebuild the "
                                 f"MindRecord (delete {folder}/{self.prefix}* and run again)") from None
        targets = []
        for shard in self.files:
            for file in (shard, shard + ".db"):
                name = os.path.basename(file)
                if name not in wanted:
                    raise _damaged(file, self.prefix, "not in the hash record of the conversion")
                size = os.path.getsize(file)
                if size != wanted[name][0]:
                    raise _damaged(file, self.prefix, f"{size} bytes, the conversion wrote {wanted[name][0]}")
                targets.append((file, wanted[name][1]))
        self._thread = threading.Thread(target=self._hash, args=(targets,), daemon=True, name="shard-sha256")
        self._thread.start()
        return self

    def _hash(self, targets):
        try:
            for file, digest in targets:
                if file_sha256(file) != digest:
                    self._error = _damaged(file, self.prefix, "its SHA-256 differs from the one recorded at "
                                                              "conversion")
                    return
        except OSError as exc:
            self._error = CenterDetError(f"cannot read MindRecord shard: {exc}")

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._error is None:
                self.log(f"mindrecord: {len(self.files)} shard(s) of '{self.prefix}' verified (SHA-256)")
        if self._error is not None:
            raise self._error
