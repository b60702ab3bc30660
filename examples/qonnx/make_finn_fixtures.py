#!/usr/bin/env python3
"""Export Brevitas's FINN example networks (brevitas_examples.bnn_pynq) as QONNX fixtures.

Run through ``examples/qonnx/make_fixtures.sh --finn`` (which sets up the pinned venv).

TFC, SFC and LFC (the bnn_pynq ``FC`` model: QuantIdentity on the input after ``2x - 1``,
QuantLinear without bias, BatchNorm1d, QuantIdentity activations, TensorNorm at the end) at
w1a1, w1a2 and w2a2, built with the package's own ``model_with_cfg`` and configurations
(bnn_pynq has no ``lfc_2w2a`` configuration; it is ``lfc_1w2a``'s with 2-bit weights), trained
briefly on Fashion-MNIST (input = pixel / 255, as bnn_pynq's ToTensor) and exported with
``brevitas.export.export_qonnx``. CNV at the same precisions is exported untrained on a
``[1, 3, 32, 32]`` input.

TFC and SFC go to ``tests/fixtures/qonnx/`` (``finn_{tfc,sfc}_w{W}a{A}.onnx``) and into the
``finn`` list of its ``fixtures.json``; LFC (about 12 MB each) and CNV go to
``build/finn-fixtures/`` with a ``fixtures.json`` of their own.
"""

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

warnings.filterwarnings("ignore")

import brevitas  # noqa: E402
import onnx  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402
from brevitas_examples.bnn_pynq.models import model_with_cfg  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures" / "qonnx"
BUILD_DIR = REPO_ROOT / "build" / "finn-fixtures"

SEED = 20261130
TRAIN_IMAGES = 20000
BATCH_SIZE = 100
LEARNING_RATE = 0.01
# The first test images, on which the tests compare qnnc's accuracy with Brevitas's.
TEST_SLICE = 300
PRECISIONS = ((1, 1), (1, 2), (2, 2))
MLPS = ("tfc", "sfc", "lfc")
COMMITTED = ("tfc", "sfc")


def read_idx_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir: Path, prefix: str):
    images = read_idx_gz(data_dir / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx_gz(data_dir / f"{prefix}-labels-idx1-ubyte.gz")
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


def make_model(net: str, w: int, a: int) -> nn.Module:
    """The bnn_pynq model of `net` at `w` weight and `a` activation bits, from its configuration."""
    if net == "lfc" and (w, a) == (2, 2):
        from brevitas_examples.bnn_pynq.models.FC import fc
        from brevitas_examples.bnn_pynq.models import get_model_cfg
        cfg = get_model_cfg("lfc_1w2a")
        cfg.set("QUANT", "WEIGHT_BIT_WIDTH", "2")
        return fc(cfg)
    model, _ = model_with_cfg(f"{net}_{w}w{a}a", pretrained=False)
    return model


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
    """One pass over the first TRAIN_IMAGES images, with bnn_pynq's weight clipping."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    perm = torch.randperm(x.shape[0], generator=gen)[:TRAIN_IMAGES]
    for start in range(0, TRAIN_IMAGES, BATCH_SIZE):
        idx = perm[start:start + BATCH_SIZE]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        model.clip_weights(-1.0, 1.0)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + 1000]) for i in range(0, x.shape[0], 1000)]).argmax(dim=1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("FMNIST_DIR", DEFAULT_DATA_DIR))
    ap.add_argument("--only", default=None, help="comma list like tfc_w1a1,cnv_w2a2")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True, warn_only=True)
    only = set(args.only.split(",")) if args.only else None

    data_dir = Path(args.data_dir)
    x_train, y_train = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)

    committed, built = [], []
    for index, (net, (w, a)) in enumerate((n, p) for n in MLPS + ("cnv",) for p in PRECISIONS):
        name = f"finn_{net}_w{w}a{a}"
        if only is not None and name.removeprefix("finn_") not in only:
            continue
        seed = SEED + index
        torch.manual_seed(seed)
        model = make_model(net, w, a)
        entry = {"file": f"{name}.onnx", "network": net, "weight_bits": w, "act_bits": a,
                 "seed": seed}
        t0 = time.time()
        if net == "cnv":
            input_t = torch.zeros(1, 3, 32, 32)
            entry["trained"] = False
        else:
            input_t = torch.zeros(1, 1, 28, 28)
            train(model, x_train, y_train, seed)
            pred = predict(model, x_test)
            correct = int((pred == y_test).sum())
            correct_slice = int((pred[:TEST_SLICE] == y_test[:TEST_SLICE]).sum())
            entry.update({
                "trained": True, "train_images": TRAIN_IMAGES, "epochs": 1,
                "test_images": int(x_test.shape[0]), "correct": correct,
                "brevitas_accuracy": 100.0 * correct / x_test.shape[0],
                "slice_images": TEST_SLICE, "slice_correct": correct_slice,
                "slice_accuracy": 100.0 * correct_slice / TEST_SLICE,
            })
        out_dir = FIXTURE_DIR if net in COMMITTED else BUILD_DIR
        path = out_dir / entry["file"]
        model.eval()
        with torch.no_grad():
            export_qonnx(model, input_t=input_t, export_path=str(path))
        onnx.checker.check_model(onnx.load(str(path)))
        entry.update({"bytes": path.stat().st_size, "sha256": sha256(path)})
        print(f"[{name}] {time.time() - t0:.1f}s {json.dumps(entry)}", flush=True)
        (committed if net in COMMITTED else built).append(entry)

    versions = {"torch": torch.__version__, "brevitas": brevitas.__version__,
                "onnx": onnx.__version__}
    about = {
        "generator": "examples/qonnx/make_fixtures.sh --finn",
        "models": "brevitas_examples.bnn_pynq (model_with_cfg; lfc w2a2 = lfc_1w2a with 2-bit weights)",
        "dataset": "Fashion-MNIST (IDX), input = pixel/255 float32 NCHW [N,1,28,28]",
        "training": f"Adam(lr={LEARNING_RATE}), cross-entropy, batch {BATCH_SIZE}, "
                    f"{TRAIN_IMAGES} training images once, weights clipped to [-1, 1]",
        "versions": versions,
    }
    manifest_path = FIXTURE_DIR / "fixtures.json"
    manifest = json.loads(manifest_path.read_text())
    old = {f["file"]: f for f in manifest.get("finn", {}).get("fixtures", [])}
    old.update({f["file"]: f for f in committed})
    manifest["finn"] = {**about, "fixtures": sorted(old.values(), key=lambda f: f["file"])}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    build_manifest = BUILD_DIR / "fixtures.json"
    old = json.loads(build_manifest.read_text()).get("fixtures", []) if build_manifest.exists() else []
    merged = {f["file"]: f for f in old}
    merged.update({f["file"]: f for f in built})
    build_manifest.write_text(json.dumps(
        {**about, "fixtures": sorted(merged.values(), key=lambda f: f["file"])},
        indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
