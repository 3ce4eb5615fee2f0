//! The event stream as stored: what a transaction adds, and the reads the event hub
//! (catch-up after a gap) and resuming sockets (`/ws?since=`) need.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::models::{SessionEventRow, SessionRow};
use crate::db::schema::{event_stream, session_events, support_sessions};
use crate::db::{Db, DbResult};
use crate::model::event::Event;
use crate::model::{EventData, EventId, SessionId, UserId};

/// An event about to be written in a transaction.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub session_id: Option<SessionId>,
    pub actor_id: Option<UserId>,
    pub consultant_id: Option<UserId>,
    pub at: NaiveDateTime,
    pub data: EventData,
}

impl NewEvent {
    pub fn committed(&self, id: EventId) -> Event {
        Event {
            id,
            session_id: self.session_id,
            actor_id: self.actor_id,
            consultant_id: self.consultant_id,
            at: self.at,
            data: self.data.clone(),
        }
    }
}

/// What a state change committed: its result and the events it wrote, in order.
/// The caller publishes the events (they are committed, the reply may go out).
#[derive(Debug)]
pub struct Committed<T> {
    pub value: T,
    pub events: Vec<Event>,
}

impl<T> Committed<T> {
    pub fn new(value: T, events: Vec<Event>) -> Self {
        Committed { value, events }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Committed<U> {
        Committed {
            value: f(self.value),
            events: self.events,
        }
    }
}

/// Stores a timeline-only event (a webhook's meeting report) in a transaction of its own.
pub async fn record(db: &Db, new: &NewEvent) -> DbResult<Event> {
    db_run!(db, write, |conn| {
        Ok(super::tx::insert_event!(conn, new))
    })
}

/// The newest event id (0 for an empty stream): where the hub starts at start-up.
pub async fn last_id(db: &Db) -> DbResult<EventId> {
    db_run!(db, lookup, |conn| {
        let max: Option<EventId> = session_events::table
            .select(diesel::dsl::max(session_events::id))
            .get_result(conn)
            .await?;
        Ok(max.unwrap_or(EventId(0)))
    })
}

/// Events before this id predate typed payloads and are never replayed.
pub async fn replay_floor(db: &Db) -> DbResult<EventId> {
    db_run!(db, lookup, |conn| {
        let floor: Option<i64> = event_stream::table
            .select(event_stream::replay_floor)
            .get_result(conn)
            .await
            .optional()?;
        Ok(EventId(floor.unwrap_or(0)))
    })
}

/// Up to `limit` events after `after` and up to `upto` (inclusive), in id order.
pub async fn range(
    db: &Db,
    after: EventId,
    upto: Option<EventId>,
    limit: i64,
) -> DbResult<Vec<SessionEventRow>> {
    db_run!(db, read, |conn| {
        let mut query = session_events::table
            .filter(session_events::id.gt(after))
            .order(session_events::id)
            .limit(limit)
            .select(SessionEventRow::as_select())
            .into_boxed();
        if let Some(upto) = upto {
            query = query.filter(session_events::id.le(upto));
        }
        Ok(query.load(conn).await?)
    })
}

/// The rows of these sessions (missing ids are left out), for building frames of
/// events read back from storage.
pub async fn sessions_of(db: &Db, ids: &[SessionId]) -> DbResult<Vec<SessionRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    db_run!(db, read, |conn| {
        Ok(support_sessions::table
            .filter(support_sessions::id.eq_any(ids))
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    })
}

/// One session's timeline, oldest first.
pub async fn of_session(db: &Db, session_id: SessionId) -> DbResult<Vec<SessionEventRow>> {
    db_run!(db, read, |conn| {
        Ok(session_events::table
            .filter(session_events::session_id.eq(session_id))
            .order(session_events::id)
            .select(SessionEventRow::as_select())
            .load(conn)
            .await?)
    })
}
