#!/usr/bin/python3
"""Image encoding in plain PyTorch, timed: the ViT and ModifiedResNet image towers of CLIP written directly against
torch.nn (this file's own code), built from configs/models/NAME.json with fresh weights, fp32, no grad.

    /usr/bin/python3 bench/encode_python.py --model ViT-B-32 [--batch-size 32] [--threads 2] [--steps 5] [--warmup 1]

Prints the median seconds per batch and images/s, to set beside
`clip_bench --model NAME --mode image --batch-size 32 --threads 2` (docs/performance.md). The towers do the same
work as libclip's: QuickGELU, LayerNorm, fused QKV projection, matmul-softmax-matmul attention (PyTorch 1.13 has
no fused attention), the ResNet's attention pool queried by the mean token alone. Needs Debian's python3-torch.
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with one fused input projection, batch-first."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.in_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x):
        n, l, d = x.shape
        q, k, v = self.in_proj(x).view(n, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q / math.sqrt(d // self.heads)) @ k.transpose(-2, -1), dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(n, l, d))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), QuickGELU(), nn.Linear(hidden, width))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, mlp_ratio, output_dim):
        super().__init__()
        grid = image_size // patch_size
        self.patchify = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.cls = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.pos = nn.Parameter(torch.randn(grid * grid + 1, width) * width ** -0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[Block(width, heads, mlp_ratio) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, output_dim) * width ** -0.5)

    def forward(self, images):
        x = self.patchify(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1) + self.pos
        x = self.blocks(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.AvgPool2d(stride), nn.Conv2d(inplanes, planes * 4, 1, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.pool(F.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class AttentionPool(nn.Module):
    """The grid's mean token attends over [mean; grid] + positions; only it queries."""

    def __init__(self, grid, width, heads, output_dim):
        super().__init__()
        self.heads = heads
        self.pos = nn.Parameter(torch.randn(grid * grid + 1, width) / width ** 0.5)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(width, width) for _ in range(3))
        self.c_proj = nn.Linear(width, output_dim)

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([x.mean(1, keepdim=True), x], dim=1) + self.pos
        n, l, c = x.shape
        hd = c // self.heads
        q = self.q_proj(x[:, :1]).view(n, 1, self.heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(n, l, self.heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(n, l, self.heads, hd).transpose(1, 2)
        attn = torch.softmax((q / math.sqrt(hd)) @ k.transpose(-2, -1), dim=-1)
        return self.c_proj((attn @ v).transpose(1, 2).reshape(n, c))


class ModifiedResNet(nn.Module):
    def __init__(self, layers, output_dim, heads, image_size, width):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AvgPool2d(2))
        stages, inplanes = [], width
        for i, blocks in enumerate(layers):
            planes = width * 2 ** i
            stage = [Bottleneck(inplanes, planes, 1 if i == 0 else 2)]
            inplanes = planes * 4
            stage += [Bottleneck(inplanes, planes, 1) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.attnpool = AttentionPool(image_size // 32, width * 32, heads, output_dim)

    def forward(self, images):
        return self.attnpool(self.stages(self.stem(images)))


def build_image_tower(name):
    with open(os.path.join(ROOT, "configs", "models", name + ".json")) as f:
        cfg = json.load(f)
    v = cfg["vision_cfg"]
    head_width = v.get("head_width", 64)
    if isinstance(v["layers"], list):
        tower = ModifiedResNet(v["layers"], cfg["embed_dim"], v["width"] * 32 // head_width, v["image_size"], v["width"])
    else:
        tower = ViT(v["image_size"], v["patch_size"], v["width"], v["layers"], v["width"] // head_width,
                    v.get("mlp_ratio", 4.0), cfg["embed_dim"])
    return tower, v["image_size"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # Debian's build starts with one intra-op thread
    torch.manual_seed(0)
    tower, size = build_image_tower(args.model)
    tower.eval()
    images = torch.randn(args.batch_size, 3, size, size)
    times = []
    with torch.no_grad():
        for step in range(args.warmup + args.steps):
            start = time.perf_counter()
            tower(images)
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"python {args.model} image encode: torch {torch.__version__}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, fp32: median {median:.3f} s per batch "
          f"(min {min(times):.3f}, max {max(times):.3f}) -> {args.batch_size / median:.1f} images/s")


if __name__ == "__main__":
    main()
