"""Deployment: export to MINDIR/AIR/ONNX, preprocess a data set into fixed-shape input files, run
them through a MINDIR (Python runner here, C++ runner in ascend310_infer/), postprocess the outputs
into COCO or WIDER FACE metrics. The file contract is in ``files``."""
