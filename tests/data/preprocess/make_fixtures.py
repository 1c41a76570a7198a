#!/usr/bin/python3
"""Makes tests/data/preprocess from ../shared/fixtures/preprocess and the reference (Pillow + torchvision).

Run with Debian's python3 (python3-pil 9.4, python3-torchvision 0.14, python3-torch):
    /usr/bin/python3 tests/data/preprocess/make_fixtures.py /work/shared/fixtures/preprocess

Writes, beside this script:
  images/                    copies of the shared fixture images
  expected_224.safetensors   the shared expected tensors stored as uint8 [3,224,224]: the shared file is float32
                             (9 MB); every value in it is exactly ((v / 255) - mean) / std in float32 for a byte v,
                             so the bytes are lossless (checked here) and the test normalizes them back
  extra/                     small images in modes and formats the shared set lacks, made from crops of the
                             shared photos: CMYK, gray and progressive JPEG, EXIF-rotated JPEG/PNG/WebP/TIFF, LA, 1-bit, 4-bit,
                             16-bit RGB(A)/LA PNG, palette PNG with tRNS, palette/gray/1-bit/24-bit BMP, TIFF, PPM,
                             lossless WebP with alpha
  extra_expected.safetensors for each case, the reference's output as uint8 [3,N,N] (before normalization); its
                             metadata "cases" is a JSON list of {name, file, size, resize_mode, interpolation,
                             exif_transpose, crop}
The open_clip modes `longest` and `squash` follow open_clip's transform.py (ResizeKeepRatio(longest=1) +
CenterCropOrPad(fill=0); Resize((n, n))), re-stated below because open_clip is not a Debian package.
"""
import json
import math
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "U8": np.uint8}
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out, meta


def write_safetensors(path, tensors, meta):
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k], dtype=np.uint8)
        header[k] = {"dtype": "U8", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def png_bytes(array, color_type, bit_depth, palette=None, trns=None, width=None):
    """A minimal PNG writer (Pillow cannot write 16-bit RGB/RGBA/LA); `array` holds packed rows."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    h, w = array.shape[0], width or array.shape[1]
    dtype = ">u2" if bit_depth == 16 else np.uint8
    rows = b"".join(b"\0" + np.ascontiguousarray(r, dtype=dtype).tobytes() for r in array)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    return out + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def exif_with_orientation(orientation):
    # Little-endian TIFF header, IFD0 with one entry: Orientation (0x0112), SHORT, count 1.
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + \
        struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)


def reference(img, size, resize_mode="shortest", interpolation="bicubic", exif_transpose=False, crop=None):
    """The reference's uint8 output [3,N,N]: open_clip/openai-CLIP transforms up to ToTensor (times 255)."""
    interp = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}[interpolation]
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    if crop is not None:  # RandomResizedCrop with a given window (top, left, height, width)
        img = F.resized_crop(img, *crop, [size, size], interp)
    elif resize_mode == "shortest":
        img = F.center_crop(F.resize(img, size, interp), size)
    elif resize_mode == "squash":
        img = F.resize(img, [size, size], interp)
    elif resize_mode == "longest":  # open_clip ResizeKeepRatio(longest=1) + CenterCropOrPad(fill=0)
        w, h = img.size
        ratio = max(h / size, w / size)
        img = F.resize(img, [round(h / ratio), round(w / ratio)], interp)
        w, h = img.size
        if size > w or size > h:
            pad = [(size - w) // 2 if size > w else 0, (size - h) // 2 if size > h else 0,
                   (size - w + 1) // 2 if size > w else 0, (size - h + 1) // 2 if size > h else 0]
            img = F.pad(img, pad, fill=0)
            w, h = img.size
        if (w, h) != (size, size):
            img = F.crop(img, int((h - size) / 2.0), int((w - size) / 2.0), size, size)
    img = img.convert("RGB")
    return np.asarray(img).transpose(2, 0, 1).copy()


def copy_shared(shared):
    os.makedirs(os.path.join(HERE, "images"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(shared, "images"))):
        shutil.copyfile(os.path.join(shared, "images", name), os.path.join(HERE, "images", name))
    shutil.copyfile(os.path.join(shared, "manifest_224.json"), os.path.join(HERE, "manifest_224.json"))
    tensors, meta = read_safetensors(os.path.join(shared, "expected_224.safetensors"))
    mean = torch.tensor(MEAN)[:, None]
    std = torch.tensor(STD)[:, None]
    lut = ((torch.arange(256).float().div(255))[None, :] - mean) / std  # what ToTensor + Normalize compute
    out = {}
    for name, t in tensors.items():
        t = torch.from_numpy(t.copy())
        u = torch.round((t * std[:, :, None] + mean[:, :, None]) * 255).clamp(0, 255).long()
        assert torch.equal(torch.stack([lut[c][u[c]] for c in range(3)]), t), name
        out[name] = u.to(torch.uint8).numpy()
    write_safetensors(os.path.join(HERE, "expected_224.safetensors"), out, {"n_px": meta.get("n_px", "224")})


def make_extra(shared):
    src = os.path.join(shared, "images")
    extra = os.path.join(HERE, "extra")
    os.makedirs(extra, exist_ok=True)
    chelsea = Image.open(os.path.join(src, "chelsea.png")).convert("RGB").crop((150, 40, 310, 160))  # 160 x 120
    coffee = Image.open(os.path.join(src, "coffee.png")).convert("RGB").crop((200, 100, 290, 220))  # 90 x 120
    camera = Image.open(os.path.join(src, "camera.png")).crop((180, 60, 300, 150))  # L, 120 x 90
    rng = np.random.default_rng(5)

    def path(name):
        return os.path.join(extra, name)

    chelsea.convert("CMYK").save(path("cmyk.jpg"), quality=90)
    camera.save(path("gray.jpg"), quality=90)
    chelsea.save(path("progressive.jpg"), quality=85, progressive=True)
    coffee.save(path("exif6.jpg"), quality=90, exif=exif_with_orientation(6))
    coffee.save(path("exif3.jpg"), quality=90, exif=exif_with_orientation(3))
    la = Image.merge("LA", [camera, Image.fromarray(rng.integers(0, 256, (90, 120), dtype=np.uint8))])
    la.save(path("la.png"))
    camera.point(lambda v: 255 if v > 110 else 0).convert("1").save(path("bilevel.png"))
    g4 = (np.asarray(camera) >> 4).astype(np.uint8)
    packed = (g4[:, 0::2] << 4 | g4[:, 1::2]).astype(np.uint8)
    open(path("gray4.png"), "wb").write(png_bytes(packed, 0, 4, width=g4.shape[1]))
    rgb16 = np.asarray(chelsea).astype(np.uint16) * 257 + rng.integers(0, 257, (120, 160, 3)).astype(np.uint16)
    open(path("rgb16.png"), "wb").write(png_bytes(rgb16, 2, 16))
    alpha16 = rng.integers(0, 65536, (120, 160, 1)).astype(np.uint16)
    open(path("rgba16.png"), "wb").write(png_bytes(np.concatenate([rgb16, alpha16], 2), 6, 16))
    la16 = np.stack([np.asarray(camera).astype(np.uint16) * 257, alpha16[:90, :120, 0]], 2)
    open(path("la16.png"), "wb").write(png_bytes(la16, 4, 16))
    pal = coffee.quantize(16)
    pal.save(path("palette_trns.png"), bits=4, transparency=3)
    pal.save(path("palette.bmp"))
    camera.save(path("gray.bmp"))
    camera.point(lambda v: 255 if v > 110 else 0).convert("1").save(path("bilevel.bmp"))
    chelsea.save(path("rgb.bmp"))
    chelsea.save(path("rgb.tiff"))
    chelsea.save(path("rgb.ppm"))
    coffee.save(path("exif6.png"), exif=exif_with_orientation(6)[6:])
    coffee.save(path("exif8.webp"), lossless=True, exif=exif_with_orientation(8))
    coffee.save(path("exif6.tiff"), tiffinfo={274: 6})
    rgba = chelsea.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (120, 160), dtype=np.uint8)))
    rgba.save(path("rgba.webp"), lossless=True)

    cases = [
        ("cmyk.jpg", 64), ("gray.jpg", 64), ("progressive.jpg", 64), ("exif6.jpg", 64), ("exif3.jpg", 64),
        ("la.png", 64), ("bilevel.png", 48), ("gray4.png", 48), ("rgb16.png", 64), ("rgba16.png", 64),
        ("la16.png", 64), ("palette_trns.png", 48), ("palette.bmp", 48), ("gray.bmp", 64), ("bilevel.bmp", 48),
        ("rgb.bmp", 64), ("rgb.tiff", 64), ("rgb.ppm", 64), ("rgba.webp", 64),
    ]
    specs = [dict(name=f, file="extra/" + f, size=n) for f, n in cases]
    specs += [
        dict(name="exif6.jpg+transpose", file="extra/exif6.jpg", size=64, exif_transpose=True),
        dict(name="exif3.jpg+transpose", file="extra/exif3.jpg", size=64, exif_transpose=True),
        dict(name="exif6.png+transpose", file="extra/exif6.png", size=64, exif_transpose=True),
        dict(name="exif8.webp+transpose", file="extra/exif8.webp", size=64, exif_transpose=True),
        dict(name="exif6.tiff+transpose", file="extra/exif6.tiff", size=64, exif_transpose=True),
        # open_clip's modes and bilinear on the shared images.
        dict(name="rocket.jpg/longest", file="images/rocket.jpg", size=96, resize_mode="longest"),
        dict(name="horse.png/longest", file="images/horse.png", size=96, resize_mode="longest"),
        dict(name="wide_1000x20.png/longest", file="images/wide_1000x20.png", size=96, resize_mode="longest"),
        dict(name="palette_color.png/longest", file="images/palette_color.png", size=33, resize_mode="longest"),
        dict(name="butterfly.jpg/squash", file="images/butterfly.jpg", size=96, resize_mode="squash"),
        dict(name="coffee.png/bilinear", file="images/coffee.png", size=96, interpolation="bilinear"),
        dict(name="gray16_257x300.png/bilinear", file="images/gray16_257x300.png", size=96,
             interpolation="bilinear"),
        dict(name="tiny_5x3.png/upsample", file="images/tiny_5x3.png", size=37),
        # RandomResizedCrop's resize with a fixed window (top, left, height, width).
        dict(name="rocket.jpg/crop", file="images/rocket.jpg", size=80, crop=[13, 27, 300, 350]),
        dict(name="rgba_257x300.png/crop", file="images/rgba_257x300.png", size=80, crop=[5, 3, 250, 200]),
    ]
    out = {}
    for s in specs:
        img = Image.open(os.path.join(HERE, s["file"]))
        out[s["name"]] = reference(img, s["size"], s.get("resize_mode", "shortest"),
                                   s.get("interpolation", "bicubic"), s.get("exif_transpose", False),
                                   s.get("crop"))
        s["mode"] = img.mode
    write_safetensors(os.path.join(HERE, "extra_expected.safetensors"), out, {"cases": json.dumps(specs)})
    for s in specs:
        print(f"{s['name']:32s} {s['mode']:5s} -> {out[s['name']].shape}")


if __name__ == "__main__":
    shared = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures/preprocess"
    copy_shared(shared)
    make_extra(shared)
