//! The FL runtime's integration tests: the `.npy` codec, server and client
//! over real gRPC, strategies, transport limits, and interop with Flower 1.42.
//! One binary per crate (one link on two cores); each file is a module.

mod edge;
mod flower_interop;
mod npy_codec;
mod server_client;
mod strategies;
mod transport;
mod util;
