"""Writes the seed corpus of scripts/fuzz (fuzz/corpus/<target>/): small valid inputs of every kind each target
reads, so the fuzzers start from real structure. Run once with the LibTorch 2.x environment's python (Pillow, torch):
    $(scripts/venv)/bin/python fuzz/make_corpus.py
The files are checked in; rerunning rewrites them (the PNG/JPEG/WebP encoders may change bytes across versions)."""
import gzip
import io
import json
import os
import struct
import tarfile
import zipfile

import numpy as np
import torch
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)


def image_bytes(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


rng = np.random.default_rng(0)
rgb = Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8), "RGB")
rgba = Image.fromarray(rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), "RGBA")
gray = rgb.convert("L")

# image: every format and mode the decoder handles, a few pixels each.
images = {
    "rgb.jpg": image_bytes(rgb, "JPEG", quality=80),
    "gray.jpg": image_bytes(gray, "JPEG"),
    "progressive.jpg": image_bytes(rgb, "JPEG", progressive=True),
    "cmyk.jpg": image_bytes(rgb.convert("CMYK"), "JPEG"),
    "rgb.png": image_bytes(rgb, "PNG"),
    "optimized.png": image_bytes(rgb, "PNG", optimize=True),
    "rgba.png": image_bytes(rgba, "PNG"),
    "la.png": image_bytes(rgba.convert("LA"), "PNG"),
    "palette.png": image_bytes(rgb.convert("P"), "PNG"),
    "palette_trns.png": image_bytes(rgb.convert("P"), "PNG", transparency=3),
    "bilevel.png": image_bytes(gray.convert("1"), "PNG"),
    "gray16.png": image_bytes(Image.fromarray((np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)), "PNG"),
    "rgb.bmp": image_bytes(rgb, "BMP"),
    "rgba.bmp": image_bytes(rgba, "BMP"),
    "palette.bmp": image_bytes(rgb.convert("P"), "BMP"),
    "lossy.webp": image_bytes(rgb, "WEBP", quality=50),
    "lossless.webp": image_bytes(rgba, "WEBP", lossless=True),
    "rgb.tiff": image_bytes(rgb, "TIFF"),
    "rgb.ppm": image_bytes(rgb, "PPM"),
    "gray.pgm": image_bytes(gray, "PPM"),
}
exif = Image.Exif()
exif[0x0112] = 6
images["exif6.jpg"] = image_bytes(rgb, "JPEG", exif=exif.tobytes())
for name, data in images.items():
    put("image", name, data)

# json: configs as libclip reads them, JSONL text lines, odd but valid JSON.
configs = os.path.join(os.path.dirname(root), "..", "configs")
for name in ("models/ViT-B-32.json", "models/RN50.json", "train/fashion_mnist.json"):
    put("json", os.path.basename(name), open(os.path.join(configs, name), "rb").read())
put("json", "model.json", json.dumps({"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32,
                                      "patch_size": 8}, "text_cfg": {"context_length": 16, "vocab_size": 49408,
                                      "width": 32, "heads": 2, "layers": 2}}))
put("json", "train.json", json.dumps({"epochs": 2, "batch_size": 8, "lr": 5e-4, "warmup": 10, "wd": 0.1,
                                      "precision": "fp32", "seed": 1}))
put("json", "line.json", json.dumps({"text": "a photo of a cat", "id": 7}))
put("json", "string.json", json.dumps("a caf\u00e9 \ud83d\ude00 \\ \" \n"))
put("json", "nested.json", "[[[[{\"a\": [1, -2.5e+3, true, false, null]}]]]]")

# safetensors: two tensors and metadata, as safetensors writes them.
header = {"__metadata__": {"format": "pt"},
          "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
          "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
put("safetensors", "two.safetensors", struct.pack("<Q", len(h)) + h + np.arange(6, dtype=np.float32).tobytes()
    + np.array([1, 2], dtype=np.int64).tobytes())
put("safetensors", "empty.safetensors", struct.pack("<Q", 2) + b"{}")

# torch_archive and pickle: torch.save files (a state dict, a training checkpoint) and a TorchScript module.
def saved(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


files = {
    "state_dict.pt": saved({"w": torch.arange(4.0).reshape(2, 2), "b": torch.zeros(2, dtype=torch.float16)}),
    "checkpoint.pt": saved({"epoch": 1, "state_dict": {"layer.weight": torch.ones(3)}, "name": "x"}),
    "shared.pt": saved({"a": (t := torch.arange(6.0)), "b": t[2:4]}),
}
for name, data in files.items():
    put("torch_archive", name, data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        put("pickle", name.replace(".pt", ".pkl"), z.read(pkl))
script = torch.jit.script(torch.nn.Linear(2, 2))
buf = io.BytesIO()
torch.jit.save(script, buf)
put("torch_archive", "linear.jit.pt", buf.getvalue())

# tar: webdataset shards (jpg+txt, png+json, a .tar.gz).
def shard(members, compress=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


members = [("000000.jpg", images["gray.jpg"]), ("000000.txt", b"a gray picture"),
           ("dir/000001.png", images["palette.png"]), ("dir/000001.json", b'{"caption": "a palette image"}'),
           ("000002.webp", images["lossy.webp"]), ("000002.txt", b"a small webp")]
put("tar", "shard.tar", shard(members))
put("tar", "shard.tar.gz", shard(members[:2], compress=True))

# csv: open_clip's TSV and a quoted CSV.
put("csv", "train.tsv", "filepath\ttitle\nimages/a.jpg\ta photo of a cat\nb.png\ttwo\twords\n")
put("csv", "quoted.csv", 'filepath,title\n"a,b.jpg","say ""hi"", then\nleave"\nc.jpg,plain\n')

# index_table: an image index's files table (escapes, a negative mtime) and its list of unreadable files.
put("index_table", "files.tsv", "path\tsize\tmtime_ns\tsha256\na/b.jpg\t1234\t1700000000123456789\t" + "a" * 64 +
    "\nodd\\tname\\\\x.png\t0\t-5\t" + "0" * 64 + "\n")
put("index_table", "skipped.tsv", "path\tmessage\n/x/broken.png\t/x/broken.png: truncated PNG\n"
    "line\\nbreak.jpg\tcannot open: No such file\n")

# tokenizer: captions of every kind the cleaning handles.
for i, text in enumerate(["A photo of a cat.", "it's   <|startoftext|> caf\u00e9 &amp; \u201cquotes\u201d",
                          "\u00c3\u00a9t\u00c3\u00a9 mojibake", "\uff26\uff55\uff4c\uff4c width \ufb01 ligature",
                          "Stra\u00dfe \u0130stanbul \u4e2d\u6587 \U0001F600 123456", "\x1b[31mred\x1b[0m\ttab"]):
    put("tokenizer", f"text{i}.txt", text)
print("wrote", sum(len(files) for _, _, files in os.walk(root)), "seeds under", root)
