#!/usr/bin/env python3
"""Brings expected_224.safetensors up to the reference environment's Pillow (scripts/venv; Pillow 13).

make_fixtures.py made the file with Debian's Pillow 9.4. Pillow 10 opens a 16-bit gray PNG as I;16 (each resampling
pass clipped to 0..65535) instead of I, and Pillow 13 runs the vertical pass first when the height shrinks by more
than twice as many pixels as the width (python-pillow/Pillow#9549): outputs that depend on either change. This
recomputes every entry with openai/CLIP's transform (Resize(224, bicubic), CenterCrop(224), RGB) in the reference
environment, rewrites the ones that differ, and prints them. Run from the repository root:
    $(scripts/venv)/bin/python tests/data/preprocess/refresh_with_reference.py
"""
import os

import numpy as np
import PIL
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from torchvision.transforms import CenterCrop, InterpolationMode, Resize

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "expected_224.safetensors")


def main():
    with safe_open(PATH, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    resize, crop = Resize(224, interpolation=InterpolationMode.BICUBIC), CenterCrop(224)
    changed = []
    for name, old in tensors.items():
        with Image.open(os.path.join(HERE, "images", name)) as im:
            rgb = crop(resize(im)).convert("RGB")
        new = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()
        if not torch.equal(new, old):
            changed.append("%s (max %d)" % (name, (new.int() - old.int()).abs().max().item()))
            tensors[name] = new
    save_file(tensors, PATH, metadata=metadata)
    print("Pillow %s: %d of %d changed: %s" % (PIL.__version__, len(changed), len(tensors), ", ".join(changed) or "-"))


if __name__ == "__main__":
    main()
