"""Flower's simulation engine on the setup of scenarios/scale-1000.yaml.

flwr 1.42 with Ray (`flwr[simulation]`), PyTorch clients: Fashion-MNIST's
60,000 training images split IID over CLIENTS clients (each keeps 10 % as
its held-out set, as ours do), MLP 784-200-200-10, SGD lr 0.05, batch 32,
one local epoch, FedAvg, fraction fit 0.5, ROUNDS rounds, central
evaluation on the 10,000 test images after every round, no federated
evaluation. Prints `ROUND k/N SECONDS ACCURACY` after every round.

Usage: python bench/flower_sim.py [--clients 1000] [--rounds 5]
         [--data /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
from torch import nn

import flwr as fl
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

ARGS = argparse.ArgumentParser()
ARGS.add_argument("--clients", type=int, default=1000)
ARGS.add_argument("--rounds", type=int, default=5)
ARGS.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
OPTS = ARGS.parse_args()
torch.set_num_threads(1)


def idx(path):
    with gzip.open(path) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split):
    x = idx(os.path.join(OPTS.data, f"{split}-images-idx3-ubyte.gz"))
    y = idx(os.path.join(OPTS.data, f"{split}-labels-idx1-ubyte.gz"))
    return x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64)


X, Y = load("train")
XT, YT = load("t10k")
PARTS = np.array_split(np.random.default_rng(0).permutation(len(X)), OPTS.clients)


def model():
    return nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, 10))


def get(net):
    return [p.detach().numpy() for p in net.state_dict().values()]


def put(net, arrays):
    net.load_state_dict({k: torch.tensor(a) for k, a in zip(net.state_dict().keys(), arrays)})


class Client(NumPyClient):
    def __init__(self, part):
        rows = PARTS[part]
        held = max(1, round(len(rows) * 0.1))
        train = rows[held:]
        self.x, self.y = torch.tensor(X[train]), torch.tensor(Y[train])

    def fit(self, parameters, config):
        net = model()
        put(net, parameters)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.randperm(len(self.x))
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad()
            loss_fn(net(self.x[b]), self.y[b]).backward()
            opt.step()
        return get(net), len(self.x), {}


def client_fn(context: Context):
    return Client(int(context.node_config["partition-id"])).to_client()


STARTED = [time.perf_counter()]


def evaluate(server_round, parameters, config):
    net = model()
    put(net, parameters)
    with torch.no_grad():
        out = net(torch.tensor(XT))
        acc = float((out.argmax(1) == torch.tensor(YT)).float().mean())
        loss = float(nn.functional.cross_entropy(out, torch.tensor(YT)))
    now = time.perf_counter()
    if server_round > 0:
        print(f"ROUND {server_round}/{OPTS.rounds} {now - STARTED[0]:.3f} {acc:.4f}", flush=True)
    STARTED[0] = now
    return loss, {"accuracy": acc}


def server_fn(context: Context):
    strategy = FedAvg(
        fraction_fit=0.5,
        fraction_evaluate=0.0,
        min_fit_clients=1,
        min_evaluate_clients=0,
        min_available_clients=OPTS.clients,
        evaluate_fn=evaluate,
        initial_parameters=ndarrays_to_parameters(get(model())),
    )
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=OPTS.rounds))


run_simulation(
    server_app=ServerApp(server_fn=server_fn),
    client_app=ClientApp(client_fn=client_fn),
    num_supernodes=OPTS.clients,
    backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
)
