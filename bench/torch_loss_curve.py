"""Records PyTorch's loss curve for the agreement test (crates/ml/src/torch_agreement.rs).

Usage: python bench/torch_loss_curve.py > crates/ml/tests/fixtures/torch_loss_curves.json

For each model, from initial weights and data given by formulas the Rust test
computes too, one epoch of plain SGD over fixed batches (no shuffling, no
dropout), recording each batch's mean cross-entropy before its step:
  input  x[n][i] = 0.5 + 0.5 * sin(0.1 * i + 1.3 * n)   (i: flat C*H*W index)
  label  y[n]    = (7 * n + 3) % 10
  param  p_j[k]  = scale_j * sin(0.7 * k + 1.1 * j + 0.3)
                   (j: parameter index in PyTorch order, k: flat index in
                   PyTorch layout, scale_j: 1/sqrt(fan-in of its layer))
"""

import json
import math
import sys

import torch
from torch import nn

EXAMPLES, BATCH, LR = 40, 8, 0.05


def model(name):
    if name == "mlp":
        return (1, 28, 28), nn.Sequential(
            nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
            nn.Linear(200, 10),
        )
    if name == "cnn":
        return (1, 28, 28), nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, 10),
        )
    if name == "cnn-cifar":
        return (3, 32, 32), nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )
    raise ValueError(name)


def curve(name):
    shape, net = model(name)
    features = shape[0] * shape[1] * shape[2]
    scales = []
    with torch.no_grad():
        layers = [m for m in net if isinstance(m, (nn.Linear, nn.Conv2d))]
        params = [(layer, p) for layer in layers for p in (layer.weight, layer.bias)]
        for j, (layer, p) in enumerate(params):
            fan_in = layer.weight[0].numel()
            scale = 1.0 / math.sqrt(fan_in)
            values = [scale * math.sin(0.7 * k + 1.1 * j + 0.3) for k in range(p.numel())]
            p.copy_(torch.tensor(values, dtype=torch.float64).reshape(p.shape).float())
            scales.append(scale)
    x = torch.tensor(
        [[0.5 + 0.5 * math.sin(0.1 * i + 1.3 * n) for i in range(features)] for n in range(EXAMPLES)],
        dtype=torch.float64,
    ).float().reshape(EXAMPLES, *shape)
    y = torch.tensor([(7 * n + 3) % 10 for n in range(EXAMPLES)])
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    losses = []
    for start in range(0, EXAMPLES, BATCH):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x[start : start + BATCH]), y[start : start + BATCH])
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return {"model": name, "param_scales": scales, "losses": losses}


def main():
    torch.set_num_threads(1)
    out = {
        "torch": torch.__version__,
        "examples": EXAMPLES,
        "batch_size": BATCH,
        "learning_rate": LR,
        "curves": [curve(name) for name in ("mlp", "cnn", "cnn-cifar")],
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
