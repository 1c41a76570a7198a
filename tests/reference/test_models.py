#!/usr/bin/env python3
"""libclip's models against open_clip's at the released architectures' full sizes (issue 18).

For each of the nine architectures OpenAI released (RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B-32, ViT-B-16,
ViT-L-14, ViT-L-14-336), in open_clip's GELU form and its "-quickgelu" form (OpenAI's activation):
  1. open_clip.create_model(name) with a fixed seed: random weights, fp32, CPU, eval mode;
  2. its state dict saved as safetensors and its config (open_clip.get_model_config) as JSON;
  3. a small batch: random normalized images at the model's resolution, and texts tokenized by open_clip;
  4. clip_embed --inputs (libclip) and open_clip (encode_image, encode_text, the scaled cosine logits);
  5. image features, text features and logits must agree within 1e-4, relative to the largest reference value.
Then the other families open_clip builds, same steps (texts as random token ids where the model's tokenizer is a
hub download; then texts end to end as well, with a stand-in SentencePiece vocabulary trained here in the layout of
the real one, written into an open_clip hub folder with the weights: open_clip's HFTokenizer with the config's
cleaning and encode_text against clip_embed --texts reading the folder): SigLIP (ViT-B-16-SigLIP: timm's ViT with the MAP head as `visual.trunk`, a bidirectional text tower
pooled at its last position with a biased projection, `logit_bias` added to the logits) and SigLIP 2
(ViT-B-16-SigLIP2: the same with a 256k vocabulary and tanh-GELU text MLPs).
ViT-B-32-quickgelu's and ViT-B-32's weights are also fetched by name, as `--model ViT-B-32 --pretrained openai` and
`--pretrained laion2b_s34b_b79k` (GELU, where libclip's own ViT-B-32 config is OpenAI's QuickGELU), from a stand-in
of the hub (tests/hub_server.py) serving them as the repos open_clip's registry names for those releases.
Then HF transformers: CLIPModel with random weights (seeded) in two shapes, ViT-B/32 (HF's default config, text
pooled at the first end token, eos_token_id 49407) and ViT-L/14 (eos_token_id 2: HF's legacy argmax pooling, as
the hub's openai checkpoints), and SiglipModel in two shapes (transformers' defaults, which are
google/siglip-base-patch16-224's, and a small one), written with save_pretrained and loaded by clip_embed from the
folder: normalized image and text embeddings and logits (SigLIP's with its bias) within the same bound, and for
SiglipModel texts end to end through a stand-in SiglipTokenizer saved in the folder (AutoTokenizer, padded to the
context, against clip_embed --texts).
The measured differences are printed. Nothing is committed: weights and inputs are made here, in a temporary
folder, one model at a time. Exits 1 if any difference is over the bound.

Run by ctest (reference.models) with -DCLIP_REFERENCE_TESTS; by hand:
    $(scripts/venv)/bin/python tests/reference/test_models.py --embed build-torch2/bin/clip_embed [--only RN50]
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

import open_clip
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hf_tokenizers as hf_tokenizers  # noqa: E402 (trains the stand-in SentencePiece vocabularies)

# Stand-ins for the hub tokenizers (the real vocabularies cannot be downloaded here), trained once by
# tokenizer_folder(): T5's layout for SigLIP, Gemma's for SigLIP 2 (tests/reference/test_hf_tokenizers.py).
TOKENIZERS = {
    "t5": ("t5.model", "spiece.model", {"tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "pad_token": "</s>",
                                        "unk_token": "<unk>", "extra_ids": 0}),
    "siglip": ("t5.model", "spiece.model", {"tokenizer_class": "SiglipTokenizer", "do_lower_case": True}),
    "gemma": ("gemma.model", "tokenizer.model", {"tokenizer_class": "GemmaTokenizer", "add_bos_token": False,
                                                 "add_eos_token": True, "padding_side": "right"}),
}


def tokenizer_folder(kind, dest, work):
    """Writes the stand-in tokenizer `kind` into `dest` as a hub folder has it (model file + tokenizer_config.json)."""
    if not os.path.exists(os.path.join(work, "t5.model")):
        os.makedirs(work, exist_ok=True)
        prompts = hf_tokenizers.imagenet_prompts()
        hf_tokenizers.train_models(work, prompts[::2] + hf_tokenizers.EDGE[:30] * 5)
    model, file_name, config = TOKENIZERS[kind]
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(work, model), "rb") as src, open(os.path.join(dest, file_name), "wb") as dst:
        dst.write(src.read())
    with open(os.path.join(dest, "tokenizer_config.json"), "w") as f:
        json.dump(config, f)


def by_tag(embed, ckpt, inputs, folder, threads, model, tag, repo):
    """clip_embed --model MODEL --pretrained TAG (open_clip's names for a release) against a stand-in of the hub
    (tests/hub_server.py on 127.0.0.1) serving `ckpt` as `repo`'s open_clip_model.safetensors: the outputs, or None."""
    root = os.path.join(folder, "hub_root")
    os.makedirs(os.path.join(root, repo))
    os.rename(ckpt, os.path.join(root, repo, "open_clip_model.safetensors"))
    port_file = os.path.join(folder, "hub_port")
    server = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                            "hub_server.py"), "--root", root, "--port-file", port_file])
    try:
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:" + open(port_file).read().strip(),
                   HF_HUB_CACHE=os.path.join(folder, "hub_cache"))
        output = os.path.join(folder, "by_tag.safetensors")
        p = subprocess.run([embed, "--model", model, "--pretrained", tag, "--inputs", inputs, "--output", output,
                            "--threads", str(threads)], capture_output=True, text=True, env=env)
    finally:
        server.terminate()
        server.wait()
    subprocess.run(["rm", "-rf", root, os.path.join(folder, "hub_cache"), port_file])
    if p.returncode != 0:
        print("  clip_embed --model %s --pretrained %s exited %d: %s" % (model, tag, p.returncode, p.stderr.strip()[-400:]))
        return None
    out = load_file(output)
    os.remove(output)
    return out


# open_clip's (model, tag) for a release fetched by name, checked with the architecture it loads into.
# ViT-B-32 (GELU) as LAION's release: libclip's own ViT-B-32 config is OpenAI's QuickGELU one, so this catches a
# release loaded with the registry's activation instead of open_clip's.
BY_TAG = {"ViT-B-32-quickgelu": ("ViT-B-32", "openai", "timm/vit_base_patch32_clip_224.openai"),
          "ViT-B-32": ("ViT-B-32", "laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K")}


def embed_texts(embed, checkpoint, texts, folder, threads, extra=()):
    """clip_embed --texts: the L2-normalized text embeddings libclip gives, tokenized by the model's tokenizer."""
    texts_file = os.path.join(folder, "texts.jsonl")
    output = os.path.join(folder, "text_embeddings.safetensors")
    with open(texts_file, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    p = subprocess.run([embed, "--checkpoint", checkpoint, "--texts", texts_file, "--output", output,
                        "--threads", str(threads), *extra], capture_output=True, text=True)
    if p.returncode != 0:
        print("  clip_embed --texts exited %d: %s" % (p.returncode, p.stderr.strip()[-400:]))
        return None
    out = load_file(output)["text_embeddings"]
    os.remove(output)
    return out

ARCHITECTURES = ["RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"]
FAMILIES = ["ViT-B-16-SigLIP", "ViT-B-16-SigLIP2"]
TEXTS = ["a photo of a dog.", "a diagram of a café in Zürich, drawn in 1920", ""]
TOLERANCE = 1e-4


def relative(ours, ref):
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-12)).item()


def check(name, embed, folder, threads, seed):
    torch.manual_seed(seed)
    model = open_clip.create_model(name)  # random weights (open_clip's init), fp32, CPU
    model.eval()
    config = open_clip.get_model_config(name)
    ckpt = os.path.join(folder, "model.safetensors")
    cfg = os.path.join(folder, "config.json")
    inputs = os.path.join(folder, "inputs.safetensors")
    output = os.path.join(folder, "outputs.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, ckpt)
    with open(cfg, "w") as f:
        json.dump(config, f)
    size = config["vision_cfg"]["image_size"]
    image = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    text_cfg = config["text_cfg"]
    tokenized_texts = None
    if text_cfg.get("hf_tokenizer_name"):
        # Texts end to end too: the stand-in tokenizer in an open_clip hub folder beside the weights, open_clip's
        # HFTokenizer with the config's cleaning against clip_embed --texts reading the folder.
        hub_folder = os.path.join(folder, "hub")
        kind = "gemma" if text_cfg["vocab_size"] > 32000 else "t5"
        tokenizer_folder(kind, hub_folder, os.path.join(folder, "vocabularies"))
        kwargs = text_cfg.get("tokenizer_kwargs", {})
        tokenized_texts = open_clip.tokenizer.HFTokenizer(hub_folder, context_length=text_cfg["context_length"],
                                                          **kwargs)(TEXTS)
        # The tokenizer is a hub download: random ids at the full context length (and one all-padding row).
        text = torch.randint(0, text_cfg["vocab_size"], (len(TEXTS), text_cfg["context_length"]),
                             generator=torch.Generator().manual_seed(seed + 2))
        text[-1] = 0
    else:
        text = open_clip.get_tokenizer(name)(TEXTS)
    save_file({"image": image, "text": text}, inputs)
    start = time.time()
    with torch.no_grad():
        image_features = model.encode_image(image)
        text_features = model.encode_text(text)
        logits = model.logit_scale.exp() * torch.nn.functional.normalize(image_features, dim=-1) @ \
            torch.nn.functional.normalize(text_features, dim=-1).T
        if getattr(model, "logit_bias", None) is not None:
            logits = logits + model.logit_bias
        if tokenized_texts is not None:
            text_embeddings = torch.nn.functional.normalize(model.encode_text(tokenized_texts), dim=-1)
    ref_seconds = time.time() - start
    del model
    start = time.time()
    p = subprocess.run([embed, "--checkpoint", ckpt, "--config", cfg, "--inputs", inputs, "--output", output,
                        "--threads", str(threads)], capture_output=True, text=True)
    ours_seconds = time.time() - start
    if p.returncode != 0:
        print("  %s: clip_embed exited %d: %s" % (name, p.returncode, p.stderr.strip()[-400:]))
        return None
    ours = load_file(output)
    diffs = {
        "image_features": relative(ours["image_features"], image_features),
        "text_features": relative(ours["text_features"], text_features),
        "logits": relative(ours["logits_per_image"], logits),
    }
    if name in BY_TAG:
        # The same weights as a release by name: open_clip's create_model(model, pretrained=tag) builds this
        # architecture (OpenAI's release forces QuickGELU on the GELU config) and fetches them from the repo.
        by_name = by_tag(embed, ckpt, inputs, folder, threads, *BY_TAG[name])
        if by_name is None:
            return None
        diffs["by tag"] = max(relative(by_name["image_features"], image_features),
                              relative(by_name["text_features"], text_features))
    if tokenized_texts is not None:
        os.rename(ckpt, os.path.join(hub_folder, "open_clip_model.safetensors"))
        with open(os.path.join(hub_folder, "open_clip_config.json"), "w") as f:
            json.dump({"model_cfg": config}, f)
        ours_texts = embed_texts(embed, hub_folder, TEXTS, folder, threads, extra=["--truncate"])
        if ours_texts is None:
            return None
        diffs["texts"] = relative(ours_texts, text_embeddings)
        subprocess.run(["rm", "-rf", hub_folder])
    for f in (ckpt, inputs, output):
        if os.path.exists(f):
            os.remove(f)
    return diffs, ref_seconds, ours_seconds


def compare_hf_folder(label, model, text, embed, folder, threads, seed, tokenizer=None):
    """Saves an HF model with save_pretrained, runs 2 random images and `text` through it and through clip_embed
    reading the folder; the differences of the normalized embeddings and of the logits (SigLIP's include its bias).
    With `tokenizer` (a stand-in kind), also TEXTS end to end: AutoTokenizer of the folder (padded to the context)
    and the model, against clip_embed --texts."""
    hf_folder = os.path.join(folder, "hf")
    model.save_pretrained(hf_folder)
    size = model.config.vision_config.image_size
    image = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    inputs = os.path.join(folder, "inputs.safetensors")
    output = os.path.join(folder, "outputs.safetensors")
    save_file({"image": image, "text": text}, inputs)
    with torch.no_grad():
        out = model(input_ids=text, pixel_values=image)
    p = subprocess.run([embed, "--checkpoint", hf_folder, "--inputs", inputs, "--output", output,
                        "--threads", str(threads)], capture_output=True, text=True)
    if p.returncode != 0:
        print("  %s: clip_embed exited %d: %s" % (label, p.returncode, p.stderr.strip()[-400:]))
        return None
    ours = load_file(output)
    normalize = torch.nn.functional.normalize
    diffs = {
        "image_features": relative(normalize(ours["image_features"], dim=-1), out.image_embeds),
        "text_features": relative(normalize(ours["text_features"], dim=-1), out.text_embeds),
        "logits": relative(ours["logits_per_image"], out.logits_per_image),
    }
    if tokenizer:
        from transformers import AutoTokenizer

        tokenizer_folder(tokenizer, hf_folder, os.path.join(folder, "vocabularies"))
        length = model.config.text_config.max_position_embeddings
        ids = AutoTokenizer.from_pretrained(hf_folder)(TEXTS, padding="max_length", max_length=length,
                                                        truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            reference = model(input_ids=ids, pixel_values=image).text_embeds
        ours_texts = embed_texts(embed, hf_folder, TEXTS, folder, threads, extra=["--truncate"])
        if ours_texts is None:
            return None
        diffs["texts"] = relative(ours_texts, reference)
    subprocess.run(["rm", "-rf", hf_folder, inputs, output])
    return diffs


def quiet_transformers():
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def check_hf(label, config_kwargs, embed, folder, threads, seed):
    """HF transformers' CLIPModel (random weights, seeded), texts by the CLIP tokenizer."""
    from transformers import CLIPConfig, CLIPModel

    quiet_transformers()
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(**config_kwargs)).eval()
    return compare_hf_folder(label, model, open_clip.get_tokenizer("ViT-B-32")(TEXTS), embed, folder, threads, seed)


def check_hf_siglip(label, config_kwargs, embed, folder, threads, seed):
    """HF transformers' SiglipModel (random weights, seeded), texts as random ids at the full context length."""
    from transformers import SiglipConfig, SiglipModel

    quiet_transformers()
    torch.manual_seed(seed)
    model = SiglipModel(SiglipConfig(**config_kwargs)).eval()
    text_cfg = model.config.text_config
    text = torch.randint(0, text_cfg.vocab_size, (len(TEXTS), text_cfg.max_position_embeddings),
                         generator=torch.Generator().manual_seed(seed + 2))
    return compare_hf_folder(label, model, text, embed, folder, threads, seed, tokenizer="siglip")


HF_SIGLIP_MODELS = [
    ("HF SiglipModel base", {}),  # transformers' defaults: google/siglip-base-patch16-224's shape
    ("HF SiglipModel small 64px", {
        "text_config": {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2, "num_hidden_layers": 2,
                        "vocab_size": 1000, "max_position_embeddings": 16},
        "vision_config": {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2,
                          "num_hidden_layers": 2, "image_size": 64, "patch_size": 16}}),
]

HF_MODELS = [
    ("HF CLIPModel ViT-B/32", {}),
    ("HF CLIPModel ViT-L/14 eos 2", {
        "projection_dim": 768,
        "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                        "num_hidden_layers": 12, "eos_token_id": 2},
        "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                          "num_hidden_layers": 24, "patch_size": 14, "image_size": 224}}),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embed", required=True, help="clip_embed")
    ap.add_argument("--only", nargs="*", help="architectures (default: all nine and the other families)")
    ap.add_argument("--no-quickgelu", action="store_true", help="only open_clip's GELU forms")
    ap.add_argument("--no-hf", action="store_true", help="leave out the HF transformers models")
    ap.add_argument("--threads", type=int, default=0, help="threads for both sides (0: LibTorch's default)")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's "No pretrained weights loaded" for every model
    if args.threads:
        torch.set_num_threads(args.threads)
    names = []
    for arch in args.only or ARCHITECTURES + FAMILIES:
        names.append(arch)
        if not args.no_quickgelu and arch in ARCHITECTURES:
            names.append(arch + "-quickgelu")
    failures = 0
    start = time.time()
    print("test_models: open_clip %s, torch %s; bound %g relative to the largest reference value"
          % (open_clip.__version__, torch.__version__, TOLERANCE))
    with tempfile.TemporaryDirectory(prefix="clip_models_") as folder:
        for i, name in enumerate(names):
            result = check(name, args.embed, folder, args.threads, seed=1000 + i)
            if result is None:
                failures += 1
                continue
            diffs, ref_s, ours_s = result
            worst = max(diffs.values())
            bad = worst > TOLERANCE
            failures += bad
            texts = "  texts %.2e" % diffs["texts"] if "texts" in diffs else ""
            texts += "  by tag %.2e" % diffs["by tag"] if "by tag" in diffs else ""
            print("test_models: %-24s %s  image %.2e  text %.2e  logits %.2e%s  (open_clip %.1f s, clip_embed %.1f s "
                  "with loading)" % (name, "FAIL" if bad else "ok  ", diffs["image_features"], diffs["text_features"],
                                     diffs["logits"], texts, ref_s, ours_s))
            sys.stdout.flush()
        hf = [] if args.no_hf else [(check_hf, label, kwargs) for label, kwargs in HF_MODELS] + \
            [(check_hf_siglip, label, kwargs) for label, kwargs in HF_SIGLIP_MODELS]
        for i, (checker, label, kwargs) in enumerate(hf):
            diffs = checker(label, kwargs, args.embed, folder, args.threads, seed=2000 + i)
            names.append(label)
            if diffs is None:
                failures += 1
                continue
            worst = max(diffs.values())
            failures += worst > TOLERANCE
            texts = "  texts %.2e" % diffs["texts"] if "texts" in diffs else ""
            print("test_models: %-24s %s  image %.2e  text %.2e  logits %.2e%s  (normalized embeddings)"
                  % (label[:24], "FAIL" if worst > TOLERANCE else "ok  ", diffs["image_features"],
                     diffs["text_features"], diffs["logits"], texts))
    print("test_models: %d of %d models over the bound; %.0f s" % (failures, len(names), time.time() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
