//! Support sessions: every state change is one transaction whose `WHERE status = …`
//! guard makes it the final arbiter of races (two accepts, cancel against accept).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::models::{NewSession, SessionEventRow, SessionRow};
use crate::db::schema::{
    consultant_availability, consultant_status_log, session_events, staff_consultant_preferences,
    support_queue, support_sessions,
};
use crate::db::{Db, DbError, DbResult};

const LIVE: [&str; 3] = ["pending", "connecting", "active"];

/// Why a guarded update did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum Guard {
    Missing,
    WrongState(String),
}

pub type Guarded<T> = DbResult<Result<T, Guard>>;

macro_rules! event {
    ($conn:expr, $session:expr, $kind:expr, $actor:expr, $consultant:expr, $detail:expr, $at:expr) => {
        diesel::insert_into(session_events::table)
            .values((
                session_events::session_id.eq($session),
                session_events::kind.eq($kind),
                session_events::actor_id.eq($actor),
                session_events::consultant_id.eq($consultant),
                session_events::detail.eq($detail),
                session_events::created_at.eq($at),
            ))
            .execute($conn)
            .await?
    };
}

/// Moves the consultant's stored status, closing the open status-log interval and
/// opening a new one, so utilisation can be computed from intervals.
macro_rules! set_status_in_tx {
    ($conn:expr, $consultant:expr, $status:expr, $session:expr, $at:expr) => {{
        diesel::update(consultant_availability::table.find($consultant))
            .set((
                consultant_availability::status.eq($status),
                consultant_availability::current_session_id.eq($session),
                consultant_availability::updated_at.eq($at),
            ))
            .execute($conn)
            .await?;
        diesel::update(
            consultant_status_log::table
                .filter(consultant_status_log::consultant_id.eq($consultant))
                .filter(consultant_status_log::ended_at.is_null()),
        )
        .set(consultant_status_log::ended_at.eq(Some($at)))
        .execute($conn)
        .await?;
        diesel::insert_into(consultant_status_log::table)
            .values((
                consultant_status_log::consultant_id.eq($consultant),
                consultant_status_log::status.eq($status),
                consultant_status_log::started_at.eq($at),
            ))
            .execute($conn)
            .await?;
    }};
}
pub(crate) use set_status_in_tx;

/// What state a session is in, when a guarded update found it in the wrong one.
macro_rules! state_of {
    ($conn:expr, $id:expr) => {{
        let status: Option<String> = support_sessions::table
            .find($id)
            .select(support_sessions::status)
            .first($conn)
            .await
            .optional()?;
        match status {
            Some(s) => Guard::WrongState(s),
            None => Guard::Missing,
        }
    }};
}

/// Stores a new request and its queue entry. Refuses (Conflict) when the requester
/// already has a live session: one call at a time per person.
pub async fn create_request(db: &Db, new: &NewSession<'_>) -> DbResult<SessionRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let live: i64 = support_sessions::table
                .filter(support_sessions::requester_id.eq(new.requester_id))
                .filter(support_sessions::status.eq_any(LIVE))
                .count()
                .get_result(conn)
                .await?;
            if live > 0 {
                return Err(DbError::Conflict(
                    "requester already has a live session".into(),
                ));
            }
            let row = diesel::insert_into(support_sessions::table)
                .values(new)
                .returning(SessionRow::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(support_queue::table)
                .values((
                    support_queue::session_id.eq(row.id),
                    support_queue::urgency.eq(&row.urgency),
                    support_queue::response_deadline.eq(row.response_deadline),
                    support_queue::enqueued_at.eq(row.created_at),
                ))
                .execute(conn)
                .await?;
            event!(
                conn,
                row.id,
                "requested",
                Some(row.requester_id),
                None::<i64>,
                None::<String>,
                row.created_at
            );
            Ok(row)
        })
        .await
    })
}

pub async fn get(db: &Db, id: i64) -> DbResult<Option<SessionRow>> {
    db_run!(db, lookup, |conn| {
        Ok(support_sessions::table
            .find(id)
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The caller's live session, as either party.
pub async fn live_for_user(db: &Db, user_id: i64) -> DbResult<Option<SessionRow>> {
    db_run!(db, read, |conn| {
        Ok(support_sessions::table
            .filter(
                support_sessions::requester_id
                    .eq(user_id)
                    .or(support_sessions::consultant_id.eq(user_id)),
            )
            .filter(support_sessions::status.eq_any(LIVE))
            .order(support_sessions::id.desc())
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Every session that is not finished, for rebuilding the dispatcher after a restart.
pub async fn all_live(db: &Db) -> DbResult<Vec<SessionRow>> {
    db_run!(db, read, |conn| {
        Ok(support_sessions::table
            .filter(support_sessions::status.eq_any(LIVE))
            .order(support_sessions::id)
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    })
}

pub struct Acceptance<'a> {
    pub session_id: i64,
    pub consultant_id: i64,
    pub at: NaiveDateTime,
    pub match_tier: &'a str,
    pub match_score: i64,
    pub match_reasons: String,
    pub provider: &'a str,
    pub room_name: &'a str,
    pub room_url: Option<&'a str>,
}

pub async fn accept(db: &Db, a: &Acceptance<'_>) -> Guarded<SessionRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let created: Option<NaiveDateTime> = support_sessions::table
                .find(a.session_id)
                .filter(support_sessions::status.eq("pending"))
                .select(support_sessions::created_at)
                .first(conn)
                .await
                .optional()?;
            let Some(created) = created else {
                return Ok(Err(state_of!(conn, a.session_id)));
            };
            let wait = (a.at - created).num_seconds().max(0);
            let row = diesel::update(
                support_sessions::table
                    .find(a.session_id)
                    .filter(support_sessions::status.eq("pending")),
            )
            .set((
                support_sessions::status.eq("connecting"),
                support_sessions::consultant_id.eq(Some(a.consultant_id)),
                support_sessions::accepted_at.eq(Some(a.at)),
                support_sessions::wait_time_seconds.eq(Some(wait)),
                support_sessions::match_tier.eq(Some(a.match_tier)),
                support_sessions::match_score.eq(Some(a.match_score)),
                support_sessions::match_reasons.eq(Some(&a.match_reasons)),
                support_sessions::video_provider.eq(Some(a.provider)),
                support_sessions::room_name.eq(Some(a.room_name)),
                support_sessions::room_url.eq(a.room_url),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)
            .await?;
            diesel::delete(support_queue::table.find(a.session_id))
                .execute(conn)
                .await?;
            set_status_in_tx!(conn, a.consultant_id, "busy", Some(a.session_id), a.at);
            event!(
                conn,
                a.session_id,
                "accepted",
                Some(a.consultant_id),
                Some(a.consultant_id),
                Some(a.match_tier),
                a.at
            );
            Ok(Ok(row))
        })
        .await
    })
}

/// Cancels a pending or connecting session. A consultant who was connecting becomes
/// available again in storage; the dispatcher decides the live status.
pub async fn cancel(db: &Db, session_id: i64, by: i64, at: NaiveDateTime) -> Guarded<SessionRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<SessionRow> = diesel::update(
                support_sessions::table
                    .find(session_id)
                    .filter(support_sessions::status.eq_any(["pending", "connecting"])),
            )
            .set((
                support_sessions::status.eq("cancelled"),
                support_sessions::ended_at.eq(Some(at)),
                support_sessions::cancelled_by.eq(Some(by)),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(row) = row else {
                return Ok(Err(state_of!(conn, session_id)));
            };
            diesel::delete(support_queue::table.find(session_id))
                .execute(conn)
                .await?;
            if let Some(consultant) = row.consultant_id {
                set_status_in_tx!(conn, consultant, "available", None::<i64>, at);
            }
            event!(
                conn,
                session_id,
                "cancelled",
                Some(by),
                row.consultant_id,
                None::<String>,
                at
            );
            Ok(Ok(row))
        })
        .await
    })
}

/// Both parties are in the call: `connecting → active`.
pub async fn mark_started(db: &Db, session_id: i64, at: NaiveDateTime) -> Guarded<SessionRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<SessionRow> = diesel::update(
                support_sessions::table
                    .find(session_id)
                    .filter(support_sessions::status.eq("connecting")),
            )
            .set((
                support_sessions::status.eq("active"),
                support_sessions::started_at.eq(Some(at)),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(row) = row else {
                return Ok(Err(state_of!(conn, session_id)));
            };
            event!(
                conn,
                session_id,
                "started",
                None::<i64>,
                row.consultant_id,
                None::<String>,
                at
            );
            Ok(Ok(row))
        })
        .await
    })
}

pub struct Ending<'a> {
    pub session_id: i64,
    pub ended_by: i64,
    pub at: NaiveDateTime,
    pub resolution_notes: Option<&'a str>,
    pub resolved: Option<bool>,
}

/// Completes a call and teaches the relationship table: one more session together,
/// and one more successful one when it was resolved.
pub async fn end(db: &Db, e: &Ending<'_>) -> Guarded<SessionRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current: Option<SessionRow> = support_sessions::table
                .find(e.session_id)
                .filter(support_sessions::status.eq_any(["connecting", "active"]))
                .select(SessionRow::as_select())
                .first(conn)
                .await
                .optional()?;
            let Some(current) = current else {
                return Ok(Err(state_of!(conn, e.session_id)));
            };
            let began = current.started_at.or(current.accepted_at).unwrap_or(e.at);
            let duration = (e.at - began).num_seconds().max(0);
            let row = diesel::update(support_sessions::table.find(e.session_id))
                .set((
                    support_sessions::status.eq("completed"),
                    support_sessions::ended_at.eq(Some(e.at)),
                    support_sessions::duration_seconds.eq(Some(duration)),
                    support_sessions::resolution_notes.eq(e.resolution_notes),
                    support_sessions::resolved.eq(e.resolved),
                ))
                .returning(SessionRow::as_returning())
                .get_result(conn)
                .await?;
            if let Some(consultant) = row.consultant_id {
                let successful = i32::from(e.resolved.unwrap_or(false));
                diesel::insert_into(staff_consultant_preferences::table)
                    .values((
                        staff_consultant_preferences::staff_id.eq(row.requester_id),
                        staff_consultant_preferences::consultant_id.eq(consultant),
                        staff_consultant_preferences::total_sessions.eq(1),
                        staff_consultant_preferences::successful_sessions.eq(successful),
                        staff_consultant_preferences::last_session_at.eq(Some(e.at)),
                    ))
                    .on_conflict((
                        staff_consultant_preferences::staff_id,
                        staff_consultant_preferences::consultant_id,
                    ))
                    .do_update()
                    .set((
                        staff_consultant_preferences::total_sessions
                            .eq(staff_consultant_preferences::total_sessions + 1),
                        staff_consultant_preferences::successful_sessions
                            .eq(staff_consultant_preferences::successful_sessions + successful),
                        staff_consultant_preferences::last_session_at.eq(Some(e.at)),
                    ))
                    .execute(conn)
                    .await?;
                set_status_in_tx!(conn, consultant, "available", None::<i64>, e.at);
            }
            event!(
                conn,
                e.session_id,
                "ended",
                Some(e.ended_by),
                row.consultant_id,
                None::<String>,
                e.at
            );
            Ok(Ok(row))
        })
        .await
    })
}

/// The requester's rating, once, on a completed session; also feeds the relationship's
/// average so later matching prefers consultants this staff member rates highly.
pub async fn rate(
    db: &Db,
    session_id: i64,
    rating: i32,
    feedback: Option<&str>,
    at: NaiveDateTime,
) -> Guarded<SessionRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<SessionRow> = diesel::update(
                support_sessions::table
                    .find(session_id)
                    .filter(support_sessions::status.eq("completed"))
                    .filter(support_sessions::rating.is_null()),
            )
            .set((
                support_sessions::rating.eq(Some(rating)),
                support_sessions::feedback.eq(feedback),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(row) = row else {
                return Ok(Err(state_of!(conn, session_id)));
            };
            if let Some(consultant) = row.consultant_id {
                diesel::update(
                    staff_consultant_preferences::table
                        .filter(staff_consultant_preferences::staff_id.eq(row.requester_id))
                        .filter(staff_consultant_preferences::consultant_id.eq(consultant)),
                )
                .set((
                    staff_consultant_preferences::rating_sum
                        .eq(staff_consultant_preferences::rating_sum + rating),
                    staff_consultant_preferences::rating_count
                        .eq(staff_consultant_preferences::rating_count + 1),
                ))
                .execute(conn)
                .await?;
            }
            event!(
                conn,
                session_id,
                "rated",
                Some(row.requester_id),
                row.consultant_id,
                None::<String>,
                at
            );
            Ok(Ok(row))
        })
        .await
    })
}

/// Timeline entries (offered, declined, timed out…) that need no transaction of their
/// own; written after the fact and never on the dispatch path's critical section.
pub async fn add_event(
    db: &Db,
    session_id: i64,
    kind: &str,
    actor_id: Option<i64>,
    consultant_id: Option<i64>,
    detail: Option<&str>,
) -> DbResult<()> {
    let at = super::now();
    db_run!(db, write, |conn| {
        event!(conn, session_id, kind, actor_id, consultant_id, detail, at);
        Ok(())
    })
}

/// A fact recorded after it happened, off the dispatch path (`dispatch::background`).
#[derive(Debug, Clone)]
pub enum Recorded {
    Event {
        session_id: i64,
        kind: &'static str,
        actor_id: Option<i64>,
        consultant_id: Option<i64>,
        detail: Option<String>,
        at: NaiveDateTime,
    },
    Status {
        consultant_id: i64,
        status: &'static str,
        at: NaiveDateTime,
    },
    RoomDeleted {
        session_id: i64,
    },
}

/// Stores a batch of facts in one transaction: under load the background writer
/// takes the single SQLite writer once per batch instead of once per fact.
pub async fn record_batch(db: &Db, batch: &[Recorded]) -> DbResult<()> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            for fact in batch {
                match fact {
                    Recorded::Event {
                        session_id,
                        kind,
                        actor_id,
                        consultant_id,
                        detail,
                        at,
                    } => {
                        event!(
                            conn,
                            *session_id,
                            *kind,
                            *actor_id,
                            *consultant_id,
                            detail.as_deref(),
                            *at
                        );
                    }
                    Recorded::Status {
                        consultant_id,
                        status,
                        at,
                    } => {
                        set_status_in_tx!(conn, *consultant_id, *status, None::<i64>, *at);
                    }
                    Recorded::RoomDeleted { session_id } => {
                        diesel::update(support_sessions::table.find(*session_id))
                            .set(support_sessions::room_deleted.eq(true))
                            .execute(conn)
                            .await?;
                    }
                }
            }
            Ok(())
        })
        .await
    })
}

pub async fn events(db: &Db, session_id: i64) -> DbResult<Vec<SessionEventRow>> {
    db_run!(db, read, |conn| {
        Ok(session_events::table
            .filter(session_events::session_id.eq(session_id))
            .order(session_events::id)
            .select(SessionEventRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn mark_room_deleted(db: &Db, session_id: i64) -> DbResult<()> {
    db_run!(db, write, |conn| {
        diesel::update(support_sessions::table.find(session_id))
            .set(support_sessions::room_deleted.eq(true))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Finished sessions whose video room may still exist (a delete failed or the server
/// died before it ran).
pub async fn rooms_to_delete(db: &Db) -> DbResult<Vec<(i64, String)>> {
    rooms_in(db, &["completed", "cancelled"], true).await
}

/// Rooms of calls that are connecting or active: the ones whose expiry must keep
/// moving forward.
pub async fn live_rooms(db: &Db) -> DbResult<Vec<(i64, String)>> {
    rooms_in(db, &["connecting", "active"], false).await
}

/// `(session id, room name)` of sessions in one of `statuses` that have a room;
/// `undeleted_only` leaves out rooms already known to be deleted.
async fn rooms_in(
    db: &Db,
    statuses: &[&str],
    undeleted_only: bool,
) -> DbResult<Vec<(i64, String)>> {
    db_run!(db, read, |conn| {
        let mut query = support_sessions::table
            .filter(support_sessions::status.eq_any(statuses))
            .filter(support_sessions::room_name.is_not_null())
            .select((support_sessions::id, support_sessions::room_name))
            .into_boxed();
        if undeleted_only {
            query = query.filter(support_sessions::room_deleted.eq(false));
        }
        let rows: Vec<(i64, Option<String>)> = query.load(conn).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name)| name.map(|n| (id, n)))
            .collect())
    })
}

/// Status and room of each of these sessions (missing ids are left out), for
/// deciding whether a room found at the provider still belongs to anyone.
pub async fn room_owners(db: &Db, ids: &[i64]) -> DbResult<Vec<(i64, String, Option<String>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    db_run!(db, read, |conn| {
        Ok(support_sessions::table
            .filter(support_sessions::id.eq_any(ids))
            .select((
                support_sessions::id,
                support_sessions::status,
                support_sessions::room_name,
            ))
            .load(conn)
            .await?)
    })
}

/// The session a provider room belongs to, by the name the provider gave it (the
/// one stored on accept); the newest if a name was ever reused.
pub async fn by_room_name(db: &Db, room_name: &str) -> DbResult<Option<SessionRow>> {
    db_run!(db, read, |conn| {
        Ok(support_sessions::table
            .filter(support_sessions::room_name.eq(room_name))
            .order(support_sessions::id.desc())
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// History filters after the caller's scope has been applied by the API layer.
#[derive(Debug, Default, Clone)]
pub struct HistoryFilter {
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub status: Option<String>,
    pub department: Option<String>,
    pub hospital_id: Option<i64>,
    pub consultant_id: Option<i64>,
    /// Sessions where this user is requester or consultant.
    pub party: Option<i64>,
    pub requester_id: Option<i64>,
    /// Keyset paging: only ids below this one.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Applies a `HistoryFilter` to a boxed `support_sessions` query; shared by the
/// history page and the CSV export so both select exactly the same sessions.
macro_rules! filter_sessions {
    ($query:expr, $f:expr) => {{
        let f: &$crate::db::repo::sessions::HistoryFilter = $f;
        let mut query = $query;
        if let Some(from) = f.from {
            query = query.filter(support_sessions::created_at.ge(from));
        }
        if let Some(to) = f.to {
            query = query.filter(support_sessions::created_at.lt(to));
        }
        if let Some(status) = &f.status {
            query = query.filter(support_sessions::status.eq(status.clone()));
        }
        if let Some(department) = &f.department {
            query = query.filter(support_sessions::department.eq(department.clone()));
        }
        if let Some(hospital) = f.hospital_id {
            query = query.filter(support_sessions::hospital_id.eq(hospital));
        }
        if let Some(consultant) = f.consultant_id {
            query = query.filter(support_sessions::consultant_id.eq(consultant));
        }
        if let Some(requester) = f.requester_id {
            query = query.filter(support_sessions::requester_id.eq(requester));
        }
        if let Some(party) = f.party {
            query = query.filter(
                support_sessions::requester_id
                    .eq(party)
                    .or(support_sessions::consultant_id.eq(party)),
            );
        }
        if let Some(before) = f.before_id {
            query = query.filter(support_sessions::id.lt(before));
        }
        query
    }};
}
pub(crate) use filter_sessions;

/// Newest first, keyset-paged by id so pages stay stable while new sessions arrive.
pub async fn history(db: &Db, f: &HistoryFilter) -> DbResult<Vec<SessionRow>> {
    db_run!(db, read, |conn| {
        let query = filter_sessions!(
            support_sessions::table
                .select(SessionRow::as_select())
                .into_boxed(),
            f
        );
        Ok(query
            .order(support_sessions::id.desc())
            .limit(f.limit)
            .load(conn)
            .await?)
    })
}

/// Durations of the most recent completed calls, for the wait estimate.
pub async fn recent_durations(db: &Db, limit: i64) -> DbResult<Vec<i64>> {
    db_run!(db, read, |conn| {
        let rows: Vec<Option<i64>> = support_sessions::table
            .filter(support_sessions::status.eq("completed"))
            .filter(support_sessions::duration_seconds.is_not_null())
            .order(support_sessions::ended_at.desc())
            .limit(limit)
            .select(support_sessions::duration_seconds)
            .load(conn)
            .await?;
        Ok(rows.into_iter().flatten().collect())
    })
}

/// Distinct (consultant, hospital, requester) triples of completed sessions: who has
/// served whom, for the "has served other staff of the same hospital" factor.
pub async fn served_triples(db: &Db) -> DbResult<Vec<(i64, i64, i64)>> {
    db_run!(db, read, |conn| {
        let rows: Vec<(Option<i64>, i64, i64)> = support_sessions::table
            .filter(support_sessions::status.eq("completed"))
            .filter(support_sessions::consultant_id.is_not_null())
            .select((
                support_sessions::consultant_id,
                support_sessions::hospital_id,
                support_sessions::requester_id,
            ))
            .distinct()
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, h, r)| c.map(|c| (c, h, r)))
            .collect())
    })
}
