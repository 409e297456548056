//! A raw HTTP/1.1 server on loopback, for tests where the platform misbehaves
//! in ways the simulator never would: bytes that are not UTF-8, lines that
//! never end, replies too large, `Retry-After` on a 429.
//!
//! It reads each request (one a connection: every reply closes it) and asks
//! the test's handler what to do: answer with bytes, or take the socket and
//! write to it as it likes. Every request is kept, with when it came.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use url::Url;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When it was read.
    pub at: Instant,
}

impl RawRequest {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// True when the path ends with `/<call>` (e.g. `new_session`).
    pub fn is(&self, call: &str) -> bool {
        self.path.ends_with(&format!("/{call}"))
    }
}

/// Something that writes to the socket as a test likes, e.g. a stream that
/// never ends.
pub type Writer = Arc<dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the server does with a request.
#[derive(Clone)]
pub enum Reply {
    /// Writes these bytes (a whole response) and closes the connection.
    Bytes(Vec<u8>),
    /// Hands the socket over.
    Write(Writer),
}

impl Reply {
    /// A JSON reply with this status and extra headers.
    pub fn json(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply::Bytes(response(status, headers, body.as_bytes()))
    }

    /// A successful `{status, result}` envelope around `result`.
    pub fn success(result: &str) -> Reply {
        Reply::json(
            200,
            &[],
            &format!(r#"{{"status":"success","result":{result}}}"#),
        )
    }

    /// A writer for the socket.
    pub fn write<F, Fut>(writer: F) -> Reply
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Reply::Write(Arc::new(move |socket| Box::pin(writer(socket))))
    }

    /// An event stream: the response head, then `body`, then the connection
    /// is held open (as a live stream is) until the client goes.
    pub fn event_stream(body: Vec<u8>) -> Reply {
        let body = Arc::new(body);
        Reply::write(move |mut socket| {
            let body = body.clone();
            async move {
                let _ = socket.write_all(EVENT_STREAM_HEAD).await;
                let _ = socket.write_all(&body).await;
                hold_open(socket).await;
            }
        })
    }

    /// A 429 asking to come back in `seconds`.
    pub fn too_many(seconds: u64) -> Reply {
        Reply::json(
            429,
            &[("retry-after", &seconds.to_string())],
            r#"{"status":"failed","result":"slow down"}"#,
        )
    }
}

/// A handler that answers each call (see [`RawRequest::is`]) with the next
/// reply of its script, repeating the last one for ever; calls without a
/// script get a 404.
pub fn script(
    scripts: Vec<(&'static str, Vec<Reply>)>,
) -> impl Fn(&RawRequest) -> Reply + Send + Sync + 'static {
    let scripts = Mutex::new(
        scripts
            .into_iter()
            .map(|(call, replies)| (call, VecDeque::from(replies)))
            .collect::<Vec<_>>(),
    );
    move |request| {
        let mut scripts = scripts.lock().expect("not poisoned");
        match scripts.iter_mut().find(|(call, _)| request.is(call)) {
            Some((_, replies)) if replies.len() > 1 => replies.pop_front().expect("more than one"),
            Some((_, replies)) if !replies.is_empty() => replies[0].clone(),
            _ => Reply::json(404, &[], r#"{"status":"failed","result":"no such call"}"#),
        }
    }
}

/// The head of a successful event-stream response.
pub const EVENT_STREAM_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

/// A whole HTTP/1.1 response that closes the connection.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} Status\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Waits until the client closes the connection, reading and dropping
/// anything it sends.
pub async fn hold_open(mut socket: TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
}

type Handler = Arc<dyn Fn(&RawRequest) -> Reply + Send + Sync>;

/// The server. Stops when dropped.
pub struct RawServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    task: JoinHandle<()>,
}

impl RawServer {
    /// Listens on a free loopback port, answering with `handler`.
    pub async fn start(handler: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port is free");
        let addr = listener.local_addr().expect("the listener has an address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let kept = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, handler.clone(), kept.clone()));
            }
        });
        RawServer {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a loopback URL")
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// The requests so far for `call` (see [`RawRequest::is`]).
    pub fn requests_for(&self, call: &str) -> Vec<RawRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.is(call))
            .collect()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, handler: Handler, requests: Arc<Mutex<Vec<RawRequest>>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    requests.lock().expect("not poisoned").push(request.clone());
    match handler(&request) {
        Reply::Bytes(bytes) => {
            let _ = socket.write_all(&bytes).await;
            let _ = socket.shutdown().await;
        }
        Reply::Write(writer) => writer(socket).await,
    }
}

/// Reads one request: its head, then as much body as `content-length` says.
async fn read_request(socket: &mut TcpStream) -> Option<RawRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 || buffer.len() > 64 * 1024 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(RawRequest {
        method,
        path,
        query,
        headers,
        body,
        at: Instant::now(),
    })
}
