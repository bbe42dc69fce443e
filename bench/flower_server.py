"""Flower's own server (flwr 1.42 `start_server`, grpc-bidi, FedAvg: fit and
evaluate on every client every round) with per-round timing.

A FedAvg subclass stamps the start of each round (configure_fit) and its end
(aggregate_evaluate) and prints `ROUND k/N DURATION_S` on stdout when a round
ends, so that bench/measure.py can sample the process's CPU time there.

Usage: python bench/flower_server.py --address 127.0.0.1:PORT --rounds 6 --clients 50
"""
import argparse
import sys
import time

import flwr as fl


class TimedFedAvg(fl.server.strategy.FedAvg):
    """FedAvg that reports each round's wall time."""

    def __init__(self, rounds, **kwargs):
        super().__init__(**kwargs)
        self.rounds = rounds
        self.started = {}

    def configure_fit(self, server_round, parameters, client_manager):
        self.started[server_round] = time.perf_counter()
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round, results, failures):
        out = super().aggregate_evaluate(server_round, results, failures)
        elapsed = time.perf_counter() - self.started[server_round]
        print(f"ROUND {server_round}/{self.rounds} {elapsed:.6f} "
              f"ok={len(results)} failed={len(failures)}", flush=True)
        return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--clients", type=int, default=50)
    a = p.parse_args()
    strategy = TimedFedAvg(
        a.rounds,
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        min_fit_clients=a.clients,
        min_evaluate_clients=a.clients,
        min_available_clients=a.clients,
    )
    fl.server.start_server(
        server_address=a.address,
        config=fl.server.ServerConfig(num_rounds=a.rounds),
        strategy=strategy,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
