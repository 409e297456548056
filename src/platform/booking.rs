//! Booking meetings ahead: the optional part of the boundary for platforms
//! that can book or create a meeting for a time (Huawei's create
//! conference, the REST counterpart of seed 000's BookConf; Agora's create
//! room with a schedule, seed 004).
//!
//! A [`Booker`] books one meeting per request, moves it, and cancels it.
//! What usher books, and when, is the runtime's business
//! (`runtime::booking`); the booker only speaks the platform.

use futures_util::future::BoxFuture;

/// One meeting to book: a timetable session.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRequest {
    /// What the meeting is called (the session's title).
    pub title: String,
    /// When it starts (UNIX seconds).
    pub start: f64,
    /// When it ends (UNIX seconds).
    pub end: f64,
    /// A name usher would like the meeting to have, where the platform lets
    /// usher choose it (Agora's room uuid); unique per session.
    pub room_hint: String,
}

/// A meeting booked on the platform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Booked {
    /// The booking's id on the platform (what moves and cancels name).
    pub id: String,
    /// The meeting's id to watch it by (what a config would list as
    /// `alias`).
    pub alias: String,
}

/// Why a booking call did not work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The platform said no; trying again will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// The platform could not be reached or failed; trying again may work.
    #[error("{0}")]
    Unavailable(String),
}

/// A platform's booking calls.
pub trait Booker: Send + Sync {
    /// Books a meeting for `request`.
    fn book<'a>(&'a self, request: &'a BookingRequest) -> BoxFuture<'a, Result<Booked, BookError>>;

    /// Moves (or renames) the booked meeting to `request`'s time.
    fn rebook<'a>(
        &'a self,
        booked: &'a Booked,
        request: &'a BookingRequest,
    ) -> BoxFuture<'a, Result<(), BookError>>;

    /// Cancels the booked meeting.
    fn cancel<'a>(&'a self, booked: &'a Booked) -> BoxFuture<'a, Result<(), BookError>>;
}
