"""preprocess.py's work: a COCO split or the WIDER FACE val images → fixed-shape network inputs
(the canvas eval.py builds with keep_res false at the exported size) + meta.json."""
import dataclasses
import os
import time

import numpy as np

from centerdet.data.images import read_image
from centerdet.data.transforms import normalize
from centerdet.deploy.export import export_shape
from centerdet.deploy.files import head_layout, input_path, save_meta, write_array
from centerdet.engine.progress import log_progress
from centerdet.errors import CenterDetError
from centerdet.fileio import ensure_writable_dir, refuse_overwrite, write_text


def fixed_shape_config(cfg):
    """The config eval.py must run with to see exactly what the deployed model sees."""
    _, _, h, w = export_shape(cfg)
    return dataclasses.replace(cfg, keep_res=False, input_res_test=[h, w], multi_scales=[1.0], flip_test=False)


def dataset_images(cfg, log=print):
    """The images eval.py would run on (its metric's list), as EvalImages."""
    from centerdet import tasks

    return tasks.of(cfg).metric(cfg, None, log).images()  # no out_dir: nothing will be written


def preprocess(cfg, out_dir, log=print):
    from centerdet.inference import make_test_canvas

    if not out_dir:
        raise CenterDetError("give --output_path: the folder for the input .bin files and meta.json")
    refuse_overwrite(out_dir, "output_path", cfg.overwrite)
    ensure_writable_dir(os.path.join(out_dir, "images"), "output_path")
    fixed = fixed_shape_config(cfg)
    _, _, h, w = export_shape(cfg)
    images = dataset_images(cfg, log)
    entries, skipped, start = [], 0, time.time()
    for i, image in enumerate(images):
        try:
            img = read_image(image.path)
        except CenterDetError as exc:
            skipped += 1
            log(f"skip: {exc}")
        else:
            canvas, meta = make_test_canvas(img, 1.0, fixed)
            name = f"{i:06d}"
            write_array(input_path(out_dir, name), normalize(canvas, cfg.mean, cfg.std)[None])
            entries.append({"name": name, "key": image.key, "path": image.path,
                            "center": [float(v) for v in meta["center"]], "scale": float(meta["scale"]),
                            "out_size": list(meta["out_size"]), "size": [int(img.shape[1]), int(img.shape[0])]})
        log_progress("preprocess", i + 1, len(images), start, log)
    heads, head_shapes = head_layout(cfg, h, w)
    save_meta(out_dir, {"model": cfg.model, "input_shape": [1, 3, h, w], "heads": heads, "head_shapes": head_shapes,
                        "mean": list(cfg.mean), "std": list(cfg.std), "images": entries})
    # The same facts as plain text for the C++ side (ascend310_infer): the float32 values written so
    # that parsing them back gives the very same floats.
    write_text(os.path.join(out_dir, "images.txt"), "".join(f"{e['name']} {e['path']}\n" for e in entries))
    exact = lambda values: " ".join(repr(float(np.float32(v))) for v in values)  # noqa: E731
    write_text(os.path.join(out_dir, "preprocess.txt"),
               f"height {h}\nwidth {w}\nmean {exact(cfg.mean)}\nstd {exact(cfg.std)}\n")
    log(f"preprocess: {len(entries)} inputs of shape [1, 3, {h}, {w}] in {out_dir}"
        + (f"; {skipped} unreadable images skipped" if skipped else ""))
    return entries
