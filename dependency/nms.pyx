# placeholder, replaced by the soft-NMS kernels
def _probe():
    return 1
