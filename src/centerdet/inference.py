"""Single-image inference: test-time resize/pad, network run (with optional flip), decode, merge."""
import cv2
import numpy as np

from centerdet import tasks
from centerdet.data.transforms import normalize
from centerdet.decode import merge_detections, sigmoid, to_image_coords
from centerdet.geometry import get_affine_transform, padded_size

NET_MULTIPLE = 32  # the backbone's total stride: network inputs are padded to a multiple of it


def make_test_canvas(img, scale, cfg, multiple: int = NET_MULTIPLE, corner: bool = False):
    """Resize by ``scale`` and place on the test canvas. Returns (BGR float [0,1] canvas, meta).

    corner: the resized image sits at the top-left of the canvas, its pixels unmoved (what a
    runtime fed the picture itself sees; detect uses it). Else, keep_res: the image keeps its size
    and is centred on a canvas padded to a multiple of test_pad + 1 (CenterNet's evaluation);
    otherwise it is letterboxed into input_res_test. The canvas is then zero-padded at the
    bottom/right to a multiple of ``multiple`` (32, or more to share one compiled graph between
    nearby sizes), which moves no coordinates.
    """
    h, w = img.shape[:2]
    new_h, new_w = int(h * scale), int(w * scale)
    if corner:
        inp_h, inp_w = (-(-n // NET_MULTIPLE) * NET_MULTIPLE for n in (new_h, new_w))
        center = np.array([inp_w / 2.0, inp_h / 2.0], np.float32)
        size = np.array([inp_w, inp_h], np.float32)
    elif cfg.keep_res:
        inp_h, inp_w = padded_size(new_h, cfg.test_pad), padded_size(new_w, cfg.test_pad)
        center = np.array([new_w // 2, new_h // 2], np.float32)
        size = np.array([inp_w, inp_h], np.float32)
    else:
        inp_h, inp_w = cfg.input_res_test
        center = np.array([new_w / 2.0, new_h / 2.0], np.float32)
        size = float(max(new_h, new_w))
    resized = cv2.resize(img, (new_w, new_h)) if (new_h, new_w) != (h, w) else img
    net_h = -(-inp_h // multiple) * multiple
    net_w = -(-inp_w // multiple) * multiple
    if corner:
        canvas = np.zeros((net_h, net_w, 3), resized.dtype)
        canvas[:new_h, :new_w] = resized
    else:
        trans = get_affine_transform(center, size, 0, (inp_w, inp_h))
        canvas = cv2.warpAffine(resized, trans, (net_w, net_h), flags=cv2.INTER_LINEAR)
    meta = {"center": center, "scale": size, "out_size": (inp_w // cfg.down_ratio, inp_h // cfg.down_ratio),
            "test_scale": scale}
    return canvas.astype(np.float32) / 255.0, meta


class Predictor:
    """Wraps a detector cell (or an object whose ``run(batch)`` gives the head maps: another backend);
    call with a BGR image to get detections in image pixels: (N, 6) rows
    [x1, y1, x2, y2, score, label], plus the task's extra (x, y) columns (CenterFace's landmarks)."""

    def __init__(self, net, cfg, multiple: int = NET_MULTIPLE, corner: bool = False, compile_after: int = 1):
        """compile_after: in PyNative, a canvas shape runs op by op until its compile_after-th
        network call, which compiles it (ms.jit) for the rest; 0 never compiles. In graph mode
        every shape is compiled at its first call, whatever this says."""
        self.net, self.cfg, self.multiple, self.corner = net, cfg, multiple, corner
        self.specs = tasks.of(cfg).heads(cfg)
        self.compile_after = compile_after
        self._calls, self._compiled, self._jit = {}, set(), None

    def run_net(self, batch):
        if not hasattr(self.net, "construct"):  # another backend's network (deploy/onnx_runtime.py)
            return self.net.run(batch)
        import mindspore as ms
        from mindspore import Tensor

        from centerdet import graph_cache
        from centerdet.runtime import compile_cell, release_free_memory
        x, shape = Tensor(batch), batch.shape
        calls = self._calls[shape] = self._calls.get(shape, 0) + 1
        if ms.get_context("mode") == ms.GRAPH_MODE:
            if calls == 1:  # each new input shape is a new graph
                compile_cell(self.net, x, cached=True)
                self._compiled.add(shape)
            outs = self.net(x)
        elif shape in self._compiled:
            outs = self._jit(x)
        elif self.compile_after and (calls >= self.compile_after
                                     or calls == 1 and graph_cache.lookup(self.net, [x], "jit")):
            # a shape seen this often will likely come again: a graph pays its compile back (and
            # one an earlier run left in the graph cache costs next to nothing)
            if self._jit is None:
                self._jit = ms.jit(self.net.construct)
            outs = graph_cache.compile_cached(lambda: self._jit(x), self.net, [x], "jit")
            self._compiled.add(shape)
            release_free_memory()
        else:
            outs = self.net(x)
        return [o.asnumpy() for o in outs]

    def heads_many(self, canvases):
        """[{head name: map}] of canvases of one shape, run as one batch; heatmaps as probabilities.
        With flip_test the heads whose spec says flip "mean" (CenterNet: heatmap and sizes) are
        averaged with the mirrored pass; the others come from the upright pass."""
        x = np.stack([normalize(c, self.cfg.mean, self.cfg.std) for c in canvases])
        n = len(x)
        if self.cfg.flip_test:
            x = np.concatenate([x, x[:, :, :, ::-1]], 0)
        outs = [sigmoid(o) if spec.heatmap else o
                for spec, o in zip(self.specs, self.run_net(np.ascontiguousarray(x)))]
        result = []
        for i in range(n):
            maps = {}
            for spec, out in zip(self.specs, outs):
                mean = self.cfg.flip_test and spec.flip == "mean"
                maps[spec.name] = (out[i] + out[n + i][:, :, ::-1]) / 2 if mean else out[i]
            result.append(maps)
        return result

    @property
    def graphs(self) -> int:
        """How many input shapes were compiled (one graph each)."""
        return len(self._compiled)

    def __call__(self, img, base_scale: float = 1.0):
        return self.predict_many([img], [base_scale])[0]

    def predict_many(self, imgs, base_scales):
        """__call__ on several images; those whose canvases share a shape run as one batch."""
        per_image = [[] for _ in imgs]
        for scale in self.cfg.multi_scales:
            made = [make_test_canvas(img, b * scale, self.cfg, self.multiple, self.corner)
                    for img, b in zip(imgs, base_scales)]
            groups = {}
            for i, (canvas, _) in enumerate(made):
                groups.setdefault(canvas.shape, []).append(i)
            for index in groups.values():
                for i, maps in zip(index, self.heads_many([made[i][0] for i in index])):
                    per_image[i].append(decode_heads(maps, made[i][1], self.cfg))
        return [merge_scales(per_scale, self.cfg) for per_scale in per_image]


def decode_heads(maps, meta, cfg):
    """{head name: map} of one canvas (heatmaps as probabilities) → detections in image pixels;
    the one decode step eval.py and the deployment postprocess share."""
    ow, oh = meta["out_size"]
    dets = tasks.of(cfg).decode({name: m[:, :oh, :ow] for name, m in maps.items()}, cfg)
    return to_image_coords(dets, meta["center"], meta["scale"], meta["out_size"], meta["test_scale"])


def merge_scales(per_scale, cfg):
    use_nms = cfg.SOFT_NMS or len(cfg.multi_scales) > 1
    return merge_detections(per_scale, cfg.num_classes, use_nms, cfg.nms_method, cfg.nms_iou, cfg.nms_sigma,
                            cfg.nms_score_thresh, cfg.max_per_image)
