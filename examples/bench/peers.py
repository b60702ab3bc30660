#!/usr/bin/env python3
"""Training throughput of qnnc's example networks in its peers, beside qnnc's own.

Trains the example MLP (784-256-256-10) and the example CNN (3 x [conv 3x3 32, batch norm,
activation, max-pool 2], dense 288-10) with

- plain PyTorch straight-through estimators (the quantizers qnnc trains with: weights rounded
  to Q-bit codes of a per-tensor step, activations to 2^Q - 1 levels of [0, 1], sign at one
  bit; gradients passed straight through), and
- Brevitas (the layers of examples/qonnx/make_fixtures.py),

on the same Fashion-MNIST images, batch and thread count, and prints their training img/s beside
the figures of `qnnc bench train --format json` (QNNC_JSON), as ratios.

Usage (in the venv of examples/qonnx/make_fixtures.sh; `make bench-peers` does all of it):
    build/brevitas-venv/bin/python examples/bench/peers.py QNNC_JSON [--images N] [--bits 1,2,4,8]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "qonnx"))
from make_fixtures import DEFAULT_DATA_DIR, load_split, make_cnn, make_mlp  # noqa: E402

BATCH = 100
THREADS = 2
WARM_UP_BATCHES = 10


class RoundSte(torch.autograd.Function):
    """Round in the forward pass, identity in the backward pass."""

    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class SignSte(torch.autograd.Function):
    """Sign (+1 at zero) forward; the gradient of hard-tanh backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def quantize_weights(w: torch.Tensor, bits: int) -> torch.Tensor:
    if bits == 1:
        return SignSte.apply(w) * w.abs().mean().detach()
    max_code = 2 ** (bits - 1) - 1
    step = (w.abs().max() / max_code).detach().clamp_min(1e-8)
    return RoundSte.apply(torch.clamp(w / step, -max_code, max_code)) * step


class Act(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, x):
        if self.bits == 1:
            return SignSte.apply(x)
        levels = 2 ** self.bits - 1
        return RoundSte.apply(torch.clamp(x, 0.0, 1.0) * levels) / levels


class Linear(nn.Linear):
    def __init__(self, cin, cout, bits):
        super().__init__(cin, cout, bias=False)
        self.bits = bits

    def forward(self, x):
        return nn.functional.linear(x, quantize_weights(self.weight, self.bits))


class Conv(nn.Conv2d):
    def __init__(self, cin, cout, bits):
        super().__init__(cin, cout, kernel_size=3, padding=1, bias=False)
        self.bits = bits

    def forward(self, x):
        return self._conv_forward(x, quantize_weights(self.weight, self.bits), None)


def ste_mlp(bits: int) -> nn.Module:
    return make_mlp(bits, linear=Linear, act=Act)


def ste_cnn(bits: int) -> nn.Module:
    return make_cnn(bits, conv=Conv, linear=Linear, act=Act)


def images_per_second(model: nn.Module, x: torch.Tensor, y: torch.Tensor, images: int) -> float:
    """Training img/s over `images` images after WARM_UP_BATCHES untimed batches."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step(start: int) -> None:
        xb, yb = x[start:start + BATCH], y[start:start + BATCH]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        opt.step()

    for b in range(WARM_UP_BATCHES):
        step(b * BATCH)
    began = time.perf_counter()
    for start in range(0, images, BATCH):
        step(start % (x.shape[0] - BATCH))
    return images / (time.perf_counter() - began)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qnnc_json")
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--bits", default="1,2,4,8")
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    torch.manual_seed(1)
    x, y = load_split(Path(args.data_dir), "train")
    qnnc = {(r["net"], r["bits"]): r["train_img_per_s"]
            for r in json.loads(Path(args.qnnc_json).read_text())}

    def relative(net, bits):
        """qnnc's img/s at `bits` over its img/s at 4 bits."""
        return qnnc[(net, bits)] / qnnc[(net, 4)] if (net, 4) in qnnc else float("nan")

    print(f"training img/s, batch {BATCH}, {THREADS} threads, {args.images} Fashion-MNIST images")
    print(f"{'net':<5}{'Q':>6}{'qnnc':>10}{'qnnc/Q4':>9}{'PyTorch STE':>13}{'Brevitas':>10}"
          f"{'qnnc/STE':>10}{'qnnc/Brevitas':>15}")
    for net, ste, brevitas in (("mlp", ste_mlp, make_mlp), ("cnn", ste_cnn, make_cnn)):
        for bits in (int(b) for b in args.bits.split(",")):
            ours = qnnc.get((net, bits))
            if ours is None:
                sys.exit(f"error: {args.qnnc_json} has no row for {net} at {bits} bits")
            plain = images_per_second(ste(bits), x, y, args.images)
            theirs = images_per_second(brevitas(bits), x, y, args.images)
            print(f"{net:<5}{bits:>6}{ours:>10.0f}{relative(net, bits):>8.2f}x{plain:>13.0f}"
                  f"{theirs:>10.0f}{ours / plain:>9.2f}x{ours / theirs:>14.2f}x", flush=True)
        if (net, None) in qnnc:
            print(f"{net:<5}{'float':>6}{qnnc[(net, None)]:>10.0f}{relative(net, None):>8.2f}x",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
