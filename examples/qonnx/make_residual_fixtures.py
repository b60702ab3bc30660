#!/usr/bin/env python3
"""Export a Brevitas residual network: the fixture of QONNX's Add and GlobalAveragePool.

Run through ``examples/qonnx/make_fixtures.sh --residual`` (which sets up the pinned venv).

A small ResNet-style network at 4 bits is trained on Fashion-MNIST and exported into
``tests/fixtures/qonnx/resnet_q4.onnx``:

    stem    conv3x3(1->16), BN, act A
    block 1 conv3x3, BN, act B1, conv3x3, BN, act A   (+ the stem's output), act C, max-pool 2
    middle  conv3x3, BN, act D
    block 2 conv3x3, BN, act B2, conv3x3, BN, act D   (+ the middle's output), act E, max-pool 2
    head    global average pool, act G, flatten, linear(16->10), BN

Both inputs of each ``Add`` come from one ``QuantReLU`` module (the same learned scale), so the
codes add exactly at one scale, which is what qnnc's integer ``add`` requires. Its record, with
Brevitas's accuracy on all test images, is the ``residual`` list of ``fixtures.json``.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn as nn

from make_fixtures import (DEFAULT_DATA_DIR, DEFAULT_OUT_DIR, act, conv, linear, load_split,
                           predict, sha256, train, verify)

import brevitas  # noqa: E402
import onnx  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402

SEED = 20261130
EPOCHS = 2
Q = 4
WIDTH = 16
VERIFY_IMAGES = 100


class ResidualNet(nn.Module):
    def __init__(self, q: int, width: int):
        super().__init__()
        self.stem = nn.Sequential(conv(1, width, q), nn.BatchNorm2d(width))
        self.act_a = act(q)
        self.block1 = nn.Sequential(conv(width, width, q), nn.BatchNorm2d(width), act(q),
                                    conv(width, width, q), nn.BatchNorm2d(width))
        self.act_c = act(q)
        self.middle = nn.Sequential(conv(width, width, q), nn.BatchNorm2d(width))
        self.act_d = act(q)
        self.block2 = nn.Sequential(conv(width, width, q), nn.BatchNorm2d(width), act(q),
                                    conv(width, width, q), nn.BatchNorm2d(width))
        self.act_e = act(q)
        self.pool = nn.MaxPool2d(2)
        self.average = nn.AdaptiveAvgPool2d(1)
        self.act_g = act(q)
        self.head = nn.Sequential(nn.Flatten(), linear(width, 10, q), nn.BatchNorm1d(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.stem(x))
        # The branch ends in the quantizer that made the skip: one scale on both inputs.
        x = self.pool(self.act_c(self.act_a(self.block1(x)) + x))
        x = self.act_d(self.middle(x))
        x = self.pool(self.act_e(self.act_d(self.block2(x)) + x))
        return self.head(self.act_g(self.average(x)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("FMNIST_DIR", DEFAULT_DATA_DIR))
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--max-batches", type=int, default=None,
                    help="debug: stop each epoch after this many batches")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True, warn_only=True)

    x_train, y_train = load_split(Path(args.data_dir), "train")
    x_test, y_test = load_split(Path(args.data_dir), "t10k")
    torch.manual_seed(SEED)
    model = ResidualNet(Q, WIDTH)
    train(model, x_train, y_train, SEED, args.epochs, args.max_batches)
    logits, pred = predict(model, x_test)
    correct = int((pred == y_test).sum())
    print(f"accuracy {100.0 * correct / len(y_test):.2f}%", flush=True)

    name = "resnet_q4.onnx"
    path = DEFAULT_OUT_DIR / name
    model.eval()
    with torch.no_grad():
        export_qonnx(model, input_t=torch.zeros(1, 1, 28, 28), export_path=str(path))
    check = verify(path, x_test, logits, VERIFY_IMAGES)
    print(f"exported {name} ({path.stat().st_size} bytes); check {check}", flush=True)

    manifest_path = DEFAULT_OUT_DIR / "fixtures.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["residual"] = {
        "generator": "examples/qonnx/make_fixtures.sh --residual",
        "dataset": "Fashion-MNIST (IDX), input = pixel/255 float32 NCHW [N,1,28,28]",
        "versions": {"torch": torch.__version__, "brevitas": brevitas.__version__,
                     "onnx": onnx.__version__},
        "fixtures": [{
            "file": name, "network": f"resnet, 2 residual blocks of width {WIDTH}", "q": Q,
            "seed": SEED, "epochs": args.epochs, "max_batches_per_epoch": args.max_batches,
            "test_images": int(len(y_test)), "correct": correct,
            "brevitas_accuracy": 100.0 * correct / len(y_test),
            "bytes": path.stat().st_size, "sha256": sha256(path), "qonnx_execution_check": check,
        }],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
