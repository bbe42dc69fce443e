//! Ports published on the root namespace's loopback, as Docker publishes
//! a container's ports: a listener on 127.0.0.1 whose connections are
//! relayed to an address inside a host's namespace by a socket opened in
//! that namespace. The root namespace gets no route into the testbed.

use super::sys::{SysError, in_namespace};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a relay waits to connect inside the namespace.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One published port; dropping it closes the listener and every relayed
/// connection.
pub struct Published {
    /// Where users connect: 127.0.0.1:port.
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl Published {
    /// Publishes `target` in namespace `ns` on 127.0.0.1, on
    /// `preferred_port` when it is free, else on a port the kernel picks.
    pub fn start(ns: &str, target: SocketAddr, preferred_port: u16) -> Result<Published, SysError> {
        let listener = super::sys::bind_loopback(preferred_port)
            .map_err(|e| SysError::new(format!("publishing {target} of {ns}"), e.to_string()))?;
        let local = listener
            .local_addr()
            .map_err(|e| SysError::new(format!("publishing {target} of {ns}"), e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let ns = ns.to_owned();
        let accept = {
            let (stop, open) = (stop.clone(), open.clone());
            std::thread::Builder::new()
                .name(format!("publish {local}"))
                .spawn(move || accept_loop(listener, &ns, target, &stop, &open))
                .map_err(|e| SysError::new("publishing a port", e.to_string()))?
        };
        Ok(Published {
            local,
            stop,
            open,
            accept: Some(accept),
        })
    }
}

fn accept_loop(
    listener: TcpListener,
    ns: &str,
    target: SocketAddr,
    stop: &AtomicBool,
    open: &Arc<Mutex<Vec<TcpStream>>>,
) {
    for client in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = client else { continue };
        let upstream = in_namespace(ns, || TcpStream::connect_timeout(&target, CONNECT_TIMEOUT));
        let upstream = match upstream {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%target, ns, "published port: cannot connect: {e}");
                continue;
            }
            Err(e) => {
                tracing::warn!(%target, "published port: {e}");
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        if let Ok(mut list) = open.lock() {
            list.retain(|s| s.peer_addr().is_ok());
            list.extend(
                [&client, &upstream]
                    .iter()
                    .filter_map(|s| s.try_clone().ok()),
            );
        }
        for (from, to) in [(&client, &upstream), (&upstream, &client)] {
            let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                continue;
            };
            let _ = std::thread::Builder::new()
                .name("relay".into())
                .spawn(move || relay(from, to));
        }
    }
}

/// Copies `from` to `to` until end of stream, then ends `to`'s writing.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for Published {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_millis(200));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
        if let Ok(list) = self.open.lock() {
            for s in list.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}
