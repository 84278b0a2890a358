"""ascend310_infer/ where no Ascend toolkit exists: the C++ project builds (its OpenCV part), and its
preprocessing writes the very bytes preprocess.py writes. Skipped without cmake, g++ or OpenCV's
development files (Debian: libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev)."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, run_script


@pytest.fixture(scope="module")
def preprocess_tool(tmp_path_factory):
    if not (shutil.which("cmake") and shutil.which("g++")):
        pytest.skip("cmake and g++ are needed to build ascend310_infer")
    build = tmp_path_factory.mktemp("build_310")
    conf = subprocess.run(["cmake", "-S", os.path.join(ROOT, "ascend310_infer"), "-B", str(build)],
                          capture_output=True, text=True)
    if conf.returncode != 0 and "opencv" in (conf.stdout + conf.stderr).lower():
        pytest.skip("OpenCV development files are not installed")
    assert conf.returncode == 0, conf.stdout + conf.stderr
    assert "building preprocess_tool only" in conf.stdout  # no MindSpore C++ package here
    done = subprocess.run(["cmake", "--build", str(build), "-j2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(build / "preprocess_tool")


def _compare(tool, tmp_path, args):
    run_script("preprocess.py", args + ["--output_path", str(tmp_path / "py")], tmp_path)
    proc = subprocess.run([tool, str(tmp_path / "py"), str(tmp_path / "cpp")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = sorted(os.listdir(tmp_path / "py" / "images"))
    assert names and names == sorted(os.listdir(tmp_path / "cpp" / "images"))
    for name in names:
        assert (tmp_path / "py" / "images" / name).read_bytes() == (tmp_path / "cpp" / "images" / name).read_bytes(), name
    return names


def test_cpp_preprocessing_equals_python_on_coco(preprocess_tool, tiny_coco, tmp_path):
    args = ["--config", "centernet_r18-ida_1xb16-16e_synthetic", "--data_dir", str(tiny_coco),
            "--input_res_test", "[96, 160]"]
    assert len(_compare(preprocess_tool, tmp_path, args)) == 6


def test_cpp_preprocessing_equals_python_on_faces_of_many_shapes(preprocess_tool, tmp_path):
    from centerdet.data.synthetic.faces import FaceSceneOptions, generate_widerface

    data = tmp_path / "faces"
    generate_widerface(str(data), 1, 6, seed=5, size=120, opts=FaceSceneOptions(min_face=10, max_face=50, max_faces=3))
    # The release config: no mean, std 1/255 (other numbers than COCO's), landscape canvas.
    args = ["--config", "centerface_mbv2-w24-relu_release_widerface", "--data_dir", str(data),
            "--input_res_test", "[128, 96]"]
    assert len(_compare(preprocess_tool, tmp_path, args)) == 6


def test_run_infer_310_says_what_is_missing_without_mindspore_cpp(preprocess_tool, tiny_coco, tmp_path):
    mindir = tmp_path / "net.mindir"
    mindir.write_bytes(b"stand-in")
    env = dict(os.environ, MINDSPORE_PATH="")
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "run_infer_310.sh"), str(mindir), str(tiny_coco), "y",
                           "0", "--config", "centernet_r18-ida_1xb16-16e_synthetic"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 1
    assert "error: ascend310_infer/main was not built: set MINDSPORE_PATH" in proc.stdout
    assert (tmp_path / "preprocess_Result" / "meta.json").is_file()
