//! A throwaway etcd for `usher bench failover` and the cluster tests:
//! Debian's `etcd-server` binary on free loopback ports, with a data
//! directory of its own; killed and removed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a local etcd could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LocalEtcdError {
    /// `etcd` is not installed.
    #[error("`etcd` is not on PATH; install it (Debian: apt-get install etcd-server)")]
    Missing,
    /// It did not start or answer.
    #[error("etcd did not start: {0}")]
    Start(String),
}

/// A running etcd.
pub struct LocalEtcd {
    child: Child,
    url: String,
    dir: PathBuf,
}

/// True when `etcd` can be run.
pub fn installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port() -> Result<u16, LocalEtcdError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| LocalEtcdError::Start(err.to_string()))
}

impl LocalEtcd {
    /// Starts etcd on 127.0.0.1 and waits until it reports itself healthy.
    pub async fn start(name: &str) -> Result<LocalEtcd, LocalEtcdError> {
        if !installed() {
            return Err(LocalEtcdError::Missing);
        }
        let dir = std::env::temp_dir().join(format!("usher-etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (client, peer) = (free_port()?, free_port()?);
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", "local", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("local={peer_url}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| LocalEtcdError::Start(err.to_string()))?;
        let etcd = LocalEtcd { child, url, dir };
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|err| LocalEtcdError::Start(err.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(format!("{}/health", etcd.url)).send().await {
                if response
                    .text()
                    .await
                    .is_ok_and(|text| text.contains("true"))
                {
                    return Ok(etcd);
                }
            }
            if Instant::now() > deadline {
                return Err(LocalEtcdError::Start(format!("no answer at {}", etcd.url)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its client URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends it a signal (`STOP`, `CONT`, …).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// One counter from its `/metrics` (summed over label sets).
    pub async fn counter(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
