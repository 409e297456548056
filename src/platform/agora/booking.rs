//! Booking Agora rooms ahead: a booked session is a room of its own,
//! created with seed 004's call and the session's schedule (its uuid is
//! the request's `room_hint`, so booking it again finds it existing);
//! moved by setting its `schedule` property and cancelled by closing it
//! (both guesses, in `inferred`).

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::config::CreateConfig;
use super::rest::{CallError, Created};
use super::{Account, create_body, inferred};
use crate::clock::{format_timestamp, unix_now};
use crate::model::Span;
use crate::platform::booking::{BookError, Booked, Booker, BookingRequest};

/// The longest room name Agora takes (seed 004).
const MAX_NAME: usize = 64;

/// The create settings for a session.
fn create_config(request: &BookingRequest) -> CreateConfig {
    let name: String = request.title.trim().chars().take(MAX_NAME).collect();
    CreateConfig {
        name: if name.is_empty() {
            request.room_hint.clone()
        } else {
            name
        },
        start: Some(format_timestamp(request.start)),
        duration: Some(Span(Duration::from_secs_f64(
            (request.end - request.start).max(0.0),
        ))),
        ..CreateConfig::default()
    }
}

fn book_error(err: CallError) -> BookError {
    match err {
        CallError::Retryable { .. } => BookError::Unavailable(err.to_string()),
        _ => BookError::Refused(err.to_string()),
    }
}

impl Booker for Account {
    fn book<'a>(&'a self, request: &'a BookingRequest) -> BoxFuture<'a, Result<Booked, BookError>> {
        async move {
            let hook = self.hook_url.as_ref().ok_or_else(|| {
                BookError::Refused("booking a room needs webhooks.public_url".to_owned())
            })?;
            let body = create_body(&create_config(request), hook, unix_now());
            let room = &request.room_hint;
            let created = self
                .rest
                .create_room(room, &body)
                .await
                .map_err(book_error)?;
            if created.data == Created::Existed {
                tracing::info!(room = %room, "the booked Agora room exists already");
            }
            self.created.lock().await.insert(room.clone());
            Ok(Booked {
                id: room.clone(),
                alias: room.clone(),
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
            let body = inferred::PropertiesBody {
                properties: inferred::PropertiesSet {
                    schedule: Some(create_config(request).schedule(request.start)),
                },
                cause: serde_json::json!({}),
            };
            self.rest
                .set_properties(&booked.id, &body)
                .await
                .map(|_| ())
                .map_err(book_error)
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, booked: &'a Booked) -> BoxFuture<'a, Result<(), BookError>> {
        async move {
            match self
                .rest
                .set_state(&booked.id, inferred::state::CLOSED)
                .await
            {
                Ok(_) | Err(CallError::NotFound { .. }) => Ok(()),
                Err(err) => Err(book_error(err)),
            }
        }
        .boxed()
    }
}
