//! Support sessions. Every state change is one transaction that takes the session's
//! row under the lifecycle table's guard (`lock_session!`), makes the change, and
//! writes its events; the transaction is the final arbiter of races (two accepts,
//! cancel against accept, an offer against a take).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::events::{Committed, NewEvent};
use super::offers::pending_outcome;
use super::tx::{
    calls_in_progress, insert_event, lock_availability, lock_session, lock_user, set_status_in_tx,
};
use super::{Guard, Guarded};
use crate::db::models::{NewSession, OfferRow, SessionRow};
use crate::db::schema::{
    offers, session_events, staff_consultant_preferences, support_queue, support_sessions,
};
use crate::db::sql::reusable;
use crate::db::{Db, DbError, DbResult};
use crate::model::{
    Action, ConsultantStatus, EventData, EventKind, HospitalId, MatchTier, OfferOutcome,
    RescindReason, SessionId, SessionStatus, UserId,
};

/// Stores a new request and its queue entry. One live session per requester: the
/// unique index refuses a second one even when two arrive at once.
pub async fn create_request(db: &Db, new: &NewSession<'_>) -> Guarded<Committed<SessionRow>> {
    let stored = db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row = diesel::insert_into(support_sessions::table)
                .values(new)
                .returning(SessionRow::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(support_queue::table)
                .values((
                    support_queue::session_id.eq(row.id),
                    support_queue::urgency.eq(row.urgency),
                    support_queue::response_deadline.eq(row.response_deadline),
                    support_queue::enqueued_at.eq(row.created_at),
                ))
                .execute(conn)
                .await?;
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(row.id),
                    actor_id: Some(row.requester_id),
                    consultant_id: None,
                    at: row.created_at,
                    data: EventData::Requested,
                }
            );
            Ok(Committed::new(row, vec![event]))
        })
        .await
    });
    match stored {
        Ok(committed) => Ok(Ok(committed)),
        Err(DbError::Conflict(_)) => Ok(Err(Guard::LiveElsewhere)),
        Err(e) => Err(e),
    }
}

pub async fn get(db: &Db, id: SessionId) -> DbResult<Option<SessionRow>> {
    db_run!(db, lookup, |conn| {
        Ok(support_sessions::table
            .find(id)
            .select(SessionRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
}

/// The caller's live session, as either party.
pub async fn live_for_user(db: &Db, user_id: UserId) -> DbResult<Option<SessionRow>> {
    db_run!(db, lookup, |conn| {
        Ok(reusable(
            support_sessions::table
                .filter(
                    support_sessions::requester_id
                        .eq(user_id)
                        .or(support_sessions::consultant_id.eq(user_id)),
                )
                .filter(support_sessions::status.eq_any(SessionStatus::LIVE))
                .order(support_sessions::id.desc())
                .select(SessionRow::as_select()),
        )
        // At most two rows (one live as requester, one call as consultant), so
        // no `LIMIT ?` for SQLite to re-plan (see `db::sql`).
        .load::<SessionRow>(conn)
        .await?
        .into_iter()
        .next())
    })
}

/// Every session that is not finished, for rebuilding live views after a restart.
pub async fn all_live(db: &Db) -> DbResult<Vec<SessionRow>> {
    db_run!(db, read, |conn| {
        Ok(support_sessions::table
            .filter(support_sessions::status.eq_any(SessionStatus::LIVE))
            .order(support_sessions::id)
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    })
}

/// How a consultant gets a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Accepting the offer they hold.
    Accept,
    /// Taking it from the queue; an offer they hold for it counts as accepted.
    Take,
    /// An admin taking it for themselves: an offer out to someone else is rescinded.
    TakeOverriding,
}

pub struct Acceptance<'a> {
    pub session_id: SessionId,
    pub consultant_id: UserId,
    pub claim: Claim,
    pub at: NaiveDateTime,
    /// The consultant's status once in the call.
    pub provider: &'a str,
    pub room_name: &'a str,
    pub room_url: Option<&'a str>,
}

/// `pending → connecting` for this consultant: the offer they hold (or, taking, none
/// held by anyone else) becomes `accepted`, the request leaves the queue, the
/// consultant is busy. Any other offer they hold is rescinded.
pub async fn accept(db: &Db, a: &Acceptance<'_>) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let action = match a.claim {
                Claim::Accept => Action::Accept,
                Claim::Take | Claim::TakeOverriding => Action::Take,
            };
            let current = lock_session!(conn, a.session_id, action);
            // The claimant's row is locked before their calls are looked at, so two
            // claims by one person (two tabs taking two requests) wait for each other
            // on PostgreSQL and the second sees the first's call; a count alone reads
            // past a call the other claim has not committed yet.
            let in_call = match lock_availability!(conn, a.consultant_id) {
                // Set by accept, cleared by end and cancel, always with the session.
                Some(availability) => availability.current_session_id.is_some(),
                // An admin taking a request has no availability row.
                None => {
                    lock_user!(conn, a.consultant_id);
                    calls_in_progress!(conn, a.consultant_id) > 0
                }
            };
            if in_call {
                return Ok(Err(Guard::Busy));
            }
            let mut events = Vec::new();
            let pending: Option<OfferRow> = offers::table
                .filter(offers::session_id.eq(a.session_id))
                .filter(pending_outcome())
                .select(OfferRow::as_select())
                .get_result(conn)
                .await
                .optional()?;
            let mine = pending
                .as_ref()
                .filter(|o| o.consultant_id == a.consultant_id);
            let accepted_offer: Option<OfferRow> = match (&pending, mine, a.claim) {
                (_, Some(offer), _) => Some(offer.clone()),
                (None, None, Claim::Accept) => return Ok(Err(Guard::NotOffered)),
                (Some(_), None, Claim::Accept | Claim::Take) => {
                    return Ok(Err(Guard::OfferedToAnother))
                }
                (Some(other), None, Claim::TakeOverriding) => {
                    reusable(diesel::update(offers::table.find(other.id)).set((
                        offers::outcome.eq(OfferOutcome::Rescinded),
                        offers::resolved_at.eq(Some(a.at)),
                    )))
                    .execute(conn)
                    .await?;
                    events.push(NewEvent {
                        session_id: Some(a.session_id),
                        actor_id: Some(a.consultant_id),
                        consultant_id: Some(other.consultant_id),
                        at: a.at,
                        data: EventData::OfferRescinded {
                            offer_id: other.id,
                            reason: RescindReason::TakenElsewhere,
                        },
                    });
                    None
                }
                (None, None, Claim::Take | Claim::TakeOverriding) => None,
            };
            if let Some(offer) = &accepted_offer {
                reusable(diesel::update(offers::table.find(offer.id)).set((
                    offers::outcome.eq(OfferOutcome::Accepted),
                    offers::resolved_at.eq(Some(a.at)),
                )))
                .execute(conn)
                .await?;
            }
            // An offer of another request the consultant still holds is withdrawn.
            let elsewhere: Vec<OfferRow> = reusable(
                diesel::update(
                    offers::table
                        .filter(offers::consultant_id.eq(a.consultant_id))
                        .filter(pending_outcome())
                        .filter(offers::session_id.ne(a.session_id)),
                )
                .set((
                    offers::outcome.eq(OfferOutcome::Rescinded),
                    offers::resolved_at.eq(Some(a.at)),
                ))
                .returning(OfferRow::as_returning()),
            )
            .get_results(conn)
            .await?;
            for other in elsewhere {
                events.push(NewEvent {
                    session_id: Some(other.session_id),
                    actor_id: None,
                    consultant_id: Some(a.consultant_id),
                    at: a.at,
                    data: EventData::OfferRescinded {
                        offer_id: other.id,
                        reason: RescindReason::ConsultantUnavailable,
                    },
                });
            }
            let (tier, score, reasons) = match &accepted_offer {
                Some(offer) => (offer.tier, offer.score, offer.reasons.clone()),
                None => (
                    MatchTier::Taken,
                    0,
                    serde_json::to_string(&["taken from the queue"])
                        .map_err(|e| DbError::Query(e.to_string()))?,
                ),
            };
            let wait = (a.at - current.created_at).num_seconds().max(0);
            let row = reusable(
                diesel::update(support_sessions::table.find(a.session_id))
                    .set((
                        support_sessions::status.eq(SessionStatus::Connecting),
                        support_sessions::consultant_id.eq(Some(a.consultant_id)),
                        support_sessions::accepted_at.eq(Some(a.at)),
                        support_sessions::wait_time_seconds.eq(Some(wait)),
                        support_sessions::match_tier.eq(Some(tier)),
                        support_sessions::match_score.eq(Some(score)),
                        support_sessions::match_reasons.eq(Some(reasons)),
                        support_sessions::video_provider.eq(Some(a.provider)),
                        support_sessions::room_name.eq(Some(a.room_name)),
                        support_sessions::room_url.eq(a.room_url),
                    ))
                    .returning(SessionRow::as_returning()),
            )
            .get_result(conn)
            .await?;
            diesel::delete(support_queue::table.find(a.session_id))
                .execute(conn)
                .await?;
            set_status_in_tx!(
                conn,
                a.consultant_id,
                ConsultantStatus::Busy,
                Some(a.session_id),
                a.at
            );
            events.push(NewEvent {
                session_id: Some(a.session_id),
                actor_id: Some(a.consultant_id),
                consultant_id: Some(a.consultant_id),
                at: a.at,
                data: match &accepted_offer {
                    Some(offer) => EventData::Accepted { offer_id: offer.id },
                    None => EventData::Taken,
                },
            });
            events.push(NewEvent {
                session_id: None,
                actor_id: None,
                consultant_id: Some(a.consultant_id),
                at: a.at,
                data: EventData::ConsultantStatus {
                    status: ConsultantStatus::Busy,
                },
            });
            let mut committed = Vec::with_capacity(events.len());
            for event in &events {
                committed.push(insert_event!(conn, event));
            }
            Ok(Ok(Committed::new(row, committed)))
        })
        .await
    })
}

/// Cancels a pending or connecting session. An offer out for it ends `cancelled`; a
/// consultant who was connecting is available again.
pub async fn cancel(
    db: &Db,
    session_id: SessionId,
    by: UserId,
    at: NaiveDateTime,
) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            lock_session!(conn, session_id, Action::Cancel);
            let row = reusable(
                diesel::update(support_sessions::table.find(session_id))
                    .set((
                        support_sessions::status.eq(SessionStatus::Cancelled),
                        support_sessions::ended_at.eq(Some(at)),
                        support_sessions::cancelled_by.eq(Some(by)),
                    ))
                    .returning(SessionRow::as_returning()),
            )
            .get_result(conn)
            .await?;
            let offer: Option<OfferRow> = reusable(
                diesel::update(
                    offers::table
                        .filter(offers::session_id.eq(session_id))
                        .filter(pending_outcome()),
                )
                .set((
                    offers::outcome.eq(OfferOutcome::Cancelled),
                    offers::resolved_at.eq(Some(at)),
                ))
                .returning(OfferRow::as_returning()),
            )
            .get_result(conn)
            .await
            .optional()?;
            diesel::delete(support_queue::table.find(session_id))
                .execute(conn)
                .await?;
            let mut events = vec![NewEvent {
                session_id: Some(session_id),
                actor_id: Some(by),
                consultant_id: row
                    .consultant_id
                    .or(offer.as_ref().map(|o| o.consultant_id)),
                at,
                data: EventData::Cancelled {
                    offer_id: offer.as_ref().map(|o| o.id),
                },
            }];
            if let Some(consultant) = row.consultant_id {
                set_status_in_tx!(conn, consultant, ConsultantStatus::Available, None, at);
                events.push(NewEvent {
                    session_id: None,
                    actor_id: None,
                    consultant_id: Some(consultant),
                    at,
                    data: EventData::ConsultantStatus {
                        status: ConsultantStatus::Available,
                    },
                });
            }
            let mut committed = Vec::with_capacity(events.len());
            for event in &events {
                committed.push(insert_event!(conn, event));
            }
            Ok(Ok(Committed::new(row, committed)))
        })
        .await
    })
}

/// Whether this party is in the call now, by their latest joined/left event.
macro_rules! in_call_now {
    ($conn:expr, $session:expr, $user:expr) => {{
        // A party joins and leaves a few times per session: loading them all costs
        // less than a `LIMIT ?` that SQLite re-plans on every execution (`db::sql`).
        let last: Option<EventKind> = reusable(
            session_events::table
                .filter(session_events::session_id.eq($session))
                .filter(session_events::actor_id.eq($user))
                .filter(session_events::kind.eq_any([EventKind::Joined, EventKind::Left]))
                .order(session_events::id.desc())
                .select(session_events::kind),
        )
        .load::<EventKind>($conn)
        .await?
        .into_iter()
        .next();
        last == Some(EventKind::Joined)
    }};
}

/// A party's browser (or Daily, by webhook) reports them in the call. The same join
/// reported twice is recorded once; when both parties are in, `connecting → active`.
pub async fn joined(
    db: &Db,
    session_id: SessionId,
    user_id: UserId,
    at: NaiveDateTime,
) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row = lock_session!(conn, session_id, Action::Join);
            let Some(other) = row.other_party(user_id) else {
                return Ok(Err(Guard::NotAParty));
            };
            if in_call_now!(conn, session_id, user_id) {
                return Ok(Ok(Committed::new(row, Vec::new())));
            }
            let mut events = vec![insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(session_id),
                    actor_id: Some(user_id),
                    consultant_id: row.consultant_id,
                    at,
                    data: EventData::Joined,
                }
            )];
            let mut row = row;
            if row.status == SessionStatus::Connecting && in_call_now!(conn, session_id, other) {
                row = reusable(
                    diesel::update(support_sessions::table.find(session_id))
                        .set((
                            support_sessions::status.eq(SessionStatus::Active),
                            support_sessions::started_at.eq(Some(at)),
                        ))
                        .returning(SessionRow::as_returning()),
                )
                .get_result(conn)
                .await?;
                events.push(insert_event!(
                    conn,
                    &NewEvent {
                        session_id: Some(session_id),
                        actor_id: None,
                        consultant_id: row.consultant_id,
                        at,
                        data: EventData::Started,
                    }
                ));
            }
            Ok(Ok(Committed::new(row, events)))
        })
        .await
    })
}

/// A party's browser left the call (reload, closed tab). Recorded once per join.
pub async fn left(
    db: &Db,
    session_id: SessionId,
    user_id: UserId,
    at: NaiveDateTime,
) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row = lock_session!(conn, session_id, Action::Join);
            if !row.is_party(user_id) {
                return Ok(Err(Guard::NotAParty));
            }
            if !in_call_now!(conn, session_id, user_id) {
                return Ok(Ok(Committed::new(row, Vec::new())));
            }
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(session_id),
                    actor_id: Some(user_id),
                    consultant_id: row.consultant_id,
                    at,
                    data: EventData::Left,
                }
            );
            Ok(Ok(Committed::new(row, vec![event])))
        })
        .await
    })
}

/// Every socket of `user_id` has been gone past the grace period during the call
/// (`present == false`), or they came back (`present == true`).
pub async fn party_presence(
    db: &Db,
    session_id: SessionId,
    user_id: UserId,
    presence: PartyPresence,
    at: NaiveDateTime,
) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row = lock_session!(conn, session_id, Action::Join);
            if !row.is_party(user_id) {
                return Ok(Err(Guard::NotAParty));
            }
            let data = match presence {
                PartyPresence::Gone => EventData::PartyLeft { user_id },
                PartyPresence::Back => EventData::PartyReturned { user_id },
            };
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(session_id),
                    actor_id: None,
                    consultant_id: row.consultant_id,
                    at,
                    data,
                }
            );
            Ok(Ok(Committed::new(row, vec![event])))
        })
        .await
    })
}

/// Whether a party of a call is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyPresence {
    Gone,
    Back,
}

pub struct Ending<'a> {
    pub session_id: SessionId,
    pub ended_by: UserId,
    pub at: NaiveDateTime,
    /// The consultant's wrap-up given with the end (None when the requester ends, or
    /// the consultant ends without one: they wrap up afterwards).
    pub wrap_up: Option<WrapUp<'a>>,
    /// The consultant's status once the call is over (busy during wrap-up time).
    pub consultant_after: ConsultantStatus,
}

#[derive(Debug, Clone, Copy)]
pub struct WrapUp<'a> {
    pub resolution_notes: Option<&'a str>,
    pub resolved: bool,
}

/// Teaches the relationship table: one more session together (`sessions = 1`), and
/// `successful` more successful ones.
macro_rules! learn_relationship {
    ($conn:expr, $staff:expr, $consultant:expr, $sessions:expr, $successful:expr, $at:expr) => {{
        let sessions: i32 = $sessions;
        let successful: i32 = $successful;
        diesel::insert_into(staff_consultant_preferences::table)
            .values((
                staff_consultant_preferences::staff_id.eq($staff),
                staff_consultant_preferences::consultant_id.eq($consultant),
                staff_consultant_preferences::total_sessions.eq(sessions),
                staff_consultant_preferences::successful_sessions.eq(successful),
                staff_consultant_preferences::last_session_at.eq(Some($at)),
            ))
            .on_conflict((
                staff_consultant_preferences::staff_id,
                staff_consultant_preferences::consultant_id,
            ))
            .do_update()
            .set((
                staff_consultant_preferences::total_sessions
                    .eq(staff_consultant_preferences::total_sessions + sessions),
                staff_consultant_preferences::successful_sessions
                    .eq(staff_consultant_preferences::successful_sessions + successful),
                staff_consultant_preferences::last_session_at.eq(Some($at)),
            ))
            .execute($conn)
            .await?;
    }};
}

/// Completes a call: `connecting | active → completed`, the relationship learns one
/// more session, and the consultant leaves the call.
pub async fn end(db: &Db, e: &Ending<'_>) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current = lock_session!(conn, e.session_id, Action::End);
            let began = current.started_at.or(current.accepted_at).unwrap_or(e.at);
            let duration = (e.at - began).num_seconds().max(0);
            let (notes, resolved, wrapped_up_at) = match e.wrap_up {
                Some(w) => (w.resolution_notes, Some(w.resolved), Some(e.at)),
                None => (None, None, None),
            };
            let row = reusable(
                diesel::update(support_sessions::table.find(e.session_id))
                    .set((
                        support_sessions::status.eq(SessionStatus::Completed),
                        support_sessions::ended_at.eq(Some(e.at)),
                        support_sessions::duration_seconds.eq(Some(duration)),
                        support_sessions::resolution_notes.eq(notes),
                        support_sessions::resolved.eq(resolved),
                        support_sessions::wrapped_up_at.eq(wrapped_up_at),
                    ))
                    .returning(SessionRow::as_returning()),
            )
            .get_result(conn)
            .await?;
            let mut events = vec![NewEvent {
                session_id: Some(e.session_id),
                actor_id: Some(e.ended_by),
                consultant_id: row.consultant_id,
                at: e.at,
                data: EventData::Ended,
            }];
            if let Some(w) = e.wrap_up {
                events.push(NewEvent {
                    session_id: Some(e.session_id),
                    actor_id: Some(e.ended_by),
                    consultant_id: row.consultant_id,
                    at: e.at,
                    data: EventData::WrappedUp {
                        resolved: w.resolved,
                    },
                });
            }
            if let Some(consultant) = row.consultant_id {
                let successful = i32::from(resolved.unwrap_or(false));
                learn_relationship!(conn, row.requester_id, consultant, 1, successful, e.at);
                set_status_in_tx!(conn, consultant, e.consultant_after, None, e.at);
                if e.consultant_after != ConsultantStatus::Busy {
                    events.push(NewEvent {
                        session_id: None,
                        actor_id: None,
                        consultant_id: Some(consultant),
                        at: e.at,
                        data: EventData::ConsultantStatus {
                            status: e.consultant_after,
                        },
                    });
                }
            }
            let mut committed = Vec::with_capacity(events.len());
            for event in &events {
                committed.push(insert_event!(conn, event));
            }
            Ok(Ok(Committed::new(row, committed)))
        })
        .await
    })
}

/// The consultant's notes and resolution after a call the requester ended; once.
pub async fn wrap_up(
    db: &Db,
    session_id: SessionId,
    by: UserId,
    w: WrapUp<'_>,
    at: NaiveDateTime,
) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current = lock_session!(conn, session_id, Action::WrapUp);
            if current.wrapped_up_at.is_some() {
                return Ok(Err(Guard::AlreadyDone));
            }
            let row = reusable(
                diesel::update(support_sessions::table.find(session_id))
                    .set((
                        support_sessions::resolution_notes.eq(w.resolution_notes),
                        support_sessions::resolved.eq(Some(w.resolved)),
                        support_sessions::wrapped_up_at.eq(Some(at)),
                    ))
                    .returning(SessionRow::as_returning()),
            )
            .get_result(conn)
            .await?;
            if let (Some(consultant), true) = (row.consultant_id, w.resolved) {
                learn_relationship!(conn, row.requester_id, consultant, 0, 1, at);
            }
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(session_id),
                    actor_id: Some(by),
                    consultant_id: row.consultant_id,
                    at,
                    data: EventData::WrappedUp {
                        resolved: w.resolved,
                    },
                }
            );
            Ok(Ok(Committed::new(row, vec![event])))
        })
        .await
    })
}

/// The requester's rating, once, on a completed session; also feeds the relationship's
/// average so later matching prefers consultants this staff member rates highly.
pub async fn rate(
    db: &Db,
    session_id: SessionId,
    rating: u8,
    feedback: Option<&str>,
    at: NaiveDateTime,
) -> Guarded<Committed<SessionRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current = lock_session!(conn, session_id, Action::Rate);
            if current.rating.is_some() {
                return Ok(Err(Guard::AlreadyDone));
            }
            let stars = i32::from(rating);
            let row = reusable(
                diesel::update(support_sessions::table.find(session_id))
                    .set((
                        support_sessions::rating.eq(Some(stars)),
                        support_sessions::feedback.eq(feedback),
                    ))
                    .returning(SessionRow::as_returning()),
            )
            .get_result(conn)
            .await?;
            if let Some(consultant) = row.consultant_id {
                reusable(
                    diesel::update(
                        staff_consultant_preferences::table
                            .filter(staff_consultant_preferences::staff_id.eq(row.requester_id))
                            .filter(staff_consultant_preferences::consultant_id.eq(consultant)),
                    )
                    .set((
                        staff_consultant_preferences::rating_sum
                            .eq(staff_consultant_preferences::rating_sum + stars),
                        staff_consultant_preferences::rating_count
                            .eq(staff_consultant_preferences::rating_count + 1),
                    )),
                )
                .execute(conn)
                .await?;
            }
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(session_id),
                    actor_id: Some(row.requester_id),
                    consultant_id: row.consultant_id,
                    at,
                    data: EventData::Rated { rating },
                }
            );
            Ok(Ok(Committed::new(row, vec![event])))
        })
        .await
    })
}

pub async fn mark_room_deleted(db: &Db, session_id: SessionId) -> DbResult<()> {
    db_run!(db, write, |conn| {
        reusable(
            diesel::update(support_sessions::table.find(session_id))
                .set(support_sessions::room_deleted.eq(true)),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}

/// Finished sessions whose video room may still exist (a delete failed or the server
/// died before it ran).
pub async fn rooms_to_delete(db: &Db) -> DbResult<Vec<(SessionId, String)>> {
    rooms_in(db, &SessionStatus::FINISHED, true).await
}

/// Rooms of calls that are connecting or active: the ones whose expiry must keep
/// moving forward.
pub async fn live_rooms(db: &Db) -> DbResult<Vec<(SessionId, String)>> {
    rooms_in(db, &SessionStatus::IN_CALL, false).await
}

/// `(session id, room name)` of sessions in one of `statuses` that have a room;
/// `undeleted_only` leaves out rooms already known to be deleted.
async fn rooms_in(
    db: &Db,
    statuses: &[SessionStatus],
    undeleted_only: bool,
) -> DbResult<Vec<(SessionId, String)>> {
    db_run!(db, read, |conn| {
        let mut query = support_sessions::table
            .filter(support_sessions::status.eq_any(statuses))
            .filter(support_sessions::room_name.is_not_null())
            .select((support_sessions::id, support_sessions::room_name))
            .into_boxed();
        if undeleted_only {
            query = query.filter(support_sessions::room_deleted.eq(false));
        }
        let rows: Vec<(SessionId, Option<String>)> = query.load(conn).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name)| name.map(|n| (id, n)))
            .collect())
    })
}

/// Status and room of each of these sessions (missing ids are left out), for
/// deciding whether a room found at the provider still belongs to anyone.
pub async fn room_owners(
    db: &Db,
    ids: &[SessionId],
) -> DbResult<Vec<(SessionId, SessionStatus, Option<String>)>> {
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
    pub status: Option<SessionStatus>,
    pub department: Option<String>,
    pub hospital_id: Option<HospitalId>,
    pub consultant_id: Option<UserId>,
    /// Sessions where this user is requester or consultant.
    pub party: Option<UserId>,
    pub requester_id: Option<UserId>,
    /// Keyset paging: only ids below this one.
    pub before_id: Option<SessionId>,
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
            query = query.filter(support_sessions::status.eq(*status));
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
