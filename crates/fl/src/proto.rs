//! Generated Flower protocol types (`flwr.proto`) and the gRPC service.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("flwr.proto");
