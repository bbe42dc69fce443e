//! TCP statistics of the FL servers' connections (smoothed RTT, congestion
//! window, bytes, retransmissions), read from the kernel with
//! `getsockopt(TCP_INFO)` when the metrics are scraped.
//!
//! Every accepted connection is wrapped in a [`TrackedStream`], which lists
//! its socket in a [`Connections`] table and leaves it in `Drop`, before the
//! socket closes. A scrape queries the sockets while it holds the table's
//! lock, so it never reads a closed descriptor, nor one the process reused.

use super::metrics::Labels;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The kernel's statistics of one TCP connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpStats {
    /// Smoothed round-trip time, seconds.
    pub rtt_seconds: f64,
    /// Round-trip time variation (RFC 6298's RTTVAR), seconds.
    pub rtt_variation_seconds: f64,
    /// Congestion window, segments.
    pub cwnd_segments: u64,
    /// Bytes sent that the peer acknowledged.
    pub acked_bytes: u64,
    /// Bytes received from the peer.
    pub received_bytes: u64,
    /// Segments retransmitted over the connection's life.
    pub retransmitted_segments: u64,
}

#[derive(Debug)]
struct Entry {
    fd: RawFd,
    labels: Labels,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

/// The open connections of the FL servers of a process, each with its
/// server's labels and `peer` (the client's `ip:port`).
#[derive(Debug, Clone, Default)]
pub struct Connections {
    table: Arc<Mutex<Table>>,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wraps an accepted stream, listed with `labels` plus its peer until it
    /// is dropped.
    pub fn track(&self, stream: TcpStream, mut labels: Labels) -> TrackedStream {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
        labels.push(("peer".to_owned(), peer));
        let mut table = self.lock();
        table.next += 1;
        let id = table.next;
        let fd = stream.as_raw_fd();
        table.open.insert(id, Entry { fd, labels });
        TrackedStream {
            stream,
            connections: self.clone(),
            id,
        }
    }

    /// The statistics of every open connection, with its labels; a socket
    /// the kernel cannot describe is left out.
    pub fn stats(&self) -> Vec<(Labels, TcpStats)> {
        // Held while querying: a stream leaves the table before its socket closes.
        let table = self.lock();
        table
            .open
            .values()
            .filter_map(|e| Some((e.labels.clone(), tcp_stats(e.fd).ok()?)))
            .collect()
    }
}

/// An accepted FL connection, listed in [`Connections`] while it is open.
#[derive(Debug)]
pub struct TrackedStream {
    stream: TcpStream,
    connections: Connections,
    id: u64,
}

impl Drop for TrackedStream {
    /// Leaves the table; the socket closes afterwards, when `stream` drops.
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for TrackedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Asks the kernel for the statistics of the TCP socket `fd`, which must be
/// open for the whole call.
#[cfg(target_os = "linux")]
fn tcp_stats(fd: RawFd) -> io::Result<TcpStats> {
    // SAFETY: `tcp_info` holds only integers, for which all-zero is valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is an open socket (the caller holds the table lock, and a
    // stream leaves the table before its socket closes); the kernel writes at
    // most `len` bytes to `info`, which is that large, and `len` back.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpStats {
        rtt_seconds: f64::from(info.tcpi_rtt) / 1e6,
        rtt_variation_seconds: f64::from(info.tcpi_rttvar) / 1e6,
        cwnd_segments: u64::from(info.tcpi_snd_cwnd),
        acked_bytes: info.tcpi_bytes_acked,
        received_bytes: info.tcpi_bytes_received,
        retransmitted_segments: u64::from(info.tcpi_total_retrans),
    })
}

/// `TCP_INFO` is Linux's: elsewhere no connection is described.
#[cfg(not(target_os = "linux"))]
fn tcp_stats(_fd: RawFd) -> io::Result<TcpStats> {
    Err(io::ErrorKind::Unsupported.into())
}

/// A family of [`ConnectionCollector`]: name, help, each connection's value.
type Family<V> = (&'static str, &'static str, fn(&TcpStats) -> V);

const GAUGES: [Family<f64>; 3] = [
    (
        "fl_server_connection_rtt_seconds",
        "Smoothed TCP round-trip time of an FL client connection",
        |s| s.rtt_seconds,
    ),
    (
        "fl_server_connection_rtt_variation_seconds",
        "TCP round-trip time variation (RTTVAR) of an FL client connection",
        |s| s.rtt_variation_seconds,
    ),
    (
        "fl_server_connection_cwnd_segments",
        "TCP congestion window of an FL client connection",
        |s| s.cwnd_segments as f64,
    ),
];

const COUNTERS: [Family<u64>; 3] = [
    (
        "fl_server_connection_acked_bytes",
        "Bytes sent on an FL client connection and acknowledged by the client",
        |s| s.acked_bytes,
    ),
    (
        "fl_server_connection_received_bytes",
        "Bytes received on an FL client connection",
        |s| s.received_bytes,
    ),
    (
        "fl_server_connection_retransmitted_segments",
        "TCP segments retransmitted on an FL client connection",
        |s| s.retransmitted_segments,
    ),
];

/// Exports the statistics of every open connection at each scrape.
#[derive(Debug)]
pub struct ConnectionCollector(pub Connections);

impl Collector for ConnectionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        for (name, help, value) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, s) in &stats {
                ConstGauge::new(value(s)).encode(family.encode_family(labels)?)?;
            }
        }
        for (name, help, value) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, s) in &stats {
                ConstCounter::new(value(s)).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn scrape(connections: &Connections) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ConnectionCollector(connections.clone())));
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    /// The value of the sample of `name` whose labels are `labels`.
    fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().unwrap())
    }

    #[tokio::test]
    async fn a_connection_is_described_while_open_and_gone_once_dropped() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let peer = client.local_addr().unwrap().to_string();
        let (accepted, _) = listener.accept().await.unwrap();
        let connections = Connections::default();
        let mut tracked = connections.track(accepted, vec![("job".into(), "j1".into())]);
        assert_eq!(
            tracked.connect_info().remote_addr(),
            client.local_addr().ok()
        );

        tracked.write_all(&[7; 1000]).await.unwrap();
        let mut got = [0; 1000];
        client.read_exact(&mut got).await.unwrap();
        client.write_all(b"ok").await.unwrap();
        let mut ok = [0; 2];
        tracked.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"ok");

        let text = scrape(&connections);
        let labels = format!("job=\"j1\",peer=\"{peer}\"");
        let rtt = sample(&text, "fl_server_connection_rtt_seconds", &labels);
        assert!(rtt.is_some_and(|r| r > 0.0 && r < 1.0), "{text}");
        let cwnd = sample(&text, "fl_server_connection_cwnd_segments", &labels);
        assert!(cwnd.is_some_and(|c| c >= 1.0), "{text}");
        let acked = sample(&text, "fl_server_connection_acked_bytes_total", &labels);
        assert_eq!(acked, Some(1000.0), "{text}");
        let received = sample(&text, "fl_server_connection_received_bytes_total", &labels);
        assert_eq!(received, Some(2.0), "{text}");
        assert!(text.contains("# TYPE fl_server_connection_rtt_seconds gauge\n"));
        assert!(text.contains("# TYPE fl_server_connection_acked_bytes counter\n"));

        drop(tracked);
        let text = scrape(&connections);
        assert!(!text.contains(&peer), "{text}");
        assert!(
            text.contains("# TYPE fl_server_connection_cwnd_segments gauge\n"),
            "the families stay, empty: {text}"
        );
    }
}
