"""Checkpoints of the MindSpore model zoo's CenterNet-R50 and CenterFace: their names and shapes
(tests/data/modelzoo/, read off the zoo's network definitions, sources cited there) map onto ours,
and a checkpoint laid out exactly that way converts and detects as our own checkpoint does."""
import json
import os

import numpy as np
import pytest

import centerdet  # noqa: F401
from centerdet.config import load_config
from centerdet.convert.modelzoo import layout_of
from centerdet.errors import CenterDetError

from conftest import ROOT

DATA = os.path.join(ROOT, "tests", "data", "modelzoo")
ZOO = {"centernet": ("centernet_r50_params.json", {"neck": "upconv"}), "centerface": ("centerface_params.json", {})}


def our_name(name, model):
    """The converter's name for a tensor of the zoo's ``model`` network."""
    return layout_of([n for n, _ in zoo_list(model)["params"]]).rename(name)


def zoo_list(model):
    with open(os.path.join(DATA, ZOO[model][0])) as f:
        return json.load(f)


def our_net(model):
    from centerdet.models import build_model

    return build_model(load_config(None, ZOO[model][1], model=model))


@pytest.mark.parametrize("model", sorted(ZOO))
def test_every_zoo_tensor_maps_onto_ours_with_its_shape(model):
    zoo = zoo_list(model)
    ours = {p.name: tuple(p.shape) for p in our_net(model).get_parameters()}
    mapped = {our_name(name, model): tuple(shape) for name, shape in zoo["params"]}
    assert len(mapped) == len(zoo["params"])  # no two zoo tensors become one of ours
    assert mapped == ours


@pytest.mark.parametrize("model", sorted(ZOO))
def test_a_zoo_checkpoint_converts_and_detects_as_ours(model, tmp_path):
    """Our weights written in the zoo's layout (its prefix, names and order, plus optimizer state)
    → convert modelzoo → the same detections as our own checkpoint."""
    import mindspore as ms

    from centerdet.convert.__main__ import main as convert_main
    from centerdet.inference import Predictor

    ms.set_seed(3)
    net = our_net(model)
    params = {p.name: p for p in net.get_parameters()}
    zoo = zoo_list(model)
    entries = [{"name": zoo["prefix"] + name, "data": params[our_name(name, model)].data} for name, _ in zoo["params"]]
    first = zoo["prefix"] + zoo["params"][0][0]
    entries += [{"name": "moment1." + first, "data": ms.Tensor(np.ones(zoo["params"][0][1], np.float32))},
                {"name": "global_step", "data": ms.Tensor(np.array([7], np.int32))}]
    ms.save_checkpoint(entries, str(tmp_path / "zoo.ckpt"))
    ms.save_checkpoint(net, str(tmp_path / "ours.ckpt"))
    assert convert_main(["modelzoo", "--src", str(tmp_path / "zoo.ckpt"), "--out", str(tmp_path / "conv.ckpt")]) == 0

    from centerdet.engine.evaluator import load_detector

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (96, 128, 3), np.uint8) for _ in range(2)]
    dets = []
    for ckpt in ("ours.ckpt", "conv.ckpt"):
        cfg = load_config(None, {**ZOO[model][1], "load_checkpoint_path": str(tmp_path / ckpt), "keep_res": "false",
                                 "input_res_test": "[96, 128]"}, model=model)
        predictor = Predictor(load_detector(cfg, log=lambda line: None), cfg)
        dets.append([predictor(img) for img in images])
    for a, b in zip(*dets):
        assert len(a) > 0
        np.testing.assert_array_equal(a, b)


def test_not_a_zoo_checkpoint_is_one_line(tmp_path):
    import mindspore as ms

    from centerdet.convert.modelzoo import convert_modelzoo

    ms.save_checkpoint([{"name": "x.weight", "data": ms.Tensor(np.zeros(3, np.float32))}], str(tmp_path / "x.ckpt"))
    with pytest.raises(CenterDetError, match="no tensor of the model zoo's CenterFace"):
        convert_modelzoo(str(tmp_path / "x.ckpt"), str(tmp_path / "y.ckpt"))
    assert not (tmp_path / "y.ckpt").exists()
