//! Booking Huawei meetings ahead with the management API's create call
//! (§1.5, the REST counterpart of seed 000's BookConf), moving them and
//! cancelling them (paths and answer in `inferred`). Huawei books to the
//! minute and for 15 to 1440 minutes: a session's start is rounded down to
//! its minute and its length up to whole minutes, within those bounds.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::auth::AccessAuth;
use super::inferred::{self, BookingReply};
use super::rest::{Auth, CallError};
use super::wire::{self, BOOKING_MINUTES, ScheduleConference};
use crate::clock::format_timestamp;
use crate::platform::booking::{BookError, Booked, Booker, BookingRequest};

/// The create (and move) body for a session.
pub fn schedule_body(request: &BookingRequest) -> ScheduleConference {
    let start = (request.start / 60.0).floor() * 60.0;
    let minutes = ((request.end - start) / 60.0).ceil() as i64;
    ScheduleConference {
        subject: request.title.clone(),
        start_time: minute_text(start),
        length: minutes.clamp(*BOOKING_MINUTES.start(), *BOOKING_MINUTES.end()),
        media_types: inferred::BOOKING_MEDIA.to_owned(),
    }
}

/// `yyyy-MM-dd HH:mm` in UTC.
fn minute_text(at: f64) -> String {
    let text = format_timestamp(at);
    text.get(..16).unwrap_or(&text).replacen('T', " ", 1)
}

fn book_error(err: CallError) -> BookError {
    match err {
        CallError::Retryable { .. } | CallError::Protocol { .. } => {
            BookError::Unavailable(err.to_string())
        }
        CallError::Expired { .. } | CallError::Refused { .. } => {
            BookError::Refused(err.to_string())
        }
    }
}

impl AccessAuth {
    async fn booking_call(
        &self,
        call: &'static str,
        method: reqwest::Method,
        conference: Option<&str>,
        body: Option<&Value>,
    ) -> Result<bytes::Bytes, CallError> {
        let rest = self.rest();
        self.with_token(|token| {
            let method = method.clone();
            async move {
                let query: Vec<(&str, &str)> = conference
                    .map(|id| ("conferenceID", id))
                    .into_iter()
                    .collect();
                rest.call(
                    call,
                    method,
                    wire::CONFERENCES_PATH,
                    &query,
                    Auth {
                        access: Some(&token),
                        ..Auth::default()
                    },
                    body,
                )
                .await
            }
        })
        .await
    }
}

fn json(body: &ScheduleConference) -> Result<Value, BookError> {
    serde_json::to_value(body).map_err(|err| BookError::Refused(err.to_string()))
}

impl Booker for AccessAuth {
    fn book<'a>(&'a self, request: &'a BookingRequest) -> BoxFuture<'a, Result<Booked, BookError>> {
        async move {
            let body = json(&schedule_body(request))?;
            let answer = self
                .booking_call("book meeting", reqwest::Method::POST, None, Some(&body))
                .await
                .map_err(book_error)?;
            let booked: BookingReply = serde_json::from_slice(&answer).map_err(|err| {
                BookError::Unavailable(format!(
                    "book meeting: the answer is not the list of meetings expected: {err}"
                ))
            })?;
            let id = booked
                .into_iter()
                .map(|meeting| meeting.conference_id)
                .find(|id| !id.is_empty())
                .ok_or_else(|| {
                    BookError::Unavailable("book meeting: the answer names no meeting".to_owned())
                })?;
            Ok(Booked {
                alias: id.clone(),
                id,
            })
        }
        .boxed()
    }

    fn rebook<'a>(
        &'a self,
        booked: &'a Booked,
        request: &'a BookingRequest,
    ) -> BoxFuture<'a, Result<(), BookError>> {
        async move {
            let body = json(&schedule_body(request))?;
            self.booking_call(
                "move meeting",
                reqwest::Method::PUT,
                Some(&booked.id),
                Some(&body),
            )
            .await
            .map(|_| ())
            .map_err(book_error)
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, booked: &'a Booked) -> BoxFuture<'a, Result<(), BookError>> {
        async move {
            self.booking_call(
                "cancel meeting",
                reqwest::Method::DELETE,
                Some(&booked.id),
                None,
            )
            .await
            .map(|_| ())
            .map_err(book_error)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_booked_to_the_minute_within_huaweis_bounds() {
        let request = |start: f64, end: f64| BookingRequest {
            title: "Physics 101".into(),
            start,
            end,
            room_hint: "x".into(),
        };
        // 2027-03-22T08:00:30Z – 09:30:00Z.
        let body = schedule_body(&request(1_805_702_430.0, 1_805_707_800.0));
        assert_eq!(body.start_time, "2027-03-22 08:00");
        assert_eq!(body.length, 90);
        assert_eq!(
            schedule_body(&request(1_805_702_400.0, 1_805_702_460.0)).length,
            15
        );
    }
}
