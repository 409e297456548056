//! The dashboard's one action, pausing a room's rules: read-only without
//! `http.auth`, refused (401) without a valid token, audited with who asked,
//! and while paused nothing the rules ask for is sent. The real daemon, the
//! real simulator, over loopback.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::daemon::*;
use fantoccini::Locator;
use usher::runtime::audit::Outcome;
use usher::sim::step::{Joiner, Step};

const TOKEN: &str = "5b0d6c1e9a7f43d2b8e4c6a1";
const AUTH: &str = "http: { listen: 127.0.0.1:0, auth: { token_file: tokens } }\n";

fn pause_url(usher: &Usher, action: &str) -> String {
    format!(
        "http://{}/room/{}/{action}",
        usher.http,
        usher::report::markup::path_segment(ROOM)
    )
}

/// A config with actions allowed, for `alice`'s token.
async fn start_with_tokens(name: &str) -> (usher::sim::Simulator, Usher) {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new(name);
    dir.shipped_rules();
    dir.write("tokens", &format!("# who may act\nalice {TOKEN}\n"));
    let text =
        config(&sim, &["auto_mute_guests"], "").replace("http: { listen: 127.0.0.1:0 }\n", AUTH);
    let usher = Usher::start(dir, &text).await;
    (sim, usher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_read_only_by_default() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let usher = Usher::start(TestDir::new("act_readonly"), &config(&sim, &[], "")).await;
    let response = reqwest::Client::new()
        .post(pause_url(&usher, "pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("http.auth.token_file")
    );
    assert!(usher.status().await["rooms"][ROOM]["paused"].is_null());
    let (_, page) = usher
        .get(&format!(
            "/room/{}",
            usher::report::markup::path_segment(ROOM)
        ))
        .await;
    assert!(!page.contains("<form"), "no action offered");
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_needs_a_token_and_holds_every_command_back() {
    let (sim, usher) = start_with_tokens("act_pause").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    for (what, request) in [
        ("no token", client.post(pause_url(&usher, "pause"))),
        (
            "a wrong token",
            client
                .post(pause_url(&usher, "pause"))
                .bearer_auth("5b0d6c1e9a7f43d2b8e4c6a2"),
        ),
        (
            "a wrong form token",
            client
                .post(pause_url(&usher, "pause"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=nope"),
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{what}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{what}"
        );
    }
    assert!(usher.status().await["rooms"][ROOM]["paused"].is_null());
    assert!(usher.audit().is_empty(), "refusals change nothing");

    let response = client
        .post(pause_url(&usher, "pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let paused = usher.audited(Outcome::Ok, "pause the room's rules").await;
    assert_eq!(
        (paused.rule.as_str(), paused.event.as_str()),
        ("dashboard", "request by alice"),
        "audited with who asked"
    );
    let status = usher.status().await;
    let why = status["rooms"][ROOM]["paused"].as_str().unwrap().to_owned();
    assert!(why.contains("paused from the dashboard by alice"), "{why}");

    sim.step(ROOM, &Step::Join(Joiner::guest("Bob"))).unwrap();
    let held = usher.audited(Outcome::Blocked, "mute Bob").await;
    assert_eq!(held.error.as_deref(), Some(why.as_str()));
    assert_eq!(mutes_of(&sim, "Bob"), 0, "nothing reached the platform");

    // Resuming, with the token in a form as the page sends it.
    let response = client
        .post(pause_url(&usher, "resume"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    usher.audited(Outcome::Ok, "resume the room's rules").await;
    sim.step(ROOM, &Step::Join(Joiner::guest("Cat"))).unwrap();
    usher.audited(Outcome::Ok, "mute Cat").await;

    let page = |path: String| {
        let url = format!("http://{}{path}", usher.http);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let everything = format!(
        "{}{:?}{}{}",
        usher.dir.audit_text(),
        usher.status().await,
        page("/".into()).await,
        page(format!(
            "/room/{}",
            usher::report::markup::path_segment(ROOM)
        ))
        .await,
    );
    assert!(everything.contains("mute Cat"), "the pages were read");
    assert!(!everything.contains(TOKEN), "the token is never shown");
    assert!(!everything.contains(PIN), "nor the room's PIN");
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pauses_a_room_from_its_page() {
    let (_sim, usher) = start_with_tokens("act_browser").await;
    let browser = Browser::start("act").await;
    browser
        .open(&format!(
            "http://{}/room/{}",
            usher.http,
            usher::report::markup::path_segment(ROOM)
        ))
        .await;
    let field = browser
        .client()
        .find(Locator::Css("form.action input[name=token]"))
        .await
        .expect("the page offers the action");
    field.send_keys(TOKEN).await.unwrap();
    browser
        .client()
        .find(Locator::Css("form.action button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .until(
            Duration::from_secs(5),
            "the page to say the room is paused",
            async || {
                browser
                    .text("#room-header")
                    .await
                    .is_some_and(|text| text.contains("paused from the dashboard by alice"))
            },
        )
        .await;
    assert_eq!(
        browser.text("form.action button").await.as_deref(),
        Some("Resume the rules")
    );
    browser.close().await;
    usher.stop().await;
}

#[tokio::test]
async fn a_short_token_stops_the_daemon_from_starting() {
    let sim = simulator(vec![room(vec![])]).await;
    let dir = TestDir::new("act_short");
    dir.write("hall.pin", PIN);
    dir.write("tokens", "alice tooshort\n");
    let text = config(&sim, &[], "").replace("http: { listen: 127.0.0.1:0 }\n", AUTH);
    let path = dir.write("usher.yaml", &text);
    let config = usher::config::Config::load(&path).unwrap();
    let err = match usher::runtime::Daemon::start(config, &path).await {
        Ok(_) => panic!("a daemon with a short token must not start"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("tokens:1: this token is shorter than 16"),
        "{err}"
    );
    assert!(!err.contains("tooshort"), "{err}");
}
