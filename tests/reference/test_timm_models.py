#!/usr/bin/env python3
"""libclip's table of timm ViTs (src/model/timm_models.cpp) against timm itself (issue 37).

Each row's model is built by timm.create_model on the meta device (no weights, no memory) and compared: image size,
patch size, width, depth, heads, MLP hidden size, the activation (exact or tanh GELU), the default pooling, whether
the final norm comes after the pool (fc_norm), the class token and the LayerNorm eps. Prints every mismatch; exits 1
if there is one.

Run by ctest (reference.timm_models) with -DCLIP_REFERENCE_TESTS; by hand:
    $(scripts/venv)/bin/python tests/reference/test_timm_models.py
"""
import os
import re
import sys

import timm
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROW = re.compile(r'\{"(\w+)", (\d+), (\d+), (\d+), (\d+), (\d+), ([\d.]+), (true|false), "(\w+)", (true|false), '
                 r'(true|false)\}')


def main():
    with open(os.path.join(ROOT, "src", "model", "timm_models.cpp")) as f:
        rows = ROW.findall(f.read())
    bad = 0
    for name, size, patch, width, depth, heads, mlp, tanh, pool, fc_norm_false, cls in rows:
        with torch.device("meta"):
            m = timm.create_model(name)
        block = m.blocks[0]
        act = block.mlp.act
        got = {
            "image size": m.patch_embed.img_size[0], "patch": m.patch_embed.patch_size[0], "width": m.embed_dim,
            "depth": len(m.blocks), "heads": block.attn.num_heads, "mlp hidden": block.mlp.fc1.out_features,
            "tanh GELU": "tanh" in type(act).__name__.lower() or getattr(act, "approximate", "none") == "tanh",
            "pool": m.global_pool, "fc_norm": type(m.fc_norm).__name__ != "Identity",
            "class token": m.cls_token is not None, "eps": block.norm1.eps,
        }
        want = {
            "image size": int(size), "patch": int(patch), "width": int(width), "depth": int(depth), "heads": int(heads),
            "mlp hidden": int(int(width) * float(mlp)), "tanh GELU": tanh == "true", "pool": pool,
            "fc_norm": pool == "avg" and fc_norm_false != "true", "class token": cls == "true", "eps": 1e-6,
        }
        diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
        if diff:
            bad += 1
            print("test_timm_models: %s differs: %s" % (name, diff))
    print("test_timm_models: timm %s, %d models in libclip's table, %d differ" % (timm.__version__, len(rows), bad))
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
