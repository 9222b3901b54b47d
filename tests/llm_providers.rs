//! The HTTP providers against a fake server (wiremock): retries on 429/5xx/cut bodies/hangs, fatal
//! auth errors that never leak the key, the Anthropic wire format, the response cache and offline
//! replay. Retry delays are tiny; nothing here asserts on timing.

use gepa_tui::llm::{ChatRequest, LlmError, Message, Models, ModelsOptions};
use gepa_tui::project::config::ModelConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const OPENAI_KEY_ENV: &str = "GEPA_TEST_LLM_OPENAI_KEY";
const ANTHROPIC_KEY_ENV: &str = "GEPA_TEST_LLM_ANTHROPIC_KEY";
const UNSET_KEY_ENV: &str = "GEPA_TEST_LLM_UNSET_KEY";
const FAKE_KEY: &str = "sk-fake-0123456789abcdef";

/// Sets the fake keys once, before any test reads the environment.
fn init_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var(OPENAI_KEY_ENV, FAKE_KEY);
        std::env::set_var(ANTHROPIC_KEY_ENV, FAKE_KEY);
        std::env::remove_var(UNSET_KEY_ENV);
    });
}

fn openai_config(server: &MockServer, extra: &str) -> ModelConfig {
    toml::from_str(&format!(
        "provider = \"openai\"\nmodel = \"gpt-test\"\nbase_url = \"{}/v1\"\n\
         api_key_env = \"{OPENAI_KEY_ENV}\"\nmax_retries = 3\n{extra}",
        server.uri()
    ))
    .unwrap()
}

fn options(cache_dir: Option<&Path>) -> ModelsOptions {
    ModelsOptions {
        cache_dir: cache_dir.map(Path::to_path_buf),
        retry_base_delay: Some(Duration::from_millis(1)),
        ..Default::default()
    }
}

fn task_models(config: ModelConfig, opts: ModelsOptions) -> Models {
    init_env();
    Models::from_config(&BTreeMap::from([("task".to_string(), config)]), opts).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![Message::system("Be brief."), Message::user(text)])
}

fn completion(text: &str, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    })
}

fn ok_completion(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(completion(text, "stop"))
}

/// Mounts `first` for the first `times` requests, then a good reply.
async fn fail_then_succeed(server: &MockServer, first: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ok_completion("Paris"))
        .with_priority(2)
        .mount(server)
        .await;
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap() {
        for entry in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files
}

#[tokio::test]
async fn retries_after_429_with_retry_after() {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(429)
        .insert_header("retry-after", "1")
        .set_body_string(r#"{"error":{"message":"Rate limit reached"}}"#);
    fail_then_succeed(&server, limited, 1).await;
    let models = task_models(openai_config(&server, ""), options(None));
    let model = models.get("task").unwrap();

    let started = std::time::Instant::now();
    let reply = model.chat(&ask("Capital of France?")).await.unwrap();

    // It waited the second the provider asked for (a lower bound: a busy machine only adds).
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "retried after {:?}", started.elapsed());
    assert_eq!(reply.text, "Paris");
    assert!(!reply.cached);
    assert_eq!(requests(&server).await.len(), 2);
    let stats = model.stats();
    assert_eq!((stats.calls, stats.retries, stats.failures), (2, 1, 0));
}

#[tokio::test]
async fn retries_500_twice_then_succeeds() {
    let server = MockServer::start().await;
    fail_then_succeed(&server, ResponseTemplate::new(500).set_body_string("upstream exploded"), 2).await;
    let models = task_models(openai_config(&server, ""), options(None));

    let reply = models.get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn retries_a_body_cut_in_half() {
    let server = MockServer::start().await;
    let whole = completion("Paris", "stop").to_string();
    let half = ResponseTemplate::new(200).set_body_raw(whole[..whole.len() / 2].to_string(), "application/json");
    fail_then_succeed(&server, half, 1).await;
    let models = task_models(openai_config(&server, ""), options(None));

    let reply = models.get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn retries_a_server_that_never_answers() {
    let server = MockServer::start().await;
    let hang = ok_completion("too late").set_delay(Duration::from_secs(60));
    fail_then_succeed(&server, hang, 1).await;
    let config = openai_config(&server, "request_timeout_secs = 0.5");
    let models = task_models(config, options(None));

    let reply = models.get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn retries_a_connection_dropped_mid_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // wiremock always sends whole bodies, so a raw socket promises 400 bytes and hangs up early.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for attempt in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await.unwrap();
            let body = completion("Paris", "stop").to_string();
            let reply = if attempt == 0 {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                    body.len() + 200,
                    &body[..body.len() / 2]
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            socket.write_all(reply.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    let config: ModelConfig = toml::from_str(&format!(
        "provider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://{addr}/v1\"\napi_key_env = \"{UNSET_KEY_ENV}\""
    ))
    .unwrap();
    let models = task_models(config, options(None));

    let reply = models.get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    assert_eq!(models.get("task").unwrap().stats().calls, 2);
    server.await.unwrap();
}

#[tokio::test]
async fn unauthorized_fails_at_once_naming_the_variable_not_the_key() {
    let server = MockServer::start().await;
    // A careless server that echoes the key back must still not get it into our error.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {FAKE_KEY}").as_str()))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": format!("Incorrect API key provided: {FAKE_KEY}")}})),
        )
        .mount(&server)
        .await;
    let models = task_models(openai_config(&server, ""), options(None));

    let err = models.get("task").unwrap().chat(&ask("q")).await.unwrap_err();

    assert!(matches!(&err, LlmError::Auth { status: 401, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(OPENAI_KEY_ENV), "{text}");
    assert!(text.contains("task") && text.contains("gpt-test"), "{text}");
    assert!(!text.contains(FAKE_KEY), "{text}");
    assert!(!format!("{err:?}").contains(FAKE_KEY));
    assert_eq!(requests(&server).await.len(), 1);
    assert_eq!(models.get("task").unwrap().stats().failures, 1);
}

#[tokio::test]
async fn no_key_means_no_authorization_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_string("forbidden"))
        .mount(&server)
        .await;
    let config = openai_config(&server, "");
    let config = ModelConfig { api_key_env: Some(UNSET_KEY_ENV.to_string()), ..config };
    let models = task_models(config, options(None));

    let err = models.get("task").unwrap().chat(&ask("q")).await.unwrap_err();

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert!(!received[0].headers.contains_key("authorization"));
    let text = err.to_string();
    assert!(text.contains(UNSET_KEY_ENV) && text.contains("not set"), "{text}");
}

#[tokio::test]
async fn other_client_errors_are_fatal_and_quote_the_server() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "Unsupported parameter: 'max_tokens'"},
            "echoed_headers": {"authorization": format!("Bearer {FAKE_KEY}")}
        })))
        .mount(&server)
        .await;
    let models = task_models(openai_config(&server, ""), options(None));

    let err = models.get("task").unwrap().chat(&ask("q")).await.unwrap_err();

    assert!(matches!(err, LlmError::Fatal { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("400") && text.contains("Unsupported parameter"), "{text}");
    assert!(!text.contains(FAKE_KEY), "{text}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&server)
        .await;
    let config = ModelConfig { max_retries: 2, ..openai_config(&server, "") };
    let models = task_models(config, options(None));

    let err = models.get("task").unwrap().chat(&ask("q")).await.unwrap_err();

    assert!(matches!(&err, LlmError::Exhausted { attempts: 3, last, .. } if last.contains("overloaded")), "{err:?}");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn openai_request_carries_model_messages_and_set_parameters_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ok_completion("ok"))
        .mount(&server)
        .await;
    let with_params = openai_config(&server, "temperature = 0.25\nmax_tokens = 64");
    let bare = openai_config(&server, "");
    for config in [with_params, bare] {
        task_models(config, options(None)).get("task").unwrap().chat(&ask("hello")).await.unwrap();
    }

    let received = requests(&server).await;
    let first: Value = received[0].body_json().unwrap();
    assert_eq!(
        first,
        json!({
            "model": "gpt-test",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
            "temperature": 0.25,
            "max_tokens": 64
        })
    );
    let second: Value = received[1].body_json().unwrap();
    assert!(second.get("temperature").is_none() && second.get("max_tokens").is_none());
}

#[tokio::test]
async fn finish_reason_length_marks_the_reply_truncated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("half a prom", "length")))
        .mount(&server)
        .await;
    let models = task_models(openai_config(&server, ""), options(None));

    let reply = models.get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert!(reply.truncated);
    assert_eq!(reply.text, "half a prom");
    assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (11, 2));
}

#[tokio::test]
async fn anthropic_request_and_reply_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", FAKE_KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(json!({
            "model": "claude-test",
            "max_tokens": 1024,
            "system": "Be brief.",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Par"},
                {"type": "text", "text": "is"}
            ],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 9, "output_tokens": 4}
        })))
        .mount(&server)
        .await;
    let config: ModelConfig = toml::from_str(&format!(
        "provider = \"anthropic\"\nmodel = \"claude-test\"\nbase_url = \"{}/v1\"\napi_key_env = \"{ANTHROPIC_KEY_ENV}\"",
        server.uri()
    ))
    .unwrap();
    let models = task_models(config, options(None));

    let reply = models.get("task").unwrap().chat(&ask("Capital of France?")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    assert!(reply.truncated);
    assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (9, 4));
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let body: Value = received[0].body_json().unwrap();
    // The system prompt travels apart from the turns.
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Capital of France?"}]));
    assert!(!received[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn cached_reply_costs_no_request_even_in_a_new_run() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok_completion("Paris")).mount(&server).await;
    let cache = tempfile::tempdir().unwrap();
    let config = openai_config(&server, "temperature = 0.0\nprice_input_per_mtok = 1.0\nprice_output_per_mtok = 2.0");

    let first_run = task_models(config.clone(), options(Some(cache.path())));
    let paid = first_run.get("task").unwrap().chat(&ask("q")).await.unwrap();
    let replayed = first_run.get("task").unwrap().chat(&ask("q")).await.unwrap();
    assert_eq!(requests(&server).await.len(), 1);
    assert!(!paid.cached && replayed.cached);
    assert_eq!(replayed.text, paid.text);
    assert_eq!(replayed.cost_usd, paid.cost_usd);
    let stats = first_run.total_stats();
    assert_eq!((stats.calls, stats.cache_hits), (1, 1));
    assert_eq!(stats.cost_usd, paid.cost_usd);
    assert_eq!(stats.cost_usd_replayed, paid.cost_usd);

    // A second run over the same cache folder replays without touching the network.
    let second_run = task_models(config, options(Some(cache.path())));
    let again = second_run.get("task").unwrap().chat(&ask("q")).await.unwrap();
    assert!(again.cached);
    assert_eq!(requests(&server).await.len(), 1);
    assert_eq!(second_run.total_stats().calls, 0);

    // One small JSON file per entry, in a two-hex-digit folder, and no key inside.
    let files = cache_files(cache.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let shard = file.parent().unwrap().file_name().unwrap().to_string_lossy();
    let stem = file.file_stem().unwrap().to_string_lossy();
    assert!(stem.starts_with(shard.as_ref()) && stem.len() == 64, "{file:?}");
    let stored = std::fs::read_to_string(file).unwrap();
    assert!(!stored.contains(FAKE_KEY));
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap()["text"], "Paris");
}

#[tokio::test]
async fn a_different_request_misses_the_cache() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok_completion("x")).mount(&server).await;
    let cache = tempfile::tempdir().unwrap();
    let models = task_models(openai_config(&server, "temperature = 0.0"), options(Some(cache.path())));
    let model = models.get("task").unwrap();

    model.chat(&ask("one")).await.unwrap();
    model.chat(&ask("two")).await.unwrap();

    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn corrupt_cache_entry_is_a_miss_and_gets_rewritten() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok_completion("Paris")).mount(&server).await;
    let cache = tempfile::tempdir().unwrap();
    let config = openai_config(&server, "temperature = 0.0");
    task_models(config.clone(), options(Some(cache.path()))).get("task").unwrap().chat(&ask("q")).await.unwrap();
    let file = cache_files(cache.path()).remove(0);
    std::fs::write(&file, "{\"text\": \"Par").unwrap();

    let models = task_models(config, options(Some(cache.path())));
    let reply = models.get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    assert!(!reply.cached);
    assert_eq!(requests(&server).await.len(), 2);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["text"], "Paris");
}

#[tokio::test]
async fn offline_miss_is_an_error_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok_completion("Paris")).mount(&server).await;
    let cache = tempfile::tempdir().unwrap();
    let opts = ModelsOptions { offline: true, ..options(Some(cache.path())) };
    let models = task_models(openai_config(&server, ""), opts);

    let err = models.get("task").unwrap().chat(&ask("q")).await.unwrap_err();

    assert!(matches!(err, LlmError::OfflineMiss { .. }), "{err:?}");
    assert!(requests(&server).await.is_empty());
    assert_eq!(models.total_stats().calls, 0);
}

#[tokio::test]
async fn offline_hit_replays_a_recorded_reply() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok_completion("Paris")).mount(&server).await;
    let cache = tempfile::tempdir().unwrap();
    let config = openai_config(&server, "temperature = 0.0");
    task_models(config.clone(), options(Some(cache.path()))).get("task").unwrap().chat(&ask("q")).await.unwrap();

    let offline = ModelsOptions { offline: true, ..options(Some(cache.path())) };
    let reply = task_models(config, offline).get("task").unwrap().chat(&ask("q")).await.unwrap();

    assert!(reply.cached);
    assert_eq!(reply.text, "Paris");
    assert_eq!(requests(&server).await.len(), 1);
}

fn anthropic_reply(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_1", "type": "message", "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1}
    }))
}

/// Anthropic's SDKs and `ANTHROPIC_BASE_URL` write the base without `/v1`; gepa.toml may write it
/// either way, with or without a trailing slash: every form posts to `/v1/messages`.
#[tokio::test]
async fn anthropic_base_url_with_or_without_v1() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/messages")).respond_with(anthropic_reply("ok")).mount(&server).await;
    for base in [server.uri(), format!("{}/", server.uri()), format!("{}/v1", server.uri())] {
        let config: ModelConfig = toml::from_str(&format!(
            "provider = \"anthropic\"\nmodel = \"claude-test\"\nbase_url = \"{base}\"\napi_key_env = \"{ANTHROPIC_KEY_ENV}\""
        ))
        .unwrap();
        let reply = task_models(config, options(None)).get("task").unwrap().chat(&ask("hi")).await;
        assert_eq!(reply.expect(&base).text, "ok");
    }
    assert_eq!(requests(&server).await.len(), 3);
}

/// An OpenAI-compatible base with no path (how Ollama, llama-server and vLLM are often written)
/// gets `/v1`; one that names the whole endpoint is used as it is.
#[tokio::test]
async fn openai_base_url_without_v1_or_with_the_whole_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ok_completion("ok"))
        .mount(&server)
        .await;
    for base in [server.uri(), format!("{}/v1/chat/completions", server.uri())] {
        let config: ModelConfig = toml::from_str(&format!(
            "provider = \"openai\"\nmodel = \"m\"\nbase_url = \"{base}\"\napi_key_env = \"{OPENAI_KEY_ENV}\""
        ))
        .unwrap();
        let reply = task_models(config, options(None)).get("task").unwrap().chat(&ask("hi")).await;
        assert_eq!(reply.expect(&base).text, "ok");
    }
}

/// Without `base_url`, the official SDKs' variables say where to go (and `check` shows it).
#[tokio::test]
async fn base_urls_come_from_the_environment_when_gepa_toml_has_none() {
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ok_completion("from env"))
        .mount(&openai)
        .await;
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(anthropic_reply("from env too"))
        .mount(&anthropic)
        .await;
    // Only this test reads these two variables.
    std::env::set_var("OPENAI_BASE_URL", format!("{}/v1", openai.uri()));
    std::env::set_var("ANTHROPIC_BASE_URL", anthropic.uri());
    let o: ModelConfig =
        toml::from_str(&format!("provider = \"openai\"\nmodel = \"m\"\napi_key_env = \"{OPENAI_KEY_ENV}\"")).unwrap();
    let a: ModelConfig =
        toml::from_str(&format!("provider = \"anthropic\"\nmodel = \"c\"\napi_key_env = \"{ANTHROPIC_KEY_ENV}\""))
            .unwrap();
    let eo = gepa_tui::llm::http::endpoint(&o).unwrap();
    let ea = gepa_tui::llm::http::endpoint(&a).unwrap();
    let ro = task_models(o, options(None)).get("task").unwrap().chat(&ask("hi")).await;
    let ra = task_models(a, options(None)).get("task").unwrap().chat(&ask("hi")).await;
    std::env::remove_var("OPENAI_BASE_URL");
    std::env::remove_var("ANTHROPIC_BASE_URL");
    assert_eq!(ro.unwrap().text, "from env");
    assert_eq!(ra.unwrap().text, "from env too");
    assert_eq!((eo.source, ea.source), ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"));
    assert_eq!(ea.url, format!("{}/v1/messages", anthropic.uri()));
}

/// OpenAI's reasoning models take `max_completion_tokens`, no temperature unless set, and a
/// `reasoning_effort`; `[models.x.extra]` fields travel as given.
#[tokio::test]
async fn a_reasoning_model_s_body_and_extra_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok_completion("ok")).mount(&server).await;
    let mut config = openai_config(
        &server,
        "max_tokens = 500\nreasoning_effort = \"low\"\n[extra]\nseed = 7\ntop_p = 0.5\nstop = [\"END\"]",
    );
    config.model = "o4-mini".into();
    task_models(config, options(None)).get("task").unwrap().chat(&ask("hi")).await.unwrap();
    let body: Value = requests(&server).await[0].body_json().unwrap();
    assert_eq!(body["max_completion_tokens"], 500);
    assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none(), "{body}");
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(
        (body["seed"].clone(), body["top_p"].clone(), body["stop"].clone()),
        (json!(7), json!(0.5), json!(["END"]))
    );
    assert_eq!(body["model"], "o4-mini");
}

/// Anthropic's extended thinking is a budget; thinking blocks are not the answer.
#[tokio::test]
async fn anthropic_thinking_budget_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(anthropic_reply("ok")).mount(&server).await;
    let config: ModelConfig = toml::from_str(&format!(
        "provider = \"anthropic\"\nmodel = \"claude-test\"\nbase_url = \"{}\"\napi_key_env = \"{ANTHROPIC_KEY_ENV}\"\n\
         max_tokens = 4000\nthinking_budget_tokens = 2000",
        server.uri()
    ))
    .unwrap();
    task_models(config, options(None)).get("task").unwrap().chat(&ask("hi")).await.unwrap();
    let body: Value = requests(&server).await[0].body_json().unwrap();
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 2000}));
    assert_eq!(body["max_tokens"], 4000);
}

/// A provider's 400 that names a parameter it refuses becomes a message naming the gepa.toml
/// key to change.
#[tokio::test]
async fn a_refused_parameter_names_the_gepa_toml_key_to_change() {
    let cases = [
        (
            "max_tokens = 50",
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "set token_param = \"max_completion_tokens\" in [models.task]",
        ),
        (
            "temperature = 0.2",
            "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.",
            "remove temperature from [models.task]",
        ),
        (
            "[extra]\ntop_k = 5",
            "Unrecognized request argument supplied: top_k",
            "remove `top_k` from [models.task.extra]",
        ),
    ];
    for (setting, said, hint) in cases {
        let server = MockServer::start().await;
        let body = json!({"error": {"message": said, "type": "invalid_request_error", "param": null, "code": "unsupported_parameter"}});
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(400).set_body_json(body)).mount(&server).await;
        let err = task_models(openai_config(&server, setting), options(None))
            .get("task")
            .unwrap()
            .chat(&ask("hi"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(hint) && text.contains("gepa.toml"), "{setting}: {text}");
        assert!(err.stops_run());
        assert_eq!(requests(&server).await.len(), 1, "a 400 is not retried");
    }
}

/// A reasoning model behind an OpenAI-compatible server (Qwen3 or DeepSeek-R1 through Ollama)
/// sends its thinking in the reply: the answer is what follows it, and that is what the cache keeps.
#[tokio::test]
async fn a_reasoning_model_s_thinking_is_left_out_of_its_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ok_completion("<think>\nThe capital of France is Paris.\n</think>\n\nParis"))
        .mount(&server)
        .await;
    let cache = tempfile::tempdir().unwrap();
    let models = task_models(openai_config(&server, "temperature = 0.0"), options(Some(cache.path())));

    let reply = models.get("task").unwrap().chat(&ask("capital of France?")).await.unwrap();

    assert_eq!(reply.text, "Paris");
    let again = models.get("task").unwrap().chat(&ask("capital of France?")).await.unwrap();
    assert!(again.cached && again.text == "Paris", "{again:?}");
}
