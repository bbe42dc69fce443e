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
    tokio::spawn(httpd::serve(
        listener,
        app,
        limits,
        httpd::Security::default(),
        std::future::pending(),
    ));
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

/// A server whose `/echo` needs the one token written to a fresh file.
async fn guarded_server(token: &str) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accepted.tokens");
    std::fs::write(
        &file,
        format!("# accepted\n\nother-token-0123456789\n{token}\n"),
    )
    .unwrap();
    let tokens = httpd::auth::Tokens::read(&file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }));
    let security = httpd::Security::tokens(tokens);
    tokio::spawn(httpd::serve(
        listener,
        app,
        httpd::Limits::default(),
        security,
        std::future::pending(),
    ));
    (addr, dir)
}

async fn post_echo(addr: SocketAddr, authorization: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let header = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\n{header}Content-Length: 5\r\nConnection: close\r\n\r\nhello"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut s).await
}

#[tokio::test]
async fn a_guarded_api_needs_an_accepted_bearer_token_but_health_is_open() {
    let token = httpd::auth::generate();
    assert_eq!(token.len(), 64);
    let (addr, _dir) = guarded_server(&token).await;
    let missing = post_echo(addr, None).await;
    assert!(missing.starts_with("HTTP/1.1 401"), "{missing}");
    assert!(
        missing.to_lowercase().contains("www-authenticate: bearer"),
        "{missing}"
    );
    assert!(missing.contains("needs a bearer token"), "{missing}");
    let basic = post_echo(addr, Some("Basic dXNlcjpwYXNz")).await;
    assert!(basic.starts_with("HTTP/1.1 401"), "{basic}");
    let wrong = post_echo(addr, Some(&format!("Bearer {}", httpd::auth::generate()))).await;
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    let prefix = post_echo(addr, Some(&format!("Bearer {}", &token[..40]))).await;
    assert!(
        prefix.starts_with("HTTP/1.1 403"),
        "a token's prefix is not the token: {prefix}"
    );
    let right = post_echo(addr, Some(&format!("Bearer {token}"))).await;
    assert!(
        right.starts_with("HTTP/1.1 200") && right.ends_with("hello"),
        "{right}"
    );
    let other = post_echo(addr, Some("Bearer other-token-0123456789")).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "every listed token is accepted: {other}"
    );
    let health = get_healthz(addr).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    for answer in [missing, wrong] {
        assert!(!answer.contains(&token), "a refusal never shows the token");
    }
}

#[test]
fn token_files_that_cannot_be_used_name_the_line_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t");
    std::fs::write(&file, "# only a comment\n\n").unwrap();
    let e = httpd::auth::Tokens::read(&file).unwrap_err().to_string();
    assert!(e.contains("holds no token"), "{e}");
    std::fs::write(&file, "long-enough-token-0123\nshort\n").unwrap();
    let e = httpd::auth::Tokens::read(&file).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("16 to 256"), "{e}");
    std::fs::write(&file, "has a space in it, so no\n").unwrap();
    assert!(httpd::auth::Tokens::read(&file).is_err());
    let e = httpd::auth::Tokens::read(&dir.path().join("none"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read the token file"), "{e}");
    let token = httpd::auth::generate();
    httpd::auth::write_token_file(&file, &token).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a token file is its owner's alone");
    assert_eq!(httpd::auth::read_token(&file).unwrap(), token);
    let tokens = httpd::auth::Tokens::read(&file).unwrap();
    assert!(!format!("{tokens:?}").contains(&token), "Debug is redacted");
}

#[tokio::test]
async fn an_https_server_answers_clients_that_trust_its_ca_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [("mo.1".to_owned(), vec!["127.0.0.1".parse().unwrap()])];
    httpd::certs::init(dir.path(), &hosts, 1).unwrap();
    let d = dir.path();
    let tls = httpd::tls::server_config(&d.join("mo.1.pem"), &d.join("mo.1.key")).unwrap();
    let security = httpd::Security {
        tls: Some(tls),
        ..httpd::Security::default()
    };
    assert_eq!(security.scheme(), "https");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(httpd::serve(
        listener,
        app,
        httpd::Limits::default(),
        security,
        std::future::pending(),
    ));
    let roots = httpd::tls::Roots::read(&d.join("ca.pem")).unwrap();
    let trusting = roots
        .client(reqwest::Client::builder())
        .unwrap()
        .build()
        .unwrap();
    let ok = trusting
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "ok");
    // Another CA's client, and a plain-HTTP client, get nothing.
    let other = tempfile::tempdir().unwrap();
    httpd::certs::init(other.path(), &hosts, 1).unwrap();
    let stranger = httpd::tls::Roots::read(&other.path().join("ca.pem")).unwrap();
    let wrong = stranger
        .client(reqwest::Client::builder())
        .unwrap()
        .build()
        .unwrap();
    assert!(
        wrong
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    let plain = get_healthz(addr).await;
    assert!(!plain.contains("200 OK"), "{plain}");
    // The server still answers after the failed handshakes.
    assert!(
        trusting
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .is_ok()
    );
    let e = httpd::tls::server_config(&d.join("mo.1.key"), &d.join("mo.1.key")).unwrap_err();
    assert!(e.to_string().contains("holds no certificate"), "{e}");
}
