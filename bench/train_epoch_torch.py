"""One local epoch per model in PyTorch, the peer of `train_epoch` (ours).

Usage: python bench/train_epoch_torch.py THREADS EXAMPLES REPEATS [MODEL...]
Prints `model batch seconds` lines (fastest of REPEATS epochs). The layers,
initialisation family, loss, optimiser (plain SGD, lr 0.01) and data
(the first EXAMPLES Fashion-MNIST training images, scaled to 0..1;
random 3x32x32 images for cnn-cifar) match crates/ml/examples/train_epoch.rs.
"""

import gzip
import os
import sys
import time

import numpy as np
import torch
from torch import nn

FMNIST = "/usr/share/datasets/fashion-mnist"


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(FMNIST, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{stem} not found under {FMNIST}: apt install dataset-fashion-mnist")


def grey_data(n):
    x = idx(find("train-images-idx3-ubyte"))[:n].astype(np.float32) / 255.0
    y = idx(find("train-labels-idx1-ubyte"))[:n].astype(np.int64)
    return torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(y)


def rgb_data(n):
    g = torch.Generator().manual_seed(7)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def model(name):
    if name == "logreg":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
            nn.Linear(200, 10),
        )
    if name == "keras-mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)
        )
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, 10),
        )
    if name == "cnn-cifar":
        return nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )
    raise ValueError(name)


def epoch(net, x, y, batch):
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(len(x))
    net.train()
    for start in range(0, len(x), batch):
        idx_ = perm[start : start + batch]
        opt.zero_grad()
        loss = loss_fn(net(x[idx_]), y[idx_])
        loss.backward()
        opt.step()


def main():
    threads, examples, repeats = (int(a) for a in sys.argv[1:4])
    only = sys.argv[4:]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    grey = grey_data(examples)
    rgb = rgb_data(min(examples, 6000))
    for name in ("logreg", "mlp", "keras-mlp", "cnn", "cnn-cifar"):
        if only and name not in only:
            continue
        x, y = rgb if name == "cnn-cifar" else grey
        for batch in (10, 50):
            net = model(name)
            epoch(net, x[: 5 * batch], y[: 5 * batch], batch)  # warm-up, untimed
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                epoch(net, x, y, batch)
                best = min(best, time.perf_counter() - start)
            print(f"{name} {batch} {best:.4f}", flush=True)


if __name__ == "__main__":
    main()
