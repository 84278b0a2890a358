"""Plain-text progress lines with rate and ETA (logs stay readable in files, unlike bars)."""
import time


def fmt_duration(seconds):
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total, start=0):
        self.total, self.start_count = total, start
        self.t0 = time.time()

    def eta(self, done):
        done_here = done - self.start_count
        if done_here <= 0:
            return float("nan")
        rate = done_here / (time.time() - self.t0)
        return (self.total - done) / rate

    def elapsed(self):
        return time.time() - self.t0


def log_progress(what, done, total, start, log, every=50):
    """'<what>: done/total images, ms/img, ETA' every ``every`` items and at the end."""
    if done % every and done != total:
        return
    elapsed = time.time() - start
    log(f"{what}: {done}/{total} images, {1000 * elapsed / done:.1f} ms/img, "
        f"ETA {fmt_duration(elapsed / done * (total - done))}")
