#!/usr/bin/env python3
"""One training step of libclip against open_clip's at full size (issue 18).

For each architecture (default RN50 and ViT-B-32; OpenAI's QuickGELU forms): open_clip.create_model(name) with a
fixed seed, train mode, fp32, CPU; a random batch of 4 images and 4 captions; open_clip's ClipLoss, backward, then
torch.optim.AdamW with open_clip's parameter groups (no weight decay for parameters with fewer than 2 dimensions
or named bn, ln, bias or logit_scale; open_clip's defaults: lr 5e-4, weight decay 0.2, betas 0.9/0.98 and eps 1e-6
for ViTs, 0.9/0.999 and 1e-8 for ResNets) and the logit-scale clamp. libclip does the same from the same weights
and batch (tests/reference/step_probe.cpp: clip::contrastive_loss, clip::AdamW, clip::clamp_logit_scale).
Checked, within 1e-4: the loss (relative); every gradient (max difference relative to the tensor's largest
reference gradient, or to 1e-3 of the largest gradient of the model where that is larger: the gradients of the
attention key biases are zero in exact arithmetic, so both sides hold only rounding noise there); every parameter
after one AdamW step taken by libclip from the reference's gradients (max difference relative to the tensor's
largest value, or its largest step where the tensor was zero, as the biases at initialization).
Reported, not checked: the parameters after libclip's step from its own gradients. Adam's first step moves an
element by about lr * g / (|g| + eps), so where a gradient is float noise around zero (those key biases, embedding
rows of tokens not in the batch under weight decay) the noise sets the step's sign. Exits 1 over a bound.

Run by ctest (reference.train_step) with -DCLIP_REFERENCE_TESTS; by hand:
    $(scripts/venv)/bin/python tests/reference/test_train_step.py --probe build-torch2/bin/clip_step_probe
"""
import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time

import open_clip
import torch
from safetensors.torch import load_file, save_file

BOUND = 1e-4
TEXTS = ["a photo of a dog.", "a diagram of a café", "two cats on a sofa", "an empty street at night"]


def reference_step(model, image, text, lr, wd, betas, eps):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
         {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": wd}],
        lr=lr, betas=betas, eps=eps)
    image_features = model.encode_image(image, normalize=True)
    text_features = model.encode_text(text, normalize=True)
    loss = open_clip.ClipLoss()(image_features, text_features, model.logit_scale.exp())
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in named if p.grad is not None}
    before = {n: p.detach().clone() for n, p in named}
    optimizer.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    after = {n: p.detach().clone() for n, p in named}
    return loss.item(), grads, before, after


def worst_param(ours, after, before, prefix):
    worst = (0.0, "")
    for n, a in after.items():
        diff = (ours[prefix + n].double() - a.double()).abs().max()
        step = (a.double() - before[n].double()).abs().max()
        scale = max(a.double().abs().max().item(), step.item(), 1e-12)
        worst = max(worst, ((diff / scale).item(), n))
    return worst


def check(name, probe, folder, seed):
    torch.manual_seed(seed)
    model = open_clip.create_model(name)
    model.train()
    config = open_clip.get_model_config(name)
    ckpt, cfg = os.path.join(folder, "model.safetensors"), os.path.join(folder, "config.json")
    batch, output = os.path.join(folder, "batch.safetensors"), os.path.join(folder, "step.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, ckpt)
    with open(cfg, "w") as f:
        json.dump(config, f)
    size = config["vision_cfg"]["image_size"]
    image = torch.randn(len(TEXTS), 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    text = open_clip.get_tokenizer(name)(TEXTS)
    save_file({"image": image, "text": text}, batch)
    resnet = isinstance(config["vision_cfg"]["layers"], list)
    lr, wd = 5e-4, 0.2
    betas, eps = ((0.9, 0.999), 1e-8) if resnet else ((0.9, 0.98), 1e-6)
    start = time.time()
    ref_loss, grads, before, after = reference_step(model, image, text, lr, wd, betas, eps)
    ref_seconds = time.time() - start
    del model
    start = time.time()
    p = subprocess.run([probe, ckpt, cfg, batch, output, repr(lr), repr(wd), repr(betas[0]), repr(betas[1]), repr(eps)],
                       capture_output=True, text=True)
    ours_seconds = time.time() - start
    if p.returncode != 0:
        print("  %s: clip_step_probe exited %d: %s" % (name, p.returncode, p.stderr.strip()[-400:]))
        return None
    ours = load_file(output)
    result = {"loss": abs(ours["loss"].item() - ref_loss) / abs(ref_loss)}
    worst = {"grad": (0.0, "")}
    floor = 1e-3 * max(g.abs().max().item() for g in grads.values())
    for n, g in grads.items():
        key = "grad." + n
        if key not in ours:
            print("  %s: libclip has no gradient for %s" % (name, n))
            return None
        d = ((ours[key].double() - g.double()).abs().max() / max(g.abs().max().item(), floor)).item()
        worst["grad"] = max(worst["grad"], (d, n))
    worst["own"] = worst_param(ours, after, before, "step1.")
    # The optimizer alone: libclip's step from the reference's gradients.
    given = os.path.join(folder, "grads.safetensors")
    save_file({n: g.contiguous() for n, g in grads.items()}, given)
    p = subprocess.run([probe, ckpt, cfg, batch, output, repr(lr), repr(wd), repr(betas[0]), repr(betas[1]), repr(eps),
                        given], capture_output=True, text=True)
    if p.returncode != 0:
        print("  %s: clip_step_probe exited %d: %s" % (name, p.returncode, p.stderr.strip()[-400:]))
        return None
    worst["param"] = worst_param(load_file(output), after, before, "step1.")
    os.remove(given)
    for f in (ckpt, batch, output):
        os.remove(f)
    return ref_loss, result["loss"], worst, ref_seconds, ours_seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probe", required=True, help="clip_step_probe")
    ap.add_argument("--only", nargs="*", default=["RN50-quickgelu", "ViT-B-32-quickgelu"],
                    help="open_clip model names (default: RN50-quickgelu ViT-B-32-quickgelu)")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    failures, start = 0, time.time()
    print("test_train_step: open_clip %s, torch %s; bound %g" % (open_clip.__version__, torch.__version__, BOUND))
    with tempfile.TemporaryDirectory(prefix="clip_step_") as folder:
        for i, name in enumerate(args.only):
            r = check(name, args.probe, folder, seed=3000 + i)
            if r is None:
                failures += 1
                continue
            ref_loss, loss_d, worst, ref_s, ours_s = r
            bad = loss_d > BOUND or worst["grad"][0] > BOUND or worst["param"][0] > BOUND
            failures += bad
            print("test_train_step: %-20s %s loss %.6f (rel. diff %.1e); gradients %.1e (%s); parameters after "
                  "AdamW from the reference's gradients %.1e (%s); [reported: after libclip's own step %.1e (%s)]; "
                  "open_clip %.1f s, libclip %.1f s"
                  % (name, "FAIL" if bad else "ok", ref_loss, loss_d, worst["grad"][0], worst["grad"][1],
                     worst["param"][0], worst["param"][1], worst["own"][0], worst["own"][1], ref_s, ours_s))
            sys.stdout.flush()
    print("test_train_step: %d of %d over the bound; %.0f s" % (failures, len(args.only), time.time() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
