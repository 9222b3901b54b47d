//! A misbehaving OpenAI-compatible server on 127.0.0.1 for the reliability tests.
//!
//! It answers `POST /v1/chat/completions` with the scripted GEPA problem of `tests/common` (the task
//! model says "G-ok" when the system prompt holds "rule G"; the reflection model adds the rules the
//! feedback names), and injects faults from a seeded schedule: whether attempt `n` of a request
//! body fails, and how, is a pure function of (seed, body, n). So a run against it is as
//! deterministic as the run itself, however the calls interleave.
//!
//! Minimal HTTP/1.1 on a plain `TcpListener`: one request per connection (`Connection: close`), so
//! each fault is exactly one attempt.
#![allow(dead_code)]

use gepa_tui::llm::{ChatRequest, Message};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One way for an attempt to go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 429 without Retry-After (the client backs off on its own).
    RateLimited,
    /// 429 with `Retry-After: 1` (the client must wait at least that long).
    RateLimitedRetryAfter,
    /// 500 Internal Server Error.
    ServerError,
    /// 503 Service Unavailable.
    Unavailable,
    /// 200 whose body is a complete HTTP message but only half a JSON document.
    CutJson,
    /// 200 announcing the whole body, sending half of it, then closing the connection.
    DroppedMidBody,
    /// 200 with valid JSON that is not a chat completion.
    WrongShape,
    /// 200 with `"choices": []`.
    EmptyChoices,
    /// Reads the request and never answers (longer than the client's request timeout).
    Hang,
    /// Sends the headers and half the body, then stalls past the client's timeout.
    StalledBody,
    /// Closes the connection without a word.
    DroppedConnection,
    /// The right answer, trickled out in small pieces (not a failure: the client must wait for it).
    SlowStream,
    /// 401 Unauthorized, quoting the key it was sent (as a careless server might).
    Unauthorized,
    /// 429 with OpenAI's `insufficient_quota` body: the account is out of credit.
    InsufficientQuota,
}

impl Fault {
    /// Every transient fault, for a schedule that draws from all of them.
    pub const TRANSIENT: &'static [Fault] = &[
        Fault::RateLimited,
        Fault::RateLimitedRetryAfter,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::CutJson,
        Fault::DroppedMidBody,
        Fault::WrongShape,
        Fault::EmptyChoices,
        Fault::Hang,
        Fault::StalledBody,
        Fault::DroppedConnection,
        Fault::SlowStream,
    ];
}

/// A request that always fails the same way: the model (if given) and a piece of the body.
#[derive(Debug, Clone)]
pub struct FailRule {
    pub model: Option<String>,
    pub body_contains: String,
    pub fault: Fault,
}

/// What the server does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    /// Chance, in percent, that an attempt draws a fault from `faults`.
    pub fault_percent: u64,
    pub faults: Vec<Fault>,
    /// Attempts of one request body beyond this number never draw a fault, so no request can
    /// exhaust a client that retries more often than this.
    pub max_faults_per_request: u32,
    /// Persistent faults: every attempt of a matching request fails this way.
    pub fail_rules: Vec<FailRule>,
    /// Every attempt fails this way (a provider incident, a revoked key), before any other rule.
    pub fail_all: Option<Fault>,
    /// Added before every answer.
    pub latency: Duration,
    /// Answers one request at a time, as a llama-server with one slot: the others wait their
    /// turn (their latency is spent in turn).
    pub one_slot: Option<Arc<tokio::sync::Mutex<()>>>,
    /// How long a `Hang` or `StalledBody` waits before giving up on the client.
    pub hang: Duration,
    /// Error bodies quote the request's Authorization header (to prove the client scrubs it).
    pub echo_key_in_errors: bool,
    /// Replies held until the test lets them go: each answer takes a permit (none are taken once
    /// it is closed). A client killed while replies are held is killed mid-run, however busy the
    /// machine is.
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            seed: 0,
            fault_percent: 0,
            faults: Fault::TRANSIENT.to_vec(),
            max_faults_per_request: u32::MAX,
            fail_rules: Vec::new(),
            fail_all: None,
            latency: Duration::ZERO,
            one_slot: None,
            hang: Duration::from_secs(10),
            echo_key_in_errors: false,
            gate: None,
        }
    }
}

/// One attempt as the server saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// blake3 of the request body: identical requests share it.
    pub body_hash: String,
    pub model: String,
    /// 1-based attempt number of this body.
    pub number: u32,
    pub fault: Option<Fault>,
    pub at: Instant,
    pub authorization: Option<String>,
    /// The raw request (head and body), for secret checks.
    pub raw: String,
}

#[derive(Default)]
struct Book {
    attempts_by_body: HashMap<String, u32>,
    log: Vec<Attempt>,
}

pub struct FaultServer {
    pub addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
    book: Arc<Mutex<Book>>,
    runtime: Option<tokio::runtime::Runtime>,
    /// The task accepting connections; None while the server is down.
    acceptor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

async fn accept_loop(listener: TcpListener, p: Arc<Mutex<Plan>>, b: Arc<Mutex<Book>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (p, b) = (p.clone(), b.clone());
        tokio::spawn(async move {
            let _ = serve(stream, p, b).await;
        });
    }
}

impl FaultServer {
    pub fn start(plan: Plan) -> FaultServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-server")
            .enable_all()
            .build()
            .expect("a runtime for the fault server");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let plan = Arc::new(Mutex::new(plan));
        let book = Arc::new(Mutex::new(Book::default()));
        let acceptor = runtime.spawn(accept_loop(listener, plan.clone(), book.clone()));
        FaultServer { addr, plan, book, runtime: Some(runtime), acceptor: Mutex::new(Some(acceptor)) }
    }

    /// Closes the listening socket: new connections are refused, as when a server is stopped or
    /// a laptop loses its network.
    pub fn go_down(&self) {
        if let Some(task) = self.acceptor.lock().unwrap().take() {
            task.abort();
            // The listener is dropped when the aborted task is.
            let _ = self.runtime.as_ref().unwrap().block_on(task);
        }
    }

    /// Listens again on the same address.
    pub fn come_up(&self) {
        let mut acceptor = self.acceptor.lock().unwrap();
        if acceptor.is_none() {
            let rt = self.runtime.as_ref().unwrap();
            let listener = rt.block_on(TcpListener::bind(self.addr)).expect("bind the same address again");
            *acceptor = Some(rt.spawn(accept_loop(listener, self.plan.clone(), self.book.clone())));
        }
    }

    /// The `base_url` to put in gepa.toml.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Changes the plan for the requests still to come.
    pub fn set_plan(&self, f: impl FnOnce(&mut Plan)) {
        f(&mut self.plan.lock().unwrap());
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.book.lock().unwrap().log.clone()
    }

    /// How many times each fault was injected.
    pub fn fault_counts(&self) -> std::collections::BTreeMap<Fault, usize> {
        let mut out = std::collections::BTreeMap::new();
        for a in &self.book.lock().unwrap().log {
            if let Some(f) = a.fault {
                *out.entry(f).or_insert(0) += 1;
            }
        }
        out
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A parsed request: its head (lower-cased header names) and body.
struct Request {
    head: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(Request { head, headers, body })
}

/// A u64 from blake3 of the parts: the fault schedule's only source of randomness.
fn draw(parts: &[&[u8]]) -> u64 {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap())
}

async fn serve(mut stream: TcpStream, plan: Arc<Mutex<Plan>>, book: Arc<Mutex<Book>>) -> std::io::Result<()> {
    let Some(req) = read_request(&mut stream).await else { return Ok(()) };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("").to_string();
    let body_text = String::from_utf8_lossy(&req.body).into_owned();
    let body_hash = blake3::hash(&req.body).to_hex().to_string();
    let authorization = req.headers.get("authorization").cloned();
    let plan = plan.lock().unwrap().clone();

    let (number, fault) = {
        let mut book = book.lock().unwrap();
        let n = book.attempts_by_body.entry(body_hash.clone()).or_insert(0);
        *n += 1;
        let number = *n;
        let persistent = plan
            .fail_rules
            .iter()
            .find(|r| r.model.as_deref().is_none_or(|m| m == model) && body_text.contains(&r.body_contains))
            .map(|r| r.fault);
        let drawn = || {
            if number > plan.max_faults_per_request || plan.faults.is_empty() {
                return None;
            }
            let r = draw(&[&plan.seed.to_le_bytes(), body_hash.as_bytes(), &number.to_le_bytes()]);
            (r % 100 < plan.fault_percent).then(|| plan.faults[((r / 100) % plan.faults.len() as u64) as usize])
        };
        let fault = plan.fail_all.or(persistent).or_else(drawn);
        book.log.push(Attempt {
            body_hash,
            model: model.clone(),
            number,
            fault,
            at: Instant::now(),
            authorization: authorization.clone(),
            raw: format!("{}{}", req.head, body_text),
        });
        (number, fault)
    };
    let _ = number;
    if let Some(gate) = &plan.gate {
        if let Ok(permit) = gate.acquire().await {
            permit.forget();
        }
    }
    if !plan.latency.is_zero() {
        let _turn = match &plan.one_slot {
            Some(slot) => Some(slot.lock().await),
            None => None,
        };
        tokio::time::sleep(plan.latency).await;
    }
    let echoed = if plan.echo_key_in_errors { authorization.clone().unwrap_or_default() } else { String::new() };
    let good = completion(&model, &body);
    match fault {
        None => respond(&mut stream, 200, &[], good.as_bytes()).await,
        Some(Fault::RateLimited) => {
            let b = json!({"error": {"message": format!("rate limited {echoed}"), "type": "rate_limit"}});
            respond(&mut stream, 429, &[], b.to_string().as_bytes()).await
        }
        Some(Fault::RateLimitedRetryAfter) => {
            let b = json!({"error": {"message": "slow down", "type": "rate_limit"}});
            respond(&mut stream, 429, &[("Retry-After", "1")], b.to_string().as_bytes()).await
        }
        Some(Fault::ServerError) => {
            let b = format!("<html>Internal Server Error; request carried {echoed}</html>");
            respond(&mut stream, 500, &[], b.as_bytes()).await
        }
        Some(Fault::Unavailable) => {
            let b = json!({"error": {"message": format!("overloaded, try later ({echoed})")}});
            respond(&mut stream, 503, &[], b.to_string().as_bytes()).await
        }
        Some(Fault::CutJson) => respond(&mut stream, 200, &[], &good.as_bytes()[..good.len() / 2]).await,
        Some(Fault::DroppedMidBody) => {
            let head = head(200, &[], good.len());
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&good.as_bytes()[..good.len() / 2]).await?;
            stream.flush().await
        }
        Some(Fault::WrongShape) => {
            let b = json!({"object": "error", "message": "The model is overloaded", "code": 503});
            respond(&mut stream, 200, &[], b.to_string().as_bytes()).await
        }
        Some(Fault::EmptyChoices) => {
            let b = json!({"id": "x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 1}});
            respond(&mut stream, 200, &[], b.to_string().as_bytes()).await
        }
        Some(Fault::Hang) => {
            // Wait out the client (it times out, drops the connection and retries elsewhere).
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(plan.hang, stream.read(&mut sink)).await;
            Ok(())
        }
        Some(Fault::StalledBody) => {
            let head = head(200, &[], good.len());
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&good.as_bytes()[..good.len() / 2]).await?;
            stream.flush().await?;
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(plan.hang, stream.read(&mut sink)).await;
            Ok(())
        }
        Some(Fault::DroppedConnection) => Ok(()),
        Some(Fault::SlowStream) => {
            let head = head(200, &[], good.len());
            stream.write_all(head.as_bytes()).await?;
            stream.flush().await?;
            let bytes = good.as_bytes();
            let piece = bytes.len().div_ceil(8).max(1);
            for part in bytes.chunks(piece) {
                tokio::time::sleep(Duration::from_millis(30)).await;
                stream.write_all(part).await?;
                stream.flush().await?;
            }
            Ok(())
        }
        Some(Fault::InsufficientQuota) => {
            let b = json!({"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
            respond(&mut stream, 429, &[], b.to_string().as_bytes()).await
        }
        Some(Fault::Unauthorized) => {
            let b = json!({"error": {"message": format!("Incorrect API key provided: {echoed}"), "type": "invalid_request_error"}});
            respond(&mut stream, 401, &[], b.to_string().as_bytes()).await
        }
    }
}

fn head(status: u16, extra: &[(&str, &str)], len: usize) -> String {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut h = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n"
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

async fn respond(stream: &mut TcpStream, status: u16, extra: &[(&str, &str)], body: &[u8]) -> std::io::Result<()> {
    stream.write_all(head(status, extra, body.len()).as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// The scripted answer as a chat completion: the reflection model for `*reflection*` models, else
/// the task model. Asked at a temperature above 0, the reflection model samples as a real one
/// does: its new instruction ends with a random `draft N`, different at every call.
pub fn completion(model: &str, body: &Value) -> String {
    let messages: Vec<Message> = serde_json::from_value(body["messages"].clone()).unwrap_or_default();
    let req = ChatRequest::new(messages);
    let text = if model.contains("reflection") {
        let mut text = crate::common::reflection_reply(&req);
        if body["temperature"].as_f64().is_some_and(|t| t > 0.0) {
            let end = text.rfind("\n```").unwrap_or(text.len());
            text.insert_str(end, &format!(" draft {}", rand::random::<u32>()));
        }
        text
    } else {
        crate::common::task_reply(&req)
    };
    let words = |s: &str| s.split_whitespace().count() as u64;
    let prompt_tokens: u64 = req.messages.iter().map(|m| words(&m.content)).sum();
    json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": words(&text)},
    })
    .to_string()
}
