//! Where rooms' rule state is kept, so a restarted usher (or, in a
//! cluster, the instance taking a room over) continues where the rules
//! were.
//!
//! A room hands its [`RulesSnapshot`] to its [`RoomSaver`] at most every
//! [`SAVE_EVERY`] while its rules change; a writer task per room stores the
//! latest one, so a slow disk or etcd never holds up the room, and only the
//! newest snapshot is ever written. A crash loses at most about a second.
//!
//! - [`StateStore::Dir`]: one file per room in `state_dir`, written to a
//!   temporary file, synced and renamed over the old one, so what is there
//!   is always a whole snapshot. An unreadable file is reported, set aside
//!   as `….unreadable` and the room starts afresh.
//! - [`StateStore::Etcd`]: in a cluster, one key per room, written only
//!   while this instance still holds the room's key (see
//!   [`crate::cluster`]).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, Ownership};
use crate::rules::snapshot::{RulesSnapshot, SnapshotError};

/// How often a room hands over its snapshot at most while its rules change.
/// With the room's one-second idle tick, a change is saved within a second.
pub const SAVE_EVERY: Duration = Duration::from_millis(500);

/// How soon a write that failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where rule state is kept.
#[derive(Clone)]
pub enum StateStore {
    /// Nowhere: state lives as long as the process.
    Off,
    /// One file per room in this directory.
    Dir(Arc<Path>),
    /// One etcd key per room, written while this instance owns the room.
    Etcd(Arc<Cluster>),
}

/// Why saved state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// What is stored is not a snapshot this usher can use.
    #[error("{place}: {source}; it was set aside and the room's rules start afresh")]
    Unusable {
        /// Where it was.
        place: String,
        /// Why it cannot be used.
        source: SnapshotError,
    },
    /// etcd could not be asked, or refused.
    #[error("{0}")]
    Etcd(String),
    /// The room is no longer this instance's to write.
    #[error("not written: this instance no longer owns the room")]
    NotOwner,
}

impl StateStore {
    /// The snapshot saved for `room`, if any.
    pub async fn load(&self, room: &str) -> Result<Option<RulesSnapshot>, PersistError> {
        match self {
            StateStore::Off => Ok(None),
            StateStore::Dir(dir) => {
                let dir = dir.clone();
                let room = room.to_owned();
                tokio::task::spawn_blocking(move || load_file(&dir, &room))
                    .await
                    .unwrap_or(Ok(None))
            }
            StateStore::Etcd(cluster) => cluster.load_state(room).await,
        }
    }

    /// Stores `bytes` as `room`'s snapshot; in a cluster only while
    /// `ownership` holds.
    async fn save(
        &self,
        room: &str,
        bytes: Arc<Vec<u8>>,
        ownership: Option<&Ownership>,
    ) -> Result<(), PersistError> {
        match self {
            StateStore::Off => Ok(()),
            StateStore::Dir(dir) => {
                let path = dir.join(file_name(room));
                tokio::task::spawn_blocking(move || {
                    write_atomically(&path, &bytes).map_err(|source| PersistError::File {
                        path: path.clone(),
                        source,
                    })
                })
                .await
                .unwrap_or(Ok(()))
            }
            StateStore::Etcd(cluster) => match ownership {
                Some(ownership) => cluster.save_state(&bytes, ownership).await,
                None => Err(PersistError::NotOwner),
            },
        }
    }
}

/// A room's snapshots on their way to the store.
pub(crate) struct RoomSaver {
    latest: watch::Sender<Option<Arc<Vec<u8>>>>,
    writer: JoinHandle<()>,
}

impl RoomSaver {
    /// Starts the writer of `room`'s snapshots.
    pub(crate) fn start(store: StateStore, room: String, ownership: Option<Ownership>) -> Self {
        let (latest, mut handed) = watch::channel::<Option<Arc<Vec<u8>>>>(None);
        let writer = tokio::spawn(async move {
            let mut written: Option<Arc<Vec<u8>>> = None;
            let mut failing = false;
            loop {
                // A failed write is tried again, with the newest snapshot.
                let closed = if failing {
                    tokio::select! {
                        changed = handed.changed() => changed.is_err(),
                        _ = tokio::time::sleep(RETRY_AFTER) => false,
                    }
                } else {
                    handed.changed().await.is_err()
                };
                let bytes = handed.borrow_and_update().clone();
                if let Some(bytes) = bytes.filter(|bytes| written.as_ref() != Some(bytes)) {
                    match store.save(&room, bytes.clone(), ownership.as_ref()).await {
                        Ok(()) => {
                            written = Some(bytes);
                            failing = false;
                        }
                        Err(PersistError::NotOwner) => {
                            tracing::info!(
                                "the rules' state was not saved: the room is no longer this instance's"
                            );
                            failing = false;
                        }
                        Err(err) => {
                            if !failing {
                                tracing::error!(error = %err, "the rules' state was not saved; trying again");
                            }
                            failing = true;
                        }
                    }
                }
                if closed {
                    break;
                }
            }
        });
        RoomSaver { latest, writer }
    }

    /// Hands over a snapshot to be written.
    pub(crate) fn hand_over(&self, bytes: Vec<u8>) {
        self.latest.send_replace(Some(Arc::new(bytes)));
    }

    /// Waits until the last snapshot handed over is written.
    pub(crate) async fn finish(self) {
        drop(self.latest);
        let _ = self.writer.await;
    }
}

/// The file a room's snapshot is kept in: its alias with anything but
/// letters, digits, `.`, `_`, `@` and `-` written `%XX`.
pub fn file_name(room: &str) -> String {
    let mut name = String::with_capacity(room.len() + 5);
    for (index, byte) in room.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric()
            || matches!(byte, b'_' | b'@' | b'-')
            || (byte == b'.' && index > 0);
        if plain {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    name.push_str(".json");
    name
}

/// Reads `room`'s snapshot from `dir`; sets an unusable one aside.
pub fn load_file(dir: &Path, room: &str) -> Result<Option<RulesSnapshot>, PersistError> {
    let path = dir.join(file_name(room));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::File { path, source }),
    };
    RulesSnapshot::from_bytes(&bytes)
        .map(Some)
        .map_err(|source| {
            let mut aside = path.clone().into_os_string();
            aside.push(".unreadable");
            let _ = std::fs::rename(&path, &aside);
            PersistError::Unusable {
                place: path.display().to_string(),
                source,
            }
        })
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves
/// either the old file or the new one, whole.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("usher-persist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn room_names_become_safe_file_names() {
        assert_eq!(file_name("hall-a@example.com"), "hall-a@example.com.json");
        assert_eq!(file_name("../x/y z"), "%2E.%2Fx%2Fy%20z.json");
    }

    #[test]
    fn a_torn_or_garbage_file_is_reported_set_aside_and_ignored() {
        let dir = temporary_dir("torn");
        let snapshot = RulesSnapshot {
            version: crate::rules::snapshot::SNAPSHOT_VERSION,
            states: [("r".to_owned(), serde_json::json!({ "n": 1 }))].into(),
            timers: Vec::new(),
            next_timer_id: 2,
            roster: Vec::new(),
            saved_at: 0.0,
        };
        let whole = snapshot.to_bytes();
        let path = dir.join(file_name("room"));
        write_atomically(&path, &whole).unwrap();
        assert_eq!(load_file(&dir, "room").unwrap(), Some(snapshot));

        for bad in [
            &whole[..whole.len() / 2],
            b"\x00\xffgarbage",
            b"",
            b"{\"version\":99}",
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = load_file(&dir, "room").unwrap_err();
            assert!(matches!(err, PersistError::Unusable { .. }), "{err}");
            assert!(err.to_string().contains("room.json"), "{err}");
            assert_eq!(load_file(&dir, "room").unwrap(), None, "set aside");
            assert!(dir.join("room.json.unreadable").exists());
        }
        assert_eq!(load_file(&dir, "never-saved").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
