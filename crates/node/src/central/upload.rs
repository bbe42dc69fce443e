//! A client of a centralised plan: it sends its data part to the central
//! trainer, retrying while the trainer cannot be reached yet.

use super::inbox::Receipt;
use super::trainer::PARTS_PATH;
use std::time::Duration;

/// First wait between attempts to reach the trainer; doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long one attempt may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `part` (an encoded [`ml::data_part`]) to the trainer at `server`
/// (HOST:PORT), making up to `attempts` attempts to connect, waiting at
/// most `max_backoff` between two; returns the trainer's receipt.
pub async fn send_part(
    server: &str,
    part: Vec<u8>,
    attempts: u32,
    max_backoff: Duration,
) -> Result<Receipt, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let url = format!("http://{server}{PARTS_PATH}");
    let part = axum::body::Bytes::from(part);
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let sent = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(part.clone())
            .send()
            .await;
        match sent {
            Ok(reply) if reply.status().is_success() => {
                return reply
                    .json::<Receipt>()
                    .await
                    .map_err(|e| format!("trainer at {server} answered oddly: {e}"));
            }
            Ok(reply) => {
                let status = reply.status();
                let why = reply.text().await.unwrap_or_default();
                return Err(format!(
                    "trainer at {server} refused the data part: {status}: {why}"
                ));
            }
            Err(e) if e.is_connect() && attempt < attempts => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
                attempt += 1;
            }
            Err(e) => {
                return Err(format!(
                    "sending the data part to the trainer at {server} (attempt {attempt} of {attempts}): {e}"
                ));
            }
        }
    }
}
