//! The set of connected clients: registration, departure, waiting for
//! enough of them, and seeded sampling.

use super::proxy::ClientProxy;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Connected clients, keyed by id.
#[derive(Debug)]
pub struct ClientManager {
    clients: Mutex<BTreeMap<String, Arc<ClientProxy>>>,
    count: watch::Sender<usize>,
}

impl Default for ClientManager {
    fn default() -> Self {
        Self {
            clients: Mutex::new(BTreeMap::new()),
            count: watch::channel(0).0,
        }
    }
}

impl ClientManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<ClientProxy>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a client.
    pub fn register(&self, proxy: Arc<ClientProxy>) {
        let mut clients = self.lock();
        clients.insert(proxy.id().to_owned(), proxy);
        self.count.send_replace(clients.len());
    }

    /// Removes a client (its stream ended).
    pub fn unregister(&self, id: &str) {
        let mut clients = self.lock();
        clients.remove(id);
        self.count.send_replace(clients.len());
    }

    /// Removes every client, ending their streams once no request holds them.
    pub fn clear(&self) -> Vec<Arc<ClientProxy>> {
        let mut clients = self.lock();
        let all = std::mem::take(&mut *clients).into_values().collect();
        self.count.send_replace(0);
        all
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All connected clients in arrival order.
    pub fn all(&self) -> Vec<Arc<ClientProxy>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|p| p.seq());
        v
    }

    /// Waits until at least `n` clients are connected; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Picks `n` distinct clients (all when fewer are connected) with `rng`,
    /// from the clients in arrival order, so a seed reproduces the choice.
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Arc<ClientProxy>> {
        let all = self.all();
        if n >= all.len() {
            return all;
        }
        let mut picked: Vec<usize> = sample(rng, all.len(), n).into_vec();
        picked.sort_unstable();
        picked.into_iter().map(|i| all[i].clone()).collect()
    }
}
