"""COCO-format dataset → MindRecord files (encoded image bytes + boxes), written all-or-nothing.

Files are first written into a hidden temporary folder next to the destination and moved into
place only after the writer commits, so an interrupted conversion never leaves files that a later
run could mistake for a complete dataset.
"""
import os
import shutil
import tempfile
import time

import numpy as np

from centerdet.data.coco import CocoDataset
from centerdet.data.images import decode_image
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir

SCHEMA = {
    "image": {"type": "bytes"},
    "image_id": {"type": "int64"},
    # rows of [x1, y1, x2, y2, label, crowd], flattened (MindRecord arrays are 1-D with one -1 dim)
    "annotation": {"type": "float32", "shape": [-1]},
}
ANN_COLUMNS = 6


def shard_files(mindrecord_dir, prefix, shards):
    if shards == 1:
        return [os.path.join(mindrecord_dir, prefix)]
    return [os.path.join(mindrecord_dir, f"{prefix}{i}") for i in range(shards)]


def find_mindrecord(mindrecord_dir, prefix):
    """The data files of a finished conversion, or [] if there is none."""
    if not os.path.isdir(mindrecord_dir):
        return []
    single = os.path.join(mindrecord_dir, prefix)
    if os.path.isfile(single) and os.path.isfile(single + ".db"):
        return [single]
    files = sorted((f for f in os.listdir(mindrecord_dir)
                    if f.startswith(prefix) and f[len(prefix):].isdigit()),
                   key=lambda f: int(f[len(prefix):]))
    return [os.path.join(mindrecord_dir, f) for f in files if os.path.isfile(os.path.join(mindrecord_dir, f + ".db"))]


def pack_annotation(image):
    rows = np.concatenate([image.boxes, image.labels[:, None].astype(np.float32),
                           image.crowd[:, None].astype(np.float32)], 1)
    return rows.reshape(-1).astype(np.float32)


def unpack_annotation(flat):
    rows = np.asarray(flat, np.float32).reshape(-1, ANN_COLUMNS)
    return rows[:, :4], rows[:, 4].astype(np.int32)


def convert(ann_file, img_dir, mindrecord_dir, prefix, shards=1, log=print):
    """Write the annotated images of one split; returns (written, skipped). Bad images are skipped
    with their path printed; the counts are printed at the end."""
    from mindspore.mindrecord import FileWriter

    dataset = CocoDataset(ann_file, img_dir, require_annotations=True)
    if len(dataset) == 0:
        raise CenterDetError(f"{ann_file}: no image has a usable annotation; nothing to convert")
    ensure_writable_dir(mindrecord_dir, "mindrecord_dir")
    tmp_dir = tempfile.mkdtemp(prefix=f".{prefix}.partial.", dir=mindrecord_dir)
    try:
        writer = FileWriter(os.path.join(tmp_dir, prefix), shard_num=shards, overwrite=True)
        writer.add_schema(SCHEMA, "centerdet detection samples")
        written, skipped, batch = 0, 0, []
        start = time.time()
        for i, image in enumerate(dataset.images):
            path = dataset.image_path(image)
            try:
                with open(path, "rb") as f:
                    data = f.read()
                decode_image(data, path)
            except (OSError, CenterDetError) as exc:
                skipped += 1
                msg = str(exc) if isinstance(exc, CenterDetError) else f"cannot read image: {path} ({exc.strerror})"
                log(f"skip: {msg}")
                continue
            batch.append({"image": data, "image_id": image.id, "annotation": pack_annotation(image)})
            written += 1
            if len(batch) == 256:
                writer.write_raw_data(batch)
                batch = []
            if (i + 1) % 1000 == 0:
                rate = (i + 1) / max(time.time() - start, 1e-6)
                log(f"converted {i + 1}/{len(dataset)} images, ETA {(len(dataset) - i - 1) / rate:.0f}s")
        if batch:
            writer.write_raw_data(batch)
        if written == 0:
            raise CenterDetError(f"no readable image among the {skipped} annotated images under {img_dir}")
        writer.commit()
        for name in os.listdir(tmp_dir):
            os.replace(os.path.join(tmp_dir, name), os.path.join(mindrecord_dir, name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    log(f"mindrecord: wrote {written} images to {mindrecord_dir}/{prefix}*, skipped {skipped} unreadable "
        f"images; {dataset.stats.summary()}")
    return written, skipped
