"""Preemption: SIGTERM (what SLURM, Kubernetes and ModelArts send a grace period before they kill)
and SIGINT ask the training loop to stop after the step it is running; a second signal stops at
once. In a data-parallel run the ranks agree after every step, so they all stop after the same one."""
import signal
import threading
from typing import Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """Within ``with``: the first SIGTERM/SIGINT is recorded; the second raises KeyboardInterrupt
    where Python next runs (after the current network call returns)."""

    def __init__(self, group: int = 1):
        self.signum = 0
        self.group = group
        self._previous = {}
        self._sum = None

    def _handle(self, signum, frame):
        if self.signum:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        # handlers can only be installed from the main thread; elsewhere signals keep their default
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def agreed(self) -> Optional[str]:
        """The signal to stop on, as every rank sees it after this step, or None. With several
        ranks this is a collective: every rank calls it once per step."""
        if self.group == 1:
            return signal.Signals(self.signum).name if self.signum else None
        import numpy as np
        from mindspore import Tensor

        if self._sum is None:
            self._sum = _sum_across_ranks()
        mine = np.array([self.signum == signal.SIGTERM, self.signum == signal.SIGINT], np.float32)
        term, interrupt = self._sum(Tensor(mine)).asnumpy()
        if not self.signum and (term or interrupt):  # another rank was signalled: stop with it
            self.signum = signal.SIGTERM if term else signal.SIGINT
        return signal.Signals(self.signum).name if term or interrupt else None

    def barrier(self) -> None:
        """Wait for every rank (rank 0 writes the checkpoint while the others wait; msrun kills
        the workers still running once one has exited)."""
        if self.group > 1:
            from mindspore import Tensor
            import numpy as np

            self._sum(Tensor(np.zeros(2, np.float32))).asnumpy()

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _sum_across_ranks():
    # an eager collective has no CPU kernel in MindSpore 2.10, and AllReduce on CPU sums only
    from mindspore import nn, ops

    class SumAcrossRanks(nn.Cell):
        def __init__(self):
            super().__init__()
            self.all_reduce = ops.AllReduce()

        def construct(self, x):
            return self.all_reduce(x)

    return SumAcrossRanks()
