//! The little of etcd's v3 API usher needs, over etcd's JSON gateway.
//!
//! etcd serves its gRPC API as JSON too (`POST /v3/kv/range` and so on, on
//! the client port, since 3.3): keys and values are base64, 64-bit numbers
//! are strings, and fields at their default value are left out. usher
//! speaks that rather than gRPC because every Rust gRPC client of etcd
//! (`etcd-client` among them) generates its code with `protoc` at build
//! time, and the build must not need it. What is used:
//!
//! - leases: grant, keep alive (one renewal per call), revoke;
//! - keys: range over a prefix, put, delete, and transactions that create
//!   a key only when it is absent or write only while another key is as
//!   it was (fencing);
//! - watch: a stream of changes under a prefix from a revision on.
//!
//! Each call goes to one endpoint; when it cannot be reached the next one
//! is tried, and the one that answered is used first from then on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

/// A lease's id.
pub type LeaseId = i64;

/// Why an etcd call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint could be reached (or none answered in time).
    #[error("cannot reach etcd at {endpoints}: {reason}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        reason: String,
    },
    /// etcd answered with an error.
    #[error("etcd refused `{call}`: HTTP {status}: {message}")]
    Refused {
        /// The call, e.g. `kv/txn`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// etcd's message.
        message: String,
    },
    /// etcd's answer could not be read.
    #[error("etcd's answer to `{call}` cannot be read: {reason}")]
    BadReply {
        /// The call.
        call: String,
        /// What was wrong.
        reason: String,
    },
}

/// One key and its value, as etcd keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// The revision that created the key (it changes when the key is
    /// deleted and created again).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// The lease it is attached to, or 0.
    pub lease: LeaseId,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or changed.
    Put(KeyValue),
    /// A key was deleted (or its lease expired).
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        mod_revision: i64,
    },
}

/// What a watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    /// Changes, in order.
    Events(Vec<WatchEvent>),
    /// The watch ended (etcd cancelled it, the connection dropped, or the
    /// revision asked for was compacted): range again and watch anew.
    Ended(String),
}

/// A client of one etcd cluster.
#[derive(Debug)]
pub struct Etcd {
    endpoints: Vec<Url>,
    /// For unary calls, with a deadline.
    calls: reqwest::Client,
    /// For watches, which last.
    watches: reqwest::Client,
    /// The endpoint that answered last.
    current: AtomicUsize,
}

/// The first key after every key starting with `prefix`.
fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// A 64-bit number as etcd's JSON writes it (a string) or as a number.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Text(String),
        Number(i64),
    }
    match Int::deserialize(deserializer)? {
        Int::Number(n) => Ok(n),
        Int::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Default, Deserialize)]
struct Header {
    #[serde(default, deserialize_with = "int64")]
    revision: i64,
}

#[derive(Debug, Deserialize)]
struct RawKeyValue {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "int64")]
    create_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    mod_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    lease: i64,
}

impl RawKeyValue {
    fn decode(self, call: &str) -> Result<KeyValue, EtcdError> {
        let bad = |reason: String| EtcdError::BadReply {
            call: call.to_owned(),
            reason,
        };
        let key = BASE64
            .decode(&self.key)
            .map_err(|err| bad(format!("key: {err}")))?;
        let key = String::from_utf8(key).map_err(|_| bad("a key is not UTF-8".to_owned()))?;
        let value = BASE64
            .decode(&self.value)
            .map_err(|err| bad(format!("value: {err}")))?;
        Ok(KeyValue {
            key,
            value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            lease: self.lease,
        })
    }
}

#[derive(Debug, Deserialize)]
struct RangeReply {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    kvs: Vec<RawKeyValue>,
}

#[derive(Debug, Deserialize)]
struct GrantReply {
    #[serde(rename = "ID", deserialize_with = "int64")]
    id: i64,
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    ttl: i64,
    #[serde(default)]
    error: String,
}

#[derive(Debug, Deserialize)]
struct KeepAliveReply {
    result: Option<KeepAliveResult>,
}

#[derive(Debug, Deserialize)]
struct KeepAliveResult {
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    ttl: i64,
}

#[derive(Debug, Deserialize)]
struct TxnReply {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    succeeded: bool,
    #[serde(default)]
    responses: Vec<TxnResponse>,
}

#[derive(Debug, Deserialize)]
struct TxnResponse {
    #[serde(default)]
    response_range: Option<RangeReply>,
}

#[derive(Debug, Deserialize)]
struct WatchLine {
    result: Option<WatchResult>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WatchResult {
    #[serde(default)]
    canceled: bool,
    #[serde(default)]
    cancel_reason: String,
    #[serde(default, deserialize_with = "int64")]
    compact_revision: i64,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    #[serde(default, rename = "type")]
    kind: String,
    kv: RawKeyValue,
}

/// The longest a watch line may be: far more than usher's keys and values.
const MAX_WATCH_LINE: usize = 8 * 1024 * 1024;

impl Etcd {
    /// A client of the etcd members at `endpoints`, each call bounded by
    /// `timeout`.
    pub fn new(endpoints: Vec<Url>, timeout: Duration) -> Result<Etcd, EtcdError> {
        let build = |timeout: Option<Duration>| {
            let builder = reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(timeout.unwrap_or(Duration::from_secs(2)))
                .pool_idle_timeout(Duration::from_secs(30))
                .http1_only();
            match timeout {
                Some(timeout) => builder.timeout(timeout),
                None => builder,
            }
            .build()
            .map_err(|err| EtcdError::Unreachable {
                endpoints: String::new(),
                reason: err.to_string(),
            })
        };
        Ok(Etcd {
            calls: build(Some(timeout))?,
            watches: build(None)?,
            endpoints,
            current: AtomicUsize::new(0),
        })
    }

    fn endpoint_list(&self) -> String {
        let list: Vec<&str> = self.endpoints.iter().map(Url::as_str).collect();
        list.join(", ")
    }

    /// The endpoints to try, the one that answered last first.
    fn order(&self) -> impl Iterator<Item = (usize, &Url)> {
        let first = self.current.load(Ordering::Relaxed);
        (0..self.endpoints.len()).map(move |n| {
            let index = (first + n) % self.endpoints.len();
            (index, &self.endpoints[index])
        })
    }

    /// POSTs `body` to `/v3/<call>` and reads the answer.
    async fn call<T: DeserializeOwned>(&self, call: &str, body: &Value) -> Result<T, EtcdError> {
        let mut last = String::from("no endpoint");
        for (index, endpoint) in self.order() {
            let url = match endpoint.join(&format!("v3/{call}")) {
                Ok(url) => url,
                Err(err) => {
                    last = err.to_string();
                    continue;
                }
            };
            let response = match self.calls.post(url).json(body).send().await {
                Ok(response) => response,
                Err(err) => {
                    last = describe(&err);
                    continue;
                }
            };
            self.current.store(index, Ordering::Relaxed);
            let status = response.status();
            let text = match response.text().await {
                Ok(text) => text,
                Err(err) => {
                    last = describe(&err);
                    continue;
                }
            };
            if !status.is_success() {
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|value| {
                        value
                            .get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| text.chars().take(200).collect());
                return Err(EtcdError::Refused {
                    call: call.to_owned(),
                    status: status.as_u16(),
                    message,
                });
            }
            return serde_json::from_str(&text).map_err(|err| EtcdError::BadReply {
                call: call.to_owned(),
                reason: err.to_string(),
            });
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoint_list(),
            reason: last,
        })
    }

    /// Grants a lease of `ttl` (etcd may grant a longer one); returns its
    /// id and the TTL granted.
    pub async fn grant(&self, ttl: Duration) -> Result<(LeaseId, Duration), EtcdError> {
        let reply: GrantReply = self
            .call("lease/grant", &json!({ "TTL": ttl.as_secs().max(1) }))
            .await?;
        if !reply.error.is_empty() {
            return Err(EtcdError::Refused {
                call: "lease/grant".to_owned(),
                status: 200,
                message: reply.error,
            });
        }
        Ok((reply.id, Duration::from_secs(reply.ttl.max(0) as u64)))
    }

    /// Renews a lease once. Returns its new TTL, or `None` when etcd no
    /// longer has it (it expired or was revoked).
    pub async fn keep_alive(&self, lease: LeaseId) -> Result<Option<Duration>, EtcdError> {
        let reply: KeepAliveReply = self
            .call("lease/keepalive", &json!({ "ID": lease.to_string() }))
            .await?;
        let ttl = reply.result.map_or(0, |result| result.ttl);
        Ok((ttl > 0).then(|| Duration::from_secs(ttl as u64)))
    }

    /// Revokes a lease: every key attached to it is deleted at once.
    pub async fn revoke(&self, lease: LeaseId) -> Result<(), EtcdError> {
        match self
            .call::<Value>("lease/revoke", &json!({ "ID": lease.to_string() }))
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: what revoking wanted.
            Err(EtcdError::Refused { message, .. }) if message.contains("not found") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Every key under `prefix`, and the store's revision they are as of.
    pub async fn range_prefix(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let body = json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&range_end(prefix)) });
        let reply: RangeReply = self.call("kv/range", &body).await?;
        let revision = reply.header.revision;
        let kvs = reply
            .kvs
            .into_iter()
            .map(|kv| kv.decode("kv/range"))
            .collect::<Result<_, _>>()?;
        Ok((kvs, revision))
    }

    /// One key, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, EtcdError> {
        let reply: RangeReply = self
            .call("kv/range", &json!({ "key": b64(key.as_bytes()) }))
            .await?;
        reply
            .kvs
            .into_iter()
            .next()
            .map(|kv| kv.decode("kv/range"))
            .transpose()
    }

    /// Writes a key, attached to `lease` when given; returns the revision.
    pub async fn put(
        &self,
        key: &str,
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> Result<i64, EtcdError> {
        let mut body = json!({ "key": b64(key.as_bytes()), "value": b64(value) });
        if let Some(lease) = lease {
            body["lease"] = json!(lease.to_string());
        }
        let reply: RangeReply = self.call("kv/put", &body).await?;
        Ok(reply.header.revision)
    }

    /// Deletes a key.
    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        self.call::<Value>("kv/deleterange", &json!({ "key": b64(key.as_bytes()) }))
            .await
            .map(drop)
    }

    /// Creates `key` attached to `lease` if it does not exist. Returns
    /// `Ok(revision)` when it was created, or `Err(holder)` with the key as
    /// it is when it already exists.
    pub async fn create(
        &self,
        key: &str,
        value: &[u8],
        lease: LeaseId,
    ) -> Result<Result<i64, KeyValue>, EtcdError> {
        let key64 = b64(key.as_bytes());
        let body = json!({
            "compare": [{ "key": key64, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
            "success": [{ "request_put": { "key": key64, "value": b64(value), "lease": lease.to_string() } }],
            "failure": [{ "request_range": { "key": key64 } }],
        });
        let reply: TxnReply = self.call("kv/txn", &body).await?;
        if reply.succeeded {
            return Ok(Ok(reply.header.revision));
        }
        let holder = reply
            .responses
            .into_iter()
            .filter_map(|response| response.response_range)
            .flat_map(|range| range.kvs)
            .next();
        match holder {
            Some(kv) => Ok(Err(kv.decode("kv/txn")?)),
            // Deleted between the compare and the range: as good as taken;
            // the caller looks again.
            None => Ok(Err(KeyValue {
                key: key.to_owned(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: 0,
                lease: 0,
            })),
        }
    }

    /// Writes `key` only while `guard` still has the create revision
    /// `created` (the writer still holds it). Returns whether it wrote.
    pub async fn put_while(
        &self,
        guard: &str,
        created: i64,
        key: &str,
        value: &[u8],
    ) -> Result<bool, EtcdError> {
        let body = json!({
            "compare": [{ "key": b64(guard.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": created.to_string() }],
            "success": [{ "request_put": { "key": b64(key.as_bytes()), "value": b64(value) } }],
        });
        let reply: TxnReply = self.call("kv/txn", &body).await?;
        Ok(reply.succeeded)
    }

    /// Deletes `key` only while it has the create revision `created`.
    /// Returns whether it deleted.
    pub async fn delete_if_created(&self, key: &str, created: i64) -> Result<bool, EtcdError> {
        let key64 = b64(key.as_bytes());
        let body = json!({
            "compare": [{ "key": key64, "target": "CREATE", "result": "EQUAL", "create_revision": created.to_string() }],
            "success": [{ "request_delete_range": { "key": key64 } }],
        });
        let reply: TxnReply = self.call("kv/txn", &body).await?;
        Ok(reply.succeeded)
    }

    /// Watches every key under `prefix` from revision `from` on, sending
    /// what it sees to `sink` until the watch ends (then a last
    /// [`WatchItem::Ended`]), `sink` closes or `cancel` fires.
    pub async fn watch(
        &self,
        prefix: &str,
        from: i64,
        sink: mpsc::Sender<WatchItem>,
        cancel: CancellationToken,
    ) {
        let ended = tokio::select! {
            _ = cancel.cancelled() => return,
            ended = self.follow(prefix, from, &sink) => ended,
        };
        let _ = sink.send(WatchItem::Ended(ended)).await;
    }

    /// Follows one watch; returns why it ended.
    async fn follow(&self, prefix: &str, from: i64, sink: &mpsc::Sender<WatchItem>) -> String {
        let body = json!({ "create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&range_end(prefix)),
            "start_revision": from.to_string(),
        }});
        let index = self.current.load(Ordering::Relaxed);
        let Ok(url) = self.endpoints[index].join("v3/watch") else {
            return "the endpoint URL cannot be used".to_owned();
        };
        let response = match self.watches.post(url).json(&body).send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => return format!("HTTP {}", response.status()),
            Err(err) => {
                // The next call finds an endpoint that answers.
                self.current
                    .store((index + 1) % self.endpoints.len(), Ordering::Relaxed);
                return describe(&err);
            }
        };
        let mut bytes = response.bytes_stream();
        let mut line = Vec::new();
        while let Some(chunk) = bytes.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => return describe(&err),
            };
            for piece in chunk.split_inclusive(|b| *b == b'\n') {
                line.extend_from_slice(piece);
                if line.len() > MAX_WATCH_LINE {
                    return "a watch message was too large".to_owned();
                }
                if !line.ends_with(b"\n") {
                    continue;
                }
                let text = std::mem::take(&mut line);
                match parse_watch_line(&text) {
                    Ok(Some(events)) => {
                        if sink.send(WatchItem::Events(events)).await.is_err() {
                            return "nobody listens".to_owned();
                        }
                    }
                    Ok(None) => {}
                    Err(ended) => return ended,
                }
            }
        }
        "the watch stream closed".to_owned()
    }
}

/// One line of a watch: its events (`None` for one without any), or why
/// the watch ended.
fn parse_watch_line(text: &[u8]) -> Result<Option<Vec<WatchEvent>>, String> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    let line: WatchLine =
        serde_json::from_slice(text).map_err(|err| format!("unreadable watch message: {err}"))?;
    if let Some(error) = line.error {
        return Err(format!("etcd ended the watch: {error}"));
    }
    let Some(result) = line.result else {
        return Ok(None);
    };
    if result.canceled {
        return Err(format!(
            "etcd cancelled the watch ({}{})",
            result.cancel_reason,
            if result.compact_revision > 0 {
                format!("; compacted up to {}", result.compact_revision)
            } else {
                String::new()
            }
        ));
    }
    if result.events.is_empty() {
        return Ok(None);
    }
    result
        .events
        .into_iter()
        .map(|event| {
            let kv = event.kv.decode("watch").map_err(|err| err.to_string())?;
            Ok(match event.kind.as_str() {
                "DELETE" => WatchEvent::Delete {
                    key: kv.key,
                    mod_revision: kv.mod_revision,
                },
                _ => WatchEvent::Put(kv),
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}

/// A transport error in a few words (reqwest's chain, without the URL).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_after_their_last_key() {
        assert_eq!(range_end("/usher/"), b"/usher0".to_vec());
        assert_eq!(range_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn watch_lines_become_events() {
        let put = br#"{"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L3VzaGVyL3g=","create_revision":"3","mod_revision":"3","version":"1","value":"eA==","lease":"7"}}]}}"#;
        assert_eq!(
            parse_watch_line(put),
            Ok(Some(vec![WatchEvent::Put(KeyValue {
                key: "/usher/x".into(),
                value: b"x".to_vec(),
                create_revision: 3,
                mod_revision: 3,
                lease: 7,
            })]))
        );
        let delete = br#"{"result":{"events":[{"type":"DELETE","kv":{"key":"L3VzaGVyL3g=","mod_revision":"4"}}]}}"#;
        assert_eq!(
            parse_watch_line(delete),
            Ok(Some(vec![WatchEvent::Delete {
                key: "/usher/x".into(),
                mod_revision: 4
            }]))
        );
        let created = br#"{"result":{"header":{"revision":"2"},"created":true}}"#;
        assert_eq!(parse_watch_line(created), Ok(None));
        let cancelled =
            br#"{"result":{"canceled":true,"compact_revision":"9","cancel_reason":"compacted"}}"#;
        assert!(
            parse_watch_line(cancelled)
                .unwrap_err()
                .contains("compacted up to 9")
        );
        assert!(parse_watch_line(b"{not json").is_err());
    }
}
