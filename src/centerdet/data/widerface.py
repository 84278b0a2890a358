"""WIDER FACE annotations: the two common training formats and the official evaluation .mat files.

Both readers return the same record, :class:`FaceImage` (boxes float32 [x1, y1, x2, y2] pixels,
five landmarks in CenterFace order: left eye, right eye, nose tip, left mouth corner, right mouth
corner, "left" meaning the image's left).

* RetinaFace ``label.txt`` (``read_label_txt``): a line ``# event/image.jpg`` then one face per line,
  either ``x y w h`` (the val/test files) or ``x y w h  l0x l0y f0 ... l4x l4y f4  score`` (train).
  In those files a labelled landmark has flag ``0.0`` (sometimes ``1.0``) and a missing one is
  ``-1 -1 -1``, so here a landmark counts as visible unless its flag is -1 or both coordinates are
  -1; the trailing score is not kept (the writer puts 1.0).
* CenterFace keypoint json (``read_keypoint_json``): COCO-style images + one annotation per face
  with ``bbox`` [x, y, w, h] and ``keypoints`` (x, y, v) x 5; v > 0 is visible (COCO: v = 0 is
  "not labelled"), and the writer marks visible points v = 2 and missing ones 0, 0, 0.

Missing landmarks are stored as (0, 0) with ``lm_visible`` False, and both writers write every
not-visible landmark as missing. Problems that make a file unusable are one-line errors naming the
file and line (or annotation id); faces with w <= 0 or h <= 0 are dropped and counted in a
``BoxStats``. ``write_ground_truth_mats`` writes the four .mat files of the official evaluation
(see /work/shared/reference/widerface_eval.md section 1 for the structure).
"""
import io
import os
from dataclasses import dataclass, replace

import numpy as np

from centerdet.data.coco import BoxStats, _int_field, _lookup
from centerdet.errors import CenterDetError
from centerdet.fileio import read_json, write_bytes, write_json, write_text

NUM_LANDMARKS = 5
SETTINGS = ("easy", "medium", "hard")
GT_FILES = {"face": "wider_face_val.mat", "easy": "wider_easy_val.mat",
            "medium": "wider_medium_val.mat", "hard": "wider_hard_val.mat"}
FACE_CATEGORY = {"id": 1, "name": "face", "supercategory": "face"}


@dataclass
class FaceImage:
    file_name: str          # relative to the image root, e.g. "0--Parade/0_Parade_marchingband_1_5.jpg"
    width: int              # 0 when unknown (label.txt carries no size)
    height: int
    boxes: np.ndarray       # (N, 4) float32 [x1, y1, x2, y2] pixels
    landmarks: np.ndarray   # (N, 5, 2) float32 (x, y); 0 where missing
    lm_visible: np.ndarray  # (N, 5) bool; False where missing (label value -1) or v = 0 in json


def _face_image(file_name, width, height, faces):
    """Build a FaceImage from a list of (xywh float64, (5, 2) landmarks, (5,) visible)."""
    boxes = np.array([[x, y, x + w, y + h] for (x, y, w, h), _, _ in faces], np.float64)
    return FaceImage(
        file_name, int(width), int(height),
        boxes.astype(np.float32).reshape(-1, 4),
        np.array([lm for _, lm, _ in faces], np.float32).reshape(-1, NUM_LANDMARKS, 2),
        np.array([vis for _, _, vis in faces], bool).reshape(-1, NUM_LANDMARKS))


def _keep_box(xywh, stats):
    """False (and counted) for boxes the file gives with no area, also once stored as float32 corners
    (a huge x overflows, a tiny w vanishes next to a large x); such faces are dropped."""
    with np.errstate(over="ignore", invalid="ignore"):
        x1, y1, x2, y2 = np.array([xywh[0], xywh[1], xywh[0] + xywh[2], xywh[1] + xywh[3]], np.float32)
    if (not np.isfinite(xywh).all() or xywh[2] <= 0 or xywh[3] <= 0
            or not np.isfinite([x1, y1, x2, y2]).all() or x2 <= x1 or y2 <= y1):
        stats.dropped += 1
        return False
    return True


def _clean_landmarks(points, visible):
    """Missing or non-finite points (also once stored as float32) become (0, 0), not visible."""
    with np.errstate(over="ignore", invalid="ignore"):
        visible = visible & np.isfinite(points.astype(np.float32)).all(axis=1)
    return np.where(visible[:, None], points, 0.0), visible


def _f32_text(value):
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


def _box_texts(box):
    """[x, y, w, h] as text, from a float32 [x1, y1, x2, y2] box."""
    x, y = _f32_text(box[0]), _f32_text(box[1])
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
    points, visible = _clean_landmarks(triples[:, :2], ~missing)
    return values[:4], points, visible


def read_label_txt(path, stats=None):
    """FaceImages of a RetinaFace-style label.txt, in file order (width/height 0 unless given)."""
    path = os.fspath(path)
    stats = BoxStats() if stats is None else stats
    if not os.path.isfile(path):
        raise CenterDetError(f"annotation file not found: {path}")
    if os.path.getsize(path) == 0:
        raise CenterDetError(f"annotation file is empty (0 bytes): {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.readlines()
    except UnicodeDecodeError as exc:
        raise CenterDetError(f"annotation file is not UTF-8 text: {path} (byte {exc.start}); "
                             "is this a RetinaFace label.txt?") from None
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
        if _keep_box(xywh, stats):
            current[3].append((xywh, points, visible))
    return [_face_image(*im) for im in images]


def write_label_txt(path, images, landmarks=True):
    """Write RetinaFace label.txt (atomic); ``landmarks=False`` writes the 4-number val form."""
    lines = []
    for im in images:
        lines.append(f"# {im.file_name}")
        for box, points, visible in zip(im.boxes, im.landmarks, im.lm_visible):
            fields = _box_texts(box)
            if landmarks:
                for (x, y), vis in zip(points, visible):
                    fields += [_f32_text(x), _f32_text(y), "0.0"] if vis else ["-1.0", "-1.0", "-1.0"]
                fields.append("1.0")
            lines.append(" ".join(fields))
    write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- CenterFace keypoint json


def _require(entry, keys, path, what):
    if not isinstance(entry, dict):
        raise CenterDetError(f"{path}: every {what} must be a json object, got {type(entry).__name__}")
    for key in keys:
        if key not in entry:
            raise CenterDetError(f"{path}: {what} id {entry.get('id', '?')} has no '{key}' field")


def _json_face(ann, path):
    bbox, kps = ann["bbox"], ann.get("keypoints", [0] * 3 * NUM_LANDMARKS)
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise CenterDetError(f"{path}: annotation id {ann['id']} bbox must be [x, y, w, h]")
    if not isinstance(kps, (list, tuple)) or len(kps) != 3 * NUM_LANDMARKS:
        n = len(kps) if isinstance(kps, (list, tuple)) else type(kps).__name__
        raise CenterDetError(f"{path}: annotation id {ann['id']} has {n} keypoint values; expected 15 "
                             "(x, y, v for left eye, right eye, nose, left and right mouth corner)")
    try:
        xywh = np.array(bbox, np.float64)
        triples = np.array(kps, np.float64).reshape(NUM_LANDMARKS, 3)
    except (TypeError, ValueError, OverflowError):
        raise CenterDetError(f"{path}: annotation id {ann['id']} has non-numeric bbox or keypoints") from None
    points, visible = _clean_landmarks(triples[:, :2], triples[:, 2] > 0)
    return xywh, points, visible


def read_keypoint_json(path, stats=None):
    """FaceImages of a CenterFace (COCO keypoint style) json, in the order of its 'images' list.

    Crowd annotations (iscrowd 1) are dropped and counted in ``stats.crowd``.
    """
    path = os.fspath(path)
    stats = BoxStats() if stats is None else stats
    data = read_json(path, "annotation file")
    if not isinstance(data, dict) or "images" not in data:
        raise CenterDetError(f"{path}: expected a COCO-style json object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key in data and not isinstance(data[key], list):
            raise CenterDetError(f"{path}: top-level '{key}' must be a list, got {type(data[key]).__name__}")
    images, names = {}, set()
    for im in data["images"]:
        _require(im, ("id", "file_name", "width", "height"), path, "image")
        if isinstance(im["id"], (list, dict)):
            raise CenterDetError(f"{path}: image id {im['id']!r} must be a number or a string")
        if im["id"] in images or str(im["file_name"]) in names:
            raise CenterDetError(f"{path}: image id {im['id']} ('{im['file_name']}') is listed twice; "
                                 "give every image one unique id and file_name")
        images[im["id"]] = (str(im["file_name"]), _int_field(im, "width", path, "image"),
                            _int_field(im, "height", path, "image"), [])
        names.add(str(im["file_name"]))
    for ann in data.get("annotations", []):
        _require(ann, ("id", "image_id", "bbox"), path, "annotation")
        if _lookup(images, ann["image_id"]) is None:
            raise CenterDetError(f"{path}: annotation id {ann['id']} refers to image_id {ann['image_id']}, "
                                 "which is not in 'images'")
        face = _json_face(ann, path)
        if ann.get("iscrowd", 0):
            stats.crowd += 1
            continue
        if _keep_box(face[0], stats):
            images[ann["image_id"]][3].append(face)
    return [_face_image(*im) for im in images.values()]


def write_keypoint_json(path, images, info=None, face_attrs=None):
    """Write the CenterFace json (atomic); image ids are 1-based positions in ``images``.

    ``face_attrs``: optional per-image dicts {key: per-face values} copied into each annotation
    (the synthetic generator records 'blur' and 'occlusion' this way; readers ignore them).
    """
    out_images, annotations = [], []
    for index, im in enumerate(images):
        attrs = face_attrs[index] if face_attrs is not None else {}
        out_images.append({"id": index + 1, "file_name": im.file_name, "width": int(im.width),
                           "height": int(im.height)})
        for k, (box, points, visible) in enumerate(zip(im.boxes, im.landmarks, im.lm_visible)):
            x, y, w, h = (float(t) for t in _box_texts(box))
            kps = []
            for (px, py), vis in zip(points, visible):
                kps += [float(_f32_text(px)), float(_f32_text(py)), 2] if vis else [0, 0, 0]
            ann = {"id": len(annotations) + 1, "image_id": index + 1, "category_id": 1, "iscrowd": 0,
                   "bbox": [x, y, w, h], "area": w * h, "keypoints": kps,
                   "num_keypoints": int(np.count_nonzero(visible))}
            ann.update({key: int(values[k]) for key, values in attrs.items()})
            annotations.append(ann)
    data = {"images": out_images, "annotations": annotations, "categories": [FACE_CATEGORY]}
    if info is not None:
        data = {"info": info, **data}
    write_json(path, data)


def read_face_annotations(path, stats=None):
    """Dispatch on the extension: .json → keypoint json, .txt → RetinaFace label.txt."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".json":
        return read_keypoint_json(path, stats)
    if ext == ".txt":
        return read_label_txt(path, stats)
    raise CenterDetError(f"unknown face annotation format '{ext}' ({path}); use a CenterFace .json "
                         "or a RetinaFace label.txt")


# ---------------------------------------------------------------- dataset and cleaning


def clean_faces(img, width, height, stats):
    """Clip boxes to the real image size and drop faces with nothing left (counted in ``stats``).

    Landmarks outside the image keep their coordinates but are marked not visible.
    """
    boxes = img.boxes.astype(np.float64)
    finite = np.isfinite(boxes).all(axis=1)
    clipped = np.clip(np.where(finite[:, None], boxes, 0.0), 0, [width, height, width, height])
    keep = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    stats.dropped += int(np.count_nonzero(~keep))
    stats.clipped += int(np.count_nonzero(keep & (clipped != boxes).any(axis=1)))
    points = img.landmarks[keep]
    inside = ((points[..., 0] >= 0) & (points[..., 0] < width)
              & (points[..., 1] >= 0) & (points[..., 1] < height))
    return replace(img, width=int(width), height=int(height), boxes=clipped[keep].astype(np.float32),
                   landmarks=points.copy(), lm_visible=img.lm_visible[keep] & inside)


class FaceDataset:
    """Face images from one annotation file (.json or label.txt) + image folder.

    Images whose size the file gives (json) are cleaned with :func:`clean_faces` here, as
    CocoDataset does; label.txt gives no size, so its images are cleaned once decoded.
    ``require_faces``: keep only images with at least one face (training; CenterFace drops the
    others); evaluation keeps every image so that false positives on empty images count.
    """

    def __init__(self, ann_file, img_dir, require_faces=False):
        self.ann_file, self.img_dir = ann_file, img_dir
        self.stats = BoxStats()
        images = [clean_faces(im, im.width, im.height, self.stats) if im.width > 0 and im.height > 0 else im
                  for im in read_face_annotations(ann_file, self.stats)]
        # Images left without a face (none annotated, or all dropped): skipped for training, counted.
        self.num_without_boxes = sum(1 for im in images if not len(im.boxes))
        self.images = [im for im in images if not require_faces or len(im.boxes)]

    def __len__(self):
        return len(self.images)

    def image_path(self, img):
        return os.path.join(self.img_dir, img.file_name)


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
    _savemat(paths["face"], {**common, "face_bbx_list": _cell(boxes)})
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


def _names(data):
    events = [str(e[0][0]) for e in data["event_list"]]
    files = [[str(f[0][0]) for f in cell[0]] for cell in data["file_list"]]
    return events, files


def read_ground_truth_mats(gt_dir):
    """The inverse of :func:`write_ground_truth_mats` (keep arrays back to 0-based int64)."""
    gt_dir = os.fspath(gt_dir)
    face = load_mat(os.path.join(gt_dir, GT_FILES["face"]), ("event_list", "file_list", "face_bbx_list"))
    events, files = _names(face)
    keeps = {}
    for setting in SETTINGS:
        path = os.path.join(gt_dir, GT_FILES[setting])
        data = load_mat(path, ("gt_list",))
        if "event_list" in data and _names(data) != (events, files):
            raise CenterDetError(f"{path}: events or images differ from {GT_FILES['face']}; "
                                 "regenerate the four files together")
        keeps[setting] = data["gt_list"]
    out = []
    for i, event in enumerate(events):
        images = []
        for j, name in enumerate(files[i]):
            xywh = np.asarray(face["face_bbx_list"][i][0][j][0], np.float64).reshape(-1, 4)
            kept = [np.asarray(keeps[s][i][0][j][0], np.int64).reshape(-1) - 1 for s in SETTINGS]
            images.append((name, xywh, *kept))
        out.append((event, images))
    return out
