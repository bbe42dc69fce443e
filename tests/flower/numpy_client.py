"""A Flower NumPyClient (flwr 1.42, grpc-bidi) fitting y = 3x - 1 by least squares.

Used by the interoperability tests: it joins our Rust server, or Flower's.
"""
import argparse
import sys

import flwr as fl
import numpy as np


class LineClient(fl.client.NumPyClient):
    def __init__(self, offset: float, dtype):
        self.x = (offset + np.arange(20) / 10.0).astype(np.float64)
        self.y = 3.0 * self.x - 1.0
        self.dtype = dtype

    def _loss(self, w, b):
        return float(np.mean((w * self.x + b - self.y) ** 2))

    def get_parameters(self, config):
        return [np.zeros((1, 1), dtype=self.dtype), np.zeros((1,), dtype=self.dtype)]

    def fit(self, parameters, config):
        w, b = float(parameters[0][0, 0]), float(parameters[1][0])
        lr = float(config.get("learning_rate", 0.1))
        for _ in range(10):
            e = w * self.x + b - self.y
            w -= lr * float(np.mean(2 * e * self.x))
            b -= lr * float(np.mean(2 * e))
        params = [np.array([[w]], dtype=self.dtype), np.array([b], dtype=self.dtype)]
        return params, len(self.x), {"train_loss": self._loss(w, b)}

    def evaluate(self, parameters, config):
        w, b = float(parameters[0][0, 0]), float(parameters[1][0])
        loss = self._loss(w, b)
        return loss, len(self.x), {"accuracy": 1.0 / (1.0 + loss)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--offset", type=float, default=0.0)
    p.add_argument("--float64", action="store_true")
    p.add_argument("--root-certificates", help="PEM file of the CA to trust (TLS)")
    a = p.parse_args()
    roots = None
    if a.root_certificates:
        with open(a.root_certificates, "rb") as f:
            roots = f.read()
    dtype = np.float64 if a.float64 else np.float32
    fl.client.start_client(
        server_address=a.server,
        client=LineClient(a.offset, dtype).to_client(),
        transport="grpc-bidi",
        root_certificates=roots,
    )
    print("client done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
