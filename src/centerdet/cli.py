"""One command line for every entry point: ``centerdet <command> [--config FILE|RECIPE] [--key value ...]``.

Commands: train, eval, test, export, preprocess, postprocess, mindrecord, convert, demo, detect, config.
Every config key is a ``--key value`` flag (a task's model-zoo flag names too); a few commands
take paths that are not config keys (preprocess: --output_path; postprocess: --pre_result_path
--result_path; mindrecord: --split). The top-level scripts (train.py, eval.py, ...) are this
command line with the repository's default_config.yaml as the default recipe.
"""
import dataclasses
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from centerdet.config import load_config, to_dict
from centerdet.errors import CenterDetError, cli_main


BOOL_WORDS = ("true", "false", "yes", "no", "on", "off")  # what YAML reads as a bool


def parse_overrides(argv: Sequence[str], positional: Optional[List[str]] = None, switches: Sequence[str] = ()
                    ) -> Tuple[Dict[str, str], Optional[str]]:
    """``['--a', '1', '--b=x']`` -> ({'a': '1', 'b': 'x'}, config path or None); values stay text.
    Arguments that are not options are an error, or with ``positional`` appended to it. A key in
    ``switches`` may stand alone (``--blur`` = ``--blur true``) unless true/false follows it."""
    values, config_path = {}, None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if positional is not None and not arg.startswith("--"):
            positional.append(arg)
            i += 1
            continue
        if not arg.startswith("--") or arg == "--":
            raise CenterDetError(f"unexpected argument {arg!r}; options look like --key value")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            key = arg[2:]
            if key.replace("-", "_") in switches and (i + 1 >= len(argv) or argv[i + 1].lower() not in BOOL_WORDS):
                values[key.replace("-", "_")] = "true"
                i += 1
                continue
            if i + 1 >= len(argv):
                raise CenterDetError(f"option --{key} needs a value")
            raw = argv[i + 1]
            i += 2
        key = key.replace("-", "_")
        if key in ("config", "config_path"):
            config_path = raw
        else:
            values[key] = raw
    return values, config_path


@dataclasses.dataclass(frozen=True)
class Command:
    """``run(cfg, paths)``; ``paths``: flags that are not config keys, required unless optional."""
    run: Callable
    summary: str
    paths: Tuple[str, ...] = ()
    optional_paths: Dict[str, str] = dataclasses.field(default_factory=dict)
    recipe: Optional[str] = None     # the recipe when --config names none (and no default file is given)
    usage: str = ""
    # flags that mean something else for this command (the model zoo's test.py: --data_dir is the
    # image folder); the key they replace is emptied
    aliases: Dict[str, str] = dataclasses.field(default_factory=dict)


def parse(command: Command, argv: Sequence[str], default_config: Optional[str] = None):
    """(config, {path flag: value}) from ``argv``."""
    values, config_path = parse_overrides(list(argv))
    for flag, key in command.aliases.items():
        if flag in values:
            if key in values:
                raise CenterDetError(f"give --{flag} or --{key}, not both: for this command --{flag} is the {key}")
            values[key] = values.pop(flag)
            values[flag] = ""
    paths = {k: values.pop(k, d) for k, d in command.optional_paths.items()}
    for key in command.paths:
        if key not in values:
            raise CenterDetError(f"missing --{key}")
        paths[key] = values.pop(key)
    return load_config(config_path or default_config or command.recipe, values), paths


def _train(cfg, paths):
    from centerdet.engine.trainer import train

    train(cfg)


def _eval(cfg, paths):
    from centerdet.engine.evaluator import run_inference

    run_inference(cfg)


def _test(cfg, paths):
    """One checkpoint (--load_checkpoint_path, or the model zoo's --test_model DIR --ckpt_name NAME),
    or with --start/--end those of a run: this rank's epochs loop·device_num + rank + 1, loop from
    start to end, named <prefix>-<epoch>_<epoch·steps_per_epoch>.ckpt in --test_model (missing ones
    are skipped, as the model zoo's test.py does)."""
    import dataclasses as dc
    import os

    from centerdet.engine import evaluator

    model_dir, name = paths["test_model"], paths["ckpt_name"]
    if paths["start"] is None and paths["end"] is None:
        if model_dir or name:
            cfg = dc.replace(cfg, load_checkpoint_path=os.path.join(model_dir or ".", name or ""))
        evaluator.run_inference(cfg, score=False)
        return
    if not model_dir:
        raise CenterDetError("--start/--end test the checkpoints of a run: give its folder with --test_model")
    evaluator.test_epochs(cfg, model_dir, _int_flag(paths, "steps_per_epoch"), _int_flag(paths, "start"),
                          _int_flag(paths, "end"), _int_flag(paths, "rank"))


def _int_flag(paths, key):
    value = paths[key]
    if value is None:
        raise CenterDetError(f"--{key} is needed with --start/--end (the checkpoint names hold epoch × steps_per_epoch)")
    if not str(value).lstrip("-").isdigit():
        raise CenterDetError(f"--{key} must be a whole number, got {value!r}")
    return int(value)


def _export(cfg, paths):
    from centerdet.deploy.export import export_network

    export_network(cfg)


def _preprocess(cfg, paths):
    from centerdet.deploy.preprocess import preprocess

    preprocess(cfg, paths["output_path"])


def _postprocess(cfg, paths):
    from centerdet.deploy.postprocess import postprocess

    postprocess(cfg, paths["pre_result_path"], paths["result_path"], cfg.save_result_dir)


def _mindrecord(cfg, paths):
    from centerdet import tasks
    from centerdet.data.coco import split_paths
    from centerdet.data.mindrecord import convert

    if paths["split"] not in ("train", "val", "test"):
        raise CenterDetError(f"--split must be train, val or test, got {paths['split']!r}")
    ann, img_dir = split_paths(cfg, paths["split"])
    task = tasks.of(cfg)
    convert(ann, img_dir, cfg.mindrecord_dir, cfg.mindrecord_prefix, cfg.mindrecord_shards,
            num_keypoints=task.num_keypoints, keep_crowd=task.train_on_crowd, overwrite=cfg.overwrite)


def _config(cfg, paths):
    import yaml

    print(yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None), end="")


COMMANDS = {
    "train": Command(_train, "train a detector (MindRecord conversion on first use; --resume true continues)"),
    "eval": Command(_eval, "run a checkpoint on the val (or test) split and score it"),
    "test": Command(_test, "write a checkpoint's predictions for the val images (CenterFace's test.py)",
                    recipe="centerface_mbv2_8xb8-140e_widerface", aliases={"data_dir": "val_img_dir"},
                    optional_paths={"test_model": None, "ckpt_name": None, "start": None, "end": None, "rank": "0",
                                    "steps_per_epoch": None}),
    "export": Command(_export, "export a checkpoint to MINDIR, AIR or ONNX"),
    "preprocess": Command(_preprocess, "write fixed-shape network inputs for batch inference",
                          paths=("output_path",)),
    "postprocess": Command(_postprocess, "decode and score the outputs of a batch-inference run",
                           paths=("pre_result_path", "result_path")),
    "mindrecord": Command(_mindrecord, "convert a data set split to MindRecord", optional_paths={"split": "train"},
                          usage="centerdet mindrecord [--config FILE|RECIPE] --data_dir DIR (or --coco_data_dir DIR) "
                                "--mindrecord_dir OUT [--mindrecord_prefix P] [--split train|val|test] [--key value ...]\n"
                                "Annotation and image paths inside DIR come from the config (train_ann_file, "
                                "train_img_dir, ...)."),
    "config": Command(_config, "print the config a command would run with, every key"),
}
# Commands with their own command lines (sub-commands of their own).
OWN_PARSERS = {"convert": ("centerdet.convert.__main__", "convert PyTorch / ONNX weights to MindSpore and back"),
               "demo": ("centerdet.demo", "synthetic data -> train -> evaluate -> pictures, in one go"),
               "detect": ("centerdet.detect", "run a checkpoint on your own images and videos: drawn or hidden + JSON")}


def usage() -> str:
    rows = [(n, c.summary) for n, c in COMMANDS.items()] + [(n, s) for n, (_, s) in OWN_PARSERS.items()]
    lines = [__doc__.strip(), "", "commands:"] + [f"  {n:<12} {s}" for n, s in rows]
    return "\n".join(lines)


def run(name: str, argv: Sequence[str], default_config: Optional[str] = None, doc: Optional[str] = None):
    """Run command ``name`` on ``argv`` (``doc``: the help text of the script that calls it)."""
    if name in OWN_PARSERS:
        import importlib

        return importlib.import_module(OWN_PARSERS[name][0]).main(list(argv))
    if name == "eval" and any(a == "--pred" or a.startswith("--pred=") for a in argv):
        # the CenterFace model zoo's `python eval.py --pred DIR --gt DIR`: the WIDER FACE evaluation alone
        from centerdet.evaluation.widerface import main as widerface_main

        return widerface_main(list(argv))
    command = COMMANDS[name]
    if any(a in ("-h", "--help") for a in argv):
        print((doc or f"centerdet {name}: {command.summary}\n{command.usage}").strip())
        print("\noptions: [--config FILE|RECIPE] [--model TASK] [--key value ...]; every key: centerdet config")
        return 0
    cfg, paths = parse(command, argv, default_config)
    return command.run(cfg, paths)


@cli_main
def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS and argv[0] not in OWN_PARSERS:
        raise CenterDetError(f"unknown command {argv[0]!r}; one of: {', '.join([*COMMANDS, *OWN_PARSERS])}")
    return run(argv[0], argv[1:]) or 0


def script(name: str, doc: str, default_config: Optional[str] = None) -> Callable:
    """A top-level script's ``main(argv=None)``: command ``name`` on argv (default sys.argv[1:]),
    errors as one line and exit status 2."""
    @cli_main
    def main(argv=None):
        return run(name, sys.argv[1:] if argv is None else argv, default_config, doc)

    return main
