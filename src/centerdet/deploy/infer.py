"""The Python batch runner: every input .bin of a preprocess folder through a MINDIR, one output
.bin per head (the same files ascend310_infer writes), on any MindSpore target.

python -m centerdet.deploy.infer --mindir FILE --input_dir PREPROCESS_OUT --output_dir DIR [--device_target CPU]
"""
import argparse
import os
import sys
import time

import numpy as np

import centerdet  # noqa: F401  (oneDNN setting before mindspore loads)
from centerdet.deploy.files import input_path, load_meta, output_path, read_array, write_array
from centerdet.engine.progress import log_progress
from centerdet.errors import CenterDetError, cli_main
from centerdet.fileio import ensure_writable_dir, refuse_overwrite


def run_mindir(mindir, input_dir, output_dir, device_target="CPU", device_id=0, log=print, overwrite=False):
    """Returns the median milliseconds per image of the network runs; the first run, which compiles
    the graph, is reported apart and left out of it when there are other runs."""
    import mindspore as ms
    from mindspore import nn

    from centerdet.runtime import init_device

    if not os.path.isfile(mindir):
        raise CenterDetError(f"MINDIR file not found: {mindir}")
    meta = load_meta(input_dir)
    refuse_overwrite(output_dir, "--output_dir", overwrite)
    ensure_writable_dir(output_dir, "output_dir")
    init_device(device_target, device_id, "graph")
    try:
        net = nn.GraphCell(ms.load(mindir))
    except (RuntimeError, ValueError) as exc:
        raise CenterDetError(f"cannot load {mindir}: not a MINDIR file or truncated "
                             f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from None
    images, shape = meta["images"], meta["input_shape"]
    start, net_times = time.time(), []
    for i, entry in enumerate(images):
        x = ms.Tensor(read_array(input_path(input_dir, entry["name"]), shape))
        t = time.time()
        try:
            outs = net(x)
        except (RuntimeError, ValueError) as exc:
            raise CenterDetError(f"{mindir} does not take inputs of shape {shape}: export it with the config "
                                 f"preprocess used and --export_batch_size 1 ({str(exc).strip().splitlines()[0]})") from None
        outs = [o.asnumpy() for o in (outs if isinstance(outs, (tuple, list)) else (outs,))]
        net_times.append(time.time() - t)
        if len(outs) != len(meta["heads"]):
            raise CenterDetError(f"{mindir} has {len(outs)} outputs but meta.json lists heads {meta['heads']}: "
                                 f"the model and the preprocess config differ")
        for k, out in enumerate(outs):
            write_array(output_path(output_dir, entry["name"], k), out[0])
        log_progress("infer", i + 1, len(images), start, log)
    steady = net_times[1:] or net_times
    ms_per_image = 1000 * float(np.median(steady)) if steady else 0.0
    first = f", first call (graph compile) {net_times[0]:.2f} s" if len(net_times) > 1 else ""
    log(f"infer: {len(images)} images through {mindir}: {ms_per_image:.1f} ms/img (network, median{first}), "
        f"outputs in {output_dir}")
    return ms_per_image


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m centerdet.deploy.infer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mindir", required=True, help="the exported .mindir")
    parser.add_argument("--input_dir", required=True, help="preprocess.py's --output_path (meta.json + images/)")
    parser.add_argument("--output_dir", required=True, help="where to write <name>_<k>.bin")
    parser.add_argument("--device_target", default=os.environ.get("DEVICE_TARGET", "CPU"), choices=("CPU", "GPU", "Ascend"))
    parser.add_argument("--device_id", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    args = parser.parse_args(argv)
    run_mindir(args.mindir, args.input_dir, args.output_dir, args.device_target, args.device_id,
               overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
