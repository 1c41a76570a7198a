"""A random-weight Hugging Face CLIP ViT-B/32 folder for the peers of bench/peers/README.md, without Hub access.

    python bench/peers/make_hf_vitb32.py --out /tmp/peers/hf_vitb32 [--seed 0]

openai/clip-vit-base-patch32's config written by hand (QuickGELU; vision 768 wide, 12 layers, 12 heads, patch 32 at
224 px; text 512 wide, 12 layers, 8 heads, 77 positions, vocab 49408; projection 512), weights from transformers'
own initialisation under a fixed seed, saved with save_pretrained (fp32 safetensors). The tokenizer files
(vocab.json, merges.txt) are OpenAI's BPE vocabulary rebuilt from the copy open_clip bundles
(bpe_simple_vocab_16e6.txt.gz), as clip.cpp's converter reads vocab.json; the image processor is OpenAI's
(resize shortest edge 224, center crop 224, OpenAI mean/std).
"""
import argparse
import gzip
import json
import os

import torch


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def openai_bpe():
    import open_clip
    path = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    return {t: i for i, t in enumerate(vocab)}, merges


MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    text = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                projection_dim=512, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
    vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=224, patch_size=32, num_channels=3, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                  projection_dim=512)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=512, logit_scale_init_value=2.6592)
    torch.manual_seed(args.seed)
    model = CLIPModel(config).eval().float()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)

    vocab, merges = openai_bpe()
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(args.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(vocab=os.path.join(args.out, "vocab.json"), merges=os.path.join(args.out, "merges.txt"))
    image_processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                         do_center_crop=True, image_mean=MEAN, image_std=STD)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(args.out)
    # save_pretrained may rewrite the tokenizer files; keep OpenAI's vocab.json/merges.txt for clip.cpp's converter
    with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    n = sum(p.numel() for p in model.parameters())
    print(f"make_hf_vitb32: {n / 1e6:.1f} M parameters (seed {args.seed}) -> {args.out}")


if __name__ == "__main__":
    main()
