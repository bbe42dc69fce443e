//! Centralised plans (privacy level low): the central trainer job that
//! pools the clients' data parts and trains on them, and the client job
//! that sends a part.

pub mod inbox;
pub mod trainer;
pub mod upload;

pub use inbox::Receipt;
pub use trainer::{PART_LIMIT_BYTES, PARTS_PATH, POOL_LIMIT_BYTES, TrainerJob};
