//! Where the arithmetic runs: burn's flex CPU backend, confined to a
//! dedicated rayon pool per trainer (or one per process, shared by its
//! pooled trainers).
//!
//! What the kernels do with threads: burn-flex 0.22.1 (read from its source)
//! and this crate's own [`crate::kernels`] (convolutions, linear layers,
//! ReLU with max-pooling) run every parallel kernel through rayon
//! (`par_iter`, `rayon::join`, and gemm's `Parallelism::Rayon`), and nothing
//! spawns threads of its own. rayon runs such work on the pool of the
//! calling thread: the global pool (one thread per core) by default, or the
//! pool whose [`rayon::ThreadPool::install`] the call is inside. So running a
//! client's fit and evaluate inside `install` on a pool of `threads` threads
//! caps that client at `threads` cores, and many clients can share two cores
//! without oversubscribing them. Small matrix products (below gemm's
//! threading threshold of 48*48*256 multiply-adds) run on the calling thread
//! anyway: at batch 10 every product of the MLPs is below that, so when
//! clients outnumber cores one thread per client is the efficient setting.

use burn::tensor::Device;
use std::sync::{Arc, Mutex, PoisonError};

use crate::MlError;

/// A dedicated thread pool plus the devices trainers use.
#[derive(Debug)]
pub struct Runtime {
    pool: rayon::ThreadPool,
}

impl Runtime {
    /// A runtime of `threads` worker threads (0: one per core).
    pub fn new(threads: usize) -> Result<Self, MlError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ml-worker-{i}"))
            .build()
            .map_err(|e| MlError::Threads {
                threads,
                message: e.to_string(),
            })?;
        Ok(Self { pool })
    }

    /// The process's runtime of `threads` worker threads (0: one per
    /// core), made on the first call and shared by every trainer that asks
    /// for the same count: many clients in one process share its threads
    /// instead of each holding its own.
    pub fn shared(threads: usize) -> Result<Arc<Runtime>, MlError> {
        static SHARED: Mutex<Vec<(usize, Arc<Runtime>)>> = Mutex::new(Vec::new());
        let mut pools = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, runtime)) = pools.iter().find(|(n, _)| *n == threads) {
            return Ok(Arc::clone(runtime));
        }
        let runtime = Arc::new(Runtime::new(threads)?);
        pools.push((threads, Arc::clone(&runtime)));
        Ok(runtime)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `work` with every burn kernel it calls confined to this pool.
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }

    /// The device training runs on: flex with autodiff.
    pub fn train_device() -> Device {
        Device::flex().autodiff()
    }

    /// The device evaluation runs on: flex without autodiff.
    pub fn eval_device() -> Device {
        Device::flex()
    }
}
