#!/usr/bin/env python3
"""Run QONNX files through QONNX's own executor on Fashion-MNIST test images.

A check that files `qnnc export` writes are read by other tools as qnnc reads them: compare
the accuracy printed here with `qnnc eval FILE --test-limit N` on the same images.

Usage (in the venv of make_fixtures.sh):
    build/brevitas-venv/bin/python examples/qonnx/check_export.py FILE.onnx... [--images N]
Prints one JSON object a file: file, images, correct, accuracy.
"""

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes


def read_idx_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    data = Path(os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    images = read_idx_gz(data / "t10k-images-idx3-ubyte.gz")[: args.images]
    labels = read_idx_gz(data / "t10k-labels-idx1-ubyte.gz")[: args.images]
    for file in args.files:
        onnx.checker.check_model(onnx.load(file))
        model = ModelWrapper(file).transform(InferShapes())
        name_in = model.graph.input[0].name
        name_out = model.graph.output[0].name
        correct = 0
        for image, label in zip(images, labels):
            x = (image.astype(np.float32) / np.float32(255.0)).reshape(1, 1, 28, 28)
            logits = execute_onnx(model, {name_in: x})[name_out]
            correct += int(np.argmax(logits) == label)
        print(json.dumps({"file": file, "images": len(labels), "correct": correct,
                          "accuracy": 100.0 * correct / len(labels)}))


if __name__ == "__main__":
    main()
