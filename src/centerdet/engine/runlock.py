"""One training run per save_checkpoint_path: a lock file held (flock) for the life of the run.

The kernel drops an flock when its holder exits however it exits (SIGKILL, OOM, a node reboot
for local disks), so a lock file whose flock can be taken belongs to a dead run and is taken over;
its text (pid, host, start) names the holder in the error a second run gets.
"""
import fcntl
import json
import os
import socket
import time
from typing import Callable, Optional

from centerdet.errors import CenterDetError

LOCK_NAME = ".centerdet_train.lock"


def _holder_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        return f"process {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that left no details"


class RunLock:
    """``acquire`` takes the folder's lock or raises a one-line CenterDetError naming the holder;
    ``release`` (idempotent) drops it and removes the file."""

    def __init__(self, folder: str, log: Callable[[str], None] = print):
        self.folder, self.log = folder, log
        self.path = os.path.join(folder, LOCK_NAME)
        self.fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        while True:
            existed = os.path.exists(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise CenterDetError(f"save_checkpoint_path {self.folder} is in use by another training run "
                                     f"({_holder_text(self.path)}): wait for it to finish, stop it, or choose "
                                     f"another save_checkpoint_path") from None
            # the holder may have removed the file between our open and our flock: lock the file
            # that is there now, not an unlinked one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        if existed and os.fstat(fd).st_size:
            self.log(f"lock: took over {self.path}, left by a run that is no longer running "
                     f"({_holder_text(self.path)})")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
