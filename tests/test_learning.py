"""Learning happens: four minutes of CPU training make the detector find objects it could not before.

The demo recipe (ResNet-18 + ida neck, 128 px) with its neck's finishing conv deformable
(``--use_dcn true``), on 256 synthetic images for 300 steps of batch 8: the loss halves and COCO
AP50 on 48 held-out images rises from ~0 (untrained) to ~0.2 (measured 0.218 here; the demo's 1000
images × 16 epochs reach ~0.9), and the deformable conv has learned to move its samples. Exported
to ONNX (DeformConv), the trained network gives the same COCO metrics through onnxruntime.

Why not the seed's deconv-DCN neck: from scratch at 128 px it starts from ResNet's 4×4 stride-32
map, and 300 steps leave it at AP50 0.001-0.006 (measured), where equal metrics would prove little.
"""
import json

import pytest

from conftest import run_script

pytestmark = pytest.mark.slow

COMMON = ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--input_res_train", "[128, 128]",
          "--num_parallel_workers", "1", "--use_dcn", "true"]


def run(script, args, cwd):
    return run_script(script, COMMON + args, cwd)


def ap50(cwd, data, ckpt, split, out):
    run("eval.py", ["--data_dir", str(data), "--load_checkpoint_path", str(ckpt), "--save_result_dir", str(out),
                    "--val_ann_file", f"annotations/{split}.json", "--val_img_dir", f"images/{split}"], cwd)
    return json.loads((out / "metrics.json").read_text())["AP50"]


def mean_offset_px(ckpt, image_dir):
    """Mean |offset| (output-map pixels) the trained neck's deformable conv predicts on held-out images."""
    import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
    import cv2
    import numpy as np
    from mindspore import Tensor

    from centerdet.config import load_config
    from centerdet.data.transforms import normalize
    from centerdet.engine.evaluator import load_detector

    cfg = load_config(COMMON[1], {"use_dcn": "true", "load_checkpoint_path": str(ckpt)})
    net = load_detector(cfg, log=lambda *a: None)
    paths = sorted(image_dir.glob("*.jpg"))[:8]
    x = np.stack([normalize(cv2.imread(str(p)) / np.float32(255), cfg.mean, cfg.std) for p in paths])
    merged = net.neck.merge(net.backbone(Tensor(x)))
    offsets = net.neck.fuse[0].conv_offset_mask(merged).asnumpy()[:, :18]  # 2 × 3×3 taps; the rest are mask logits
    return float(np.abs(offsets).mean())


def test_training_raises_ap50(tmp_path):
    from centerdet.data.synthetic import SceneOptions, generate_coco

    data = tmp_path / "data"
    generate_coco(str(data), n_train=256, n_val=48, size=128, seed=11,
                  opts=SceneOptions(min_box_frac=0.12, max_objects=6, clutter=(0.1, 0.6)))
    common = ["--data_dir", str(data), "--mindrecord_dir", str(tmp_path / "mr"), "--batch_size", "8",
              "--warmup_steps", "20", "--log_interval", "10"]
    run("train.py", common + ["--save_checkpoint_path", str(tmp_path / "init"), "--train_steps", "1"], tmp_path)
    ckpt = tmp_path / "ckpt"
    run("train.py", common + ["--save_checkpoint_path", str(ckpt), "--train_steps", "300",
                              "--save_checkpoint_steps", "1000"], tmp_path)
    history = json.loads((ckpt / "history.json").read_text())
    first, last = history["loss"][0], history["loss"][-1]
    assert last < first / 2, f"loss only fell from {first:.3f} to {last:.3f}"

    untrained = tmp_path / "init" / "centernet-1_1.ckpt"  # one step at warm-up lr: effectively the init
    trained = ckpt / "centernet-10_300.ckpt"
    before = ap50(tmp_path, data, untrained, "val", tmp_path / "r0")
    after = ap50(tmp_path, data, trained, "val", tmp_path / "r1")
    print(f"loss {first:.3f} -> {last:.3f}, held-out AP50 {before:.3f} -> {after:.3f}")
    assert before < 0.05
    assert after > 0.1, f"held-out AP50 only rose from {before:.3f} to {after:.3f}"
    shift = mean_offset_px(trained, data / "images" / "val")
    assert shift > 0.3, f"the trained deformable conv moves its samples by only {shift:.3f} px on average"

    # the trained network exported to ONNX, in both DCN forms, scores the same through onnxruntime
    want = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    for form in ("deformconv", "decomposed"):
        onnx_file = tmp_path / f"trained_{form}"
        run_script("export.py", ["--config", COMMON[1], "--use_dcn", "true", "--load_checkpoint_path", str(trained),
                                 "--file_format", "ONNX", "--onnx_dcn", form, "--export_name", str(onnx_file)], tmp_path)
        out = tmp_path / f"r_{form}"
        run("eval.py", ["--data_dir", str(data), "--backend", "onnxruntime", "--load_checkpoint_path",
                        f"{onnx_file}.onnx", "--save_result_dir", str(out)], tmp_path)
        got = json.loads((out / "metrics.json").read_text())
        assert got.keys() == want.keys() and all(abs(got[k] - want[k]) <= 0.001 for k in want), (form, got, want)
