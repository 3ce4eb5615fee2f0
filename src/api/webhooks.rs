//! `POST /api/webhooks/daily`: Daily's own account of a call, so a call becomes
//! `active` when both parties are really in the Daily room even if a browser
//! never sends its `call_joined` frame, and the timeline records when Daily saw
//! the meeting start and end.
//!
//! Off unless `DAILY_WEBHOOK_SECRET` is set. Every delivery must carry a valid
//! signature over a fresh timestamp, since the endpoint needs no sign-in.
//! Events we cannot use (an unknown room, someone who is not a party) are
//! answered 200 so Daily does not retry or disable the webhook; only a failure on
//! our side (the database) answers 503, which Daily retries.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::Value;

use crate::db::models::{SessionRow, User};
use crate::db::repo;
use crate::db::repo::events::NewEvent;
use crate::error::{ApiError, ApiResult};
use crate::model::{EventData, UserId};
use crate::state::AppState;
use crate::support::calls;
use crate::validate::{self, Lines};
use crate::video::{
    verify_webhook_signature, WebhookEvent, WebhookEventKind, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
};

/// Deliveries older (or further in the future) than this are refused, so a
/// captured delivery cannot be replayed later.
pub const MAX_WEBHOOK_AGE_SECS: i64 = 300;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/daily", web::post().to(daily));
}

#[utoipa::path(
    post,
    path = "/api/webhooks/daily",
    tag = "video",
    request_body(content = serde_json::Value, description = "a Daily.co webhook event, signed with the webhook secret"),
    security(()),
    responses((status = 200, description = "accepted", body = Handled)),
)]
async fn daily(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let secret = state
        .config
        .daily_webhook_secret
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ApiError::NotFound("Daily webhooks are not enabled on this server".into())
        })?;
    authenticate(secret, &req, &body, Utc::now().timestamp())?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if value.get("type").is_none() {
        // Daily checks a new webhook's endpoint with a body that is not an event.
        return Ok(handled(false));
    }
    let event: WebhookEvent = serde_json::from_value(value)
        .map_err(|e| ApiError::BadRequest(format!("not a Daily webhook event: {e}")))?;
    let kind = event.kind();
    let Some(row) = session_of(&state, &event).await? else {
        tracing::debug!(event = %event.event_type, "Daily webhook for a room we do not know");
        return Ok(handled(false));
    };
    let done = match kind {
        WebhookEventKind::ParticipantJoined | WebhookEventKind::ParticipantLeft => {
            participant(&state, &event, &row, kind).await?
        }
        WebhookEventKind::MeetingStarted | WebhookEventKind::MeetingEnded => {
            meeting(&state, &event, &row, kind).await?
        }
        WebhookEventKind::Other => false,
    };
    tracing::info!(session_id = row.id.0, event = %event.event_type, handled = done, "Daily webhook");
    Ok(handled(done))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Handled {
    handled: bool,
}

fn handled(done: bool) -> HttpResponse {
    HttpResponse::Ok().json(Handled { handled: done })
}

/// Signature over `timestamp.body` with the shared secret, and a timestamp
/// within [`MAX_WEBHOOK_AGE_SECS`] of `now`.
fn authenticate(secret: &str, req: &HttpRequest, body: &[u8], now: i64) -> ApiResult<()> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(timestamp), Some(signature)) = (
        header(WEBHOOK_TIMESTAMP_HEADER),
        header(WEBHOOK_SIGNATURE_HEADER),
    ) else {
        return Err(ApiError::Unauthenticated(format!(
            "a Daily webhook needs {WEBHOOK_TIMESTAMP_HEADER} and {WEBHOOK_SIGNATURE_HEADER}"
        )));
    };
    if !verify_webhook_signature(secret, timestamp, body, signature) {
        return Err(ApiError::Unauthenticated(
            "the webhook signature does not match".into(),
        ));
    }
    match parse_timestamp(timestamp) {
        Some(at) if now.abs_diff(at) <= MAX_WEBHOOK_AGE_SECS.unsigned_abs() => Ok(()),
        _ => Err(ApiError::Unauthenticated(format!(
            "the webhook timestamp is not within {MAX_WEBHOOK_AGE_SECS} seconds of now"
        ))),
    }
}

/// Unix seconds, possibly fractional; values that can only be milliseconds are
/// read as such, since Daily documents neither.
fn parse_timestamp(text: &str) -> Option<i64> {
    let value: f64 = text.parse().ok().filter(|v: &f64| v.is_finite())?;
    let secs = if value.abs() >= 1e11 {
        value / 1000.0
    } else {
        value
    };
    Some(secs as i64)
}

async fn session_of(state: &AppState, event: &WebhookEvent) -> ApiResult<Option<SessionRow>> {
    match event.payload.room.as_deref().filter(|r| !r.is_empty()) {
        Some(room) => {
            let room = validate::text("payload.room", room, Lines::Single)?;
            Ok(repo::sessions::by_room_name(&state.db, room).await?)
        }
        None => Ok(None),
    }
}

/// The same path as the browser's `call_joined` / `call_left` frames, as the
/// party whose UUID-like id Daily reports.
async fn participant(
    state: &AppState,
    event: &WebhookEvent,
    row: &SessionRow,
    kind: WebhookEventKind,
) -> ApiResult<bool> {
    let Some(user_id) = event.payload.our_user_id().map(UserId) else {
        return Ok(false);
    };
    if !row.is_party(user_id) {
        // An admin who joined to help, or a token we did not issue.
        return Ok(false);
    }
    let Some(user) = repo::users::by_id(&state.db, user_id)
        .await?
        .map(|u| User::from(&u))
    else {
        return Ok(false);
    };
    let outcome = if kind == WebhookEventKind::ParticipantJoined {
        calls::call_joined(&state.core, &user, row.id).await
    } else {
        calls::call_left(&state.core, &user, row.id).await
    };
    match outcome {
        Ok(()) => Ok(true),
        // The call is over (a late delivery): nothing left to update.
        Err(ApiError::Conflict(_) | ApiError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Recorded on the timeline only: the session ends when a party ends it, since
/// Daily reports `meeting.ended` whenever the room empties, e.g. both parties
/// reconnecting at once.
async fn meeting(
    state: &AppState,
    event: &WebhookEvent,
    row: &SessionRow,
    kind: WebhookEventKind,
) -> ApiResult<bool> {
    let meeting_id = event.payload.meeting_id.clone();
    let data = if kind == WebhookEventKind::MeetingStarted {
        EventData::MeetingStarted { meeting_id }
    } else {
        EventData::MeetingEnded {
            meeting_id,
            duration_seconds: event.payload.duration.map(|d| d.round() as i64),
        }
    };
    let new = NewEvent {
        session_id: Some(row.id),
        actor_id: None,
        consultant_id: row.consultant_id,
        at: repo::now(),
        data,
    };
    let committed = repo::events::record(&state.db, &new).await?;
    state.hub.publish(vec![committed], None);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_seconds_or_milliseconds() {
        assert_eq!(parse_timestamp("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_timestamp("1700000000.75"), Some(1_700_000_000));
        assert_eq!(parse_timestamp("1700000000123"), Some(1_700_000_000));
        assert_eq!(parse_timestamp("soon"), None);
        assert_eq!(parse_timestamp("NaN"), None);
        assert_eq!(parse_timestamp("inf"), None);
        // Absurd values saturate instead of overflowing the age check.
        assert_eq!(parse_timestamp("-1e300"), Some(i64::MIN));
    }
}
