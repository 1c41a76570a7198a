#!/usr/bin/env python3
"""Writes NAME.keys.txt for open_clip models of the families beyond OpenAI's CLIP: every state-dict key open_clip
3.3 gives the model, with its shape ("key 768,3,16,16"; a scalar's shape is empty), one per line in open_clip's order.
test_model's FamilyStateDictKeys compares libclip's named_parameters() with these lists (no weights are needed:
the model is built on the meta device).

    $(scripts/venv)/bin/python tests/data/make_family_keys.py ViT-B-16-SigLIP ViT-B-16-SigLIP2
"""
import logging
import os
import sys

import open_clip

logging.getLogger().setLevel(logging.ERROR)
here = os.path.dirname(os.path.abspath(__file__))
for name in sys.argv[1:]:
    model = open_clip.create_model(name, device="meta")
    with open(os.path.join(here, name + ".keys.txt"), "w") as f:
        f.write("# open_clip %s, %s: state-dict key and shape\n" % (open_clip.__version__, name))
        for key, t in model.state_dict().items():
            f.write("%s %s\n" % (key, ",".join(str(s) for s in t.shape)))
    print(name, len(model.state_dict()), "keys")
