"""The ONNX Runtime peer's models: a HF CLIP folder's image tower to ONNX, plus a dynamic int8 copy.

    python bench/peers/export_onnx.py --hf /tmp/peers/hf_vitb32 --out /tmp/peers/vitb32_image.onnx \
        --int8-out /tmp/peers/vitb32_image.int8.onnx

The graph: pixel_values float32 [batch, 3, 224, 224] (batch dynamic) -> vision_model (pre-LN, 12 QuickGELU layers,
CLS token, post-LN) -> visual_projection -> image_embeds float32 [batch, 512], unnormalised (HF's
get_image_features, open_clip's encode_image). torch.onnx.export with the dynamo exporter at opset 17 (the
TorchScript exporter with --legacy), weights inline (one file). int8: onnxruntime.quantization.quantize_dynamic,
QInt8 weights, per channel, activations quantised at run time (MatMul -> DynamicQuantizeMatMul / MatMulInteger);
op_types_to_quantize MatMul + Gemm: the patch-embedding Conv stays fp32 (quantising it too, quantize_dynamic's default,
gives a ConvInteger that made the whole model ~25% slower at batch 1 on 1 thread with onnxruntime 1.32).
"""
import argparse
import os
import sys

import numpy as np
import torch


class ImageTower(torch.nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.vision_model = clip.vision_model
        self.visual_projection = clip.visual_projection

    def forward(self, pixel_values):
        return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf", required=True, help="a HF CLIPModel folder (make_hf_vitb32.py)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--int8-out")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--legacy", action="store_true", help="the TorchScript exporter instead of dynamo")
    args = ap.parse_args()

    from transformers import CLIPModel
    import onnx
    import onnxruntime as ort

    clip = CLIPModel.from_pretrained(args.hf, attn_implementation="eager").eval().float()
    tower = ImageTower(clip).eval()
    example = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tmp = args.out + ".tmp"
    with torch.no_grad():
        ref = tower(example).numpy()
        if args.legacy:
            torch.onnx.export(tower, (example,), tmp, opset_version=args.opset, dynamo=False,
                              input_names=["pixel_values"], output_names=["image_embeds"],
                              dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})
        else:
            batch = torch.export.Dim("batch", min=1, max=4096)
            program = torch.onnx.export(tower, (example,), dynamo=True, opset_version=args.opset,
                                        input_names=["pixel_values"], output_names=["image_embeds"],
                                        dynamic_shapes={"pixel_values": {0: batch}}, optimize=True)
            program.save(tmp, external_data=False)
    model = onnx.load(tmp)
    onnx.checker.check_model(model)
    os.replace(tmp, args.out)
    print(f"export_onnx: {args.out} (opset {model.opset_import[0].version}, {len(model.graph.node)} nodes, "
          f"torch {torch.__version__}, onnx {onnx.__version__})")

    def check(path, tol):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for n in (1, 2, 3):  # batch sizes other than the example's: the batch axis is dynamic
            x = np.concatenate([example.numpy()] * 2)[:n]
            want = np.concatenate([ref] * 2)[:n]
            got = sess.run(None, {"pixel_values": x})[0]
            if got.shape != want.shape:
                sys.exit(f"export_onnx: {path} batch {n}: shape {got.shape}, not {want.shape}")
            cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
            if cos.min() < tol:
                sys.exit(f"export_onnx: {path} batch {n}: cosine to torch {cos.min():.6f} < {tol}")
        print(f"export_onnx: {path} matches torch (cosine >= {cos.min():.6f}), onnxruntime {ort.__version__}")

    check(args.out, 0.99999)
    if args.int8_out:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(args.out, args.int8_out + ".tmp", weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
        os.replace(args.int8_out + ".tmp", args.int8_out)
        q = onnx.load(args.int8_out)
        ops = sorted({n.op_type for n in q.graph.node} - {n.op_type for n in model.graph.node})
        print(f"export_onnx: {args.int8_out} (new ops {ops})")
        check(args.int8_out, 0.95)


if __name__ == "__main__":
    main()
