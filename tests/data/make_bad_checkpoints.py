#!/usr/bin/python3
# Writes the malformed checkpoints of tests/data/bad_checkpoints (committed; rerun only to change them).
# Needs Debian's python3-torch: /usr/bin/python3 tests/data/make_bad_checkpoints.py
import os
import zipfile

import torch

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_checkpoints")
os.makedirs(out, exist_ok=True)


class Custom:  # a class libclip must refuse to unpickle
    def __init__(self):
        self.x = 1


torch.save({"state_dict": {"logit_scale": torch.zeros(())}, "extra": Custom()}, os.path.join(out, "custom_class.pt"))
torch.save([torch.zeros(2)], os.path.join(out, "list_of_tensors.pt"))
torch.save({"state_dict": {"logit_scale": 3}}, os.path.join(out, "int_in_state_dict.pt"))
torch.save({"logit_scale": torch.zeros(())}, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
torch.jit.script(torch.nn.Linear(2, 2)).save(os.path.join(out, "other_model.jit.pt"))
with zipfile.ZipFile(os.path.join(out, "unrelated.zip"), "w") as z:
    z.writestr("archive/readme.txt", "a zip that is not a PyTorch archive")
with open(os.path.join(out, "not_a_checkpoint.bin"), "wb") as f:
    f.write(b"GIF89a this is not a model at all\n" * 4)
