//! Federated-learning runtime speaking Flower's gRPC wire protocol.
