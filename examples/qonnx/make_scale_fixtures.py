#!/usr/bin/env python3
"""Export a Brevitas network trained on ``pixel / 256``: the fixtures of the input scale.

Run through ``examples/qonnx/make_fixtures.sh --scale`` (which sets up the pinned venv).

One MLP (784-64-64-10 at 4 bits, the layers of ``make_fixtures.py``) is trained on
Fashion-MNIST with the input ``pixel / 256`` and exported twice into ``tests/fixtures/qonnx/``:

- ``scale256_mlp_q4.onnx``: as trained, with no input node. Nothing in the file says what a
  pixel is worth, so qnnc needs ``--input-scale 1/256``.
- ``scale256_mul_mlp_q4.onnx``: the same network behind a ``Mul`` by 255/256, so that it takes
  ``pixel / 255`` (qnnc's default) and says itself that a pixel step is 1/256.

Their records, with Brevitas's accuracy on all test images, are the ``input_scale`` list of
``fixtures.json``.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from make_fixtures import (DEFAULT_DATA_DIR, DEFAULT_OUT_DIR, act, linear, load_split,
                           predict, sha256, train)

import brevitas  # noqa: E402
import onnx  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402

SEED = 20261201
EPOCHS = 2
Q = 4


class ScaledInput(nn.Module):
    """`model` applied to `x * factor`: the factor is a constant `Mul` in the export."""

    def __init__(self, model: nn.Module, factor: float):
        super().__init__()
        self.model = model
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.factor)


def make_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        linear(784, 64, Q), nn.BatchNorm1d(64), act(Q),
        linear(64, 64, Q), nn.BatchNorm1d(64), act(Q),
        linear(64, 10, Q), nn.BatchNorm1d(10),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("FMNIST_DIR", DEFAULT_DATA_DIR))
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True, warn_only=True)

    x_train, y_train = load_split(Path(args.data_dir), "train")
    x_test, y_test = load_split(Path(args.data_dir), "t10k")
    # load_split gives pixel / 255; this network learns pixel / 256.
    to_256 = np.float32(255.0 / 256.0)
    x_train, x_test = x_train * to_256, x_test * to_256

    torch.manual_seed(SEED)
    model = make_mlp()
    train(model, x_train, y_train, SEED, EPOCHS, None)
    _, pred = predict(model, x_test)
    correct = int((pred == y_test).sum())
    wrapped = ScaledInput(model, float(to_256))
    # The wrapped network on pixel / 255 is the same function.
    _, pred_wrapped = predict(wrapped, x_test / to_256)
    same = int((pred_wrapped == pred).sum())
    print(f"accuracy {100.0 * correct / len(y_test):.2f}%; wrapped agrees on {same} images",
          flush=True)

    fixtures = []
    for name, network, input_scale in (("scale256_mlp_q4.onnx", model, "1/256 (no input node)"),
                                       ("scale256_mul_mlp_q4.onnx", wrapped,
                                        "1/255, then Mul by 255/256 in the graph")):
        path = DEFAULT_OUT_DIR / name
        network.eval()
        with torch.no_grad():
            export_qonnx(network, input_t=torch.zeros(1, 1, 28, 28), export_path=str(path))
        onnx.checker.check_model(onnx.load(str(path)))
        fixtures.append({
            "file": name, "network": "mlp 784-64-64-10", "q": Q, "seed": SEED,
            "epochs": EPOCHS, "input": input_scale, "test_images": int(len(y_test)),
            "correct": correct, "brevitas_accuracy": 100.0 * correct / len(y_test),
            "bytes": path.stat().st_size, "sha256": sha256(path),
        })
        print(f"exported {name} ({path.stat().st_size} bytes)", flush=True)

    manifest_path = DEFAULT_OUT_DIR / "fixtures.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["input_scale"] = {
        "generator": "examples/qonnx/make_fixtures.sh --scale",
        "dataset": "Fashion-MNIST (IDX), trained on pixel/256 float32 NCHW [N,1,28,28]",
        "versions": {"torch": torch.__version__, "brevitas": brevitas.__version__,
                     "onnx": onnx.__version__},
        "fixtures": fixtures,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
