"""Checkpoints: atomic writes, rotation, partial loads with a report, resume of the training state."""
import os

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from centerdet.engine import checkpoint as ckpt_mod
from centerdet.engine.checkpoint import CheckpointManager, load_weights, read_checkpoint, restore_training
from centerdet.engine.step import NetWithLoss, TrainStep
from centerdet.errors import CenterDetError


class Tiny(nn.Cell):
    def __init__(self, cout=3):
        super().__init__()
        self.conv = nn.Conv2d(2, cout, 3, has_bias=True)
        self.bn = nn.BatchNorm2d(cout)

    def construct(self, x):
        return self.bn(self.conv(x))


class SumLoss(nn.Cell):
    def construct(self, out, target):
        loss = ((out - target) ** 2).mean()
        return loss, ms.ops.stack((loss, loss, loss))


def make_step(seed=0, lr=1e-2):
    ms.set_seed(seed)
    net = Tiny()
    opt = nn.Adam(net.trainable_params(), learning_rate=Tensor(np.full(10, lr, np.float32)))
    step = TrainStep(NetWithLoss(net, SumLoss()), opt, 8.0, nn.DynamicLossScaleUpdateCell(8.0, 2, 100))
    step.set_train()
    return net, opt, step


def batch(seed):
    rng = np.random.default_rng(seed)
    return (Tensor(rng.standard_normal((2, 2, 6, 6)).astype(np.float32)),
            Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32)))


@pytest.fixture(autouse=True)
def pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    yield


def test_rotation_keeps_the_newest(tmp_path):
    net, _, step = make_step()
    mgr = CheckpointManager(str(tmp_path), "m", keep=2)
    for s in (5, 10, 15):
        mgr.save(step, s, 1)
    names = sorted(os.listdir(tmp_path))
    assert names == ["m-1_10.ckpt", "m-1_15.ckpt"]
    assert mgr.latest().endswith("m-1_15.ckpt")


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    net, _, step = make_step()
    mgr = CheckpointManager(str(tmp_path), "m", keep=3)
    first = mgr.save(step, 1, 1)
    before = open(first, "rb").read()

    def crash(obj, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.ms, "save_checkpoint", crash)
    with pytest.raises(OSError):
        mgr.save(step, 2, 1)
    assert os.listdir(tmp_path) == ["m-1_1.ckpt"]  # no partial file, no temp file
    assert open(first, "rb").read() == before


def test_resume_restores_weights_optimizer_and_step(tmp_path):
    net, opt, step = make_step()
    for i in range(3):
        step(*batch(i))
    path = CheckpointManager(str(tmp_path), "m").save(step, 3, 1)
    ref = [step(*batch(3 + i))[0].asnumpy() for i in range(2)]  # continue the original run

    net2, opt2, step2 = make_step(seed=99)  # different init
    assert restore_training(step2, path) == {"step": 3, "epoch": 1}
    assert int(opt2.global_step.asnumpy().item()) == 3
    got = [step2(*batch(3 + i))[0].asnumpy() for i in range(2)]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    for p, q in zip(net.get_parameters(), net2.get_parameters()):
        np.testing.assert_allclose(p.asnumpy(), q.asnumpy(), rtol=1e-6, atol=1e-7)


def test_partial_load_reports_skipped_and_missing(tmp_path):
    _, _, step = make_step()
    path = CheckpointManager(str(tmp_path), "m").save(step, 1, 1)
    other = Tiny(cout=4)  # conv/bn shapes differ
    lines = []
    matched, skipped, missing = load_weights(other, path, log=lines.append)
    assert "conv.weight" in skipped and "shape" in skipped["conv.weight"]
    assert "conv.weight" in missing and not any(k.startswith("moment") for k in skipped)
    assert lines[0].startswith(f"loaded {len(matched)}/")


def test_unreadable_checkpoints(tmp_path):
    with pytest.raises(CenterDetError, match="not found"):
        read_checkpoint(str(tmp_path / "none.ckpt"))
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CenterDetError, match="empty"):
        read_checkpoint(str(empty))
    _, _, step = make_step()
    good = CheckpointManager(str(tmp_path), "m").save(step, 1, 1)
    data = open(good, "rb").read()
    trunc = tmp_path / "trunc.ckpt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CenterDetError, match="cannot read checkpoint"):
        read_checkpoint(str(trunc))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CenterDetError, match="cannot read checkpoint"):
        read_checkpoint(str(junk))


def test_resume_falls_back_to_the_newest_checkpoint_that_verifies(tmp_path):
    from centerdet.engine.resume import resume_from

    _, _, step = make_step()
    mgr = CheckpointManager(str(tmp_path), "m", keep=3)
    paths = [mgr.save(step, s, 1) for s in (2, 4, 6)]
    data = bytearray(open(paths[2], "rb").read())
    data[len(data) // 2] ^= 0x10  # one bit inside a tensor: only a checksum can tell
    open(paths[2], "wb").write(bytes(data))
    cut = open(paths[1], "rb").read()[:-100]
    open(paths[1], "wb").write(cut)
    lines = []
    assert resume_from(mgr, make_step(seed=1)[2], 10, lines.append)["step"] == 2
    assert lines == [f"resume: skipped {paths[2]}: cannot read checkpoint {paths[2]}: its CRC32 does not match: "
                     f"the file is damaged",
                     f"resume: skipped {paths[1]}: cannot read checkpoint {paths[1]}: its CRC trailer is missing or "
                     f"damaged: the file is truncated or damaged",
                     f"resume: restored {paths[0]} at step 2/10"]
    os.unlink(paths[0])
    with pytest.raises(CenterDetError, match=r"none of the 2 checkpoints in .* reads \(see the lines above\)"):
        resume_from(mgr, step, 10, lambda line: None)


def test_sealed_checkpoints_read_back_exactly_and_others_with_a_note(tmp_path):
    net, _, step = make_step()
    path = CheckpointManager(str(tmp_path), "m", config={"a": 1}).save(step, 3, 1)
    lines = []
    ours = read_checkpoint(path, log=lines.append)
    theirs = ms.load_checkpoint(path, crc_check=True)  # MindSpore checks our CRC trailer too
    assert not lines and set(theirs) == set(ours) | {"centerdet_digest"}
    for name, value in ours.items():
        same = value == theirs[name] if isinstance(value, str) else np.array_equal(value.asnumpy(),
                                                                                  theirs[name].asnumpy())
        assert same and (isinstance(value, str) or value.dtype == theirs[name].dtype), name
    plain = str(tmp_path / "plain.ckpt")
    ms.save_checkpoint(net, plain)
    assert sorted(read_checkpoint(plain, log=lines.append)) == sorted(p.name for p in net.get_parameters())
    assert lines == [f"note: {plain} carries no CRC or digest (written by another tool or an older centerdet): "
                     f"loaded without verifying it"]
