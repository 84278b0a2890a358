"""Metrics: COCO box AP (pycocotools) and WIDER FACE Easy / Medium / Hard AP (the official protocol).

Each task's metric (``Task.metric``) is an object the one inference runner feeds
(``centerdet.engine.evaluator.run_inference``): ``images()`` lists what to run on, ``update`` takes
one image's detections, ``compute`` writes the results and returns the metrics.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


@dataclasses.dataclass
class EvalImage:
    """One image to evaluate: ``key`` identifies it to its metric (and in deployment files, so it
    is json: a COCO image id, or [event, name] for WIDER FACE); ``name`` is the stem of its
    picture; ``gt_boxes`` (M, 4) xyxy, drawn dashed on it, or None."""
    key: Any
    path: str
    name: str
    gt_boxes: Optional[np.ndarray] = None


class Metric:
    """The interface the runner uses; see CocoMetric and WiderFaceMetric. ``report_dir``: where
    metrics and pictures go (the results folder itself unless a metric needs it kept clean)."""
    class_names: Sequence[str] = ()
    out_dir: Optional[str] = None

    @property
    def report_dir(self) -> Optional[str]:
        return self.out_dir

    def images(self) -> List[EvalImage]:
        raise NotImplementedError

    def update(self, image: EvalImage, dets: np.ndarray) -> None:
        raise NotImplementedError

    def compute(self, score: bool = True) -> Optional[Dict[str, float]]:
        """Write the results; with ``score``, also the metrics (returned), else None."""
        raise NotImplementedError
