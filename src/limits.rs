//! Caps on what usher takes from the outside, in one place.
//!
//! Each bounds the memory or time a server could otherwise make usher spend
//! without end. They sit far above anything a working platform sends, so only
//! a broken or hostile peer meets one, and it then gets an error naming the
//! cap (and the stream or call is reset), never a stall or a growing heap.

use std::time::Duration;

/// The longest line of an event stream, in bytes. The largest real event (a
/// participant with every field, or the stage of a full room) is a few KB.
pub const MAX_STREAM_LINE: usize = 1 << 20;

/// The largest event of an event stream, in bytes: its name and its `data:`
/// lines joined. Several lines under [`MAX_STREAM_LINE`] cannot add up past it.
pub const MAX_STREAM_EVENT: usize = 1 << 20;

/// The largest REST reply body, in bytes. The roster (`participants`) is the
/// largest reply, some 2 KB a participant: this is about 4,000 people.
pub const MAX_REPLY_BODY: usize = 8 << 20;

/// The longest `Retry-After` usher waits for; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The token lifetime assumed when the platform gives none usable (`expires`
/// zero, negative or not a number).
pub const UNKNOWN_TOKEN_LIFETIME: Duration = Duration::from_secs(30);

/// The longest token lifetime believed: a longer one (or an absurd value) is
/// cut to this, so a token is always refreshed within half an hour.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
