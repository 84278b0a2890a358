"""WIDER FACE files: RetinaFace ``label.txt`` annotations and the official evaluation's ground-truth
``.mat`` files (both ways). COCO-format face json files are read by ``centerdet.data.coco``.

* ``label.txt`` (``read_label_txt``): a line ``# event/image.jpg`` then one face per line, either
  ``x y w h`` (the val/test files) or ``x y w h  l0x l0y f0 ... l4x l4y f4  score`` (train). In
  those files a labelled landmark has flag ``0.0`` (sometimes ``1.0``) and a missing one is
  ``-1 -1 -1``, so here a landmark counts as visible unless its flag is -1 or both coordinates are
  -1; the trailing score is not kept (the writer puts 1.0). Landmarks are in CenterFace order: left
  eye, right eye, nose tip, left mouth corner, right mouth corner ("left": the image's left).
* ``wider_{face,easy,medium,hard}_val.mat``: ``write_ground_truth_mats`` and ``load_ground_truth``
  (see /work/shared/reference/widerface_eval.md section 1 for the structure).

Records are ``centerdet.data.coco.ImageRecord`` (ids 1-based in file order, missing landmarks
(0, 0) and not visible). Problems that make a file unusable are one-line errors naming the file and
line; faces with w <= 0 or h <= 0 are dropped and counted in a ``BoxStats``.
"""
import io
import os
from dataclasses import dataclass

import numpy as np

from centerdet.data.coco import BoxStats, ImageRecord, clean_keypoints, valid_box
from centerdet.errors import CenterDetError
from centerdet.fileio import read_text, write_bytes, write_text

NUM_LANDMARKS = 5
SETTINGS = ("easy", "medium", "hard")
GT_FILES = {"all": "wider_face_val.mat", "easy": "wider_easy_val.mat",
            "medium": "wider_medium_val.mat", "hard": "wider_hard_val.mat"}
FACE_CATEGORY = {"id": 1, "name": "face", "supercategory": "face"}
_GT_HINT = ("expected wider_face_val.mat, wider_easy_val.mat, wider_medium_val.mat and "
            "wider_hard_val.mat from the official eval_tools/ground_truth")


def _face_record(index, file_name, width, height, faces):
    """An ImageRecord from a list of (xywh float64, (5, 2) landmarks, (5,) visible)."""
    boxes = np.array([[x, y, x + w, y + h] for (x, y, w, h), _, _ in faces], np.float64)
    n = len(faces)
    return ImageRecord(
        index + 1, file_name, int(width), int(height), boxes.astype(np.float32).reshape(-1, 4),
        np.zeros(n, np.int32), np.zeros(n, bool),
        np.array([lm for _, lm, _ in faces], np.float32).reshape(-1, NUM_LANDMARKS, 2),
        np.array([vis for _, _, vis in faces], bool).reshape(-1, NUM_LANDMARKS))


def f32_text(value):
    """Shortest text that reads back to the same float32."""
    return np.format_float_positional(np.float32(value), trim="-")


def _extent_text(start_text, end):
    """Shortest width text w with float32(float(start_text) + w) == end: boxes round-trip exactly."""
    start, end = float(start_text), np.float32(end)
    size = float(end) - start
    for digits in range(17):
        text = np.format_float_positional(size, precision=digits, unique=False, trim="-")
        if np.float32(start + float(text)) == end:
            return text
    return repr(size)


def box_texts(box):
    """[x, y, w, h] as text, from a float32 [x1, y1, x2, y2] box."""
    x, y = f32_text(box[0]), f32_text(box[1])
    return [x, y, _extent_text(x, box[2]), _extent_text(y, box[3])]


# ---------------------------------------------------------------- RetinaFace label.txt


def _parse_header(rest, path, lineno):
    """``event/image.jpg`` optionally followed by ``width height`` (some test-set lists have them)."""
    parts = rest.split()
    if not parts:
        raise CenterDetError(f"{path}:{lineno}: '#' line without an image name; "
                             "write '# event/image.jpg' before the image's faces")
    if len(parts) == 3 and parts[1].isdecimal() and parts[2].isdecimal():
        return parts[0], int(parts[1]), int(parts[2])
    return rest.strip(), 0, 0


def _parse_face(line, path, lineno):
    try:
        values = np.array([float(v) for v in line.split()], np.float64)
    except ValueError:
        raise CenterDetError(f"{path}:{lineno}: face line has a non-numeric field: '{line.strip()[:60]}'; "
                             "expected numbers 'x y w h [l0x l0y f0 ... l4x l4y f4 score]'") from None
    if len(values) not in (4, 4 + 3 * NUM_LANDMARKS + 1):
        raise CenterDetError(f"{path}:{lineno}: face line has {len(values)} numbers; expected 4 (x y w h) "
                             "or 20 (x y w h, 5 x 'x y flag', score); fix or remove the line")
    if len(values) == 4:
        return values, np.zeros((NUM_LANDMARKS, 2)), np.zeros(NUM_LANDMARKS, bool)
    triples = values[4:4 + 3 * NUM_LANDMARKS].reshape(NUM_LANDMARKS, 3)
    missing = (triples[:, 2] == -1) | ((triples[:, 0] == -1) & (triples[:, 1] == -1))
    points, visible = clean_keypoints(triples[:, :2], ~missing)
    return values[:4], points, visible


def read_label_txt(path, stats=None):
    """ImageRecords of a RetinaFace-style label.txt, in file order (width/height 0 unless given)."""
    path = os.fspath(path)
    stats = BoxStats() if stats is None else stats
    text = read_text(path, "annotation file", "is not UTF-8 text", "; is this a RetinaFace label.txt?")
    lines = text.split("\n")  # text mode has turned \r\n and \r into \n, as readlines() sees them
    images, seen, current = [], {}, None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            name, width, height = _parse_header(line[1:], path, lineno)
            if name in seen:
                raise CenterDetError(f"{path}:{lineno}: image '{name}' is listed twice (first at line "
                                     f"{seen[name]}); merge its faces under one '#' line")
            seen[name] = lineno
            current = (name, width, height, [])
            images.append(current)
            continue
        if current is None:
            raise CenterDetError(f"{path}:{lineno}: face line before any '# event/image.jpg' line; "
                                 "is this a RetinaFace label.txt?")
        xywh, points, visible = _parse_face(line, path, lineno)
        if valid_box(xywh, stats):
            current[3].append((xywh, points, visible))
    return [_face_record(i, *im) for i, im in enumerate(images)]


def write_label_txt(path, images, landmarks=True):
    """Write RetinaFace label.txt (atomic); ``landmarks=False`` writes the 4-number val form."""
    lines = []
    for im in images:
        lines.append(f"# {im.file_name}")
        for box, points, visible in zip(im.boxes, im.keypoints, im.visible):
            fields = box_texts(box)
            if landmarks:
                for (x, y), vis in zip(points, visible):
                    fields += [f32_text(x), f32_text(y), "0.0"] if vis else ["-1.0", "-1.0", "-1.0"]
                fields.append("1.0")
            lines.append(" ".join(fields))
    write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- official ground-truth .mat files


def _cell(items):
    """An (n, 1) object array: savemat writes it as an n x 1 MATLAB cell."""
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def _keep_column(keep, m, where):
    keep = np.asarray(keep).reshape(-1)
    if keep.size and (keep.dtype.kind not in "iu" or keep.min() < 0 or keep.max() >= m):
        raise CenterDetError(f"{where}: keep indices must be 0-based integers below the face count {m}, "
                             f"got {keep.tolist()}")
    return (keep.astype(np.int32) + 1).reshape(-1, 1)  # 1-based int column: the evaluators index with it


MAT_HEADER = b"MATLAB 5.0 MAT-file, written by centerdet"
MAT_TEXT_BYTES = 116  # the v5 header's free text; scipy puts the current time there


def _savemat(path, variables):
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    data = bytearray(buf.getvalue())
    data[:MAT_TEXT_BYTES] = MAT_HEADER.ljust(MAT_TEXT_BYTES)  # same data, same bytes
    write_bytes(path, bytes(data))


def write_ground_truth_mats(gt_dir, events):
    """Write wider_face_val.mat and wider_{easy,medium,hard}_val.mat under ``gt_dir``.

    ``events``: ordered list of (event_name, [(image_name_without_ext, boxes_xywh (m, 4),
    keep_easy, keep_medium, keep_hard)]), keep arrays 0-based. Returns the four paths.
    """
    names, files, boxes, keeps = [], [], [], {s: [] for s in SETTINGS}
    for event, images in events:
        if not isinstance(event, str) or not event or event in names:
            raise CenterDetError(f"event name {event!r} is empty, not a string or repeated; "
                                 "give each event one unique name like '0--Parade'")
        names.append(event)
        ev_files, ev_boxes, ev_keeps = [], [], {s: [] for s in SETTINGS}
        for name, xywh, *keep in images:
            where = f"event '{event}' image '{name}'"
            if name.lower().endswith(".jpg") or "/" in name:
                raise CenterDetError(f"{where}: give the bare image name without folder or '.jpg'")
            xywh = np.asarray(xywh, np.float64).reshape(-1, 4)
            ev_files.append(name)
            ev_boxes.append(xywh)
            for setting, k in zip(SETTINGS, keep):
                ev_keeps[setting].append(_keep_column(k, len(xywh), where))
        files.append(_cell(ev_files))
        boxes.append(_cell(ev_boxes))
        for setting in SETTINGS:
            keeps[setting].append(_cell(ev_keeps[setting]))
    common = {"event_list": _cell(names), "file_list": _cell(files)}
    paths = {key: os.path.join(os.fspath(gt_dir), name) for key, name in GT_FILES.items()}
    _savemat(paths["all"], {**common, "face_bbx_list": _cell(boxes)})
    for setting in SETTINGS:
        _savemat(paths[setting], {**common, "gt_list": _cell(keeps[setting])})
    return paths


def load_mat(path, keys, hint="is this a WIDER FACE ground-truth file?"):
    """scipy.io.loadmat with one-line errors naming the file, the missing variable and ``hint``."""
    import scipy.io

    if not os.path.isfile(path):
        raise CenterDetError(f"ground-truth file not found: {path} ({hint})")
    try:
        data = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several unrelated types (v7.3/HDF5, truncated, not a .mat)
        raise CenterDetError(f"cannot read ground-truth file {path} as a MATLAB .mat file ({exc})") from None
    for key in keys:
        if key not in data:
            raise CenterDetError(f"ground-truth file {path} has no variable '{key}' ({hint})")
    return data


@dataclass
class GroundTruth:
    """The val ground truth in file order.

    events: list of (event_name, [image_name, ...], [(m, 4) float64 [x, y, w, h], ...]).
    keep: setting -> per event, per image, (k,) int64 0-based indices of the faces that count.
    """
    events: list
    keep: dict

    @property
    def num_images(self):
        return sum(len(names) for _, names, _ in self.events)

    def num_faces(self, setting=None):
        if setting is None:
            return sum(len(b) for _, _, boxes in self.events for b in boxes)
        return sum(len(k) for event in self.keep[setting] for k in event)

    def subset(self, keep):
        """The ground truth restricted to the (event, image name) pairs in ``keep``."""
        events, masks = [], []
        for event, names, boxes in self.events:
            idx = [j for j, n in enumerate(names) if (event, n) in keep]
            events.append((event, [names[j] for j in idx], [boxes[j] for j in idx]))
            masks.append(idx)
        kept = {s: [[per_event[j] for j in idx] for per_event, idx in zip(self.keep[s], masks)] for s in self.keep}
        return GroundTruth(events, kept)


def _cells(value):
    """A MATLAB cell array as a flat list (loadmat gives (n, 1) object arrays)."""
    value = np.asarray(value)
    if value.dtype != object:
        raise TypeError(f"expected a cell array, got a {value.dtype} array")
    return list(value.ravel())


def _string(value):
    """A MATLAB char array as str (loadmat gives array(['name']))."""
    value = np.asarray(value).ravel()
    if value.size != 1 or value.dtype.kind != "U":
        raise TypeError(f"expected a string, got {value!r}")
    return str(value[0])


def _names(mat):
    events = [_string(e) for e in _cells(mat["event_list"])]
    files = [[_string(f) for f in _cells(fl)] for fl in _cells(mat["file_list"])]
    if len(files) != len(events):
        raise ValueError(f"{len(events)} events but {len(files)} file lists")
    return events, files


def _boxes(value):
    boxes = np.asarray(value, dtype=np.float64)
    if boxes.size == 0:  # MATLAB stores an image without faces as a 0x0 matrix
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"a face_bbx_list entry has shape {boxes.shape}, expected (m, 4)")
    if not np.isfinite(boxes).all():
        raise ValueError("a face_bbx_list entry holds NaN or inf")
    return boxes


def _keep(value, num_boxes):
    """1-based MATLAB indices → 0-based; out-of-range ones would crash MATLAB, so reject them."""
    idx = np.asarray(value).ravel()
    if idx.size == 0:
        return np.zeros(0, np.int64)
    if idx.dtype.kind not in "fiu" or not np.all(idx == np.round(idx)):
        raise ValueError(f"a gt_list entry is not integer indices: {idx[:5]!r}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 1) | (idx > num_boxes)]
    if bad.size:
        raise ValueError(f"a gt_list entry has index {int(bad[0])} outside 1..{num_boxes}")
    return idx - 1


def load_ground_truth(gt_dir):
    """Read the four official .mat files of ``gt_dir`` into a ``GroundTruth``."""
    path = os.path.join(gt_dir, GT_FILES["all"])
    mat = load_mat(path, ("event_list", "file_list", "face_bbx_list"), _GT_HINT)
    try:
        events, files = _names(mat)
        boxes = [[_boxes(b) for b in _cells(bl)] for bl in _cells(mat["face_bbx_list"])]
        if [len(b) for b in boxes] != [len(f) for f in files]:
            raise ValueError("face_bbx_list and file_list have different numbers of images")
    except (TypeError, ValueError, IndexError) as exc:
        raise CenterDetError(f"ground truth file {path} has an unexpected structure: {exc}") from None

    keep = {}
    for setting in SETTINGS:
        path = os.path.join(gt_dir, GT_FILES[setting])
        mat = load_mat(path, ("gt_list",), _GT_HINT)
        try:
            # The setting files repeat the lists; a different order would pair keep lists with
            # the wrong images without any error.
            if "event_list" in mat and "file_list" in mat and _names(mat) != (events, files):
                raise ValueError(f"its event_list/file_list differ from {GT_FILES['all']}")
            cells = [_cells(g) for g in _cells(mat["gt_list"])]
            if [len(c) for c in cells] != [len(f) for f in files]:
                raise ValueError(f"gt_list does not have one entry per image of {GT_FILES['all']}")
            keep[setting] = [[_keep(k, len(b)) for k, b in zip(c, bs)] for c, bs in zip(cells, boxes)]
        except (TypeError, ValueError, IndexError) as exc:
            raise CenterDetError(f"ground truth file {path} has an unexpected structure: {exc}") from None
    return GroundTruth([(e, f, b) for e, f, b in zip(events, files, boxes)], keep)
