"""Detection data sets → MindRecord files (encoded image bytes + packed annotation rows), written
all-or-nothing. One row per object: [x1, y1, x2, y2, label, crowd] followed, for tasks with
keypoints, by (x, y, visible) per keypoint (WIDER FACE: five landmarks).

Files are first written into a hidden temporary folder next to the destination and moved into
place only after the writer commits, so an interrupted conversion never leaves files that a later
run could mistake for a complete dataset.
"""
import json
import os
import shutil
import tempfile
import time

import numpy as np

from centerdet.data.coco import DetectionDataset
from centerdet.data.images import decode_image
from centerdet.data.shard_hashes import write_record
from centerdet.errors import CenterDetError
from centerdet.fileio import check_free_space, ensure_writable_dir

SCHEMA = {
    "image": {"type": "bytes"},
    "image_id": {"type": "int64"},
    # rows of pack_annotation, flattened: MindRecord arrays are 1-D with one -1 dim
    "annotation": {"type": "float32", "shape": [-1]},
}
BOX_COLUMNS = 6


def shard_files(mindrecord_dir, prefix, shards):
    if shards == 1:
        return [os.path.join(mindrecord_dir, prefix)]
    return [os.path.join(mindrecord_dir, f"{prefix}{i}") for i in range(shards)]


def _incomplete_marker(mindrecord_dir, prefix):
    return os.path.join(mindrecord_dir, f".{prefix}.incomplete")


def _source_record(mindrecord_dir, prefix):
    return os.path.join(mindrecord_dir, f".{prefix}.source.json")


def _describe_source(ann_file, num_keypoints):
    st = os.stat(ann_file)
    return {"annotations": os.path.realpath(ann_file), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "row_columns": row_columns(num_keypoints)}


def check_source(mindrecord_dir, prefix, ann_file, num_keypoints=0):
    """Refuse MindRecord files converted from another annotation file than ``ann_file`` (or from an
    earlier version of it), or with rows of another layout: training would silently use the old
    data. Files without a source record (converted elsewhere) and annotation files that do not
    exist here are not checked."""
    record = _source_record(mindrecord_dir, prefix)
    if not os.path.isfile(record) or not os.path.isfile(ann_file):
        return
    try:
        with open(record, encoding="utf-8") as f:
            was = json.load(f)
        now = _describe_source(ann_file, num_keypoints)
        same_file = was["annotations"] == now["annotations"]
        unchanged = (was["size"], was["mtime_ns"]) == (now["size"], now["mtime_ns"])
        columns = was.get("row_columns", BOX_COLUMNS if not num_keypoints else None)
    except (OSError, ValueError, KeyError, TypeError):
        return
    fix = f"delete {mindrecord_dir}/{prefix}* to convert again, or set another mindrecord_dir"
    if columns != now["row_columns"]:
        raise CenterDetError(f"MindRecord '{prefix}' in {mindrecord_dir} holds rows of {columns or 'an older layout of'} "
                             f"values per object, this task reads {now['row_columns']}: {fix}")
    if not same_file:
        raise CenterDetError(f"MindRecord '{prefix}' in {mindrecord_dir} was converted from {was['annotations']}, "
                             f"not from the configured {now['annotations']}: {fix}")
    if not unchanged:
        raise CenterDetError(f"MindRecord '{prefix}' in {mindrecord_dir} is older than {now['annotations']}, "
                             f"which changed after the conversion: {fix}")


def find_mindrecord(mindrecord_dir, prefix):
    """The data files of a finished conversion, or [] if there is none (or one was interrupted while
    moving its files into place)."""
    if not os.path.isdir(mindrecord_dir) or os.path.exists(_incomplete_marker(mindrecord_dir, prefix)):
        return []
    single = os.path.join(mindrecord_dir, prefix)
    if os.path.isfile(single) and os.path.isfile(single + ".db"):
        return [single]
    files = sorted((f for f in os.listdir(mindrecord_dir)
                    if f.startswith(prefix) and f[len(prefix):].isdigit()),
                   key=lambda f: int(f[len(prefix):]))
    return [os.path.join(mindrecord_dir, f) for f in files if os.path.isfile(os.path.join(mindrecord_dir, f + ".db"))]


def row_columns(num_keypoints):
    return BOX_COLUMNS + 3 * num_keypoints


def pack_annotation(image):
    """ImageRecord → flat float32 rows [x1, y1, x2, y2, label, crowd, (x, y, visible) per keypoint]."""
    n, k = len(image.boxes), image.keypoints.shape[1]
    points = np.concatenate([image.keypoints.reshape(n, k, 2), image.visible.reshape(n, k, 1)], 2)
    rows = np.concatenate([image.boxes.reshape(n, 4), image.labels[:, None], image.crowd[:, None],
                           points.reshape(n, 3 * k)], 1)
    return rows.reshape(-1).astype(np.float32)


def unpack_annotation(flat, num_keypoints=0):
    """pack_annotation's rows → the target dict: boxes, labels, crowd (+ keypoints, visible)."""
    rows = np.asarray(flat, np.float32).reshape(-1, row_columns(num_keypoints))
    target = {"boxes": rows[:, :4], "labels": rows[:, 4].astype(np.int32), "crowd": rows[:, 5] > 0.5}
    if num_keypoints:
        points = rows[:, BOX_COLUMNS:].reshape(-1, num_keypoints, 3)
        target.update(keypoints=points[..., :2], visible=points[..., 2] > 0.5)
    return target


def _read_checked(path):
    """Encoded bytes of an image that decodes, plus its (height, width); raises CenterDetError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CenterDetError(f"cannot read image: {path} ({exc.strerror})") from None
    return data, decode_image(data, path).shape[:2]


def _bytes_on_disk(paths):
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def write_samples(samples, total, mindrecord_dir, prefix, shards=1, log=print, source="", needed_bytes=0,
                  ann_file=None, num_keypoints=0):
    """Write ``samples`` (an iterable of (image path, image id, pack(height, width) -> flat float32
    annotation)) all-or-nothing; unreadable images are skipped and printed. Returns (written, skipped).
    ``needed_bytes`` (about the images' size) is checked against the free space first; ``ann_file``
    is recorded beside the files for check_source."""
    from mindspore.mindrecord import FileWriter

    ensure_writable_dir(mindrecord_dir, "mindrecord_dir")
    check_free_space(mindrecord_dir, needed_bytes, "mindrecord_dir",
                     "the MindRecord files hold every training image; free space or choose another mindrecord_dir")
    tmp_dir = tempfile.mkdtemp(prefix=f".{prefix}.partial.", dir=mindrecord_dir)
    try:
        writer = FileWriter(os.path.join(tmp_dir, prefix), shard_num=shards, overwrite=True)
        writer.add_schema(SCHEMA, "centerdet detection samples")
        written, skipped, batch = 0, 0, []
        start = time.time()
        for i, (path, image_id, pack) in enumerate(samples):
            try:
                data, (height, width) = _read_checked(path)
            except CenterDetError as exc:
                skipped += 1
                log(f"skip: {exc}")
                continue
            batch.append({"image": data, "image_id": int(image_id), "annotation": pack(height, width)})
            written += 1
            if len(batch) == 256:
                writer.write_raw_data(batch)
                batch = []
            if (i + 1) % 1000 == 0:
                rate = (i + 1) / max(time.time() - start, 1e-6)
                log(f"converted {i + 1}/{total} images, ETA {(total - i - 1) / rate:.0f}s")
        if batch:
            writer.write_raw_data(batch)
        if written == 0:
            raise CenterDetError(f"no readable image among the {skipped} annotated images under {source}")
        writer.commit()
        write_record(tmp_dir, prefix)
        if ann_file:
            with open(_source_record(tmp_dir, prefix), "w", encoding="utf-8") as f:
                json.dump(_describe_source(ann_file, num_keypoints), f)
        # Several files move into place one by one; the marker makes a kill in between leave
        # nothing that find_mindrecord would take as a finished conversion.
        marker = _incomplete_marker(mindrecord_dir, prefix)
        open(marker, "w").close()
        for name in os.listdir(tmp_dir):
            os.replace(os.path.join(tmp_dir, name), os.path.join(mindrecord_dir, name))
        os.unlink(marker)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return written, skipped


def convert(ann_file, img_dir, mindrecord_dir, prefix, shards=1, log=print, num_keypoints=0, keep_crowd=True,
            overwrite=True):
    """Write the annotated images of a split (COCO-format json, or a WIDER label.txt); returns
    (written, skipped). Bad images are skipped with their path printed; the counts are printed at
    the end. label.txt gives no image sizes, so its boxes are clipped here, once an image is decoded.
    ``keep_crowd``: crowd boxes are written (flagged) or left out (the task does not train on them);
    without ``overwrite`` a finished conversion there is an error (once the annotations are read)."""
    dataset = DetectionDataset(ann_file, img_dir, require_annotations=True, num_keypoints=num_keypoints,
                               keep_crowd=keep_crowd)
    if len(dataset) == 0:
        raise CenterDetError(f"{ann_file}: no image has a usable annotation; nothing to convert")
    if not overwrite and find_mindrecord(mindrecord_dir, prefix):
        raise CenterDetError(f"mindrecord_dir {mindrecord_dir} already holds MindRecord '{prefix}': choose another "
                             f"mindrecord_dir or mindrecord_prefix, or pass --overwrite true to convert again")
    samples = ((dataset.image_path(im), im.id, lambda h, w, im=im: pack_annotation(dataset.sized(im, w, h)))
               for im in dataset.images)
    needed = int(1.05 * _bytes_on_disk(dataset.image_path(im) for im in dataset.images))
    written, skipped = write_samples(samples, len(dataset), mindrecord_dir, prefix, shards, log, img_dir, needed,
                                     ann_file=ann_file, num_keypoints=num_keypoints)
    log(f"mindrecord: wrote {written} images to {mindrecord_dir}/{prefix}*, skipped {skipped} unreadable "
        f"images and {dataset.num_without_boxes} images without annotations; {dataset.stats.summary()}")
    return written, skipped
