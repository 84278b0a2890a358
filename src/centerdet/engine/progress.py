"""Plain-text progress lines with rate and ETA (logs stay readable in files, unlike bars), and the
training history behind the loss-curve PNG."""
import json
import os
import time

from centerdet.fileio import write_json


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


def log_progress(what, done, total, start, log, every=50, unit="images"):
    """'<what>: done/total images, ms/img, ETA' every ``every`` items and at the end; with
    unit="frames", frames per second instead of ms/img; total None (a camera): no ETA."""
    if done % every and done != total:
        return
    elapsed = max(time.time() - start, 1e-9)
    per = "img" if unit == "images" else unit.rstrip("s")
    rate = f"{done / elapsed:.1f} frames/s" if unit == "frames" else f"{1000 * elapsed / done:.1f} ms/{per}"
    if total is None:
        log(f"{what}: {done} {unit}, {rate}")
        return
    log(f"{what}: {done}/{total} {unit}, {rate}, ETA {fmt_duration(elapsed / done * (total - done))}")


class History:
    """Per-interval mean losses (total and one per loss part), kept for loss_curve.png and history.json."""

    def __init__(self, path, parts):
        self.path = path
        self.keys = ("loss",) + tuple(f"{p}_loss" for p in parts)
        self.data = {"step": [], **{k: [] for k in self.keys}}
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    loaded = json.load(f)
                if set(self.data) <= set(loaded):
                    self.data = loaded
            except (OSError, json.JSONDecodeError):
                pass

    def add(self, step, values):
        # On resume, drop entries past the restored step so the curve has no duplicates.
        while self.data["step"] and self.data["step"][-1] >= step:
            for k in self.data:
                self.data[k].pop()
        self.data["step"].append(step)
        for k, v in zip(self.keys, values):
            self.data[k].append(float(v))

    def save(self, png_path=None):
        write_json(self.path, self.data)
        if png_path and len(self.data["step"]) > 1:
            from centerdet.visualize import plot_loss_curve
            plot_loss_curve(self.data, png_path, title="training loss")
