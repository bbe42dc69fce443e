//! Probes of the local network: HTTP readiness, free ports, and the
//! listening sockets a run left behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Whether `GET path` on `addr` answers HTTP 200 (one short HTTP/1.1
/// connection; connect within 0.5 s, answer within 2 s). An empty `path`
/// asks only that the port accepts a connection (a TLS server, which a
/// plain request cannot ask).
pub fn http_get_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    if path.is_empty() {
        return true;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // "HTTP/1.x 200"
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[8..12] == b" 200"
}

/// Whether a TCP listener could bind `addr` now (false when something
/// listens there or the address is not local).
pub fn port_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// TCP sockets listening on an address in 127.`run_byte`.0.0/16, read from
/// `/proc/net/tcp` (empty where it cannot be read): what a run must not
/// leave behind.
pub fn listeners_in_run(run_byte: u8) -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != "0A" {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            // The kernel prints the network-order address as a native u32.
            let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes());
            let port = u16::from_str_radix(port, 16).ok()?;
            let [a, b, _, _] = ip.octets();
            (a == 127 && b == run_byte).then(|| SocketAddr::new(ip.into(), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_a_listener_and_its_port_taken() {
        let addr: SocketAddr = "127.236.1.10:0".parse().unwrap();
        let listener = TcpListener::bind(addr).unwrap();
        let bound = listener.local_addr().unwrap();
        assert!(!port_free(bound));
        assert!(listeners_in_run(236).contains(&bound));
        assert!(!http_get_ok(bound, "/"), "accepts but never answers");
        drop(listener);
        assert!(port_free(bound));
        assert!(!listeners_in_run(236).contains(&bound));
        assert!(
            !port_free("192.0.2.1:80".parse().unwrap()),
            "not a local address"
        );
    }
}
