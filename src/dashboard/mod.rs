//! The control-room dashboard, served at `/` on the daemon's local port.
//!
//! - [`overview`]: every room at a glance, rooms with trouble first. It is
//!   plain server-rendered HTML and works without JavaScript.
//! - [`room_page`]: one room's roster, timeline, held-back commands, rules.
//! - [`journal`]: what the dashboard remembers of each room, fed by the
//!   room's task as a [`RoomWatcher`].
//! - [`live`]: updates pushed over Server-Sent Events, a few a second at most.
//! - [`actions`]: pausing and resuming a room's rules, with a token.
//! - [`shell`]: the frame pages share.
//!
//! The styles and the small script are embedded in the binary. Every page is
//! sent with a content security policy that allows only those, so text from
//! the network can never run as code even if escaping were missed.

pub mod actions;
pub mod journal;
pub mod live;
pub mod overview;
pub mod room_page;
pub mod shell;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock, Weak};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use self::actions::{Action, Actions, presented};
use self::journal::Journal;
use self::live::{OverviewFeed, RoomFeed};
use crate::clock::unix_now;
use crate::runtime::status::{Registry, RoomWatcher, Watching};

const STYLE: &str = include_str!("assets/dashboard.css");
const SCRIPT: &str = include_str!("assets/dashboard.js");

/// Pages may load only the dashboard's own styles and script, and talk only
/// to the dashboard.
const POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
                      connect-src 'self'; img-src 'self' data:; form-action 'self'; \
                      base-uri 'none'; frame-ancestors 'none'";

/// The dashboard's memory of every room.
#[derive(Debug, Default)]
pub struct Dashboard {
    /// Each room's journal; the room's status owns it, so a room no longer
    /// watched goes with its status.
    journals: RwLock<BTreeMap<String, Weak<Journal>>>,
    /// Ends every live view, so the server can stop.
    closing: CancellationToken,
}

impl Dashboard {
    /// A dashboard whose live views end when `closing` fires.
    pub fn new(closing: CancellationToken) -> Dashboard {
        Dashboard {
            journals: RwLock::default(),
            closing,
        }
    }

    /// Room `alias` at a glance, as of its latest event.
    pub fn glance(&self, alias: &str) -> journal::Glance {
        self.journal(alias)
            .map(|journal| journal.glance())
            .unwrap_or_default()
    }

    /// Room `alias`'s journal.
    pub fn journal(&self, alias: &str) -> Option<Arc<Journal>> {
        self.journals
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(alias)
            .and_then(Weak::upgrade)
    }
}

impl Watching for Dashboard {
    fn watch(&self, alias: &str) -> Arc<dyn RoomWatcher> {
        let journal = Arc::new(Journal::default());
        let mut journals = self.journals.write().unwrap_or_else(|p| p.into_inner());
        journals.retain(|_, journal| journal.strong_count() > 0);
        journals.insert(alias.to_owned(), Arc::downgrade(&journal));
        journal
    }
}

/// What the dashboard's handlers share.
#[derive(Clone)]
struct App {
    registry: Arc<Registry>,
    dashboard: Arc<Dashboard>,
    /// What operators may do; read-only without. Only the server holds it,
    /// so the audit log it writes to can close when the server stops.
    actions: Option<Arc<Actions>>,
}

/// The dashboard's routes; with `actions`, operators may act.
pub fn routes(
    registry: Arc<Registry>,
    dashboard: Arc<Dashboard>,
    actions: Option<Actions>,
) -> Router {
    Router::new()
        .route("/", get(overview_page))
        .route("/live", get(overview_live))
        .route("/room/{alias}", get(room))
        .route("/room/{alias}/live", get(room_live))
        .route("/room/{alias}/{action}", post(act))
        .route("/assets/dashboard.css", get(style))
        .route("/assets/dashboard.js", get(script))
        .with_state(App {
            registry,
            dashboard,
            actions: actions.map(Arc::new),
        })
        .layer(axum::middleware::map_response(guard))
}

/// Headers every dashboard response carries.
async fn guard(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn overview_page(State(app): State<App>) -> Html<String> {
    Html(overview::page(&app.registry, &app.dashboard, unix_now()))
}

async fn overview_live(State(app): State<App>) -> impl IntoResponse {
    let feed = OverviewFeed::new(app.registry, app.dashboard.clone());
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await;
        Some((Ok::<_, Infallible>(event), feed))
    });
    let closing = app.dashboard.closing.clone().cancelled_owned();
    Sse::new(stream.take_until(closing)).keep_alive(KeepAlive::default())
}

/// Where a room page's live view starts.
#[derive(Debug, Deserialize)]
struct After {
    #[serde(default)]
    after: u64,
}

async fn room(State(app): State<App>, Path(alias): Path<String>) -> Response {
    match (app.registry.room(&alias), app.dashboard.journal(&alias)) {
        (Some(status), Some(journal)) => {
            let actions = app.actions.is_some();
            let page = status.read(|room| room_page::page(&alias, room, &journal, actions));
            Html(page).into_response()
        }
        _ => not_found(&alias),
    }
}

async fn room_live(
    State(app): State<App>,
    Path(alias): Path<String>,
    Query(after): Query<After>,
) -> Response {
    let (Some(status), Some(journal)) = (app.registry.room(&alias), app.dashboard.journal(&alias))
    else {
        return not_found(&alias);
    };
    let feed = RoomFeed::new(app.registry, alias, status, journal, after.after);
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await;
        Some((Ok::<_, Infallible>(event), feed))
    });
    let closing = app.dashboard.closing.clone().cancelled_owned();
    Sse::new(stream.take_until(closing))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `POST /room/{alias}/pause` or `/resume`, with a token.
async fn act(
    State(app): State<App>,
    Path((alias, action)): Path<(String, String)>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let Some(actions) = &app.actions else {
        return (
            StatusCode::FORBIDDEN,
            "The dashboard is read-only: set http.auth.token_file in the config to allow actions.\n",
        )
            .into_response();
    };
    let (Some(status), Some(action)) = (app.registry.room(&alias), Action::parse(&action)) else {
        return not_found(&alias);
    };
    let holder = presented(&headers, &form)
        .as_deref()
        .and_then(|token| actions.tokens.holder(token))
        .map(str::to_owned);
    let Some(holder) = holder else {
        tracing::warn!(room = %alias, "a dashboard action was refused: no valid token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"usher\"")],
            "This needs one of the tokens in http.auth.token_file.\n",
        )
            .into_response();
    };
    let paused = (action == Action::Pause).then(|| Action::pause_reason(&holder));
    status.update(|room| room.paused = paused);
    let record = action.record(&alias, &holder);
    tracing::info!(room = %alias, by = %holder, "{}", record.text);
    status.command(&record);
    actions.audit.record(record);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, overview::room_url(&alias))],
    )
        .into_response()
}

fn not_found(alias: &str) -> Response {
    let mut page = String::new();
    shell::open(
        &mut page,
        &shell::Frame {
            title: "No such room",
            live: "",
            refresh_without_js: None,
        },
    );
    page.push_str(&format!(
        "<h1>No such room</h1><p>usher watches no room called <b>{}</b>. <a href=\"/\">All rooms</a></p>",
        crate::report::markup::esc(alias)
    ));
    shell::close(&mut page);
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}
