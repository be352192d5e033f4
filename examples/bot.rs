//! A bot calling an Access-protected app with a service token, the way Cloudflare's docs
//! describe: the first request carries `CF-Access-Client-Id` / `CF-Access-Client-Secret`; the
//! answer sets the `CF_Authorization` cookie, which every later request rides instead of
//! re-sending the secret. Works unchanged against the real Cloudflare edge or `issuer_app`.
//!
//! Run with (against `cargo run --example issuer_app --features issue`):
//!
//! ```sh
//! CF_ACCESS_CLIENT_ID=<client id> CF_ACCESS_CLIENT_SECRET=<secret> \
//!     cargo run --example bot --features issue -- http://127.0.0.1:3000/ 5
//! ```

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;

/// What the bot saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Status of every request, in order.
    pub statuses: Vec<StatusCode>,
    /// How many responses set a cookie (1 when the bot rode its cookie after the exchange).
    pub exchanges: usize,
}

/// A client that keeps cookies, like a browser.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().cookie_store(true).build()
}

/// Sends `requests` GETs to `url`: the credentials go with the first request only (and again
/// only if the app answers 401, e.g. after the cookie expired).
pub async fn run(
    client: &reqwest::Client,
    url: &str,
    client_id: &str,
    secret: &str,
    requests: usize,
) -> reqwest::Result<Report> {
    let mut report = Report::default();
    let mut send_credentials = true;
    for _ in 0..requests {
        let mut request = client.get(url);
        if send_credentials {
            request = request
                .header("CF-Access-Client-Id", client_id)
                .header("CF-Access-Client-Secret", secret);
        }
        let response = request.send().await?;
        if response.headers().contains_key(SET_COOKIE) {
            report.exchanges += 1;
        }
        let status = response.status();
        send_credentials = status == StatusCode::UNAUTHORIZED;
        report.statuses.push(status);
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3000/".to_owned());
    let requests = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let client_id = std::env::var("CF_ACCESS_CLIENT_ID")?;
    let secret = std::env::var("CF_ACCESS_CLIENT_SECRET")?;
    let report = run(&client()?, &url, &client_id, &secret, requests).await?;
    println!(
        "{} requests, statuses {:?}, {} exchange(s)",
        report.statuses.len(),
        report.statuses,
        report.exchanges
    );
    Ok(())
}
