//! The `cluster:` section: several usher instances sharing rooms through etcd.
//!
//! ```yaml
//! cluster:
//!   etcd: [http://10.0.0.5:2379, http://10.0.0.6:2379]
//!   node: ${HOSTNAME}      # this instance's name; default: the host's name
//!   lease_ttl: 10s         # how long a silent instance keeps its rooms
//!   prefix: /usher         # where in etcd (several clusters may share one)
//! ```
//!
//! Every instance loads the same config; only `node` differs, so it may be
//! written `${VARIABLE}` and read from the environment.

use std::time::Duration;

use serde::Deserialize;

use crate::model::Span;

/// The shortest lease usher accepts: etcd itself grants none shorter than
/// about 1.5 s with its default timings, and keep-alives go out three times
/// a lease.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);

/// The longest lease usher accepts: a dead instance's rooms wait this long.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(300);

/// `cluster:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd's client URLs (`http://host:2379`); any one that answers will do.
    pub etcd: Vec<String>,
    /// This instance's name, unique in the cluster: text or `${VARIABLE}`.
    #[serde(default)]
    pub node: Option<String>,
    /// How long an instance that stops renewing keeps its rooms.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: Span,
    /// The key prefix in etcd.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_lease_ttl() -> Span {
    Span::secs(10)
}

fn default_prefix() -> String {
    "/usher".to_owned()
}

/// Why `cluster:` cannot be used; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterConfigError {
    /// No etcd URL.
    #[error("cluster.etcd: list at least one etcd URL, like [http://127.0.0.1:2379]")]
    NoEndpoints,
    /// An etcd URL usher cannot use.
    #[error("cluster.etcd: `{0}` is not an http:// URL of an etcd member")]
    BadEndpoint(String),
    /// The lease is too short or too long.
    #[error("cluster.lease_ttl must be between {}s and {}s", MIN_LEASE_TTL.as_secs(), MAX_LEASE_TTL.as_secs())]
    LeaseTtl,
    /// `node` names an environment variable that is not set, or is empty.
    #[error(
        "cluster.node: {0}; give each instance its own name (`node: ${{HOSTNAME}}` or a literal)"
    )]
    Node(String),
    /// The prefix is not a path.
    #[error("cluster.prefix must start with `/` and not end with one, like /usher")]
    Prefix,
}

impl ClusterConfig {
    /// Checks what can be checked without the network or the environment
    /// (the node's name is read when the instance joins).
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        self.endpoints()?;
        if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&self.lease_ttl.0) {
            return Err(ClusterConfigError::LeaseTtl);
        }
        if !self.prefix.starts_with('/') || self.prefix.len() < 2 || self.prefix.ends_with('/') {
            return Err(ClusterConfigError::Prefix);
        }
        Ok(())
    }

    /// etcd's client URLs.
    pub fn endpoints(&self) -> Result<Vec<url::Url>, ClusterConfigError> {
        if self.etcd.is_empty() {
            return Err(ClusterConfigError::NoEndpoints);
        }
        self.etcd
            .iter()
            .map(|written| {
                url::Url::parse(written.trim())
                    .ok()
                    .filter(|url| url.scheme() == "http" && url.host_str().is_some())
                    .ok_or_else(|| ClusterConfigError::BadEndpoint(written.clone()))
            })
            .collect()
    }

    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        self.lease_ttl.0
    }

    /// This instance's name: `node` (with `${VARIABLE}` read from the
    /// environment), else the host's name.
    pub fn node_name(&self) -> Result<String, ClusterConfigError> {
        let name = match self.node.as_deref().map(str::trim) {
            Some(written) => match written
                .strip_prefix("${")
                .and_then(|rest| rest.strip_suffix('}'))
            {
                Some(variable) => std::env::var(variable)
                    .map_err(|_| ClusterConfigError::Node(format!("${{{variable}}} is not set")))?,
                None => written.to_owned(),
            },
            None => host_name()
                .ok_or_else(|| ClusterConfigError::Node("the host has no name".to_owned()))?,
        };
        let name = name.trim().to_owned();
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            return Err(ClusterConfigError::Node(format!(
                "`{name}` cannot name a node (empty, or with `/`)"
            )));
        }
        Ok(name)
    }
}

/// The host's name, as `hostname` prints it.
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8(buffer[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(yaml: &str) -> ClusterConfig {
        crate::yaml::from_str(yaml).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn defaults_and_checks() {
        let config = cluster("etcd: [http://127.0.0.1:2379]\nnode: hall-1\n");
        assert_eq!(config.lease_ttl, Span::secs(10));
        assert_eq!(config.prefix, "/usher");
        assert_eq!(config.node_name().unwrap(), "hall-1");
        assert!(config.validate().is_ok());
        let short = cluster("etcd: [http://127.0.0.1:2379]\nnode: a\nlease_ttl: 1s\n");
        assert_eq!(short.validate(), Err(ClusterConfigError::LeaseTtl));
        let tls = cluster("etcd: [https://etcd:2379]\nnode: a\n");
        assert!(matches!(
            tls.validate(),
            Err(ClusterConfigError::BadEndpoint(_))
        ));
        let unset = cluster("etcd: [http://127.0.0.1:2379]\nnode: ${USHER_TEST_UNSET_NODE}\n");
        assert_eq!(
            unset.node_name(),
            Err(ClusterConfigError::Node(
                "${USHER_TEST_UNSET_NODE} is not set".to_owned()
            ))
        );
        let host = cluster("etcd: [http://127.0.0.1:2379]\n");
        assert!(!host.node_name().unwrap().is_empty(), "the host's name");
    }
}
