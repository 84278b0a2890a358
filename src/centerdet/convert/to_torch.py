"""Our MindSpore checkpoints → PyTorch ``.pth`` files (written without PyTorch), so weights trained
here load into the original code: ``ctdet`` for CenterNet's repository ({'epoch', 'state_dict'}),
``torchvision`` for the backbone alone under torchvision's names."""
from centerdet.convert.common import to_torch_names
from centerdet.convert.pth import write_pth
from centerdet.errors import CenterDetError

LAYOUTS = ("ctdet", "torchvision")


def export_torch(src, out, layout, log=print):
    from centerdet.engine.checkpoint import read_checkpoint

    if layout not in LAYOUTS:
        raise CenterDetError(f"unknown layout '{layout}': choose one of {', '.join(LAYOUTS)}")
    params = {k: v.asnumpy() for k, v in read_checkpoint(src).items()}
    if layout == "torchvision":
        params = {k: v for k, v in params.items() if k.startswith("backbone.")}
        if not params:
            raise CenterDetError(f"{src}: no backbone.* tensors to export")
        state = to_torch_names(params, ("backbone.",))
        write_pth(state, out)
        log(f"convert: {out} holds the backbone a detector uses, not torchvision's classifier (nor MobileNetV2's "
            f"features.18): load it into torchvision with load_state_dict(..., strict=False)")
    else:
        if any(k.startswith("lm.") for k in params):
            raise CenterDetError(f"{src}: a CenterFace checkpoint; the ctdet layout is CenterNet's")
        state = to_torch_names(params, ("backbone.", "neck."))
        write_pth(state, out, wrap={"epoch": 0})
    log(f"convert: {src} -> {out}: {len(state)} tensors in PyTorch's {layout} layout")
    return state
