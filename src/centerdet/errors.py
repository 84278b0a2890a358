"""One exception type for problems the user can fix; the CLI layer prints it as one line."""
import functools
import sys


class CenterDetError(Exception):
    """A user-facing error: bad path, bad config key, malformed annotation, NaN loss..."""


class TrainingStopped(Exception):
    """Training stopped on a signal after writing its checkpoint (the log says so); ``code`` is the
    exit status of a process ended by that signal (128 + its number), what schedulers expect."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def cli_main(fn):
    """Decorator for CLI entry points: a CenterDetError becomes one line on stderr and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # Progress lines must reach log files as they happen, not when a buffer fills.
        for stream in (sys.stdout, sys.stderr):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=True)
        try:
            return fn(*args, **kwargs)
        except CenterDetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except TrainingStopped as exc:
            sys.exit(exc.code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
    return wrapper
