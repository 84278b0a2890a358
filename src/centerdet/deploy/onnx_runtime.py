"""``--backend onnxruntime``: an ONNX file of export.py run by onnxruntime where eval.py and detect
run the MindSpore network, with the same canvases, decode and metrics (inference.Predictor)."""
import json
import os
from typing import List

import numpy as np

from centerdet import tasks
from centerdet.errors import CenterDetError


class OnnxRuntimeNet:
    """``run(batch)``: the head maps of a (N, 3, H, W) float32 batch, in the task's head order."""

    def __init__(self, cfg, log=print):
        path = cfg.load_checkpoint_path
        if not path:
            raise CenterDetError("config key 'load_checkpoint_path' is empty: give the .onnx file of export.py "
                                 "that --backend onnxruntime runs")
        if not os.path.isfile(path):
            raise CenterDetError(f"load_checkpoint_path {path}: file not found")
        try:
            import onnxruntime as ort
        except ImportError:
            raise CenterDetError("--backend onnxruntime needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types: the file is not a model it runs
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CenterDetError(f"{path}: onnxruntime cannot load it ({first[:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "centerdet.heads" not in meta:
            raise CenterDetError(f"{path}: not an ONNX file of centerdet's export.py (no centerdet metadata); "
                                 f"export one with: python export.py --file_format ONNX --load_checkpoint_path CKPT")
        heads = [s.name for s in tasks.of(cfg).heads(cfg)]
        if json.loads(meta["centerdet.heads"]) != heads or meta.get("centerdet.model") != cfg.model:
            raise CenterDetError(f"{path} holds a {meta.get('centerdet.model')} network with heads "
                                 f"{meta['centerdet.heads']}; this config's {cfg.model} has {heads}: give its recipe "
                                 f"with --config")
        self._warn_differences(path, meta, cfg, log)
        self.heads, self.input = heads, self.session.get_inputs()[0].name
        self.onnx_path = path

    @staticmethod
    def _warn_differences(path, meta, cfg, log):
        from centerdet.config import differences

        try:
            stored = json.loads(meta.get("centerdet.config", "{}"))
        except ValueError:
            stored = {}
        changed = differences(stored, cfg) if isinstance(stored, dict) and stored else []
        if changed:
            log(f"warning: {path} was exported with {'; '.join(changed)}")

    def run(self, batch: np.ndarray) -> List[np.ndarray]:
        return self.session.run(self.heads, {self.input: np.ascontiguousarray(batch, np.float32)})
