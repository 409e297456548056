//! Several usher instances sharing rooms through etcd.
//!
//! - [`config`]: the `cluster:` section.
//! - [`etcd`]: the little of etcd's v3 API usher needs, over its JSON
//!   gateway (no `protoc` at build time).

pub mod config;
pub mod etcd;
