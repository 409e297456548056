//! What usher asks of the operating system.
//!
//! - Every watched room holds an event stream open, so a daemon with
//!   thousands of rooms needs thousands of file descriptors. Many systems
//!   start processes with a soft limit of 1,024 and allow far more; usher
//!   raises its soft limit to the hard one at startup, and says so when
//!   even that is below what its rooms need ([`open_files_needed`]).

use crate::platform::http::{STREAMS_PER_CONNECTION, StreamProtocol};

/// Open files kept for everything but connections: listeners, the audit
/// log, rule files being reloaded, the runtime's own.
const OPEN_FILES_MARGIN: usize = 256;

/// About how many open files `rooms` rooms need at most, with their event
/// streams over `protocol`: one per stream connection (a room each over
/// HTTP/1; [`STREAMS_PER_CONNECTION`] rooms share one over HTTP/2), one per
/// REST call in flight (REST calls go over HTTP/1, and every room opens its
/// session at once when usher starts), and a margin.
pub fn open_files_needed(rooms: usize, protocol: StreamProtocol) -> u64 {
    let stream_connections = match protocol {
        StreamProtocol::Http1 => rooms,
        StreamProtocol::Http2 => rooms.div_ceil(STREAMS_PER_CONNECTION),
    };
    (stream_connections + rooms + OPEN_FILES_MARGIN) as u64
}

/// The open-files limit is below what the rooms need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{rooms} rooms with event streams over {protocol} need about {needed} open files; the limit is {limit} (raise it: `ulimit -n`, or LimitNOFILE= in the systemd unit)"
)]
pub struct TooFewOpenFiles {
    /// Rooms watched.
    pub rooms: usize,
    /// How their streams travel.
    pub protocol: StreamProtocol,
    /// About how many open files they need.
    pub needed: u64,
    /// The limit in force.
    pub limit: u64,
}

/// Checks `limit` against what `rooms` rooms need.
pub fn check_open_files(
    rooms: usize,
    protocol: StreamProtocol,
    limit: u64,
) -> Result<(), TooFewOpenFiles> {
    let needed = open_files_needed(rooms, protocol);
    if limit < needed {
        return Err(TooFewOpenFiles {
            rooms,
            protocol,
            needed,
            limit,
        });
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit and returns the
/// limit now in force, or why it could not.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid `rlimit`; the kernel only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    #[allow(
        clippy::unnecessary_cast,
        reason = "rlim_t is u64 on 64-bit Linux, not everywhere"
    )]
    Ok(limit.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_follow_the_protocol_streams_use() {
        assert_eq!(open_files_needed(10_000, StreamProtocol::Http1), 20_256);
        assert_eq!(
            open_files_needed(10_000, StreamProtocol::Http2),
            125 + 10_000 + 256,
            "80 streams share a connection"
        );
        assert_eq!(open_files_needed(1, StreamProtocol::Http2), 258);
        assert_eq!(
            check_open_files(10_000, StreamProtocol::Http2, 20_000),
            Ok(()),
            "the case a 20,000 limit refused"
        );
        let refused = check_open_files(10_000, StreamProtocol::Http1, 20_000).unwrap_err();
        assert_eq!(refused.needed, 20_256);
        assert!(refused.to_string().contains("ulimit -n"), "{refused}");
        for rooms in [0, 1, 79, 80, 81, 5_000, 100_000] {
            assert!(
                open_files_needed(rooms, StreamProtocol::Http2)
                    <= open_files_needed(rooms, StreamProtocol::Http1)
            );
        }
    }

    #[test]
    fn the_limit_is_raised_to_the_hard_limit() {
        let now = raise_open_files_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(limit.rlim_cur, limit.rlim_max);
        #[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 everywhere")]
        let current = limit.rlim_cur as u64;
        assert_eq!(now, current);
    }
}
