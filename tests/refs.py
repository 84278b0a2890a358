"""Independent numpy references shared by several test modules."""
import numpy as np


def gaussian_map(h, w, cx, cy, r):
    """One CenterNet ('umich') gaussian of integer radius r pasted at (cx, cy) on an h×w map."""
    sigma = (2 * r + 1) / 6.0
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    return np.where(inside, np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2)), 0.0)


def face_train_sample(rng, img, boxes, landmarks, visible, aug, input_size, down_ratio):
    """train_sample on faces, unpacked: (image, boxes, landmarks, visible, keep)."""
    from centerdet.data.transforms import train_sample
    from centerdet.tasks.centerface import LANDMARK_FLIP

    target = {"boxes": boxes, "keypoints": landmarks, "visible": visible}
    inp, out, keep = train_sample(rng, img, target, aug, input_size, down_ratio, LANDMARK_FLIP)
    return inp, out["boxes"], out["keypoints"], out["visible"], keep


# ---------------------------------------------------------------- face records in the tests' words


def FaceImage(file_name, width, height, boxes, landmarks, visible, image_id=1):  # noqa: N802
    """A face ImageRecord (five landmarks)."""
    from centerdet.data.coco import make_record

    return make_record(image_id, file_name, width, height, boxes, keypoints=landmarks, visible=visible,
                       num_keypoints=5)


def FaceDataset(ann_file, img_dir, require_faces=False):  # noqa: N802
    from centerdet.data.coco import DetectionDataset

    return DetectionDataset(ann_file, img_dir, require_annotations=require_faces, num_keypoints=5, keep_crowd=False)


def read_keypoint_json(path, stats=None):
    from centerdet.data.coco import read_coco_json

    return read_coco_json(path, 5, stats, keep_crowd=False)[0]


def read_face_annotations(path, stats=None):
    """The records of a face .json or label.txt as read (label.txt: not clipped, sizes unknown)."""
    import os

    from centerdet.data.widerface import read_label_txt
    from centerdet.errors import CenterDetError

    ext = os.path.splitext(str(path))[1]
    if ext == ".txt":
        return read_label_txt(path, stats)
    if ext != ".json":
        raise CenterDetError(f"unknown face annotation format '{ext}' ({path})")
    return read_keypoint_json(path, stats)


def write_keypoint_json(path, images, info=None, face_attrs=None):
    """The CenterFace json of ``images`` (image ids: 1-based positions)."""
    import dataclasses

    from centerdet.data.coco import write_coco_json
    from centerdet.data.widerface import FACE_CATEGORY

    images = [dataclasses.replace(im, id=i + 1) for i, im in enumerate(images)]
    write_coco_json(path, images, [FACE_CATEGORY], info=info, attrs=face_attrs)


def read_ground_truth_mats(gt_dir):
    """The inverse of write_ground_truth_mats: [(event, [(name, xywh, keep_easy, keep_medium, keep_hard)])]."""
    from centerdet.data.widerface import SETTINGS, load_ground_truth

    gt = load_ground_truth(str(gt_dir))
    return [(event, [(name, xywh, *(gt.keep[s][i][j] for s in SETTINGS))
                     for j, (name, xywh) in enumerate(zip(names, boxes))])
            for i, (event, names, boxes) in enumerate(gt.events)]
