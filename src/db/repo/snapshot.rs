//! Everything the dispatcher rebuilds its view from, read in one transaction so the
//! view is one consistent moment of storage, together with the last event id of
//! that moment: stream events up to it are already reflected, later ones are not.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::offers::pending_outcome;
use crate::db::models::{
    AssignmentRow, AvailabilityRow, Hospital, OfferRow, RelationshipRow, SessionRow, SpecialtyRow,
    UserRow,
};
use crate::db::schema::{
    consultant_availability, consultant_specialties, dedicated_assignments, hospitals, offers,
    session_events, staff_consultant_preferences, support_sessions, users,
};
use crate::db::{Backend, Db, DbError, DbResult};
use crate::model::{EventId, HospitalId, OfferOutcome, Role, SessionStatus, UserId};

/// How many recent call durations feed the wait estimate.
pub const RECENT_DURATIONS: i64 = 50;

pub struct DispatchState {
    pub last_event: EventId,
    pub hospitals: Vec<Hospital>,
    pub consultants: Vec<UserRow>,
    pub availability: Vec<AvailabilityRow>,
    pub specialties: Vec<SpecialtyRow>,
    pub live: Vec<SessionRow>,
    pub pending_offers: Vec<OfferRow>,
    /// Declined and timed-out offers of pending requests.
    pub misses: Vec<OfferRow>,
    pub relationships: Vec<RelationshipRow>,
    pub served: Vec<(UserId, HospitalId, UserId)>,
    pub assignments: Vec<AssignmentRow>,
    pub durations: Vec<i64>,
}

pub async fn dispatch_state(db: &Db) -> DbResult<DispatchState> {
    let postgres = db.backend() == Backend::Postgres;
    db_run!(db, read, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            if postgres {
                diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(conn)
                    .await?;
            }
            let last_event: Option<EventId> = session_events::table
                .select(diesel::dsl::max(session_events::id))
                .get_result(conn)
                .await?;
            let hospitals = hospitals::table
                .order(hospitals::id)
                .select(Hospital::as_select())
                .load(conn)
                .await?;
            let consultants = users::table
                .filter(users::role.eq(Role::Consultant))
                .order(users::id)
                .select(UserRow::as_select())
                .load(conn)
                .await?;
            let availability = consultant_availability::table
                .select(AvailabilityRow::as_select())
                .load(conn)
                .await?;
            let specialties = consultant_specialties::table
                .order((
                    consultant_specialties::consultant_id,
                    consultant_specialties::department,
                ))
                .select(SpecialtyRow::as_select())
                .load(conn)
                .await?;
            let live = support_sessions::table
                .filter(support_sessions::status.eq_any(SessionStatus::LIVE))
                .order(support_sessions::id)
                .select(SessionRow::as_select())
                .load(conn)
                .await?;
            let pending_offers = offers::table
                .filter(pending_outcome())
                .order(offers::id)
                .select(OfferRow::as_select())
                .load(conn)
                .await?;
            let misses = offers::table
                .inner_join(support_sessions::table)
                .filter(support_sessions::status.eq(SessionStatus::Pending))
                .filter(offers::outcome.eq_any([OfferOutcome::Declined, OfferOutcome::TimedOut]))
                .order(offers::id)
                .select(OfferRow::as_select())
                .load(conn)
                .await?;
            let relationships = staff_consultant_preferences::table
                .select(RelationshipRow::as_select())
                .load(conn)
                .await?;
            let served: Vec<(Option<UserId>, HospitalId, UserId)> = support_sessions::table
                .filter(support_sessions::status.eq(SessionStatus::Completed))
                .filter(support_sessions::consultant_id.is_not_null())
                .select((
                    support_sessions::consultant_id,
                    support_sessions::hospital_id,
                    support_sessions::requester_id,
                ))
                .distinct()
                .load(conn)
                .await?;
            let assignments = dedicated_assignments::table
                .order(dedicated_assignments::id)
                .select(AssignmentRow::as_select())
                .load(conn)
                .await?;
            let durations: Vec<Option<i64>> = support_sessions::table
                .filter(support_sessions::status.eq(SessionStatus::Completed))
                .filter(support_sessions::duration_seconds.is_not_null())
                .order(support_sessions::ended_at.desc())
                .limit(RECENT_DURATIONS)
                .select(support_sessions::duration_seconds)
                .load(conn)
                .await?;
            Ok(DispatchState {
                last_event: last_event.unwrap_or(EventId(0)),
                hospitals,
                consultants,
                availability,
                specialties,
                live,
                pending_offers,
                misses,
                relationships,
                served: served
                    .into_iter()
                    .filter_map(|(c, h, r)| c.map(|c| (c, h, r)))
                    .collect(),
                assignments,
                durations: durations.into_iter().flatten().collect(),
            })
        })
        .await
    })
}
