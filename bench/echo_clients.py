"""Benchmark peer: N Flower NumPyClients (flwr 1.42, grpc-bidi) as threads of
one Python process. Each echoes the parameters it receives plus a fixed small
noise (no training), for a 784-200-200-10 MLP (199,210 float32 parameters).

Usage: python bench/echo_clients.py --server 127.0.0.1:PORT [--clients 50]
"""
import argparse
import sys
import threading

import flwr as fl
import numpy as np

SHAPES = [(200, 784), (200,), (200, 200), (200,), (10, 200), (10,)]
NUM_EXAMPLES = 1200


class EchoClient(fl.client.NumPyClient):
    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.initial = [rng.uniform(-0.05, 0.05, s).astype(np.float32) for s in SHAPES]
        self.noise = [rng.uniform(-1e-3, 1e-3, s).astype(np.float32) for s in SHAPES]

    def get_parameters(self, config):
        return self.initial

    def fit(self, parameters, config):
        return [p + n for p, n in zip(parameters, self.noise)], NUM_EXAMPLES, {}

    def evaluate(self, parameters, config):
        return 1.0, NUM_EXAMPLES, {}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--clients", type=int, default=50)
    a = p.parse_args()
    failures = []

    def run(i):
        try:
            fl.client.start_client(
                server_address=a.server,
                client=EchoClient(i).to_client(),
                transport="grpc-bidi",
            )
        except Exception as e:  # report and count; the other clients go on
            failures.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in failures:
        print(f, file=sys.stderr)
    print(f"{a.clients - len(failures)} of {a.clients} echo clients finished", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
