//! HTTP for the end-to-end checks, through reqwest (rustls): requests go to
//! a pinned address while the URL, Host header and SNI carry the site's
//! name, and an extra CA (a lab's ACME CA) can be trusted beside the
//! system roots. Never through a proxy, never following redirects.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

/// Bodies larger than this are cut: checks look at small pages.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// A client that sends every name in `names` to `addr`.
pub struct Client {
    inner: reqwest::Client,
    addr: SocketAddr,
    scheme: &'static str,
}

impl Client {
    /// `https`: speak TLS, verifying the chain (system roots plus `ca_pem`)
    /// and the name.
    pub fn new(
        addr: SocketAddr,
        names: &[&str],
        https: bool,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, String> {
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            // Fails only when a provider is installed already: fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent("foobar-check");
        for name in names {
            b = b.resolve(name, addr);
        }
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the extra CA is not a PEM certificate: {e}"))?;
            b = b.tls_certs_merge(certs);
        }
        Ok(Self {
            inner: b.build().map_err(|e| format!("cannot set up HTTP: {e}"))?,
            addr,
            scheme: if https { "https" } else { "http" },
        })
    }

    /// GET `path` on `host` (sent to the pinned address).
    pub async fn get(&self, host: &str, path: &str) -> Result<Response, String> {
        let url = format!("{}://{host}:{}{path}", self.scheme, self.addr.port());
        let mut resp = self.inner.get(&url).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer from {} in time", self.addr)
            } else {
                format!("cannot get {url} from {}: {}", self.addr, error_chain(&e))
            }
        })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading from {}: {}", self.addr, error_chain(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_BODY {
                body.truncate(MAX_BODY);
                break;
            }
        }
        // Decoded once, whole: a chunk boundary inside a multi-byte
        // character is no boundary here.
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one raw HTTP answer on loopback; returns its address.
    async fn serve_once(answer: Vec<u8>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(&answer).await.unwrap();
            s.shutdown().await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn a_chunk_boundary_inside_a_character_is_no_panic() {
        // "é" is two bytes, split across two chunks.
        let mut answer =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\xc3\r\n".to_vec();
        answer.extend_from_slice(b"2\r\n\xa9!\r\n0\r\n\r\n");
        let addr = serve_once(answer).await;
        let client = Client::new(
            addr,
            &["www.example.test"],
            false,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let r = client.get("www.example.test", "/").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "abé!"));
    }

    #[tokio::test]
    async fn the_site_name_goes_to_the_pinned_address() {
        let addr = serve_once(b"HTTP/1.1 301 Moved\r\nLocation: http://www.example.test/\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        let client =
            Client::new(addr, &["example.test"], false, None, Duration::from_secs(5)).unwrap();
        let r = client.get("example.test", "/").await.unwrap();
        assert_eq!(r.status, 301, "redirects are not followed");
    }
}
