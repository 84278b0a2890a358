"""COCO evaluation wrapper: hand-derived metrics on a tiny GT, format parity with pycocotools."""
import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from centerdet.errors import CenterDetError
from centerdet.evaluation.coco import (METRIC_KEYS, detections_to_results, evaluate,
                                       format_metrics, write_metrics, write_results)

# Non-contiguous COCO ids: contiguous label 0 ↔ id 3, label 1 ↔ id 7.
CAT_IDS = [3, 7]

# (id, image_id, category_id, [x, y, w, h], iscrowd). Areas: small < 32² = 1024 < medium < 96² = 9216.
ANNOTATIONS = [
    (1, 1, 3, [10, 10, 20, 20], 0),      # small   400
    (2, 1, 7, [100, 100, 50, 40], 0),    # medium 2000
    (3, 2, 3, [200, 150, 150, 120], 0),  # large 18000
    (4, 2, 7, [0, 0, 300, 300], 1),      # crowd region
    (5, 2, 7, [400, 400, 25, 30], 0),    # small   750
    (6, 3, 3, [50, 60, 60, 60], 0),      # medium 3600
    (7, 3, 7, [300, 200, 200, 150], 0),  # large 30000
]
CROWD_ID = 4


@pytest.fixture()
def gt_path(tmp_path):
    gt = {
        "images": [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
        # listed out of order on purpose: the id, not the position, is what counts
        "categories": [{"id": 7, "name": "b", "supercategory": "x"},
                       {"id": 3, "name": "a", "supercategory": "x"}],
        "annotations": [{"id": aid, "image_id": img, "category_id": cat, "bbox": box,
                         "area": float(box[2] * box[3]), "iscrowd": crowd}
                        for aid, img, cat, box, crowd in ANNOTATIONS],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return str(path)


def dets_from_gt(keep=lambda aid: True, label_of=lambda cat: CAT_IDS.index(cat), score=0.9):
    """Perfect detections per image: GT boxes as [x1, y1, x2, y2, score, label] rows."""
    per_image = {}
    for aid, img, cat, (x, y, w, h), _ in ANNOTATIONS:
        if keep(aid):
            per_image.setdefault(img, []).append([x, y, x + w, y + h, score, label_of(cat)])
    return per_image


def to_results(per_image):
    results = []
    for img, rows in per_image.items():
        results += detections_to_results(img, np.array(rows, np.float32), CAT_IDS)
    return results


def run(gt_path, results, **kw):
    lines = []
    metrics = evaluate(gt_path, results, log=lines.append, **kw)
    return metrics, lines


# ---------------------------------------------------------------- detections_to_results


def test_detections_to_results_by_hand():
    dets = np.array([
        [10.123, 20.456, 50.789, 80.3, 0.98765, 1],   # kept
        [5.0, 5.0, 5.0, 9.0, 0.5, 0],                  # zero width → dropped
        [5.0, 5.0, 4.0, 9.0, 0.5, 0],                  # negative width → dropped
        [np.nan, 1.0, 4.0, 9.0, 0.5, 0],               # non-finite → dropped
        [1.0, 2.0, 3.0, 4.004, 0.304, 0],              # kept
    ])
    out = detections_to_results(np.int64(42), dets, CAT_IDS)
    # w = 50.789 - 10.123 = 40.666 → 40.67; h = 80.3 - 20.456 = 59.844 → 59.84
    assert out == [
        {"image_id": 42, "category_id": 7, "bbox": [10.12, 20.46, 40.67, 59.84], "score": 0.99},
        {"image_id": 42, "category_id": 3, "bbox": [1.0, 2.0, 2.0, 2.0], "score": 0.3},
    ]
    assert type(out[0]["image_id"]) is int and type(out[0]["category_id"]) is int
    json.dumps(out)  # plain python types only


def test_detections_to_results_empty_and_bad_label():
    assert detections_to_results(1, np.zeros((0, 6)), CAT_IDS) == []
    assert detections_to_results(1, [], CAT_IDS) == []
    with pytest.raises(CenterDetError, match="label 2"):
        detections_to_results(1, [[0, 0, 5, 5, 0.9, 2]], CAT_IDS)


# ---------------------------------------------------------------- evaluate


def test_perfect_detections_score_one(gt_path):
    metrics, lines = run(gt_path, to_results(dets_from_gt(keep=lambda aid: aid != CROWD_ID)))
    assert list(metrics) == METRIC_KEYS
    # Every area range has GT of both classes, so every metric is defined and perfect; the crowd
    # region is not an object to find, so leaving it undetected costs no recall.
    for key in METRIC_KEYS:
        assert metrics[key] == pytest.approx(1.0), key
    assert lines[-12:] == format_metrics(metrics).splitlines()


def test_detection_on_crowd_region_is_ignored(gt_path):
    # A detection that matches only the crowd box is neither a true nor a false positive.
    per_image = dets_from_gt()
    crowd_rows = [r for r in per_image[2] if r[2] - r[0] == 300]
    crowd_rows[0][4] = 0.99  # rank it first: were it a false positive, precision would drop
    metrics, _ = run(gt_path, to_results(per_image))
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AR100"] == pytest.approx(1.0)


def test_one_missed_object_hand_derived(gt_path):
    # Drop annotation 6 (class id 3, 3 GT objects → 2 found, both with precision 1).
    # 101-point interpolation: recall thresholds 0.00, 0.01, ..., 1.00. Reached recall is 2/3,
    # so precision is 1 at thresholds 0.00..0.66 (67 points) and 0 at 0.67..1.00 (34 points):
    #   AP(class 3) = 67/101; AP(class 7) = 1  →  AP50 = (67/101 + 1) / 2 = 168/202 ≈ 0.8317.
    # Boxes are exact, so every IoU threshold gives the same value: AP = AP50 = AP75.
    # Recall: class 3 2/3, class 7 1 → AR100 = 5/6.
    metrics, _ = run(gt_path, to_results(dets_from_gt(keep=lambda aid: aid not in (CROWD_ID, 6))))
    assert metrics["AP50"] == pytest.approx(168 / 202)
    assert metrics["AP"] == pytest.approx(168 / 202)
    assert metrics["AP75"] == pytest.approx(168 / 202)
    assert metrics["AR100"] == pytest.approx(5 / 6)
    assert metrics["APm"] == pytest.approx(0.5)  # medium: class 3 (ann 6) missed, class 7 found


def test_top_ranked_false_positive_hand_derived(gt_path):
    # Class 3 gets an extra box on empty ground with the highest score. Ranked list: FP, TP, TP, TP.
    # Precision at recall 1/3, 2/3, 1 is 1/2, 2/3, 3/4; the interpolated precision (max to the
    # right) is 3/4 at every threshold → AP(class 3) = 0.75; AP50 = (0.75 + 1) / 2 = 0.875.
    per_image = dets_from_gt(keep=lambda aid: aid != CROWD_ID, score=0.5)
    per_image[3].append([500, 10, 560, 70, 0.95, 0])
    metrics, _ = run(gt_path, to_results(per_image))
    assert metrics["AP50"] == pytest.approx(0.875)
    assert metrics["AR100"] == pytest.approx(1.0)


def test_wrong_category_scores_zero(gt_path):
    swapped = dets_from_gt(keep=lambda aid: aid != CROWD_ID, label_of=lambda cat: 1 - CAT_IDS.index(cat))
    metrics, _ = run(gt_path, to_results(swapped))
    assert metrics["AP"] == 0.0
    assert metrics["AP50"] == 0.0
    assert metrics["AR100"] == 0.0


def test_empty_results_give_zeros_and_one_warning(gt_path):
    metrics, lines = run(gt_path, [])
    assert list(metrics) == METRIC_KEYS
    assert all(v == 0.0 for v in metrics.values())
    warnings = [line for line in lines if "warning" in line]
    assert len(warnings) == 1 and "no detections" in warnings[0]


def test_unknown_image_id_is_a_user_error(gt_path):
    results = to_results(dets_from_gt())
    results.append({"image_id": 999, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.5})
    with pytest.raises(CenterDetError, match="999"):
        run(gt_path, results)


def test_unknown_category_id_is_a_user_error(gt_path):
    # Writing the contiguous label instead of the COCO id is the classic mapping bug.
    results = [{"image_id": 1, "category_id": 0, "bbox": [10, 10, 20, 20], "score": 0.5}]
    with pytest.raises(CenterDetError, match="category_id 0"):
        run(gt_path, results)


def test_image_subset_and_coco_object_input(gt_path):
    # Only image 1 evaluated: detections on image 3 are missing but do not count. Image 1 has no
    # large GT, so AP_large is undefined: -1, as pycocotools reports it.
    per_image = dets_from_gt(keep=lambda aid: aid in (1, 2))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
    metrics, _ = run(gt, to_results(per_image), image_ids=[1])
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["APl"] == -1.0
    with pytest.raises(CenterDetError, match="12345"):
        run(gt, to_results(per_image), image_ids=[1, 12345])


def test_results_are_not_mutated(gt_path):
    results = to_results(dets_from_gt())
    before = json.dumps(results)
    run(gt_path, results)
    assert json.dumps(results) == before


def test_missing_area_and_iscrowd_are_filled(tmp_path, gt_path):
    data = json.loads(open(gt_path).read())
    data["annotations"] = [a for a in data["annotations"] if not a["iscrowd"]]
    for a in data["annotations"]:
        del a["area"], a["iscrowd"]
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(data))
    metrics, lines = run(str(path), to_results(dets_from_gt(keep=lambda aid: aid != CROWD_ID)))
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["APs"] == pytest.approx(1.0)  # area = w*h puts the small boxes in "small"
    assert any("lack 'area'" in line for line in lines)


# ---------------------------------------------------------------- formatting and files


def _pycocotools_summary(gt_path, results, image_ids=None):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, "bbox")
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ev.summarize()
    return ev.stats, out.getvalue().splitlines()


@pytest.mark.parametrize("image_ids", [None, [1]])
def test_format_matches_pycocotools_summary(gt_path, image_ids):
    results = to_results(dets_from_gt(keep=lambda aid: aid not in (CROWD_ID, 6)))
    results[0]["score"] = 0.37  # vary scores so values are not all round numbers
    stats, printed = _pycocotools_summary(gt_path, results, image_ids)
    assert len(printed) == 12
    assert format_metrics(dict(zip(METRIC_KEYS, stats))).splitlines() == printed
    metrics, _ = run(gt_path, results, image_ids=image_ids)
    assert format_metrics(metrics).splitlines() == printed
    assert list(metrics.values()) == pytest.approx(list(stats))


def test_format_metrics_example_line():
    metrics = dict.fromkeys(METRIC_KEYS, 0.0)
    metrics["AP"], metrics["ARl"] = 0.302, -1
    lines = format_metrics(metrics).splitlines()
    assert lines[0] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.302"
    assert lines[11] == " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000"


def test_write_metrics_and_results(tmp_path, gt_path):
    results = to_results(dets_from_gt())
    write_results(tmp_path / "dt.json", results)
    assert json.loads((tmp_path / "dt.json").read_text()) == results
    metrics, _ = run(gt_path, str(tmp_path / "dt.json"))
    write_metrics(tmp_path / "m.json", metrics)
    loaded = json.loads((tmp_path / "m.json").read_text())
    assert list(loaded) == METRIC_KEYS and loaded == pytest.approx(dict(metrics))


def test_cli(tmp_path, gt_path):
    dt = tmp_path / "dt.json"
    write_results(dt, to_results(dets_from_gt()))
    cmd = [sys.executable, "-m", "centerdet.evaluation.coco", "--gt", gt_path, "--dt", str(dt)]
    proc = subprocess.run(cmd + ["--out", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stdout.splitlines() if line.startswith(" Average")]
    assert len(summary) == 12 and summary[0].endswith("= 1.000")
    assert "loading annotations" not in proc.stdout and "DONE" not in proc.stdout
    assert json.loads((tmp_path / "m.json").read_text())["AP"] == pytest.approx(1.0)

    (tmp_path / "bad.json").write_text(json.dumps({"not": "a list"}))
    proc = subprocess.run([sys.executable, "-m", "centerdet.evaluation.coco", "--gt", gt_path,
                           "--dt", str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error:")
