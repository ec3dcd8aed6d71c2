//! A spec-shaped fake of Stripe's API for the connector's tests: a real
//! HTTPS server on 127.0.0.1 (rustls, certificates from [`certs`]) that
//! speaks HTTP/1.1 by hand, one call per connection, so that a test can
//! damage exactly one answer: refuse it (5xx, 429 with `Retry-After`), cut
//! the connection before or after doing the call, or do the call and then
//! answer malformed or truncated JSON, slowly, or too late.
//! What a call does is [`ledger`]'s; every call is recorded and every state
//! change counted ([`ledger::Applied`]), so a test can prove that nothing
//! was captured or refunded twice.

pub mod certs;
pub mod ledger;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use self::certs::{Certs, Presented};
use self::ledger::Ledger;
use self::wire::{Applied, Call};

/// What happens to the next call whose path contains a given string.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this without doing the call.
    Refuse {
        status: u16,
        retry_after: Option<u64>,
        body: String,
    },
    /// Reset the connection after reading the request, without doing it.
    ResetUnprocessed,
    /// Do the call, then damage its answer.
    Processed(Damage),
}

#[derive(Debug, Clone)]
pub enum Damage {
    /// `200` with a body that is not JSON.
    Malformed,
    /// `200` with the first half of the JSON (and a matching length).
    Truncated,
    /// Half the body, then a pause, then the rest.
    SlowBody(Duration),
    /// A pause before any answer.
    Delay(Duration),
    /// Reset the connection instead of answering.
    Reset,
    /// `200` with a 2 MiB body (JSON padded with spaces).
    Oversized,
}

impl Fault {
    /// Stripe's answer to an internal error.
    pub fn server_error(status: u16) -> Fault {
        Fault::Refuse {
            status,
            retry_after: None,
            body: r#"{"error":{"type":"api_error","message":"An unknown error occurred"}}"#.into(),
        }
    }

    /// Stripe's answer to too many requests.
    pub fn rate_limited(retry_after: Option<u64>) -> Fault {
        Fault::Refuse {
            status: 429,
            retry_after,
            body: r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests."}}"#
                .into(),
        }
    }
}

#[derive(Default)]
struct Shared {
    ledger: Mutex<Ledger>,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Vec<(String, Fault)>>,
    /// Accounts (by secret key) whose every call meets the fault, until
    /// restored: an outage of one account.
    outages: Mutex<Vec<(String, Fault)>>,
}

pub struct FakeStripe {
    /// `https://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeStripe {
    /// A fake presenting a valid certificate from the test CA.
    pub async fn start() -> FakeStripe {
        Self::presenting(Presented::Valid).await
    }

    pub async fn presenting(presented: Presented) -> FakeStripe {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let acceptor = TlsAcceptor::from(Certs::get().config(presented));
        let shared = Arc::new(Shared::default());
        let (tx, mut rx) = oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        tokio::spawn(serve(tcp, acceptor.clone(), Arc::clone(&serving)));
                    }
                }
            }
        });
        FakeStripe {
            base,
            shared,
            shutdown: Some(tx),
        }
    }

    /// The CA certificate the connector must trust.
    pub fn ca_pem() -> Vec<u8> {
        Certs::get().ca_pem.clone().into_bytes()
    }

    /// The next call whose path contains `path_part` meets `fault`.
    pub fn inject(&self, path_part: &str, fault: Fault) {
        self.shared.faults.lock().unwrap().push((path_part.to_owned(), fault));
    }

    /// Every call made with secret key `key` meets `fault` (without being
    /// done) until [`FakeStripe::restore`].
    pub fn outage(&self, key: &str, fault: Fault) {
        self.shared
            .outages
            .lock()
            .unwrap()
            .push((format!("Bearer {key}"), fault));
    }

    pub fn restore(&self, key: &str) {
        let bearer = format!("Bearer {key}");
        self.shared.outages.lock().unwrap().retain(|(k, _)| *k != bearer);
    }

    /// The calls made with secret key `key`.
    pub fn calls_with(&self, key: &str) -> Vec<Call> {
        let bearer = format!("Bearer {key}");
        self.calls()
            .into_iter()
            .filter(|c| c.authorization.as_deref() == Some(bearer.as_str()))
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    pub fn calls_to(&self, path_suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.ends_with(path_suffix))
            .collect()
    }

    pub fn applied(&self) -> Applied {
        self.shared.ledger.lock().unwrap().applied
    }

    pub fn refuse_raw_card_data(&self) {
        self.shared.ledger.lock().unwrap().refuse_raw_card_data = true;
    }

    pub fn complete_challenge(&self, intent: &str, success: bool) {
        self.shared.ledger.lock().unwrap().complete_challenge(intent, success);
    }

    pub fn status(&self, intent: &str) -> Option<&'static str> {
        self.shared.ledger.lock().unwrap().status(intent)
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    // A refused certificate ends here: the client never sends its request.
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Some(call) = read_call(&mut tls).await else {
        return;
    };
    let index = {
        let mut calls = shared.calls.lock().unwrap();
        calls.push(call.clone());
        calls.len() - 1
    };
    let outage = {
        let outages = shared.outages.lock().unwrap();
        outages
            .iter()
            .find(|(bearer, _)| call.authorization.as_deref() == Some(bearer.as_str()))
            .map(|(_, fault)| fault.clone())
    };
    let fault = outage.or_else(|| {
        let mut faults = shared.faults.lock().unwrap();
        let index = faults.iter().position(|(part, _)| call.path.contains(part.as_str()));
        index.map(|i| faults.remove(i).1)
    });
    let answer = match &fault {
        Some(Fault::Refuse {
            status,
            retry_after,
            body,
        }) => {
            let extra = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
            write(&mut tls, *status, &extra, body.as_bytes(), None).await;
            return;
        }
        Some(Fault::ResetUnprocessed) => return reset(tls),
        _ => {
            let answer = shared.ledger.lock().unwrap().answer(&call);
            if let Some(recorded) = shared.calls.lock().unwrap().get_mut(index) {
                recorded.replayed = answer.replayed;
                recorded.answer = Some((answer.status, answer.body.clone()));
            }
            answer
        }
    };
    let mut extra = format!(
        "Request-Id: req_fake\r\nStripe-Version: {}\r\n",
        call.stripe_version.as_deref().unwrap_or("none")
    );
    if let Some(key) = &call.idempotency_key {
        extra.push_str(&format!("Idempotency-Key: {key}\r\n"));
    }
    if answer.replayed {
        extra.push_str("Idempotent-Replayed: true\r\n");
    }
    let body = answer.body.as_bytes();
    match fault {
        Some(Fault::Processed(Damage::Malformed)) => {
            write(&mut tls, 200, &extra, b"<html>502 Bad Gateway</html>", None).await
        }
        Some(Fault::Processed(Damage::Truncated)) => {
            write(&mut tls, 200, &extra, body.get(..body.len() / 2).unwrap(), None).await
        }
        Some(Fault::Processed(Damage::SlowBody(pause))) => {
            write(&mut tls, answer.status, &extra, body, Some(pause)).await
        }
        Some(Fault::Processed(Damage::Delay(pause))) => {
            tokio::time::sleep(pause).await;
            write(&mut tls, answer.status, &extra, body, None).await
        }
        Some(Fault::Processed(Damage::Reset)) => reset(tls),
        Some(Fault::Processed(Damage::Oversized)) => {
            let mut padded = body.to_vec();
            padded.resize(2 * 1024 * 1024, b' ');
            write(&mut tls, 200, &extra, &padded, None).await
        }
        _ => write(&mut tls, answer.status, &extra, body, None).await,
    }
}

/// Closes with a TCP RST (zero linger), not a clean shutdown.
fn reset(tls: TlsStream<TcpStream>) {
    let (tcp, _) = tls.into_inner();
    tcp.set_zero_linger().unwrap();
    drop(tcp);
}

async fn write(tls: &mut TlsStream<TcpStream>, status: u16, extra: &str, body: &[u8], pause: Option<Duration>) {
    let head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = tls.write_all(head.as_bytes()).await;
    match pause {
        Some(pause) => {
            let (first, rest) = body.split_at(body.len() / 2);
            let _ = tls.write_all(first).await;
            let _ = tls.flush().await;
            tokio::time::sleep(pause).await;
            let _ = tls.write_all(rest).await;
        }
        None => {
            let _ = tls.write_all(body).await;
        }
    }
    let _ = tls.shutdown().await;
}

/// Reads one HTTP/1.1 request: head, then `Content-Length` bytes of body.
pub async fn read_call<S: tokio::io::AsyncRead + Unpin>(tls: &mut S) -> Option<Call> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    };
    let head = String::from_utf8(buf.get(..head_end)?.to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target) = (request_line.next()?.to_owned(), request_line.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let length: usize = header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = buf.get(head_end + 4..)?.to_vec();
    while body.len() < length {
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(chunk.get(..n)?);
    }
    Some(Call {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
        content_type: header("content-type"),
        form: form_urlencoded::parse(&body).into_owned().collect(),
        body,
        headers,
        replayed: false,
        answer: None,
    })
}
