#!/usr/bin/env python3
"""Train small Brevitas networks on Fashion-MNIST and export them as QONNX fixtures.

Run through ``examples/qonnx/make_fixtures.sh`` (which sets up the pinned venv);
running this file directly needs the packages of ``requirements.txt``.

Writes into ``tests/fixtures/qonnx/`` (relative to the repository root):
  mlp_q{1,2,4,8}.onnx, cnn_q{1,2,4,8}.onnx, fixtures.json, README.md

Everything runs on the CPU with fixed seeds; the results depend on the pinned
package versions (and, to the last bit, possibly on the CPU's vector units).
"""

import argparse
import gzip
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

warnings.filterwarnings("ignore", message=".*fast_hadamard_transform.*")
warnings.filterwarnings("ignore", message=".*Named tensors.*")

import brevitas  # noqa: E402
import brevitas.nn as qnn  # noqa: E402
import onnx  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402
from brevitas.quant import (  # noqa: E402
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "qonnx"

SEED = 20240611
EPOCHS = 2
BATCH_SIZE = 100
LEARNING_RATE = 1e-3
QS = (1, 2, 4, 8)
NETWORKS = ("mlp", "cnn")
VERIFY_IMAGES = 200


# --------------------------------------------------------------------------- data
def read_idx_gz(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (big-endian header, unsigned-byte payload)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: payload size {data.size} does not match dims {dims}")
    return data.reshape(dims)


def load_split(data_dir: Path, prefix: str):
    images = read_idx_gz(data_dir / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx_gz(data_dir / f"{prefix}-labels-idx1-ubyte.gz")
    # input value = pixel / 255 as float32, NCHW, no normalisation
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    y = labels.astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


# ------------------------------------------------------------------------- models
def act(q: int) -> nn.Module:
    if q == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
    return qnn.QuantReLU(bit_width=q)  # default act_quant: Uint8ActPerTensorFloat


def linear(cin: int, cout: int, q: int) -> nn.Module:
    if q == 1:
        return qnn.QuantLinear(cin, cout, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
    return qnn.QuantLinear(cin, cout, bias=False, weight_quant=Int8WeightPerTensorFloat,
                           weight_bit_width=q)


def conv(cin: int, cout: int, q: int) -> nn.Module:
    if q == 1:
        return qnn.QuantConv2d(cin, cout, kernel_size=3, padding=1, bias=False,
                               weight_quant=SignedBinaryWeightPerTensorConst)
    return qnn.QuantConv2d(cin, cout, kernel_size=3, padding=1, bias=False,
                           weight_quant=Int8WeightPerChannelFloat, weight_bit_width=q)


def make_mlp(q: int, linear=linear, act=act) -> nn.Module:
    """The example MLP; `linear` and `act` make its layers (Brevitas's by default)."""
    return nn.Sequential(
        nn.Flatten(),
        linear(784, 256, q), nn.BatchNorm1d(256), act(q),
        linear(256, 256, q), nn.BatchNorm1d(256), act(q),
        linear(256, 10, q), nn.BatchNorm1d(10),
    )


def make_cnn(q: int, conv=conv, linear=linear, act=act) -> nn.Module:
    """The example CNN; `conv`, `linear` and `act` make its layers (Brevitas's by default)."""
    layers = []
    cin = 1
    for _ in range(3):  # spatial 28 -> 14 -> 7 -> 3
        layers += [conv(cin, 32, q), nn.BatchNorm2d(32), act(q), nn.MaxPool2d(2)]
        cin = 32
    layers += [nn.Flatten(), linear(32 * 3 * 3, 10, q), nn.BatchNorm1d(10)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- train / evaluate
def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int,
          max_batches: int | None) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    n = x.shape[0]
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        for start in range(0, n, BATCH_SIZE):
            if max_batches is not None and batches >= max_batches:
                break
            idx = perm[start:start + BATCH_SIZE]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss)
            batches += 1
        print(f"    epoch {epoch + 1}/{epochs}: mean loss {total / max(batches, 1):.4f}"
              f" over {batches} batches", flush=True)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    logits = torch.cat([model(x[i:i + 1000]) for i in range(0, x.shape[0], 1000)])
    return logits, logits.argmax(dim=1)


# -------------------------------------------------------------------------- verify
def verify(path: Path, x: torch.Tensor, ref_logits: torch.Tensor, n: int) -> dict:
    """Load with onnx, then run qonnx's executor on the first n test images."""
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    result = {"onnx_checker": "ok"}
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes
    except Exception as e:  # pragma: no cover - depends on the environment
        result["qonnx"] = f"not available: {e!r}"
        return result
    # The exported graph lacks shapes for most intermediate tensors, which the
    # executor insists on; shape inference is the only change made to it here.
    mw = ModelWrapper(model).transform(InferShapes())
    in_name = mw.graph.input[0].name
    out_name = mw.graph.output[0].name
    agree, max_abs = 0, 0.0
    for i in range(n):
        out = execute_onnx(mw, {in_name: x[i:i + 1].numpy()})[out_name]
        ref = ref_logits[i:i + 1].numpy()
        max_abs = max(max_abs, float(np.max(np.abs(out - ref))))
        agree += int(np.argmax(out[0]) == np.argmax(ref[0]))
    result.update({"qonnx_images": n, "qonnx_argmax_agree": agree,
                   "qonnx_max_abs_logit_diff": max_abs})
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


README = """\
# QONNX fixtures (Brevitas-trained Fashion-MNIST networks)

Small quantized networks trained with Brevitas on Fashion-MNIST and exported
with `brevitas.export.export_qonnx` (input `[1,1,28,28]`, float pixel/255, no
input quantizer, no normalisation). They exist to test qnnc's QONNX import.

- `mlp_q{{1,2,4,8}}.onnx`: Flatten, 3 x (QuantLinear no bias, BatchNorm1d),
  activation after the first two (QuantReLU(bit_width=Q), or sign via
  `SignedBinaryActPerTensorConst` at Q=1).
- `cnn_q{{1,2,4,8}}.onnx`: 3 x (QuantConv2d 3x3 pad 1 -> 32 ch no bias,
  BatchNorm2d, activation, MaxPool2d(2)), Flatten, QuantLinear(288,10), BatchNorm1d.
- Weights: Q>=2 narrow-range signed Q-bit (MLP per-tensor, CNN convs per-channel,
  CNN final linear per-tensor); Q=1 `SignedBinaryWeightPerTensorConst` (BipolarQuant).
- `fixtures.json`: per fixture the accuracy of the Brevitas model in eval mode
  on all {test_images} Fashion-MNIST test images, the number of correct
  predictions, plus seed, epochs and the torch/brevitas/onnx versions.

Regenerate (from the repository root; needs PyPI access and the Debian package
`dataset-fashion-mnist`; about 10-20 minutes on 2 CPU cores):

    bash examples/qonnx/make_fixtures.sh

Training is seeded and deterministic on the CPU, but the weights, accuracies
and exported bytes depend on the versions pinned in
`examples/qonnx/requirements.txt` (torch {torch}, brevitas {brevitas},
onnx {onnx}); other versions will give different fixtures.

`finn_{{tfc,sfc}}_w{{1a1,1a2,2a2}}.onnx` are Brevitas's FINN examples
(`brevitas_examples.bnn_pynq`, built with its `model_with_cfg` and configurations: input
`2x - 1` and a `QuantIdentity` of 1 or 2 bits, QuantLinear without bias, BatchNorm1d, signed
narrow `QuantIdentity` activations, TensorNorm), trained once over 20000 Fashion-MNIST images
and exported with `export_qonnx` by `make_finn_fixtures.py` (`make_fixtures.sh --finn`), which
also writes LFC (12 MB a file) and untrained CNV into `build/finn-fixtures/`. Their records are
the `finn` list of `fixtures.json`, with Brevitas's accuracy on all test images and on the
first 300 (`slice_accuracy`), which the tests compare.

`scale256_mlp_q4.onnx` and `scale256_mul_mlp_q4.onnx` are one MLP (784-64-64-10 at 4 bits)
trained on `pixel / 256` by `make_scale_fixtures.py` (`make_fixtures.sh --scale`): the first as
trained, with no input node (qnnc needs `--input-scale 1/256`), the second behind a `Mul` by
255/256 that takes `pixel / 255`. Their records are the `input_scale` list of `fixtures.json`.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("FMNIST_DIR", DEFAULT_DATA_DIR))
    ap.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR))
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--max-batches", type=int, default=None,
                    help="debug: stop each epoch after this many batches")
    ap.add_argument("--only", default=None, help="debug: comma list like mlp_q4,cnn_q1")
    ap.add_argument("--verify-images", type=int, default=VERIFY_IMAGES)
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False

    data_dir = Path(args.data_dir)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    x_train, y_train = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    print(f"data: train {tuple(x_train.shape)}, test {tuple(x_test.shape)}", flush=True)

    versions = {"torch": torch.__version__, "brevitas": brevitas.__version__,
                "onnx": onnx.__version__}
    try:
        import qonnx  # noqa: F401
        from importlib.metadata import version
        versions["qonnx"] = version("qonnx")
    except Exception:
        pass

    only = set(args.only.split(",")) if args.only else None
    fixtures, checks = [], []
    for index, (net, q) in enumerate((n, q) for n in NETWORKS for q in QS):
        name = f"{net}_q{q}"
        if only is not None and name not in only:
            continue
        seed = SEED + index
        print(f"[{name}] seed {seed}", flush=True)
        torch.manual_seed(seed)
        model = make_mlp(q) if net == "mlp" else make_cnn(q)
        t1 = time.time()
        train(model, x_train, y_train, seed, args.epochs, args.max_batches)
        logits, pred = predict(model, x_test)
        correct = int((pred == y_test).sum())
        acc = 100.0 * correct / x_test.shape[0]
        print(f"    accuracy {acc:.2f}% ({correct}/{x_test.shape[0]}), "
              f"train+eval {time.time() - t1:.1f}s", flush=True)

        path = out_dir / f"{name}.onnx"
        model.eval()
        with torch.no_grad():
            export_qonnx(model, input_t=torch.zeros(1, 1, 28, 28), export_path=str(path))
        check = verify(path, x_test, logits, args.verify_images)
        print(f"    exported {path.name} ({path.stat().st_size} bytes); check {check}", flush=True)
        fixtures.append({
            "file": path.name,
            "network": net,
            "q": q,
            "seed": seed,
            "test_images": int(x_test.shape[0]),
            "correct": correct,
            "brevitas_accuracy": acc,
            "bytes": path.stat().st_size,
            "sha256": sha256(path),
        })
        checks.append({"file": path.name, **check})

    manifest = {
        "generator": "examples/qonnx/make_fixtures.sh",
        "dataset": "Fashion-MNIST (IDX), input = pixel/255 float32 NCHW [N,1,28,28]",
        "input_shape": [1, 1, 28, 28],
        "versions": versions,
        "python": platform.python_version(),
        "base_seed": SEED,
        "epochs": args.epochs,
        "max_batches_per_epoch": args.max_batches,
        "batch_size": BATCH_SIZE,
        "optimizer": f"Adam(lr={LEARNING_RATE})",
        "fixtures": fixtures,
        "qonnx_execution_check": checks,
    }
    # The records of the FINN examples (make_finn_fixtures.py) and of the input-scale fixtures
    # (make_scale_fixtures.py) stay as they are.
    previous = out_dir / "fixtures.json"
    if previous.exists():
        kept = json.loads(previous.read_text())
        manifest.update({k: kept[k] for k in ("finn", "input_scale") if k in kept})
    (out_dir / "fixtures.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (out_dir / "README.md").write_text(README.format(
        test_images=int(x_test.shape[0]), **{k: versions[k] for k in ("torch", "brevitas", "onnx")}))
    print(f"wrote {out_dir}/fixtures.json and README.md; total {time.time() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
