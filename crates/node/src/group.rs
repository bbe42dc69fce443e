//! Many hosts' agents in one process (`dmo node --hosts`): each host keeps
//! its own listener, jobs, metrics and failure handling, while the process
//! shares what would otherwise be copied per host: the dataset (read once,
//! see [`ml::datasets::shared`]), the training threads, and a bounded pool
//! of training slots.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::Agent;

/// What the agents of one process share when it serves many hosts.
#[derive(Debug, Clone)]
pub struct Group {
    /// Slots of the training pool: at most this many of the process's
    /// clients train (or evaluate) at once; the others wait their turn
    /// holding no model.
    pub training_slots: Arc<Semaphore>,
    slots: usize,
}

impl Group {
    /// A group whose clients train `slots` at a time (at least one).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            training_slots: Arc::new(Semaphore::new(slots)),
            slots,
        }
    }

    /// Threads of the process's shared training pool when each client
    /// trains on `per_client` threads (0: one per core, kept): one set per
    /// slot, so that clients training at once do not queue for one
    /// client's threads.
    pub fn pool_threads(&self, per_client: usize) -> usize {
        per_client.saturating_mul(self.slots)
    }
}

/// One host of a group: its agent, the listener of its REST API and who
/// that listener admits.
pub struct GroupHost {
    /// The host's agent.
    pub agent: Agent,
    /// Its REST listener.
    pub listener: tokio::net::TcpListener,
    /// Its tokens and TLS identity.
    pub security: httpd::Security,
}

/// Serves every host's API within `limits` until `shutdown` resolves; the
/// first listener that fails ends the whole group with its error.
pub async fn serve(
    hosts: Vec<GroupHost>,
    limits: httpd::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for host in hosts {
        let mut stopped = stopped.clone();
        let until = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        servers.spawn(crate::serve(
            host.listener,
            host.agent,
            limits,
            host.security,
            until,
        ));
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let result = tokio::select! {
        () = &mut shutdown => Ok(()),
        Some(ended) = servers.join_next() => ended.unwrap_or_else(|e| Err(std::io::Error::other(e))),
    };
    let _ = stop.send(true);
    while let Some(ended) = servers.join_next().await {
        if let Ok(Err(e)) = ended {
            tracing::warn!(error = %e, "a host's listener ended with an error");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_pool_has_threads_for_every_slot() {
        assert_eq!(Group::new(2).pool_threads(1), 2);
        assert_eq!(Group::new(0).pool_threads(3), 3);
        assert_eq!(Group::new(4).pool_threads(0), 0);
    }
}
