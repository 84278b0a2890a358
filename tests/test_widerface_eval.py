"""WIDER FACE evaluation: hand-computed cases, the .mat / txt readers, the CLI, and an
independent literal transcription of the MATLAB eval_tools loops on a random problem."""
import json
import math
import os

import numpy as np
import pytest
from scipy.io import savemat

from centerdet.data.widerface import GroundTruth
from centerdet.errors import CenterDetError
from centerdet.evaluation import widerface as wf

SETTINGS = ("easy", "medium", "hard")
FAR = [500.0, 500.0, 10.0, 10.0]  # a box that overlaps no face in these tests


# ---------------------------------------------------------------- helpers


def _cell(items):
    arr = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        arr[i, 0] = item
    return arr


def write_gt(root, images, keeps):
    """The four official .mat files. images: [(event, name, [[x, y, w, h], ...])] grouped by
    event; keeps: {setting: [1-based index list per image]} (default: every face)."""
    events = list(dict.fromkeys(e for e, _, _ in images))
    groups = [[i for i, im in enumerate(images) if im[0] == e] for e in events]
    event_list = _cell(events)
    file_list = _cell([_cell([images[i][1] for i in g]) for g in groups])
    boxes = _cell([_cell([np.asarray(images[i][2], np.float64).reshape(-1, 4) for i in g])
                   for g in groups])
    savemat(os.path.join(root, "wider_face_val.mat"),
            {"event_list": event_list, "file_list": file_list, "face_bbx_list": boxes})
    for setting in SETTINGS:
        keep = keeps.get(setting) or [list(range(1, len(im[2]) + 1)) for im in images]
        gt_list = _cell([_cell([np.asarray(keep[i], np.int32).reshape(-1, 1) for i in g])
                         for g in groups])
        savemat(os.path.join(root, f"wider_{setting}_val.mat"),
                {"event_list": event_list, "file_list": file_list, "gt_list": gt_list})
    return str(root)


def one_image_gt(tmp_path, faces, keeps=None):
    root = write_gt(tmp_path, [("0--Parade", "img_0", faces)],
                    {s: [k] for s, k in (keeps or {}).items()})
    return wf.load_ground_truth(root)


def aps(result):
    return [result[s] for s in SETTINGS]


FACES4 = [[0, 0, 20, 20], [50, 0, 20, 20], [100, 0, 20, 20], [150, 0, 20, 20]]


# ---------------------------------------------------------------- ground truth reader


def test_load_ground_truth_structure(tmp_path):
    images = [("0--Parade", "a", FACES4[:2]), ("0--Parade", "b", []), ("1--Handshaking", "c", FACES4[:3])]
    gt = wf.load_ground_truth(write_gt(tmp_path, images, {"easy": [[2], [], []]}))
    assert [(e, names) for e, names, _ in gt.events] == [("0--Parade", ["a", "b"]), ("1--Handshaking", ["c"])]
    assert gt.events[0][2][1].shape == (0, 4)
    np.testing.assert_array_equal(gt.events[1][2][0], FACES4[:3])
    assert gt.keep["easy"][0][0].tolist() == [1]  # 1-based in the file, 0-based here
    assert gt.keep["hard"][1][0].tolist() == [0, 1, 2]
    assert gt.num_images == 3 and gt.num_faces() == 5 and gt.num_faces("easy") == 1


def test_missing_gt_file_is_named(tmp_path):
    write_gt(tmp_path, [("0--Parade", "a", FACES4)], {})
    os.remove(tmp_path / "wider_hard_val.mat")
    with pytest.raises(CenterDetError, match=r"not found: .*wider_hard_val\.mat.*eval_tools"):
        wf.load_ground_truth(str(tmp_path))


def test_gt_order_mismatch_and_bad_index(tmp_path):
    write_gt(tmp_path, [("0--Parade", "a", FACES4), ("0--Parade", "b", FACES4)], {})
    other = tmp_path / "other"
    other.mkdir()
    write_gt(other, [("0--Parade", "b", FACES4), ("0--Parade", "a", FACES4)], {})
    os.replace(other / "wider_easy_val.mat", tmp_path / "wider_easy_val.mat")
    with pytest.raises(CenterDetError, match=r"wider_easy_val\.mat.*differ"):
        wf.load_ground_truth(str(tmp_path))
    write_gt(tmp_path, [("0--Parade", "a", FACES4[:1])], {"medium": [[2]]})
    with pytest.raises(CenterDetError, match=r"wider_medium_val\.mat.*index 2 outside 1\.\.1"):
        wf.load_ground_truth(str(tmp_path))


# ---------------------------------------------------------------- hand-computed APs


def test_perfect_predictions_give_ap_1(tmp_path):
    images = [("0--Parade", "a", FACES4), ("0--Parade", "b", FACES4[:1]), ("1--Handshaking", "c", FACES4[:2])]
    keeps = {"easy": [[1], [], [2]], "medium": [[1, 2], [1], [2]]}
    gt = wf.load_ground_truth(write_gt(tmp_path, images, keeps))
    rng = np.random.default_rng(0)
    preds = {(e, n): np.column_stack([np.asarray(b, float), rng.random(len(b))])
             for e, n, b in images}
    result = wf.evaluate(preds, gt)
    assert aps(result) == [1.0, 1.0, 1.0]
    assert result["num_faces"] == {"easy": 2, "medium": 4, "hard": 7}
    assert result["images_without_predictions"] == 0


def test_misses_and_interleaved_false_positive(tmp_path):
    # 4 kept faces; scores 1.0 / 0.75 / 0.5 / 0.0 normalise to themselves (min 0, max 1).
    #   thr in (0.75, 1): face 1 found         -> P = 1/1, R = 1/4
    #   thr in (0.5, 0.75]: + far FP            -> P = 1/2, R = 1/4
    #   thr in (0, 0.5]: + face 2               -> P = 2/3, R = 2/4
    #   thr = 0: + far FP                       -> P = 2/4, R = 2/4
    # Envelope: 1 up to R = 1/4, then 2/3 up to R = 1/2 -> AP = 1/4 + 1/4 * 2/3 = 5/12.
    gt = one_image_gt(tmp_path, FACES4)
    preds = {("0--Parade", "img_0"): np.array([FACES4[0] + [1.0], FAR + [0.75],
                                               FACES4[1] + [0.5], FAR + [0.0]])}
    for ap in aps(wf.evaluate(preds, gt)):
        assert ap == pytest.approx(5 / 12, abs=1e-12)


def test_file_order_does_not_matter(tmp_path):
    gt = one_image_gt(tmp_path, FACES4)
    rows = np.array([FACES4[0] + [1.0], FAR + [0.75], FACES4[1] + [0.5], FAR + [0.0]])
    a = wf.evaluate({("0--Parade", "img_0"): rows}, gt)
    b = wf.evaluate({("0--Parade", "img_0"): rows[::-1].copy()}, gt)
    assert aps(a) == aps(b)  # sorted by score like MATLAB, unlike the Python ports


def test_predictions_on_ignored_faces_are_dropped(tmp_path):
    # Face 2 counts only in medium/hard, face 3 only in hard (and is never predicted).
    faces = FACES4[:3]
    gt = one_image_gt(tmp_path, faces, {"easy": [1], "medium": [1, 2], "hard": [1, 2, 3]})
    base = [faces[0] + [0.9], FAR + [0.1]]
    with_ignored = {("0--Parade", "img_0"): np.array([faces[1] + [0.95]] + base)}
    result = wf.evaluate(with_ignored, gt)
    # Easy: the top box hits an ignored face; counted as an FP it would give AP 0.5.
    assert result["easy"] == 1.0
    assert result["medium"] == 1.0
    assert result["hard"] == pytest.approx(2 / 3, abs=1e-12)  # face 3 missed
    assert result["num_faces"] == {"easy": 1, "medium": 2, "hard": 3}
    without = wf.evaluate({("0--Parade", "img_0"): np.array(base)}, gt)
    assert without["easy"] == result["easy"]
    # Easy precision is undefined (no proposal) at thresholds above the face-1 box only when the
    # ignored box is the only one there: NaN, not an error, and AP stays finite.
    assert np.isnan(result["curves"]["easy"]["precision"][0])


def test_lower_scored_duplicate_is_false_positive(tmp_path):
    #   thr in (0.75, 1): face 1         -> P 1,   R 1/2
    #   thr in (0.5, 0.75]: duplicate    -> P 1/2, R 1/2
    #   thr in (0, 0.5]: face 2          -> P 2/3, R 1
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6 (it would be 1 if the duplicate were not counted).
    gt = one_image_gt(tmp_path, FACES4[:2])
    dup = [1, 1, 20, 20]  # IoU with face 1 = 400/441
    preds = {("0--Parade", "img_0"): np.array([FACES4[0] + [1.0], dup + [0.75],
                                               FACES4[1] + [0.5], FAR + [0.0]])}
    for ap in aps(wf.evaluate(preds, gt)):
        assert ap == pytest.approx(5 / 6, abs=1e-12)


def test_no_fallback_to_second_best_face(tmp_path):
    # Two heavily overlapping faces; both boxes sit exactly on face 1. The second is an FP even
    # though its IoU with the still unfound face 2 is 0.9 (>= 0.5): only the best face is tried.
    faces = [[0, 0, 19, 19], [2, 0, 19, 19]]
    gt = one_image_gt(tmp_path, faces)
    preds = {("0--Parade", "img_0"): np.array([faces[0] + [1.0], faces[0] + [0.5], FAR + [0.0]])}
    # thr in (0.5, 1): P 1, R 1/2; then P 1/2 -> AP = 1/2.
    assert aps(wf.evaluate(preds, gt)) == [0.5, 0.5, 0.5]


def test_iou_threshold_option(tmp_path):
    # Face corners (0,0)-(9,9): +1 area 100. Box (0,0)-(3.5,9): +1 area 45, all inside -> IoU 0.45.
    gt = one_image_gt(tmp_path, [[0, 0, 9, 9]])
    preds = {("0--Parade", "img_0"): np.array([[0, 0, 3.5, 9, 0.9], FAR + [0.1]])}
    assert aps(wf.evaluate(preds, gt, iou_thresh=0.5)) == [0.0, 0.0, 0.0]
    assert aps(wf.evaluate(preds, gt, iou_thresh=0.4)) == [1.0, 1.0, 1.0]
    # (0,0)-(4,9): IoU exactly 50/100 = 0.5, which counts (>=).
    preds = {("0--Parade", "img_0"): np.array([[0, 0, 4, 9, 0.9], FAR + [0.1]])}
    assert aps(wf.evaluate(preds, gt, iou_thresh=0.5)) == [1.0, 1.0, 1.0]


def test_missing_prediction_file_counts_faces_as_misses(tmp_path):
    images = [("0--Parade", "a", FACES4[:1]), ("0--Parade", "b", FACES4[:1])]
    (tmp_path / "gt").mkdir()
    gt = wf.load_ground_truth(write_gt(tmp_path / "gt", images, {}))
    pred_dir = str(tmp_path / "pred")
    wf.write_predictions(pred_dir, "0--Parade", "a", [[0, 0, 19, 19, 0.9], [500, 500, 509, 509, 0.1]])
    logged = []
    preds = wf.read_predictions(pred_dir, gt, log=logged.append)
    assert list(preds) == [("0--Parade", "a")]
    assert logged and "1 of 2 images have no prediction file" in logged[0]
    result = wf.evaluate(preds, gt)
    assert aps(result) == [0.5, 0.5, 0.5]  # 1 of 2 faces found, at precision 1
    assert result["images_without_predictions"] == 1
    with pytest.raises(CenterDetError, match="no prediction files found"):
        wf.read_predictions(str(tmp_path / "gt"), gt)


def test_degenerate_inputs(tmp_path):
    gt = one_image_gt(tmp_path, FACES4[:1], {"easy": []})
    # A single distinct score: MATLAB divides by zero (AP 0); here every box passes every threshold.
    result = wf.evaluate({("0--Parade", "img_0"): np.array([FACES4[0] + [0.3]])}, gt)
    assert math.isnan(result["easy"])  # no Easy face at all: AP undefined, as in MATLAB
    assert result["medium"] == result["hard"] == 1.0
    assert aps(wf.evaluate({}, gt))[1:] == [0.0, 0.0]
    with pytest.raises(CenterDetError, match="none of the 1 prediction keys"):
        wf.evaluate({("0--Parade", "img_0.jpg"): np.array([FACES4[0] + [0.3]])}, gt)
    with pytest.raises(CenterDetError, match=r"0--Parade/img_0 must be an \(N, 5\) array"):
        wf.evaluate({("0--Parade", "img_0"): np.array([FACES4[0]])}, gt)


# ---------------------------------------------------------------- txt files


def test_txt_round_trip_equals_in_memory(tmp_path):
    rng = np.random.default_rng(3)
    images = [(f"{e}--Ev", f"im_{e}_{j}",
               (rng.integers(0, 300, (rng.integers(0, 6), 4)) + [0, 0, 8, 8]).tolist())
              for e in range(3) for j in range(4)]
    gt = wf.load_ground_truth(write_gt(tmp_path, images, {}))
    pred_dir = str(tmp_path / "pred")
    preds = {}
    for event, name, faces in images:
        n = rng.integers(0, 8)
        xywh = np.column_stack([rng.integers(0, 600, (n, 2)) / 2, rng.integers(2, 80, (n, 2)) / 2,
                                rng.integers(0, 1001, n) / 1000])
        if faces:
            f = np.asarray(faces, float)
            xywh = np.vstack([xywh, np.column_stack([f + rng.integers(-2, 3, f.shape) / 2,
                                                     rng.integers(0, 1001, len(f)) / 1000])])
        preds[(event, name)] = xywh
        corners = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4] - 1, xywh[:, 4]])
        path = wf.write_predictions(pred_dir, event, name, corners)
        assert path == os.path.join(pred_dir, event, name + ".txt")
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == f"{name}.jpg" and int(lines[1]) == len(lines) - 2
    back = wf.read_predictions(pred_dir, gt)
    assert back.keys() == preds.keys()
    for key in preds:
        np.testing.assert_array_equal(back[key], preds[key])
    a, b = wf.evaluate(preds, gt), wf.evaluate(back, gt)
    assert aps(a) == aps(b) and 0 < a["hard"] < 1
    for s in SETTINGS:
        for k in ("precision", "recall"):
            np.testing.assert_array_equal(a["curves"][s][k], b["curves"][s][k])


@pytest.mark.parametrize("text, where", [
    ("img.jpg\n2\n1 2 3 4 0.5\n1 2 x 4 0.5\n", "line 4"),
    ("img.jpg\n3\n1 2 3 4 0.5\n", "says 3 boxes but 1"),
    ("img.jpg\ntwo\n", "line 2"),
    ("img.jpg\n1\n1 2 3 nan 0.5\n", "line 3: NaN"),
    ("img.jpg\n1\n1 2 3 0.5\n", "line 3"),
])
def test_malformed_prediction_file_is_named(tmp_path, text, where):
    gt = one_image_gt(tmp_path, FACES4[:1])
    path = tmp_path / "pred" / "0--Parade" / "img_0.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(CenterDetError, match=rf"img_0\.txt.*{where}"):
        wf.read_predictions(str(tmp_path / "pred"), gt)


def test_extra_columns_use_the_last_as_score(tmp_path):
    gt = one_image_gt(tmp_path, FACES4[:1])
    path = tmp_path / "pred" / "0--Parade" / "img_0.txt"
    path.parent.mkdir(parents=True)
    path.write_text("0--Parade/img_0.jpg\r\n1\r\n1 2 3 4 7 8 0.25\r\n\r\n")
    preds = wf.read_predictions(str(tmp_path / "pred"), gt)
    np.testing.assert_array_equal(preds[("0--Parade", "img_0")], [[1, 2, 3, 4, 0.25]])


# ---------------------------------------------------------------- command line


def test_cli_prints_results_and_writes_files(tmp_path, capsys):
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    write_gt(gt_dir, [("0--Parade", "img_0", FACES4)], {"easy": [[1, 2]]})
    pred_dir = str(tmp_path / "pred")
    wf.write_predictions(pred_dir, "0--Parade", "img_0",
                         [[0, 0, 20, 20, 1.0], [500, 500, 510, 510, 0.75], [50, 0, 70, 20, 0.5],
                          [500, 500, 510, 510, 0.0]])
    assert wf.main(["--pred", pred_dir, "--gt", str(gt_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "WIDER FACE val AP at IoU 0.5 (the official WIDER FACE protocol):"
    assert out[1] == f"==================== Results = ==================== {pred_dir}"
    assert out[2].startswith("Easy   Val AP: ") and out[3].startswith("Medium Val AP: ")
    assert out[4].startswith("Hard   Val AP: ") and out[5] == "=" * 49
    assert out[6] == "WIDER FACE val AP at IoU 0.4 (the model zoo's eval.py, behind its published APs):"
    # Written boxes are x1..x2 inclusive: w = 21, so IoU with the 20-wide face is 441/484 >= 0.5.
    # Easy keeps faces 1 and 2, both found with the FP between them: 1/2 * 1 + 1/2 * 2/3 = 5/6;
    # hard keeps all 4 faces: 5/12 as in test_misses_and_interleaved_false_positive.
    assert float(out[2].split(": ")[1]) == pytest.approx(5 / 6, abs=1e-12)
    # Nothing is written into the prediction tree: the official evaluation reads every entry there.
    assert sorted(os.listdir(pred_dir)) == ["0--Parade"] and os.listdir(os.path.join(pred_dir, "0--Parade")) == ["img_0.txt"]
    with open(os.path.join(pred_dir + "_eval", "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["easy"] == pytest.approx(5 / 6) and metrics["hard"] == pytest.approx(5 / 12)
    assert metrics["iou_thresh"] == 0.5 and set(metrics) == {"easy", "medium", "hard", "iou_thresh", "iou_0.4"}
    # at IoU 0.4 nothing changes here: every hit overlaps its face by more than 0.5
    assert metrics["iou_0.4"] == {s: metrics[s] for s in ("easy", "medium", "hard")}
    with open(os.path.join(pred_dir + "_eval", "pr_curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    out_dir = str(tmp_path / "out")
    assert wf.main(["--pred", pred_dir, "--gt", str(gt_dir), "--iou", "0.4", "--out", out_dir]) == 0
    with open(os.path.join(out_dir, "metrics.json")) as f:
        assert json.load(f)["iou_thresh"] == 0.4
    assert os.path.isfile(os.path.join(out_dir, "pr_curves.png"))


def test_cli_error_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        wf.main(["--pred", str(tmp_path), "--gt", str(tmp_path / "nowhere")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wider_face_val.mat" in err[0]


# ---------------------------------------------------------------- independent reference


def matlab_literal(preds, gt, iou_thresh, thresh_num=1000):
    """wider_eval.m / evaluation.m / VOCap.m transcribed loop by loop, as slowly as written."""
    all_scores = [row[4] for k, d in preds.items() for row in d]
    lo, hi = min(all_scores), max(all_scores)
    pred_list = {k: sorted([list(r[:4]) + [(r[4] - lo) / (hi - lo)] for r in d], key=lambda r: -r[4])
                 for k, d in preds.items()}  # Python's sort is stable, like MATLAB's
    out = {}
    for setting in SETTINGS:
        count_face, pr = 0, [[0, 0] for _ in range(thresh_num)]
        for (event, names, boxes), keeps in zip(gt.events, gt.keep[setting]):
            for name, gt_bbx, keep in zip(names, boxes, keeps):
                pred = pred_list.get((event, name), [])
                count_face += len(keep)
                if len(gt_bbx) == 0 or len(pred) == 0:
                    continue
                ignore = [1 if g in list(keep) else 0 for g in range(len(gt_bbx))]
                recall_list, proposal, pred_recall = [0] * len(gt_bbx), [1] * len(pred), [0] * len(pred)
                for h, (px, py, pw, ph, _) in enumerate(pred):
                    overlaps = []
                    for gx, gy, gw, gh in gt_bbx:
                        w = min(gx + gw, px + pw) - max(gx, px) + 1
                        hh = min(gy + gh, py + ph) - max(gy, py) + 1
                        inter = w * hh
                        o = inter / ((gw + 1) * (gh + 1) + (pw + 1) * (ph + 1) - inter)
                        overlaps.append(0.0 if w <= 0 or hh <= 0 else o)
                    idx = overlaps.index(max(overlaps))
                    if overlaps[idx] >= iou_thresh:
                        if ignore[idx] == 0:
                            recall_list[idx], proposal[h] = -1, -1
                        elif recall_list[idx] == 0:
                            recall_list[idx] = 1
                    pred_recall[h] = recall_list.count(1)
                for t in range(1, thresh_num + 1):
                    above = [h for h, p in enumerate(pred) if p[4] >= 1 - t / thresh_num]
                    if above:
                        pr[t - 1][0] += proposal[:above[-1] + 1].count(1)
                        pr[t - 1][1] += pred_recall[above[-1]]
        prec = [tp / n if n else math.nan for n, tp in pr]
        rec = [tp / count_face for _, tp in pr]
        mrec, mpre = [0.0] + rec + [1.0], [0.0] + prec + [0.0]
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = mpre[i + 1] if math.isnan(mpre[i]) else max(mpre[i], mpre[i + 1])
        ap = sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])
        out[setting] = (ap, prec, rec)
    return out


def random_problem(seed, n_images=30):
    rng = np.random.default_rng(seed)
    events, keep, preds = [], {s: [] for s in SETTINGS}, {}
    for e in range(3):
        names, boxes = [], []
        for s in SETTINGS:
            keep[s].append([])
        for j in range(n_images // 3):
            m = int(rng.integers(0, 8))
            faces = np.column_stack([rng.uniform(0, 300, (m, 2)), rng.uniform(3, 60, (m, 2))])
            names.append(f"img_{j}")
            boxes.append(faces)
            hard = np.flatnonzero(rng.random(m) < 0.8)
            medium = hard[rng.random(len(hard)) < 0.7]
            keep["hard"][-1].append(hard)
            keep["medium"][-1].append(medium)
            keep["easy"][-1].append(medium[rng.random(len(medium)) < 0.6])
            if rng.random() < 0.15:
                continue  # no prediction for this image
            copies = faces[rng.integers(0, m, int(rng.integers(0, 2 * m + 1)))] if m else np.zeros((0, 4))
            copies = copies + rng.normal(0, 2.5, copies.shape)
            k = int(rng.integers(0, 6))
            noise = np.column_stack([rng.uniform(0, 300, (k, 2)), rng.uniform(3, 60, (k, 2))])
            d = np.vstack([copies, noise])
            preds[(f"{e}--Ev", f"img_{j}")] = np.column_stack([d, np.round(rng.random(len(d)), 2)])
        events.append((f"{e}--Ev", names, boxes))
    first = next(k for k, d in preds.items() if len(d) >= 2)
    preds[first][:2, 4] = [0.0, 1.0]  # normalisation is the identity: scores hit thresholds exactly
    return GroundTruth(events, keep), preds


@pytest.mark.parametrize("seed, iou", [(0, 0.5), (1, 0.4), (2, 0.5)])
def test_matches_literal_matlab_transcription(seed, iou):
    gt, preds = random_problem(seed)
    fast = wf.evaluate(preds, gt, iou_thresh=iou)
    slow = matlab_literal(preds, gt, iou)
    for s in SETTINGS:
        ap, prec, rec = slow[s]
        assert 0 < ap < 1
        assert fast[s] == pytest.approx(ap, abs=1e-9)
        np.testing.assert_allclose(fast["curves"][s]["precision"], prec, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(fast["curves"][s]["recall"], rec, atol=1e-12)
    assert len({round(fast[s], 9) for s in SETTINGS}) == 3


def test_both_protocols_are_reported_and_differ_where_they_should(tmp_path, capsys):
    """A box overlapping its face by IoU 0.45 is a hit for the model zoo's 0.4, a miss for the official 0.5."""
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    write_gt(gt_dir, [("0--Parade", "img_0", [[0, 0, 20, 20]])], {s: [[1]] for s in SETTINGS})
    pred_dir = str(tmp_path / "pred")
    # written as w = x2 - x1 + 1 = 20, h = 9, scored as corners (0, 0)-(20, 9) with the protocol's +1:
    # overlap 21 x 10 = 210 of the face's 21 x 21 = 441, IoU 0.476
    wf.write_predictions(pred_dir, "0--Parade", "img_0", [[0, 0, 19, 8, 0.9]])
    from centerdet.cli import main

    assert main(["eval", "--pred", pred_dir, "--gt", str(gt_dir)]) == 0  # the CenterFace seed's eval.py form
    text = capsys.readouterr().out
    assert text.count("Easy   Val AP:") == 2 and "at IoU 0.4 (the model zoo's eval.py" in text
    with open(os.path.join(pred_dir + "_eval", "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["easy"] == 0.0 and metrics["iou_0.4"]["easy"] == pytest.approx(1.0)
    assert wf.main(["--pred", pred_dir, "--gt", str(gt_dir), "--iou", "0.4", "--out", str(tmp_path / "o")]) == 0
    with open(tmp_path / "o" / "metrics.json") as f:
        assert json.load(f)["easy"] == pytest.approx(1.0)
