//! Every fact about Tencent's room engine that usher guesses, in one place.
//!
//! `../shared/reference/platforms.md` section 2 marks what public sources
//! show: [V] verified, [I] inferred, [?] unknown. The adapter and its
//! simulator rely on the [I] and [?] facts below; each says what was
//! assumed and why, so a maintainer with better information corrects it
//! here. Verified facts live where they are used (`wire.rs`, `rest.rs`).
//!
//! Guesses the simulator makes (`crate::sim::tencent`), where the
//! platform's behaviour is not documented:
//! - `destroy_room` sends `Room.CallbackAfterDestroyRoom` alone, no leave
//!   callback per member (2.6: "probably leave callbacks — ?"). [?]
//! - A ban removes a member who is in the room with
//!   `Room.CallbackAfterMemberLeave`, `Type` `Kicked` (2.6). [I]
//! - A scheduled room turns `Running` when its owner enters, and says so
//!   with `Room.CallbackAfterUpdateRoomInfo`. [I]
//! - In a room with seats, a member who enters takes the first free seat
//!   that is not locked (the `FreeToTake` mode). [I]
//! - Callbacks are sent once: the platform's retry policy for Room
//!   callbacks is unknown (2.2). [?]
//!
//! And one the adapter makes without a line of code to show for it: Room
//! callbacks carry `Sign` and `RequestTime` when a callback token is set,
//! as Chat and Live callbacks do (269/32431, 269/117703; the same console
//! setting configures them). usher checks them only when `callback_token`
//! is configured. [I]

use std::time::Duration;

use serde_json::{Value, json};

/// Error codes that usher retries besides the verified ones (60007 and
/// 60011 rate limits, 100001 internal error): 60008, which the IM common
/// error table gives as "service request timed out" (679/131708; the
/// reference quotes only part of that table). [I]
pub const TRANSIENT_CODES: &[i64] = &[60008];

/// A time above this is taken to be in milliseconds, below it in seconds.
/// The reference (2.2) and seed 003 mix the two (`EventTime` in ms,
/// `ScheduleStartTime` and `CreateTime` in s) and the field tables are not
/// always right about which, so usher reads both: 10^11 seconds is the year
/// 5138 and 10^11 ms is 1973. [I]
pub const MILLISECONDS_ABOVE: f64 = 1e11;

/// How long a callback is trusted over a member list that disagrees with
/// it. Nothing documents whether `get_room_member_list` shows a member the
/// moment their enter callback is sent; usher assumes the list may lag by a
/// moment, so a member who entered (or left) this recently keeps the
/// callback's word until the next reconcile. [I]
pub const LIST_MAY_LAG: Duration = Duration::from_secs(5);

/// How long after a member enters usher waits for their seat before it
/// calls muting them unsupported, when the room's seats are `FreeToTake`
/// and one is free: such a member takes a seat right after entering, and
/// the seat callback follows the enter callback; how soon is not
/// documented. [I]
pub const SEAT_MAY_FOLLOW: Duration = Duration::from_secs(2);

/// The page size usher asks `get_room_member_list` for: the documented
/// default (60715). The largest page the platform allows is not documented.
/// [?]
pub const MEMBER_PAGE: u32 = 50;

/// How many pages one member listing may take before usher gives up on it
/// (a cursor that never ends): 50 × 2,000 members is far past any room. [I]
pub const MAX_MEMBER_PAGES: usize = 2_000;

/// The body of `lock_seat` that changes only the seat's microphone. Whether
/// the platform keeps or resets a `Forbid…` flag left out is not
/// documented, so usher sends all three, the other two as it last saw
/// them, which is right either way; the simulator keeps what is left out.
/// [?]
pub fn lock_seat_audio(
    room: &str,
    index: i64,
    taken_disabled: bool,
    video_disabled: bool,
    audio_disabled: bool,
) -> Value {
    json!({
        "RoomId": room,
        "Index": index,
        "ForbidTaken": taken_disabled,
        "ForbidVideo": video_disabled,
        "ForbidAudio": audio_disabled,
    })
}

/// Whether the room's `IsAudioDisabled` mutes a member with this role:
/// TUIRoomKit's "disable all microphones" leaves the owner and admins able
/// to speak, so it mutes members only. [I]
pub fn room_mute_applies(host: bool) -> bool {
    !host
}

/// Whether a seat's `Member_Account` means nobody sits there: absent or
/// empty. A seat callback lists the seats it changed; a seat it leaves out
/// is unchanged (the sample lists one seat). [I]
pub fn seat_is_free(member: Option<&str>) -> bool {
    member.is_none_or(|member| member.trim().is_empty())
}

/// Role words beyond the documented `Owner` / `Admin` / `Member`: the
/// member-list sample writes `RoomOwner`; `Administrator` is accepted in
/// case the room engine spells admin as other Tencent APIs do. [I]
pub fn role_word(word: &str) -> RoleWord {
    let word = word.trim();
    if ["Owner", "RoomOwner"]
        .iter()
        .any(|owner| word.eq_ignore_ascii_case(owner))
    {
        RoleWord::Owner
    } else if ["Admin", "Administrator"]
        .iter()
        .any(|admin| word.eq_ignore_ascii_case(admin))
    {
        RoleWord::Admin
    } else {
        RoleWord::Member
    }
}

/// A member's role on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoleWord {
    /// The room's owner.
    Owner,
    /// An admin the owner appointed.
    Admin,
    /// Everyone else (and any word usher does not know: the least power).
    #[default]
    Member,
}

/// The simulator's answers where the platform's exact code is not
/// documented (the IM common error table's meanings, as usher reads them).
/// [I]
pub mod sim_codes {
    /// The URL's admin parameters are missing or malformed, or the command
    /// is unknown (IM: "HTTP parse error").
    pub const BAD_REQUEST: i64 = 60002;
    /// The body is empty or not JSON (IM: "JSON parse error").
    pub const BAD_BODY: i64 = 60003;
    /// The `identifier` is not the app admin.
    pub const NOT_ADMIN: i64 = 60010;
    /// A seat call in a room without seats, or a seat that does not exist
    /// (the room engine's "invalid parameter").
    pub const NO_SUCH_SEAT: i64 = 100002;
}
