"""Reference values of open_clip's SigLipLoss for tests/test_loss.cpp (siglip_loss.safetensors).

Run in the reference environment: $(scripts/venv)/bin/python tests/data/make_siglip_loss.py

Random features (B=12, D=16, not normalized: the model's raw outputs), a raw logit scale and a bias. Normalized
as open_clip's model does (F.normalize), scale exponentiated (open_clip's CLIP.forward passes logit_scale.exp()).
Saved: the inputs; `loss` = SigLipLoss()(...) over the whole batch with its gradients `grad.image`, `grad.text`,
`grad.logit_scale`, `grad.logit_bias`; and `rank_loss.W` [W] for W = 2, 3, 4: what rank r of W returns in
open_clip's distributed SigLipLoss (its own block with positives plus every other rank's texts as negatives, each
/ local batch), computed with SigLipLoss._loss itself, so that the ranks' losses averaged are `loss`.
"""
import os

import torch
import torch.nn.functional as F
from open_clip.loss import SigLipLoss
from safetensors.torch import save_file

torch.manual_seed(1234)
B, D = 12, 16
image = torch.randn(B, D, dtype=torch.float64).float().requires_grad_()
text = torch.randn(B, D, dtype=torch.float64).float().requires_grad_()
# The paper's initial values are ln 10 and -10; use values a trained model might have, so no term saturates.
logit_scale = torch.tensor(2.0).requires_grad_()
logit_bias = torch.tensor(-3.0).requires_grad_()

loss_fn = SigLipLoss()
img_n, txt_n = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
loss = loss_fn(img_n, txt_n, logit_scale.exp(), logit_bias)
loss.backward()

out = {
    "image": image.detach(), "text": text.detach(),
    "logit_scale": logit_scale.detach(), "logit_bias": logit_bias.detach(),
    "loss": loss.detach(),
    "grad.image": image.grad, "grad.text": text.grad,
    "grad.logit_scale": logit_scale.grad, "grad.logit_bias": logit_bias.grad,
}
with torch.no_grad():
    for world in (2, 3, 4):
        b = B // world
        per_rank = []
        for r in range(world):
            rows = slice(r * b, (r + 1) * b)
            l = loss_fn._loss(img_n[rows], txt_n[rows], logit_scale.exp(), logit_bias)
            for s in range(world):
                if s != r:
                    cols = slice(s * b, (s + 1) * b)
                    l = l + loss_fn._loss(img_n[rows], txt_n[cols], logit_scale.exp(), logit_bias, negative_only=True)
            per_rank.append(l)
        out["rank_loss.%d" % world] = torch.stack(per_rank)
        assert abs(torch.stack(per_rank).mean() - loss) < 1e-5 * abs(loss)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "siglip_loss.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path)
print("wrote", path, "loss", loss.item())
