//! A real browser for the dashboard's tests: Debian's headless Chromium,
//! driven over WebDriver by its chromedriver on a free loopback port, with a
//! fresh profile each time. `.ci/run` installs both packages.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Where Debian puts them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser window, and the chromedriver behind it.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// A browser with JavaScript on.
    pub async fn start(name: &str) -> Browser {
        Browser::launch(name, true).await
    }

    /// A browser with JavaScript off.
    pub async fn without_javascript(name: &str) -> Browser {
        Browser::launch(name, false).await
    }

    async fn launch(name: &str, javascript: bool) -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
            );
        }
        let port = free_port();
        // A process group of its own, which the browser joins: dropping the
        // browser ends every process of it, even after a failed test.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("usher-chromium-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let mut browser = Browser {
            client: None,
            driver,
            profile,
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities(&browser.profile, javascript))
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver gave no browser within 20 s: {err}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        client
            .set_window_size(1280, 900)
            .await
            .expect("the window can be sized");
        browser.client = Some(client);
        browser
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Opens `url` and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("the browser opens {url}: {err}"));
    }

    /// The text of every element matching `css`, in document order.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        // A live update may replace an element between finding it and
        // reading it; then the page is read again, so no element is lost.
        'reading: for _ in 0..20 {
            let Ok(found) = self.client().find_all(Locator::Css(css)).await else {
                return Vec::new();
            };
            let mut texts = Vec::new();
            for element in found {
                match element.text().await {
                    Ok(text) => texts.push(text),
                    Err(_) => continue 'reading,
                }
            }
            return texts;
        }
        panic!("the elements matching {css} kept being replaced while read");
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client().find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Attribute `name` of the first element matching `css`, if both exist.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client().find(Locator::Css(css)).await.ok()?;
        element.attr(name).await.ok().flatten()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |found| found.len())
    }

    /// Waits until the page says its live updates are connected.
    pub async fn live(&self) {
        self.until(
            Duration::from_secs(10),
            "the page's live updates to connect",
            async || self.text("#live-state").await.as_deref() == Some("live"),
        )
        .await;
    }

    /// Waits until `condition` holds, checking every 20 ms, and panics naming
    /// `what` (and showing the page) if it still does not after `timeout`.
    pub async fn until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl AsyncFnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if condition().await {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                let page = self.client().source().await.unwrap_or_default();
                panic!("timed out after {timeout:?} waiting for {what}; the page:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.client()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("the page runs {script:?}: {err}"))
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self
            .client()
            .screenshot()
            .await
            .expect("the browser takes a screenshot");
        std::fs::write(path, png).expect("the screenshot can be written");
    }

    /// Closes the browser and its driver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = -(self.driver.id() as i32);
        // SAFETY: kill(2) with a negative pid signals the process group the
        // driver leads; it touches no memory.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.driver.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever of the group is left is ended.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Chromium as this machine runs it: headless, no sandbox (tests may run
/// as root), nothing fetched from the network, a fresh profile.
fn capabilities(profile: &Path, javascript: bool) -> serde_json::Map<String, Value> {
    let mut options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    if !javascript {
        options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
