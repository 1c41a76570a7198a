"""open_clip itself, timed the way `clip_bench` times libclip: the same step, the same synthetic inputs' shapes,
the same threads, the median of synchronized steps after untimed warm-up ones.

    $(scripts/venv)/bin/python bench/open_clip_bench.py --model ViT-B-32 --mode image --batch-size 1 --threads 2

Modes, as `clip_bench --mode`:
- train: zero_grad, forward of both towers, open_clip's ClipLoss, backward, AdamW with open_clip's parameter groups
  and defaults (weight decay 0.2 off for gains and biases; betas (0.9, 0.98) and eps 1e-6 for ViTs, (0.9, 0.999)
  and 1e-8 for ResNets), the logit-scale clamp to [0, ln 100];
- image / text: one `encode_image` / `encode_text` under torch.no_grad(), the model in eval mode.
The architecture is libclip's config of the same name (configs/models, open_clip's schema, registered with
open_clip), so both run the same model. fp32 on the CPU; `--device cuda --precision bf16` autocasts as open_clip's training does. Fresh weights
(`pretrained=None`): the speed does not depend on them. Prints one line; `--json FILE` appends the result in
clip_bench's JSON fields (model, mode, batch_size, threads, samples_per_second, median_step_seconds, step_seconds).
"""
import argparse
import json
import math
import statistics
import sys
import os
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B-32", help="a model name of configs/models (or of open_clip)")
    parser.add_argument("--config-dir", default=os.path.join(ROOT, "configs", "models"),
                        help="model configs registered with open_clip first, so that a name means the same "
                             "architecture as in clip_bench (libclip's ViT-B-32 is OpenAI's, with QuickGELU: "
                             "open_clip's own ViT-B-32 config uses GELU)")
    parser.add_argument("--mode", choices=("train", "image", "text"), default="train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads; 0: one per core, as clip_bench")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="append the result as one JSON line")
    args = parser.parse_args()
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0:
        sys.exit("open_clip_bench: --batch-size and --steps must be at least 1, --warmup at least 0")
    if args.precision == "bf16" and not args.device.startswith("cuda"):
        sys.exit("open_clip_bench: --precision bf16 is CUDA autocast; on the CPU use fp32")

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    import open_clip
    from open_clip.loss import ClipLoss

    if args.config_dir:
        open_clip.add_model_config(args.config_dir)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = open_clip.create_model(args.model, pretrained=None, device=device, output_dict=True)
    cfg = open_clip.get_model_config(args.model)
    b, res = args.batch_size, cfg["vision_cfg"].get("image_size", 224)
    ctx, vocab = cfg["text_cfg"].get("context_length", 77), cfg["text_cfg"].get("vocab_size", 49408)
    gen = torch.Generator().manual_seed(args.seed + 1)
    images = torch.randn(b, 3, res, res, generator=gen).to(device)
    # Token ids as clip_bench makes them: a start token, random ids, the end token (the largest id) at a random
    # position, zeros after it.
    ids = torch.randint(1, vocab - 2, (b, ctx), generator=gen)
    end = torch.randint(1, ctx, (b, 1), generator=gen)
    ids.masked_fill_(torch.arange(ctx).unsqueeze(0) > end, 0)
    ids.scatter_(1, end, vocab - 1)
    ids[:, 0] = vocab - 2
    texts = ids.to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    state = {}

    if args.mode == "train":
        model.train()
        resnet = isinstance(cfg["vision_cfg"].get("layers"), (list, tuple))
        exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
             {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": 0.2}],
            lr=5e-4, betas=(0.9, 0.999 if resnet else 0.98), eps=1e-8 if resnet else 1e-6)
        loss_fn = ClipLoss()

        def step():
            optimizer.zero_grad()
            with autocast:
                out = model(images, texts)
                loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            state["loss"] = loss
    else:
        model.eval()
        encode = model.encode_image if args.mode == "image" else model.encode_text
        inputs = images if args.mode == "image" else texts

        def step():
            with torch.no_grad(), autocast:
                encode(inputs)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    result = {"implementation": "open_clip " + open_clip.__version__, "torch": torch.__version__,
              "model": args.model, "mode": args.mode, "batch_size": b, "device": args.device,
              "precision": args.precision, "threads": threads, "median_step_seconds": median,
              "samples_per_second": b / median, "step_seconds": seconds}
    if "loss" in state:
        result["last_loss"] = float(state["loss"])
    print(f"open_clip {open_clip.__version__} (torch {torch.__version__}) {args.model} {args.mode} batch {b}, "
          f"{threads} thread(s): {b / median:.2f} samples/s (median step {median * 1000:.1f} ms over {args.steps})")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
