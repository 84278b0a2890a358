"""ModulatedDeformConv2d against a plain numpy DCNv2 (centernet.md §1), graph + PyNative, with gradients.

DCNv2 definition used here (original DCNv2 / CenterNet): ``conv_offset_mask`` (3x3, pad 1) gives 27
channels [o1(9) | o2(9) | m(9)]; the first 18 are read as interleaved pairs, tap t = i*kw + j
(row-major): dy_t = channel 2t, dx_t = channel 2t+1; mask_t = sigmoid(channel 18 + t).
For output (py, px) the tap samples the input at
    y = py*stride - pad + i*dil + dy_t,   x = px*stride - pad + j*dil + dx_t
by bilinear interpolation in which corner pixels outside the image count as 0, and the whole sample
is 0 if y <= -1, y >= H, x <= -1 or x >= W. out[o] = sum_{c,t} w[o,c,i,j] * value * mask_t + bias[o].
"""
import math

import numpy as np
import pytest

import centerdet  # noqa: F401  (must precede mindspore: sets the oneDNN env var)
import mindspore as ms
from mindspore import Tensor, ops

from centerdet import cpu_ops
from centerdet.models.dcn import ModulatedDeformConv2d

ATOL = 1e-4
MAX_DIFF = {}


DCN_PATHS = ["onednn", "fused", "sampled"] if cpu_ops.available() else ["fused", "sampled"]


@pytest.fixture(params=DCN_PATHS)
def dcn_path(request):
    """The cell's ways to compute DCNv2: centerdet's CPU kernels (sampling in deform.cc + a oneDNN
    1×1 conv), and on MindSpore's kernels the fused op (inference) and grid sampling (training)."""
    cpu_ops.set_enabled(None if request.param == "onednn" else False)
    yield request.param
    cpu_ops.set_enabled(None)


@pytest.fixture
def mindspore_kernels():
    cpu_ops.set_enabled(False)
    yield
    cpu_ops.set_enabled(None)


@pytest.fixture
def graph_mode():
    old = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    yield
    ms.set_context(mode=old)


# --------------------------------------------------------------------------- numpy references

def conv2d_np(x, w, b, pad=1, stride=1):
    """Plain cross-correlation, zero padding; x (B,C,H,W), w (O,C,kh,kw) -> (B,O,Ho,Wo), float64."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    bsz, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((bsz, o, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    return out + np.asarray(b, np.float64)[None, :, None, None]


def sample_scalar(img, y, x):
    """DCNv2 bilinear sample of img (C,H,W) at one real (y, x); out-of-image corners are 0."""
    _, h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return np.zeros(img.shape[0])
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    val = np.zeros(img.shape[0])
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                val += wy * wx * img[:, yy, xx]
    return val


def sample_bilinear(x, ys, xs):
    """Vectorised sample_scalar: x (B,C,H,W); ys, xs (B,Ho,Wo) -> (B,C,Ho,Wo)."""
    bsz, c, h, w = x.shape
    xt = np.asarray(x, np.float64).transpose(0, 2, 3, 1)
    valid = (ys > -1) & (ys < h) & (xs > -1) & (xs < w)
    y0, x0 = np.floor(ys), np.floor(xs)
    ly, lx = ys - y0, xs - x0
    bidx = np.arange(bsz)[:, None, None]
    out = np.zeros(ys.shape + (c,))
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            inb = valid & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            yc = np.clip(yy, 0, h - 1).astype(np.int64)
            xc = np.clip(xx, 0, w - 1).astype(np.int64)
            out += (wy * wx * inb)[..., None] * xt[bidx, yc, xc]
    return out.transpose(0, 3, 1, 2)


def dcnv2_np(x, weight, bias, offset, mask, stride=1, pad=1, dil=1):
    """offset (B, 2T, Ho, Wo) interleaved (dy, dx) per tap; mask (B, T, Ho, Wo) (already sigmoid).

    Returns (out (B,O,Ho,Wo), cols (B,C,T,Ho,Wo)) where cols are the modulated samples.
    """
    weight = np.asarray(weight, np.float64)
    o, c, kh, kw = weight.shape
    bsz, _, ho, wo = offset.shape
    py = np.arange(ho)[None, :, None]
    px = np.arange(wo)[None, None, :]
    cols = np.zeros((bsz, c, kh * kw, ho, wo))
    for i in range(kh):
        for j in range(kw):
            t = i * kw + j
            ys = py * stride - pad + i * dil + offset[:, 2 * t]
            xs = px * stride - pad + j * dil + offset[:, 2 * t + 1]
            cols[:, :, t] = sample_bilinear(x, ys, xs) * mask[:, t][:, None]
    out = np.einsum("oct,bcthw->bohw", weight.reshape(o, c, kh * kw), cols)
    return out + np.asarray(bias, np.float64)[None, :, None, None], cols


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def dcn_cell_ref(x, w, b, ow, ob, stride=1, pad=1):
    """Full DCNv2 block in numpy: offset/mask conv, then the deformable conv."""
    om = conv2d_np(x, ow, ob, pad=pad, stride=stride)
    t = ow.shape[0] // 3
    out, cols = dcnv2_np(x, w, b, om[:, :2 * t], sigmoid(om[:, 2 * t:]), stride=stride, pad=pad)
    return out, cols, om


# --------------------------------------------------------------------------- helpers

def _make_cell(rng, cin, cout, offset_scale=0.5, offset_bias=1.0, stride=1):
    cell = ModulatedDeformConv2d(cin, cout, 3, stride=stride, padding=1, train_sampling=True)
    w = rng.normal(0, 1, size=(cout, cin, 3, 3)).astype(np.float32)
    b = rng.normal(0, 1, size=(cout,)).astype(np.float32)
    ow = (rng.normal(0, 1, size=(27, cin, 3, 3)) * offset_scale).astype(np.float32)
    ob = (rng.normal(0, 1, size=(27,)) * offset_bias).astype(np.float32)
    cell.weight.set_data(Tensor(w))
    cell.bias.set_data(Tensor(b))
    cell.conv_offset_mask.weight.set_data(Tensor(ow))
    cell.conv_offset_mask.bias.set_data(Tensor(ob))
    return cell, w, b, ow, ob


def _record(name, diff):
    MAX_DIFF[name] = max(MAX_DIFF.get(name, 0.0), float(diff))


# --------------------------------------------------------------------------- reference self-checks

def test_reference_zero_offset_unit_mask_is_plain_conv():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 6))
    w = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=4)
    out, _ = dcnv2_np(x, w, b, np.zeros((2, 18, 5, 6)), np.ones((2, 9, 5, 6)))
    np.testing.assert_allclose(out, conv2d_np(x, w, b), atol=1e-12)
    # and conv2d_np itself on a hand case: all-ones 3x3 kernel on a 3x3 ones image, pad 1 -> neighbour counts
    ones = conv2d_np(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), [0.0])
    np.testing.assert_array_equal(ones[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


def test_reference_vectorised_equals_scalar_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 2, 4, 5))
    w = rng.normal(size=(3, 2, 3, 3))
    b = rng.normal(size=3)
    off = rng.normal(0, 2, size=(1, 18, 4, 5))
    m = rng.uniform(size=(1, 9, 4, 5))
    out, _ = dcnv2_np(x, w, b, off, m)
    loop = np.zeros_like(out)
    for py in range(4):
        for px in range(5):
            acc = b.copy()
            for i in range(3):
                for j in range(3):
                    t = 3 * i + j
                    v = sample_scalar(x[0], py - 1 + i + off[0, 2 * t, py, px], px - 1 + j + off[0, 2 * t + 1, py, px])
                    acc += w[:, :, i, j] @ v * m[0, t, py, px]
            loop[0, :, py, px] = acc
    np.testing.assert_allclose(out, loop, atol=1e-12)


def test_reference_sample_by_hand():
    img = np.arange(1, 13, dtype=np.float64).reshape(1, 3, 4)  # f(y, x) = 4y + x + 1
    assert sample_scalar(img, 1.25, 2.5)[0] == pytest.approx(4 * 1.25 + 2.5 + 1)  # interior: linear
    # y = -0.5 straddles the top border: only the row y=0 corners count, weight 0.5
    assert sample_scalar(img, -0.5, 1.0)[0] == pytest.approx(0.5 * 2)
    assert sample_scalar(img, -1.0, 1.0)[0] == 0.0
    assert sample_scalar(img, 2.0, 3.5)[0] == pytest.approx(0.5 * 12)  # right border x in (W-1, W)
    assert sample_scalar(img, 2.0, 4.0)[0] == 0.0


# --------------------------------------------------------------------------- the cell

def test_init_layout():
    cell = ModulatedDeformConv2d(4, 6, 3, padding=1)
    w = cell.weight.asnumpy()
    assert w.shape == (6, 4, 3, 3)
    assert np.abs(w).max() <= 1 / math.sqrt(36) + 1e-7 and np.abs(w).max() > 0
    assert cell.bias.asnumpy().shape == (6,) and not cell.bias.asnumpy().any()
    assert cell.conv_offset_mask.weight.asnumpy().shape == (27, 4, 3, 3)
    assert not cell.conv_offset_mask.weight.asnumpy().any()
    assert not cell.conv_offset_mask.bias.asnumpy().any()


def test_zero_offset_conv_is_half_plain_conv(mode):
    rng = np.random.default_rng(2)
    cell = ModulatedDeformConv2d(3, 4, 3, padding=1)  # offset conv zero-initialised
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    cell.weight.set_data(Tensor(w))
    cell.bias.set_data(Tensor(b))
    x = rng.normal(size=(2, 3, 7, 9)).astype(np.float32)
    got = cell(Tensor(x)).asnumpy()
    want = 0.5 * conv2d_np(x, w, np.zeros(4)) + b[None, :, None, None]
    assert got.shape == (2, 4, 7, 9)
    diff = np.abs(got - want).max()
    _record("zero_offset", diff)
    assert diff < ATOL


@pytest.mark.parametrize("tap, dy, dx", [((0, 1), 0.25, -0.5), ((1, 0), -0.75, 0.5), ((0, 2), 1.5, 0.25),
                                         ((2, 1), -0.25, -1.75)])
def test_single_tap_offset_by_hand(mode, tap, dy, dx):
    """Only tap (i, j) has weight 1; the offset conv is zero except its bias: dy at ch 2t, dx at 2t+1,
    a mask logit of ln 3 at ch 18+t (sigmoid = 0.75). On the linear image f(y, x) = W y + x + 1 an
    interior bilinear sample is exact, so out(py, px) = 0.75 f(py - 1 + i + dy, px - 1 + j + dx)."""
    i, j = tap
    t = 3 * i + j
    h, w = 8, 10
    cell = ModulatedDeformConv2d(1, 1, 3, padding=1)
    wt = np.zeros((1, 1, 3, 3), np.float32)
    wt[0, 0, i, j] = 1.0
    cell.weight.set_data(Tensor(wt))
    ob = np.zeros(27, np.float32)
    ob[2 * t], ob[2 * t + 1], ob[18 + t] = dy, dx, math.log(3.0)
    cell.conv_offset_mask.bias.set_data(Tensor(ob))
    img = (np.arange(h * w, dtype=np.float32) + 1).reshape(1, 1, h, w)
    got = cell(Tensor(img)).asnumpy()[0, 0]
    py, px = np.mgrid[0:h, 0:w]
    ys, xs = py - 1 + i + dy, px - 1 + j + dx
    inside = (ys >= 0) & (ys <= h - 1) & (xs >= 0) & (xs <= w - 1)
    assert inside.sum() > 20
    np.testing.assert_allclose(got[inside], 0.75 * (w * ys[inside] + xs[inside] + 1), rtol=1e-5)
    # border pixels against the scalar DCNv2 sampler
    for y, x in zip(*np.nonzero(~inside)):
        want = 0.75 * sample_scalar(img[0].astype(np.float64), ys[y, x], xs[y, x])[0]
        assert got[y, x] == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("cin, cout, hw", [(3, 2, (7, 9)), (4, 5, (12, 12))])
def test_dcn_matches_numpy_dcnv2(mode, cin, cout, hw, dcn_path):
    rng = np.random.default_rng(cin * 100 + cout)
    cell, w, b, ow, ob = _make_cell(rng, cin, cout)
    cell.set_train(dcn_path == "sampled")
    x = rng.normal(size=(2, cin) + hw).astype(np.float32)
    want, _, om = dcn_cell_ref(x, w, b, ow, ob)

    # the random offsets really exercise the interesting cases
    off = om[:, :18]
    assert np.mean(np.abs(off) > 1) > 0.2                     # beyond +-1 px
    assert np.mean(np.abs(off - np.round(off)) > 0.05) > 0.8  # fractional
    ys = np.arange(hw[0])[None, :, None] - 1 + 0 + off[:, 0]  # tap (0, 0)
    assert np.any(ys <= -1) and np.any((ys > -1) & (ys < 0))  # outside, and straddling the border
    m = sigmoid(om[:, 18:])
    assert m.min() < 0.2 and m.max() > 0.8

    got = cell(Tensor(x)).asnumpy()
    assert got.shape == (2, cout) + hw
    np.testing.assert_allclose(cell.conv_offset_mask(Tensor(x)).asnumpy(), om, atol=1e-4)
    diff = np.abs(got - want).max()
    _record(f"dcn_{mode}_{dcn_path}", diff)
    assert diff < ATOL, f"max abs diff {diff} (output scale {np.abs(want).max():.2f})"


def test_dcn_stride2_matches_numpy_dcnv2(mode, dcn_path):
    rng = np.random.default_rng(7)
    cell, w, b, ow, ob = _make_cell(rng, 3, 4, stride=2)
    cell.set_train(dcn_path == "sampled")
    x = rng.normal(size=(2, 3, 9, 10)).astype(np.float32)
    want, _, _ = dcn_cell_ref(x, w, b, ow, ob, stride=2)
    got = cell(Tensor(x)).asnumpy()
    assert got.shape == want.shape == (2, 4, 5, 5)
    diff = np.abs(got - want).max()
    _record(f"dcn_stride2_{mode}_{dcn_path}", diff)
    assert diff < ATOL


def test_raw_op_channel_layout_is_dx_dy_mask(mode):
    """Documents what MindSpore's ops.deformable_conv2d itself expects: [dx(9) | dy(9) | mask(9)],
    taps row-major, DCNv2 border rule. (The cell regroups DCNv2's interleaved (dy, dx) into this.)"""
    h, w = 5, 6
    img = (np.arange(h * w, dtype=np.float32) + 1).reshape(1, 1, h, w)
    wt = np.zeros((9, 1, 3, 3), np.float32)
    for t in range(9):
        wt[t, 0, t // 3, t % 3] = 1.0  # output channel t sees tap t only
    t = 5  # tap (1, 2)
    off = np.zeros((1, 27, h, w), np.float32)
    off[:, 18:] = 1.0
    off[:, t] = 0.5        # dx of tap 5
    off[:, 9 + t] = -0.25  # dy of tap 5
    out = ops.deformable_conv2d(Tensor(img), Tensor(wt), Tensor(off), (3, 3), (1, 1, 1, 1),
                                (1, 1, 1, 1)).asnumpy()[0]
    py, px = np.mgrid[0:h, 0:w]
    want = np.array([[sample_scalar(img[0].astype(np.float64), y - 1 + 1 - 0.25, x - 1 + 2 + 0.5)[0]
                      for x in range(w)] for y in range(h)])
    np.testing.assert_allclose(out[t], want, atol=1e-5)
    # untouched taps: plain shifted copies of the image
    np.testing.assert_allclose(out[4], img[0, 0], atol=1e-6)


# --------------------------------------------------------------------------- gradients

def test_gradients_graph_mode(graph_mode, dcn_path):
    rng = np.random.default_rng(11)
    cin, cout, bsz, h, w = 3, 2, 2, 6, 7
    cell, wt, b, ow, ob = _make_cell(rng, cin, cout)
    cell.set_train(dcn_path == "sampled")
    x = rng.normal(size=(bsz, cin, h, w)).astype(np.float32)
    params = cell.trainable_params()
    names = [p.name for p in params]
    assert names == ["weight", "bias", "conv_offset_mask.weight", "conv_offset_mask.bias"]

    def loss_fn(inp):
        return cell(inp).sum()

    value, grads = ms.value_and_grad(loss_fn, None, params)(Tensor(x))
    grads = {n: g.asnumpy() for n, g in zip(names, grads)}
    for n, g in grads.items():
        assert np.all(np.isfinite(g)), n

    want_out, cols, _ = dcn_cell_ref(x, wt, b, ow, ob)
    assert float(value.asnumpy()) == pytest.approx(want_out.sum(), rel=1e-4, abs=1e-3)
    # d(sum out)/d bias[o] = number of output pixels x batch
    np.testing.assert_allclose(grads["bias"], np.full(cout, bsz * h * w), rtol=1e-6)
    # d(sum out)/d weight[o, c, i, j] = sum over b, py, px of the modulated sample of tap (i, j), channel c
    gw = cols.sum(axis=(0, 3, 4)).reshape(cin, 3, 3)
    diff_w = np.abs(grads["weight"] - gw[None]).max()
    _record("grad_weight", diff_w)
    np.testing.assert_allclose(grads["weight"], np.broadcast_to(gw, (cout, cin, 3, 3)), rtol=1e-4, atol=1e-3)

    # offset / mask conv: central finite differences of the float64 numpy reference
    ow64, ob64 = ow.astype(np.float64), ob.astype(np.float64)

    def ref_sum(ow_, ob_):
        return dcn_cell_ref(x, wt, b, ow_, ob_)[0].sum()

    eps = 1e-5
    worst = 0.0
    for idx in (0, 1, 7, 16, 18, 22, 26):  # dy, dx and mask channels
        p, m = ob64.copy(), ob64.copy()
        p[idx] += eps
        m[idx] -= eps
        fd = (ref_sum(ow64, p) - ref_sum(ow64, m)) / (2 * eps)
        worst = max(worst, abs(fd - grads["conv_offset_mask.bias"][idx]))
        assert grads["conv_offset_mask.bias"][idx] == pytest.approx(fd, rel=1e-3, abs=1e-3)
    for idx in ((0, 0, 0, 0), (3, 2, 1, 1), (20, 1, 2, 0)):
        p, m = ow64.copy(), ow64.copy()
        p[idx] += eps
        m[idx] -= eps
        fd = (ref_sum(p, ob64) - ref_sum(m, ob64)) / (2 * eps)
        worst = max(worst, abs(fd - grads["conv_offset_mask.weight"][idx]))
        assert grads["conv_offset_mask.weight"][idx] == pytest.approx(fd, rel=1e-3, abs=1e-3)
    _record("grad_offset_fd", worst)


def test_gradient_wrt_input_graph_mode(graph_mode, dcn_path):
    """d(sum out)/dx by finite differences of the numpy reference at a few pixels (incl. a border one)."""
    rng = np.random.default_rng(12)
    cell, wt, b, ow, ob = _make_cell(rng, 2, 3, offset_scale=0.3)
    cell.set_train(dcn_path == "sampled")
    x = rng.normal(size=(1, 2, 5, 6)).astype(np.float32)
    def loss_fn(inp):
        return cell(inp).sum()

    gx = ms.grad(loss_fn)(Tensor(x)).asnumpy()
    assert np.all(np.isfinite(gx))
    x64 = x.astype(np.float64)
    eps = 1e-5
    for idx in ((0, 0, 0, 0), (0, 1, 2, 3), (0, 0, 4, 5)):
        p, m = x64.copy(), x64.copy()
        p[idx] += eps
        m[idx] -= eps
        fd = (dcn_cell_ref(p, wt, b, ow, ob)[0].sum() - dcn_cell_ref(m, wt, b, ow, ob)[0].sum()) / (2 * eps)
        assert gx[idx] == pytest.approx(fd, rel=1e-3, abs=1e-3)


def test_report_max_differences():
    """Runs last in this file; prints the measured maxima (use -s to see them)."""
    if MAX_DIFF:
        print("\nDCN max abs differences:", {k: f"{v:.2e}" for k, v in MAX_DIFF.items()})


def test_vector_loop_padding_is_the_least_that_makes_a_multiple_of_8():
    from centerdet.models.dcn import _padding_for_vector_loop

    for rows in range(1, 40):
        for cols in range(1, 20):
            extra = _padding_for_vector_loop(rows, cols)
            assert rows * (cols + extra) % 8 == 0
            assert all(rows * (cols + e) % 8 for e in range(extra))


def test_training_path_gradients_equal_the_fused_op_and_log_no_kernel_error(graph_mode, mindspore_kernels, capfd):
    """Sample counts that leave 1-4 in grid-sample's 8-wide loop made its CPU backward log
    'memcpy_s failed'; the padded grid must give the fused op's gradients without that."""
    rng = np.random.default_rng(5)
    for shape in ((2, 3, 6, 7), (1, 4, 1, 1), (2, 4, 3, 17)):
        cell = _make_cell(rng, shape[1], 3, offset_scale=0.3)[0]
        x = Tensor(rng.normal(size=shape).astype(np.float32))
        params = cell.trainable_params()
        grads = {}
        def loss_fn(inp):
            return (cell(inp) ** 2).sum()

        for training in (False, True):
            cell.set_train(training)
            gx, gp = ms.grad(loss_fn, 0, params)(x)
            grads[training] = [gx.asnumpy()] + [g.asnumpy() for g in gp]
        for fused, sampled in zip(grads[False], grads[True]):
            np.testing.assert_allclose(sampled, fused, rtol=1e-4, atol=1e-5 * np.abs(fused).max())
    assert "memcpy_s failed" not in capfd.readouterr().err


@pytest.mark.skipif(not cpu_ops.available(), reason="centerdet CPU kernels not built")
def test_onednn_path_equals_the_fused_op_with_gradients(graph_mode):
    """Same weights, both kernel sets: outputs and the gradients of the input and every parameter,
    on shapes with samples leaving the image, a stride of 2 and a 1×1 map."""
    rng = np.random.default_rng(21)
    for shape, stride in (((2, 3, 6, 7), 1), ((1, 4, 1, 1), 1), ((2, 5, 9, 10), 2), ((2, 16, 12, 11), 1)):
        cells = []
        for flag in (False, True):
            cpu_ops.set_enabled(flag)
            cells.append(_make_cell(np.random.default_rng(shape[1]), shape[1], 3, offset_scale=0.6,
                                    stride=stride)[0])
        cpu_ops.set_enabled(None)
        assert not cells[0].onednn and cells[1].onednn
        x = Tensor(rng.normal(size=shape).astype(np.float32))
        results = []
        for cell in cells:
            cell.set_train(False)
            params = cell.trainable_params()

            def loss_fn(inp):
                return (cell(inp) ** 2).sum()

            out = cell(x).asnumpy()
            gx, gp = ms.grad(loss_fn, 0, params)(x)
            results.append([out, gx.asnumpy()] + [g.asnumpy() for g in gp])
        for want, got in zip(*results):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
