//! The limits on real sockets: idle, half-sent and slow connections are
//! closed at their timeouts, a connection over the cap gets a 503 at once,
//! and the server answers again as soon as the idle ones are gone.

use axum::Router;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(800);

async fn server(max_connections: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }));
    let limits = httpd::Limits {
        max_connections,
        header_timeout: SHORT,
        body_timeout: SHORT,
        queue_wait: Duration::from_millis(100),
        shutdown_grace: SHORT,
    };
    tokio::spawn(httpd::serve(listener, app, limits, std::future::pending()));
    addr
}

/// Reads until the server closes the connection (or 5 s pass).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn get_healthz(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut s).await
}

#[tokio::test]
async fn idle_connections_over_the_cap_are_refused_then_closed_at_the_timeout() {
    let addr = server(4).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = get_healthz(addr).await;
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    assert!(busy.contains("too many open connections"), "{busy}");
    let start = Instant::now();
    for s in &mut idle {
        assert_eq!(read_to_close(s).await, "", "closed without a word");
    }
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ok = get_healthz(addr).await;
    assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok"), "{ok}");
}

#[tokio::test]
async fn half_sent_headers_and_idle_keep_alive_are_closed() {
    let addr = server(8).await;
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut half).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let answer = read_to_close(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = start.elapsed();
    assert!(
        waited >= SHORT / 2 && waited < Duration::from_secs(3),
        "the idle keep-alive connection closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_body_sent_too_slowly_ends_the_request() {
    let addr = server(8).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.ends_with("data was not received within the designated timeout"),
        "{answer}"
    );
    let mut fine = TcpStream::connect(addr).await.unwrap();
    fine.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await
    .unwrap();
    assert!(read_to_close(&mut fine).await.ends_with("hello"));
}
