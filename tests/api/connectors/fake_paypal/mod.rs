//! A spec-shaped fake of PayPal's REST API for the connector's tests: a real
//! HTTPS server on 127.0.0.1 with the fake Stripe's test certificates
//! ([`super::fake_stripe::certs`]), speaking HTTP/1.1 by hand, one call per
//! connection, so that a test can damage exactly one answer with the same
//! faults ([`Fault`], [`Damage`]). What a call does is [`ledger`]'s; every
//! call is recorded and every state change counted ([`ledger::Applied`]), so
//! a test can prove that nothing was captured or refunded twice and count the
//! token calls.

pub mod ledger;
pub mod signing;

use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use self::ledger::{header, Applied, Ledger};
use super::fake_stripe::certs::{Certs, Presented};
use super::fake_stripe::read_call;
use super::fake_stripe::wire::Call;
pub use super::fake_stripe::{Damage, Fault};

/// PayPal's answer to an internal error.
pub fn server_error(status: u16) -> Fault {
    Fault::Refuse {
        status,
        retry_after: None,
        body: r#"{"name":"INTERNAL_SERVER_ERROR","message":"An internal server error occurred.","debug_id":"f00d"}"#
            .into(),
    }
}

/// PayPal's answer to too many requests.
pub fn rate_limited(retry_after: Option<u64>) -> Fault {
    Fault::Refuse {
        status: 429,
        retry_after,
        body: r#"{"name":"RATE_LIMIT_REACHED","message":"Too many requests. Blocked due to rate limiting.","debug_id":"f00d"}"#
            .into(),
    }
}

#[derive(Default)]
struct Shared {
    ledger: Mutex<Ledger>,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Vec<(String, Fault)>>,
}

pub struct FakePaypal {
    /// `https://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakePaypal {
    pub async fn start() -> FakePaypal {
        Self::presenting(Presented::Valid).await
    }

    pub async fn presenting(presented: Presented) -> FakePaypal {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let acceptor = TlsAcceptor::from(Certs::get().config(presented));
        let shared = Arc::new(Shared::default());
        shared.ledger.lock().unwrap().token_lifetime = 32_400;
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
        FakePaypal {
            base,
            shared,
            shutdown: Some(tx),
        }
    }

    /// The next call whose path contains `path_part` meets `fault`.
    pub fn inject(&self, path_part: &str, fault: Fault) {
        self.shared.faults.lock().unwrap().push((path_part.to_owned(), fault));
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

    pub fn status(&self, id: &str) -> Option<String> {
        self.shared.ledger.lock().unwrap().status(id)
    }

    /// Tokens issued from now on live `seconds`.
    pub fn token_lifetime(&self, seconds: u64) {
        self.shared.ledger.lock().unwrap().token_lifetime = seconds;
    }

    pub fn revoke_tokens(&self) {
        self.shared.ledger.lock().unwrap().revoke_tokens();
    }

    pub fn disable_cards(&self) {
        self.shared.ledger.lock().unwrap().cards_disabled = true;
    }
}

impl Drop for FakePaypal {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `PayPal-Request-Id` of a call.
pub fn request_id(call: &Call) -> Option<String> {
    header(call, "paypal-request-id")
}

/// The JSON body of a call.
pub fn json_of(call: &Call) -> serde_json::Value {
    serde_json::from_slice(&call.body).unwrap_or(serde_json::Value::Null)
}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
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
    let fault = {
        let mut faults = shared.faults.lock().unwrap();
        let at = faults.iter().position(|(part, _)| call.path.contains(part.as_str()));
        at.map(|i| faults.remove(i).1)
    };
    if call.path == signing::CERT_PATH {
        shared.ledger.lock().unwrap().applied.cert_fetches += 1;
        let pem = signing::Signer::get().cert_pem.clone();
        return write(&mut tls, 200, "", pem.as_bytes(), None).await;
    }
    let answer = match &fault {
        Some(Fault::Refuse {
            status,
            retry_after,
            body,
        }) => {
            let extra = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
            return write(&mut tls, *status, &extra, body.as_bytes(), None).await;
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
    let extra = "Paypal-Debug-Id: f00dfake\r\n";
    let body = answer.body.as_bytes();
    match fault {
        Some(Fault::Processed(Damage::Malformed)) => write(&mut tls, 200, extra, b"<html>502</html>", None).await,
        Some(Fault::Processed(Damage::Truncated)) => {
            write(&mut tls, 200, extra, body.get(..body.len() / 2).unwrap(), None).await
        }
        Some(Fault::Processed(Damage::SlowBody(pause))) => {
            write(&mut tls, answer.status, extra, body, Some(pause)).await
        }
        Some(Fault::Processed(Damage::Delay(pause))) => {
            tokio::time::sleep(pause).await;
            write(&mut tls, answer.status, extra, body, None).await
        }
        Some(Fault::Processed(Damage::Reset)) => reset(tls),
        Some(Fault::Processed(Damage::Oversized)) => {
            let mut padded = body.to_vec();
            padded.resize(2 * 1024 * 1024, b' ');
            write(&mut tls, 200, extra, &padded, None).await
        }
        _ => write(&mut tls, answer.status, extra, body, None).await,
    }
}

fn reset(tls: TlsStream<TcpStream>) {
    let (tcp, _) = tls.into_inner();
    tcp.set_zero_linger().unwrap();
    drop(tcp);
}

async fn write(
    tls: &mut TlsStream<TcpStream>,
    status: u16,
    extra: &str,
    body: &[u8],
    pause: Option<std::time::Duration>,
) {
    let head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = tls.write_all(head.as_bytes()).await;
    if let Some(pause) = pause {
        let (first, rest) = body.split_at(body.len() / 2);
        let _ = tls.write_all(first).await;
        let _ = tls.flush().await;
        tokio::time::sleep(pause).await;
        let _ = tls.write_all(rest).await;
    } else {
        let _ = tls.write_all(body).await;
    }
    let _ = tls.shutdown().await;
}
