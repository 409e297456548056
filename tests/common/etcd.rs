//! A real etcd for the cluster tests (see [`usher::bench::etcd`]), and
//! the one reason such a test may be skipped: `etcd` not installed.

pub use usher::bench::etcd::LocalEtcd as Etcd;

/// True when `etcd` can be run; otherwise says why the test is skipped.
pub fn available(test: &str) -> bool {
    let found = usher::bench::etcd::installed();
    if !found {
        eprintln!(
            "SKIPPED {test}: `etcd` is not on PATH (install Debian's etcd-server; .ci/run does)"
        );
    }
    found
}

/// Starts a test's etcd.
pub async fn start(name: &str) -> Etcd {
    Etcd::start(name)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}
