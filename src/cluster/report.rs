//! `usher cluster status`: the live nodes and every room's owner, read
//! from etcd without joining the cluster.

use std::fmt::Write as _;

use super::assign::assign;
use super::config::ClusterConfig;
use super::{Cluster, JoinError};

/// The cluster as text: the live nodes, then each room of the config with
/// its owner (`-` when free) and, when another node should have it by the
/// balance, that node.
pub async fn status_text(config: &ClusterConfig, rooms: &[&str]) -> Result<String, JoinError> {
    let observer = Cluster::observer(config)?;
    let (mut nodes, owners) = observer.owners().await?;
    nodes.sort();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "nodes: {}",
        if nodes.is_empty() {
            "none".to_owned()
        } else {
            nodes.join(", ")
        }
    );
    let live: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let balanced = assign(rooms, &live);
    let width = rooms
        .iter()
        .map(|room| room.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(text, "{:width$}  OWNER", "ROOM");
    for room in rooms {
        let owner = owners.get(*room).map_or("-", String::as_str);
        let _ = match balanced.get(room) {
            Some(due) if due != owner => {
                writeln!(text, "{room:width$}  {owner}  (moving to {due})")
            }
            _ => writeln!(text, "{room:width$}  {owner}"),
        };
    }
    let unknown: Vec<&String> = owners
        .keys()
        .filter(|room| !rooms.contains(&room.as_str()))
        .collect();
    if !unknown.is_empty() {
        let _ = writeln!(
            text,
            "held but not in this config: {}",
            unknown
                .iter()
                .map(|room| room.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(text)
}
