#!/usr/bin/env python3
"""Compare qnnc's integer outputs with QONNX's own executor, image by image.

`qnnc eval MODEL.onnx --logits LOGITS.json` writes the class and logit codes of the integer
golden model (the reference the RTL equals) for each test image. This runs MODEL.onnx through
QONNX's executor on the same images and checks that the classes are equal and that every
logit is within one step of the output quantizer (`logit_scale`) of qnnc's code times its
scale.

Usage (in the venv of make_fixtures.sh):
    build/brevitas-venv/bin/python examples/qonnx/check_logits.py MODEL.onnx LOGITS.json \\
        [--cifar DIR] [--input-scale 1/255]
Images are Fashion-MNIST's test set (FMNIST_DIR) unless --cifar names a folder holding a
CIFAR-10 `test_batch.bin`. Prints one JSON object; exits 1 if a class or a logit differs.
"""

import argparse
import gzip
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes


def fashion_mnist(count: int) -> np.ndarray:
    """The first `count` test images, [N, 1, 28, 28] pixels."""
    data = Path(os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    with gzip.open(data / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16)[: count * 784].reshape(-1, 1, 28, 28)


def cifar(folder: Path, count: int) -> np.ndarray:
    """The first `count` images of a CIFAR-10 binary batch (label byte, then 3x32x32 CHW)."""
    raw = np.fromfile(folder / "test_batch.bin", dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
    return raw[:count, 1:].reshape(-1, 3, 32, 32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("logits")
    parser.add_argument("--cifar", type=Path)
    parser.add_argument("--input-scale", default="1/255")
    args = parser.parse_args()
    qnnc = json.loads(Path(args.logits).read_text())
    count = len(qnnc["images"])
    pixels = cifar(args.cifar, count) if args.cifar else fashion_mnist(count)
    if len(pixels) != count:
        sys.exit(f"error: {args.logits} has {count} images but the data set {len(pixels)}")
    input_scale = np.float32(float(Fraction(args.input_scale)))
    step = qnnc["logit_scale"]

    model = ModelWrapper(args.model).transform(InferShapes())
    name_in = model.graph.input[0].name
    name_out = model.graph.output[0].name
    class_differs, worst = [], 0.0
    for index, (image, ours) in enumerate(zip(pixels, qnnc["images"])):
        x = image.astype(np.float32)[np.newaxis] * input_scale
        theirs = execute_onnx(model, {name_in: x})[name_out].reshape(-1)
        if int(np.argmax(theirs)) != ours["class"]:
            class_differs.append(index)
        ours_value = np.asarray(ours["logits"], dtype=np.float64) * step
        worst = max(worst, float(np.max(np.abs(theirs.astype(np.float64) - ours_value))) / step)
    report = {"model": args.model, "images": count, "class_differs": len(class_differs),
              "first_class_differs": class_differs[:10], "logit_scale": step,
              "max_logit_difference_in_steps": worst}
    print(json.dumps(report))
    # A step of slack, and a little for float32 rounding in the executor.
    return 1 if class_differs or worst > 1.0 + 1e-3 else 0


if __name__ == "__main__":
    sys.exit(main())
