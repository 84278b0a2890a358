"""Decode parity with plain-PyTorch transcriptions of CenterNet's ``ctdet_decode`` and the model zoo's
CenterFace decode: identical head maps give identical top-K detections (classes, scores, boxes,
landmarks)."""
import numpy as np
import pytest

from centerdet.tasks.centerface import decode_centerface
from centerdet.tasks.centernet import decode_centernet

pytestmark = pytest.mark.torch


def _torch_peaks_topk(torch, heat, k):
    hmax = torch.nn.functional.max_pool2d(heat[None], 3, stride=1, padding=1)[0]
    heat = heat * (hmax == heat).float()
    c, h, w = heat.shape
    scores, inds = torch.topk(heat.reshape(-1), k)
    cls = inds // (h * w)
    pix = inds % (h * w)
    return scores, cls, pix // w, pix % w


def _maps(rng, c, h, w):
    # continuous random heatmaps: no two scores tie, so the top-K order is unique
    heat = 1 / (1 + np.exp(-rng.normal(-2, 1.5, (c, h, w))))
    return heat.astype(np.float32)


def test_centernet_decode_matches_torch_ctdet_decode():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    heat = _maps(rng, 80, 32, 40)
    wh = rng.uniform(1, 30, (2, 32, 40)).astype(np.float32)
    reg = rng.uniform(0, 1, (2, 32, 40)).astype(np.float32)
    k = 100

    t = torch.from_numpy
    scores, cls, ys, xs = _torch_peaks_topk(torch, t(heat), k)
    cx = xs.float() + t(reg)[0, ys, xs]
    cy = ys.float() + t(reg)[1, ys, xs]
    bw, bh = t(wh)[0, ys, xs], t(wh)[1, ys, xs]
    want = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, scores, cls.float()], 1).numpy()

    got = decode_centernet(heat, wh, reg, k=k)
    assert np.array_equal(got[:, 5], want[:, 5]) and np.array_equal(got[:, 4], want[:, 4])
    np.testing.assert_allclose(got[:, :4], want[:, :4], rtol=0, atol=1e-5)


def test_centerface_decode_matches_torch_transcription():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    heat = _maps(rng, 1, 64, 48)
    wh = rng.normal(1.5, 0.5, (2, 64, 48)).astype(np.float32)  # log(size / 4)
    reg = rng.uniform(0, 1, (2, 64, 48)).astype(np.float32)
    lm = rng.normal(0, 0.3, (10, 64, 48)).astype(np.float32)
    k = 200

    t = torch.from_numpy
    scores, cls, ys, xs = _torch_peaks_topk(torch, t(heat), k)
    bw, bh = 4 * torch.exp(t(wh)[0, ys, xs]), 4 * torch.exp(t(wh)[1, ys, xs])
    cx, cy = xs.float() + t(reg)[0, ys, xs], ys.float() + t(reg)[1, ys, xs]
    points = []
    for j in range(5):  # landmark j: (x, y) offsets from the peak cell in units of the box size
        points += [xs.float() + t(lm)[2 * j, ys, xs] * bw, ys.float() + t(lm)[2 * j + 1, ys, xs] * bh]
    want = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, scores, cls.float(), *points], 1).numpy()

    got = decode_centerface(heat, wh, reg, lm, k=k)
    assert got.shape == want.shape == (k, 16)
    assert np.array_equal(got[:, 4:6], want[:, 4:6])
    np.testing.assert_allclose(got[:, :4], want[:, :4], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got[:, 6:], want[:, 6:], rtol=1e-6, atol=1e-4)
