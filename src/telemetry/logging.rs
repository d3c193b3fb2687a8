//! The process's log subscriber, and the one JSON log format of the binary.
//!
//! `log_format = "json"` writes what Vault Agent writes through hashicorp/go-hclog, so a log
//! pipeline that reads Vault Agent reads this too: one JSON object per line with `@level`
//! (`trace` … `error`), `@message`, `@module` and `@timestamp` (hclog's JSON layout,
//! `2006-01-02T15:04:05.000000Z07:00`, always in UTC here), and every field of the event and of
//! its spans beside them at the top level. Keys come in sorted order, as Go's encoder writes a
//! map. `@module` is the tracing target with this crate's name taken off and `::` written as
//! `.` ([`hclog_module`]). The text format is tracing-subscriber's own, unchanged.
//!
//! This module formats; it never decides what is logged, and holds nothing secret: what a
//! field holds is the caller's business (secrets are kept out where they are logged).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::SystemTime;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// This crate's name as tracing targets spell it; [`hclog_module`] takes it off.
const CRATE_TARGET: &str = "pki_sidecar";

/// The span a role runs in: every line it logs carries `role` (`agent`, `proxy`, `app`,
/// `webhook`), so `dev`'s three roles in one process, or a pipeline merging containers, can
/// tell lines apart. At the error level, so that any enabled event of the role is inside it.
/// Tasks a role spawns enter it too (`in_current_span`).
pub fn role_span(role: &'static str) -> tracing::Span {
    tracing::error_span!(target: "pki_sidecar", "role", role)
}

/// `tokio::spawn` of `task` in the caller's span (its role's, its template's): a spawned task
/// starts with no span otherwise, and its lines would lose their `role`.
pub(crate) fn spawn_in_span<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(tracing::Instrument::in_current_span(task))
}

/// hyper's executor for HTTP/2 streams, spawning each in the span of the connection that
/// runs it: a stream's lines (an access line, an upstream error) keep the connection's role.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanExecutor;

impl<F> hyper::rt::Executor<F> for SpanExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, task: F) {
        spawn_in_span(task);
    }
}

/// Installs the global tracing subscriber. Precedence: `--log-level` flag, then `RUST_LOG`,
/// then the file's `log_level`, then `info`.
pub fn init_logging(flag_level: Option<&str>, file_level: Option<&str>, format: LogFormat) {
    let directive = flag_level
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()))
        .or_else(|| file_level.map(str::to_string))
        .unwrap_or_else(|| "info".to_string());
    // rustls warns once per odd handshake (a client sending an IP address as SNI, say): a
    // remote client could flood the log, so it is quiet unless a filter names it.
    let directive = if directive.contains("rustls") {
        directive
    } else {
        format!("{directive},rustls=error")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive).unwrap_or_else(|err| {
        eprintln!("pki-sidecar: ignoring invalid log level {directive:?} ({err}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    // A second call (tests running several roles) keeps the first subscriber.
    let _already_installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(true)
            // Its report of a failed write is an `eprintln!`, which panics when stderr is gone
            // (a closed pipe) and takes the logging task down with it: a lost line is better.
            .log_internal_errors(false)
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(HclogJson::new(std::io::stderr))
            .try_init()
            .map_err(Into::into),
    };
}

/// The JSON log layer: each event becomes one hclog-style line written to `make_writer`.
///
/// A [`Layer`] rather than a `fmt` formatter so span fields are kept as JSON values (in the
/// span's extensions) and merged into the event's object, not re-parsed from text.
struct HclogJson<W> {
    make_writer: W,
}

impl<W> HclogJson<W> {
    /// A layer writing each line with one `write_all` on a writer from `make_writer`.
    fn new(make_writer: W) -> HclogJson<W> {
        HclogJson { make_writer }
    }
}

/// A span's fields as JSON values, in its extensions.
struct SpanFields(BTreeMap<String, Value>);

impl<S, W> Layer<S> for HclogJson<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        span.extensions_mut()
            .insert(SpanFields(fields.into_span_values()));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(recorded)) => recorded.extend(fields.into_span_values()),
            None => extensions.insert(SpanFields(fields.into_span_values())),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Outer spans first, so an inner span's field, then the event's, wins a shared name.
        let mut values = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    values.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        values.extend(fields.values);
        let metadata = event.metadata();
        // A `log` record (rustls, through tracing-log) names its real target in a field.
        let target = fields.log_target.as_deref().unwrap_or(metadata.target());
        let line = hclog_line(
            *metadata.level(),
            fields.message.unwrap_or_default(),
            hclog_module(target),
            crate::timefmt::rfc3339_micros(SystemTime::now()),
            values,
        );
        // Nowhere to report a failed write to stderr: the line is lost, as with any logger.
        let _ = self
            .make_writer
            .make_writer_for(metadata)
            .write_all(line.as_bytes());
    }
}

/// One hclog JSON line, with its newline: the `@` keys and `fields`, keys in sorted order.
/// The `@` keys win over a field of the same name (no field of ours starts with `@`).
fn hclog_line(
    level: Level,
    message: String,
    module: String,
    timestamp: String,
    mut fields: BTreeMap<String, Value>,
) -> String {
    fields.insert("@level".into(), Value::String(hclog_level(level).into()));
    fields.insert("@message".into(), Value::String(message));
    fields.insert("@module".into(), Value::String(module));
    fields.insert("@timestamp".into(), Value::String(timestamp));
    let mut line = serde_json::to_string(&fields)
        .expect("a map with string keys and JSON values always serializes");
    line.push('\n');
    line
}

/// hclog's level words.
fn hclog_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `@module` for a tracing target: this crate's modules without the crate name
/// (`pki_sidecar::agent::runner` → `agent.runner`; the crate root itself → `pki-sidecar`),
/// other crates' targets with their crate name (`rustls::client::hs` → `rustls.client.hs`).
fn hclog_module(target: &str) -> String {
    if target == CRATE_TARGET {
        return "pki-sidecar".to_string();
    }
    let path = target
        .strip_prefix(CRATE_TARGET)
        .and_then(|rest| rest.strip_prefix("::"))
        .unwrap_or(target);
    path.replace("::", ".")
}

/// The fields of one event or span, as JSON values.
#[derive(Default)]
struct Fields {
    /// The event's `message`.
    message: Option<String>,
    /// tracing-log's `log.target`: where a `log` record came from.
    log_target: Option<String>,
    values: BTreeMap<String, Value>,
}

impl Fields {
    /// A span's values: a span's `message` (unusual, but allowed) is a field like any other.
    fn into_span_values(mut self) -> BTreeMap<String, Value> {
        if let Some(message) = self.message {
            self.values.insert("message".into(), Value::String(message));
        }
        self.values
    }

    fn insert(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                });
            }
            "log.target" => {
                if let Value::String(target) = value {
                    self.log_target = Some(target);
                }
            }
            // tracing-log's other metadata (`log.module_path`, `log.file`, `log.line`): where
            // in the source, not what happened; the text format leaves it out too.
            name if name.starts_with("log.") => {}
            name => {
                self.values.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let json =
            i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.insert(field, json);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let json =
            u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.insert(field, json);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are written as Rust prints them.
        let json = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.insert(field, json);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, as `{err:#}` prints an anyhow error: `outer: inner: cause`.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.insert(field, Value::String(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` and `format_args!` messages arrive here and print as Display.
        self.insert(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the layer wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// The lines `log` writes through the JSON layer, at every level.
    fn capture(log: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(HclogJson::new(captured.clone()));
        tracing::subscriber::with_default(subscriber, log);
        captured.lines()
    }

    fn parse(line: &str) -> serde_json::Map<String, Value> {
        serde_json::from_str(line).unwrap_or_else(|err| panic!("not a JSON object ({err}): {line}"))
    }

    /// OpenBao Agent 2.7.2's own lines (scripts/openbao-agent-log.sh captured them).
    const OPENBAO_AGENT: &str = include_str!("../../tests/fixtures/logging/openbao-agent.jsonl");

    /// hclog's JSON time layout, `2006-01-02T15:04:05.000000Z07:00`: digits where Go's
    /// reference time has them, then `Z` or a `±hh:mm` offset.
    fn is_hclog_timestamp(text: &str) -> bool {
        let (time, zone) = text.split_at(text.len().min(26));
        let shape = time
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect::<String>();
        let zone_ok = zone == "Z"
            || (zone.len() == 6
                && zone.starts_with(['+', '-'])
                && zone[1..3].bytes().all(|b| b.is_ascii_digit())
                && &zone[3..4] == ":"
                && zone[4..].bytes().all(|b| b.is_ascii_digit()));
        shape == "9999-99-99T99:99:99.999999" && zone_ok
    }

    /// The `@` keys of a line, and whether its keys come in sorted order in the text.
    fn at_keys_and_order(line: &str) -> (Vec<String>, bool) {
        let object = parse(line);
        let at_keys: Vec<String> = object
            .keys()
            .filter(|k| k.starts_with('@'))
            .cloned()
            .collect();
        // Where each key first appears as `"key":` in the raw text.
        let mut positions: Vec<(usize, &String)> = object
            .keys()
            .map(|key| {
                (
                    line.find(&format!("\"{key}\":")).expect("key in the line"),
                    key,
                )
            })
            .collect();
        positions.sort();
        let in_text: Vec<&String> = positions.into_iter().map(|(_, key)| key).collect();
        let mut sorted = in_text.clone();
        sorted.sort();
        (at_keys, in_text == sorted)
    }

    #[test]
    fn our_lines_have_openbao_agents_keys_and_value_formats() {
        let ours = capture(|| {
            tracing::trace!(path = "/run/sink", "enter write_token");
            tracing::debug!(notification = "READY=1", "systemd not present");
            tracing::info!("creating file sink");
            tracing::warn!("no secret exists at secret/data/missing");
            tracing::error!(
                error = "open /run/token: no such file",
                "cannot read the token"
            );
            tracing::info!(mode = 416, path = "/run/sink", "file sink configured");
        });
        let theirs: Vec<&str> = OPENBAO_AGENT.lines().collect();
        assert_eq!(theirs.len(), 6, "the fixture's six lines");
        assert_eq!(ours.len(), theirs.len(), "{ours:#?}");
        let levels = ["trace", "debug", "info", "warn", "error"];
        for (our, their) in ours.iter().zip(&theirs) {
            let (our_keys, our_sorted) = at_keys_and_order(our);
            let (their_keys, their_sorted) = at_keys_and_order(their);
            assert_eq!(our_keys, their_keys, "{our}\n{their}");
            assert_eq!(
                our_keys,
                ["@level", "@message", "@module", "@timestamp"],
                "{our}"
            );
            assert!(
                our_sorted && their_sorted,
                "keys in sorted order:\n{our}\n{their}"
            );
            let (our, their) = (parse(our), parse(their));
            assert_eq!(our["@level"], their["@level"]);
            assert!(levels.contains(&our["@level"].as_str().unwrap()));
            for line in [&our, &their] {
                let timestamp = line["@timestamp"].as_str().unwrap();
                assert!(is_hclog_timestamp(timestamp), "{timestamp}");
                assert!(line["@message"].is_string() && line["@module"].is_string());
            }
            // The other fields sit beside the `@` keys, with JSON types where they have them.
            let fields = |line: &serde_json::Map<String, Value>| {
                line.keys().filter(|k| !k.starts_with('@')).count()
            };
            assert_eq!(fields(&our) > 0, fields(&their) > 0, "{our:?}\n{their:?}");
        }
        let their_mode = &parse(theirs[5])["mode"];
        let our_mode = &parse(&ours[5])["mode"];
        assert!(
            their_mode.is_u64() && our_mode.is_u64(),
            "numbers stay numbers"
        );
        assert!(parse(&ours[4])["error"].is_string() && parse(theirs[4])["error"].is_string());
    }

    #[test]
    fn one_line_per_event_with_the_fields_beside_the_at_keys() {
        let lines = capture(|| {
            tracing::info!(
                key = "proxy.listen",
                address = %"127.0.0.1:8443",
                ready = true,
                attempts = 3u64,
                delta = -2i64,
                "listening"
            );
            tracing::warn!(
                reason = "line one\nline two",
                retry_in_seconds = 0.25,
                "a message\nover two lines"
            );
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let event = parse(&lines[0]);
        assert_eq!(event["@message"], "listening");
        assert_eq!(event["@level"], "info");
        assert_eq!(event["@module"], "telemetry.logging.tests");
        assert_eq!(event["key"], "proxy.listen");
        assert_eq!(event["address"], "127.0.0.1:8443");
        assert_eq!(event["ready"], true);
        assert_eq!(event["attempts"], 3);
        assert_eq!(event["delta"], -2);
        assert!(
            !event.contains_key("message"),
            "the message is @message only"
        );
        assert_eq!(event.len(), 9, "{event:?}");
        let multiline = parse(&lines[1]);
        assert_eq!(multiline["@message"], "a message\nover two lines");
        assert_eq!(multiline["reason"], "line one\nline two");
        assert_eq!(multiline["retry_in_seconds"], 0.25);
    }

    #[test]
    fn every_tracing_level_has_an_hclog_word() {
        let lines = capture(|| {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let levels: Vec<Value> = lines.iter().map(|l| parse(l)["@level"].clone()).collect();
        assert_eq!(levels, ["trace", "debug", "info", "warn", "error"]);
    }

    #[test]
    fn span_fields_join_the_events_object() {
        let lines = capture(|| {
            let outer = tracing::info_span!("role", role = "agent", method = "approle");
            let _outer = outer.enter();
            let inner = tracing::info_span!(
                "login",
                method = "kubernetes",
                attempt = tracing::field::Empty
            );
            let _inner = inner.enter();
            inner.record("attempt", 2);
            tracing::info!(path = "/run/token", "logged in");
        });
        let event = parse(&lines[0]);
        assert_eq!(event["role"], "agent");
        assert_eq!(event["method"], "kubernetes", "the inner span wins");
        assert_eq!(event["attempt"], 2, "a field recorded later is there too");
        assert_eq!(event["path"], "/run/token");
        assert_eq!(event["@message"], "logged in");
    }

    #[test]
    fn errors_are_strings_with_their_whole_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("cannot read the token")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::other("no such file"));
        let anyhow_err = anyhow::anyhow!("no such file").context("cannot read the token");
        let lines = capture(|| {
            tracing::error!(
                error = &err as &(dyn std::error::Error + 'static),
                "login failed"
            );
            tracing::error!(error = format!("{anyhow_err:#}"), "login failed");
        });
        assert_eq!(
            parse(&lines[0])["error"],
            "cannot read the token: no such file"
        );
        assert_eq!(
            parse(&lines[1])["error"],
            "cannot read the token: no such file"
        );
    }

    #[test]
    fn log_records_take_their_module_from_log_target() {
        // tracing-log hands a `log` record over with these fields; the test writes them itself.
        let lines = capture(|| {
            tracing::warn!(
                log.target = "rustls::server::hs",
                log.module_path = "rustls::server::hs",
                log.file = "src/server/hs.rs",
                log.line = 42u64,
                "odd SNI"
            );
        });
        let event = parse(&lines[0]);
        assert_eq!(event["@module"], "rustls.server.hs");
        assert_eq!(event.len(), 4, "no log.* fields: {event:?}");
    }

    #[test]
    fn modules_come_from_targets() {
        assert_eq!(hclog_module("pki_sidecar::agent::runner"), "agent.runner");
        assert_eq!(hclog_module("pki_sidecar::http_server"), "http_server");
        assert_eq!(hclog_module("pki_sidecar"), "pki-sidecar");
        assert_eq!(hclog_module("rustls::client::hs"), "rustls.client.hs");
        assert_eq!(hclog_module("pki_sidecar_other::x"), "pki_sidecar_other.x");
    }

    #[test]
    fn timestamps_have_hclogs_layout() {
        assert!(is_hclog_timestamp("2026-12-02T01:04:01.236775Z"));
        assert!(is_hclog_timestamp("2026-12-02T02:04:01.236775+01:00"));
        assert!(!is_hclog_timestamp("2026-12-02T01:04:01Z"));
        assert!(!is_hclog_timestamp("2026-12-02T01:04:01.236Z"));
        assert!(is_hclog_timestamp(&crate::timefmt::rfc3339_micros(
            SystemTime::now()
        )));
    }
}
