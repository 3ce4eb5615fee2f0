//! Consultant presence as stored, specialties, staff↔consultant relationships and
//! preferences, and dedicated assignments.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::events::{Committed, NewEvent};
use super::tx::{insert_event, lock_availability, set_status_in_tx};
use super::{Guard, Guarded};
use crate::db::models::{AssignmentRow, AvailabilityRow, RelationshipRow, SpecialtyRow};
use crate::db::schema::{
    consultant_availability, consultant_specialties, consultant_status_log, dedicated_assignments,
    staff_consultant_preferences,
};
use crate::db::sql::reusable;
use crate::db::{Db, DbError, DbResult};
use crate::model::{ConsultantStatus, EventData, HospitalId, Proficiency, UserId};

pub async fn availability_all(db: &Db) -> DbResult<Vec<AvailabilityRow>> {
    db_run!(db, read, |conn| {
        Ok(consultant_availability::table
            .select(AvailabilityRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn availability_of(db: &Db, consultant_id: UserId) -> DbResult<Option<AvailabilityRow>> {
    db_run!(db, lookup, |conn| {
        Ok(consultant_availability::table
            .find(consultant_id)
            .select(AvailabilityRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
}

/// When a stored status may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRule {
    /// Chosen by the consultant (or an admin), or set by the server for presence: not
    /// while they are in a call (`Guard::Busy`).
    NotInCall,
    /// Set by the server only over this status, so a choice the consultant made
    /// meanwhile is never overwritten (online only for someone offline, away only for
    /// someone available). Not in a call either.
    OnlyFrom(ConsultantStatus),
    /// The call and its wrap-up are over: `busy` may change, but not while a call is
    /// still theirs.
    AfterCall,
}

/// Stores a status with its status-log interval and event, under `rule`. Setting the
/// status they already have writes nothing.
pub async fn set_status(
    db: &Db,
    consultant_id: UserId,
    status: ConsultantStatus,
    rule: StatusRule,
    by: Option<UserId>,
    at: NaiveDateTime,
) -> Guarded<Committed<ConsultantStatus>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current = lock_availability!(conn, consultant_id);
            let Some(current) = current else {
                return Ok(Err(Guard::Missing));
            };
            let in_call = current.current_session_id.is_some();
            let refused = match rule {
                StatusRule::AfterCall => in_call,
                StatusRule::NotInCall | StatusRule::OnlyFrom(_) => {
                    in_call || current.status == ConsultantStatus::Busy
                }
            };
            if refused {
                return Ok(Err(Guard::Busy));
            }
            let unexpected = matches!(rule, StatusRule::OnlyFrom(from) if from != current.status);
            if current.status == status || unexpected {
                return Ok(Ok(Committed::new(current.status, Vec::new())));
            }
            set_status_in_tx!(conn, consultant_id, status, None, at);
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: None,
                    actor_id: by,
                    consultant_id: Some(consultant_id),
                    at,
                    data: EventData::ConsultantStatus { status },
                }
            );
            Ok(Ok(Committed::new(status, vec![event])))
        })
        .await
    })
}

pub async fn set_auto_accept(db: &Db, consultant_id: UserId, auto_accept: bool) -> DbResult<()> {
    db_run!(db, write, |conn| {
        reusable(
            diesel::update(consultant_availability::table.find(consultant_id))
                .set(consultant_availability::auto_accept.eq(auto_accept)),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}

pub async fn specialties_all(db: &Db) -> DbResult<Vec<SpecialtyRow>> {
    db_run!(db, read, |conn| {
        Ok(consultant_specialties::table
            .order((
                consultant_specialties::consultant_id,
                consultant_specialties::department,
            ))
            .select(SpecialtyRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn specialties_of(db: &Db, consultant_id: UserId) -> DbResult<Vec<SpecialtyRow>> {
    db_run!(db, read, |conn| {
        Ok(consultant_specialties::table
            .filter(consultant_specialties::consultant_id.eq(consultant_id))
            .order(consultant_specialties::department)
            .select(SpecialtyRow::as_select())
            .load(conn)
            .await?)
    })
}

/// Replaces the whole set in one transaction: a failure leaves the old set intact.
pub async fn replace_specialties(
    db: &Db,
    consultant_id: UserId,
    specialties: &[(String, Proficiency)],
) -> DbResult<()> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            diesel::delete(
                consultant_specialties::table
                    .filter(consultant_specialties::consultant_id.eq(consultant_id)),
            )
            .execute(conn)
            .await?;
            for (department, proficiency) in specialties {
                diesel::insert_into(consultant_specialties::table)
                    .values((
                        consultant_specialties::consultant_id.eq(consultant_id),
                        consultant_specialties::department.eq(department),
                        consultant_specialties::proficiency.eq(proficiency),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
    })
}

pub async fn relationships_all(db: &Db) -> DbResult<Vec<RelationshipRow>> {
    db_run!(db, read, |conn| {
        Ok(staff_consultant_preferences::table
            .select(RelationshipRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn relationship(
    db: &Db,
    staff_id: UserId,
    consultant_id: UserId,
) -> DbResult<Option<RelationshipRow>> {
    db_run!(db, read, |conn| {
        Ok(staff_consultant_preferences::table
            .filter(staff_consultant_preferences::staff_id.eq(staff_id))
            .filter(staff_consultant_preferences::consultant_id.eq(consultant_id))
            .select(RelationshipRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
}

/// A staff member's explicit, ordered preferred consultants.
pub async fn preferences_of(db: &Db, staff_id: UserId) -> DbResult<Vec<UserId>> {
    db_run!(db, read, |conn| {
        Ok(staff_consultant_preferences::table
            .filter(staff_consultant_preferences::staff_id.eq(staff_id))
            .filter(staff_consultant_preferences::preference_rank.is_not_null())
            .order(staff_consultant_preferences::preference_rank)
            .select(staff_consultant_preferences::consultant_id)
            .load(conn)
            .await?)
    })
}

/// Replaces the ranked list, keeping each pair's learned statistics.
pub async fn set_preferences(db: &Db, staff_id: UserId, ordered: &[UserId]) -> DbResult<()> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            reusable(
                diesel::update(
                    staff_consultant_preferences::table
                        .filter(staff_consultant_preferences::staff_id.eq(staff_id)),
                )
                .set(staff_consultant_preferences::preference_rank.eq(None::<i32>)),
            )
            .execute(conn)
            .await?;
            for (rank, consultant) in ordered.iter().enumerate() {
                let rank = rank as i32 + 1;
                diesel::insert_into(staff_consultant_preferences::table)
                    .values((
                        staff_consultant_preferences::staff_id.eq(staff_id),
                        staff_consultant_preferences::consultant_id.eq(*consultant),
                        staff_consultant_preferences::preference_rank.eq(Some(rank)),
                    ))
                    .on_conflict((
                        staff_consultant_preferences::staff_id,
                        staff_consultant_preferences::consultant_id,
                    ))
                    .do_update()
                    .set(staff_consultant_preferences::preference_rank.eq(Some(rank)))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
    })
}

pub async fn assignments_all(db: &Db) -> DbResult<Vec<AssignmentRow>> {
    db_run!(db, read, |conn| {
        Ok(dedicated_assignments::table
            .order(dedicated_assignments::id)
            .select(AssignmentRow::as_select())
            .load(conn)
            .await?)
    })
}

pub struct NewAssignment {
    pub consultant_id: UserId,
    pub staff_id: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    pub department: Option<String>,
    pub exclusive: bool,
    pub weekdays: Option<String>,
    pub start_minute: Option<i32>,
    pub end_minute: Option<i32>,
}

pub async fn create_assignment(db: &Db, a: &NewAssignment) -> DbResult<AssignmentRow> {
    let at = super::now();
    db_run!(db, write, |conn| {
        Ok(diesel::insert_into(dedicated_assignments::table)
            .values((
                dedicated_assignments::consultant_id.eq(a.consultant_id),
                dedicated_assignments::staff_id.eq(a.staff_id),
                dedicated_assignments::hospital_id.eq(a.hospital_id),
                dedicated_assignments::department.eq(&a.department),
                dedicated_assignments::exclusive.eq(a.exclusive),
                dedicated_assignments::weekdays.eq(&a.weekdays),
                dedicated_assignments::start_minute.eq(a.start_minute),
                dedicated_assignments::end_minute.eq(a.end_minute),
                dedicated_assignments::created_at.eq(at),
            ))
            .returning(AssignmentRow::as_returning())
            .get_result(conn)
            .await?)
    })
}

pub async fn update_assignment(
    db: &Db,
    id: i64,
    a: &NewAssignment,
) -> DbResult<Option<AssignmentRow>> {
    db_run!(db, write, |conn| {
        Ok(diesel::update(dedicated_assignments::table.find(id))
            .set((
                dedicated_assignments::consultant_id.eq(a.consultant_id),
                dedicated_assignments::staff_id.eq(a.staff_id),
                dedicated_assignments::hospital_id.eq(a.hospital_id),
                dedicated_assignments::department.eq(&a.department),
                dedicated_assignments::exclusive.eq(a.exclusive),
                dedicated_assignments::weekdays.eq(&a.weekdays),
                dedicated_assignments::start_minute.eq(a.start_minute),
                dedicated_assignments::end_minute.eq(a.end_minute),
            ))
            .returning(AssignmentRow::as_returning())
            .get_result(conn)
            .await
            .optional()?)
    })
}

pub async fn delete_assignment(db: &Db, id: i64) -> DbResult<bool> {
    db_run!(db, write, |conn| {
        Ok(diesel::delete(dedicated_assignments::table.find(id))
            .execute(conn)
            .await?
            > 0)
    })
}

/// Closes status-log intervals left open by a crash, so utilisation never counts the
/// downtime as work.
pub async fn close_open_status_intervals(db: &Db) -> DbResult<()> {
    let at = super::now();
    db_run!(db, write, |conn| {
        reusable(
            diesel::update(
                consultant_status_log::table.filter(consultant_status_log::ended_at.is_null()),
            )
            .set(consultant_status_log::ended_at.eq(Some(at))),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}
