"""Flower's own server (flwr 1.42, grpc-bidi) with FedAvg; prints its history as JSON.

Used by the interoperability tests: our Rust clients join it.
"""
import argparse
import json
import sys

import flwr as fl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--certificates", nargs=3, metavar=("CA", "CERT", "KEY"),
                   help="PEM files of the CA, this server's certificate and key (TLS)")
    a = p.parse_args()
    certificates = None
    if a.certificates:
        certificates = tuple(open(path, "rb").read() for path in a.certificates)
    strategy = fl.server.strategy.FedAvg(
        min_fit_clients=a.clients,
        min_evaluate_clients=a.clients,
        min_available_clients=a.clients,
        fit_metrics_aggregation_fn=lambda ms: {},
        evaluate_metrics_aggregation_fn=lambda ms: {},
    )
    history = fl.server.start_server(
        server_address=a.address,
        config=fl.server.ServerConfig(num_rounds=a.rounds),
        strategy=strategy,
        certificates=certificates,
    )
    print("HISTORY " + json.dumps({"losses_distributed": history.losses_distributed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
