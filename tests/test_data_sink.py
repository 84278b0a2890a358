"""enable_data_sink: the training loop driven through MindSpore's data sink (``ms.data_sink``).

MindSpore sinks data on Ascend and GPU only, and this machine has neither: the loop is run here
with a host-side stand-in that keeps data_sink's contract (each call runs the step on the next
``sink_size`` batches, the dataset looping by itself, and returns the last step's outputs), so
what is tested is our side of it: steps counted per call, epoch lines, per-epoch checkpoints,
and the one-line refusals."""
import os

import numpy as np
import pytest

from centerdet.config import load_config
from centerdet.errors import CenterDetError

TINY = {"input_res_train": "[64, 64]", "batch_size": "4", "num_parallel_workers": "1", "max_objs": "16",
        "warmup_steps": "1", "mindrecord_prefix": "sink.mind", "log_interval": "1", "mode": "pynative",
        "epoch_size": "2", "save_checkpoint_epochs": "1"}


def _host_sink(calls):
    def data_sink(fn, dataset, sink_size=1, jit_config=None, input_signature=None):
        def batches():
            while True:
                yield from dataset.create_tuple_iterator(num_epochs=1)

        stream = batches()

        def call():
            calls.append(sink_size)
            out = None
            for _ in range(sink_size):
                out = fn(*next(stream))
            return out

        return call

    return data_sink


@pytest.fixture(scope="module")
def sink_cfg(tiny_coco, tmp_path_factory):
    work = tmp_path_factory.mktemp("sink")
    return {**TINY, "config": "centernet_r18-ida_1xb16-16e_synthetic", "data_dir": str(tiny_coco),
            "mindrecord_dir": str(work / "mr"), "save_checkpoint_path": str(work / "ckpt")}


def _cfg(values, **extra):
    values = {**values, **extra}
    return load_config(values.pop("config"), values)


def test_training_through_the_data_sink(sink_cfg, monkeypatch):
    import mindspore as ms

    from centerdet.engine.build import build_run
    from centerdet.engine.trainer import fit, weights_digest

    run = build_run(_cfg(sink_cfg, data_sink_steps="-1"))   # built as on CPU, then sunk as on a device
    assert run.steps_per_epoch == 3 and run.total == 6
    run.cfg.enable_data_sink = True
    calls, lines = [], []
    monkeypatch.setattr(ms, "data_sink", _host_sink(calls))
    run.log = lines.append
    before = weights_digest(run.net)
    last = fit(run)
    assert calls == [3, 3]   # -1: one epoch per call, as the model zoo's default
    assert [line.split(",")[0] for line in lines if line.startswith("epoch: ")] == ["epoch: 1", "epoch: 2"]
    ckpts = sorted(n for n in os.listdir(sink_cfg["save_checkpoint_path"]) if n.endswith(".ckpt"))
    assert ckpts == ["centernet-1_3.ckpt", "centernet-2_6.ckpt"] and last.endswith("centernet-2_6.ckpt")
    assert int(ms.load_checkpoint(last)["global_step"].asnumpy().item()) == 6   # six steps ran, not two
    assert weights_digest(run.net) != before
    step_lines = [line for line in lines if line.startswith("epoch 2/2 step 6/6 loss: ")]
    assert len(step_lines) == 1 and np.isfinite(float(step_lines[0].split("loss: ")[1].split()[0]))


@pytest.mark.parametrize("extra, message", [
    ({"data_sink_steps": "2"}, "'data_sink_steps' is 2, which does not divide the 3 steps per epoch"),
    ({"data_sink_steps": "3", "save_checkpoint_epochs": "0", "save_checkpoint_steps": "4"},
     "does not divide the 4 steps between checkpoints"),
    ({"data_sink_steps": "3", "log_image_ids": "true"}, "'log_image_ids' and 'enable_data_sink' are both true"),
])
def test_sink_steps_that_cannot_fit_are_refused(sink_cfg, monkeypatch, extra, message):
    from centerdet import runtime
    from centerdet.engine.build import build_run

    cfg = _cfg(sink_cfg, enable_data_sink="true", **extra)
    cfg.device_target = "GPU"   # past the CPU refusal; the check runs before the network is built
    monkeypatch.setattr(runtime, "init_device", lambda *a: None)
    with pytest.raises(CenterDetError, match=message):
        build_run(cfg)
