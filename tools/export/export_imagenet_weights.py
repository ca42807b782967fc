#!/usr/bin/env python3
"""Export ImageNet weights of the reference's encoders to a safetensors file `pneumo import-weights` reads.

Run on a machine with internet and PyTorch (+ timm, or Cadene's pretrainedmodels):
    python3 export_imagenet_weights.py legacy_seresnext50_32x4d  se50_imagenet.safetensors
    python3 export_imagenet_weights.py tf_efficientnet_b3        b3_imagenet.safetensors
The tensors keep PyTorch's layout (conv KCRS) and timm's names; pneumo transposes on load. Cadene/timm
"legacy" SENet names (layer0.conv1, se_module, last_linear) are renamed to timm's ResNet names (conv1, se, fc).
"""
import json
import re
import struct
import sys

import torch


def load(name):
    if name.startswith("pretrainedmodels:"):  # e.g. pretrainedmodels:se_resnext50_32x4d (the reference's source)
        import pretrainedmodels
        return pretrainedmodels.__dict__[name.split(":", 1)[1]](num_classes=1000, pretrained="imagenet").state_dict()
    import timm
    return timm.create_model(name, pretrained=True).state_dict()


def timm_name(k):
    k = re.sub(r"^layer0\.(conv1|bn1)\.", r"\1.", k)
    k = k.replace(".se_module.", ".se.").replace("last_linear.", "fc.")
    return k


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        t = t.detach().cpu().contiguous()
        dt = {torch.float32: "F32", torch.int64: "I64"}.get(t.dtype)
        if dt is None:
            t, dt = t.float(), "F32"
        raw = t.numpy().tobytes()
        header[k] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sd = {timm_name(k): v for k, v in load(sys.argv[1]).items()}
    save(sys.argv[2], sd)
    print("wrote %s: %d tensors, %d parameters" % (sys.argv[2], len(sd),
                                                     sum(v.numel() for k, v in sd.items() if "running" not in k
                                                         and "num_batches" not in k)))
