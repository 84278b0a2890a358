"""Learning happens: two minutes of CPU training make the detector find objects it could not before.

The demo recipe (ResNet-18 + ida neck, 128 px) on 256 synthetic images for 300 steps of batch 8:
the loss halves and COCO AP50 on 48 held-out images rises from ~0 (untrained) to ~0.2 (measured
0.214 here; the demo's 1000 images × 16 epochs reach ~0.9). Exported to ONNX, the trained network
gives the same COCO metrics through onnxruntime (eval.py --backend onnxruntime).
"""
import json

import pytest

from conftest import run_script

pytestmark = pytest.mark.slow

COMMON = ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--input_res_train", "[128, 128]",
          "--num_parallel_workers", "1"]


def run(script, args, cwd):
    return run_script(script, COMMON + args, cwd)


def ap50(cwd, data, ckpt, split, out):
    run("eval.py", ["--data_dir", str(data), "--load_checkpoint_path", str(ckpt), "--save_result_dir", str(out),
                    "--val_ann_file", f"annotations/{split}.json", "--val_img_dir", f"images/{split}"], cwd)
    return json.loads((out / "metrics.json").read_text())["AP50"]


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

    # the trained network exported to ONNX scores the same through onnxruntime
    run_script("export.py", ["--config", COMMON[1], "--load_checkpoint_path", str(trained), "--file_format", "ONNX",
                             "--export_name", str(tmp_path / "trained")], tmp_path)
    run("eval.py", ["--data_dir", str(data), "--backend", "onnxruntime", "--load_checkpoint_path",
                    str(tmp_path / "trained.onnx"), "--save_result_dir", str(tmp_path / "r_ort")], tmp_path)
    want = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    got = json.loads((tmp_path / "r_ort" / "metrics.json").read_text())
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) <= 0.001 for k in want), (got, want)
