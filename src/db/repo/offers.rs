//! Offers: reservations of one pending request for one consultant, each with its
//! outcome (TaskRouter's model). At most one pending offer per request and per
//! consultant, enforced by unique indexes; every change writes its event in the same
//! transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::events::{Committed, NewEvent};
use super::tx::{insert_event, lock_availability, lock_session};
use super::{Guard, Guarded};
use crate::db::models::{OfferRow, SessionRow};
use crate::db::schema::offers;
use crate::db::sql::{reusable, word, Word};
use crate::db::{Db, DbError, DbResult};
use crate::model::{
    Action, ConsultantStatus, EventData, MatchTier, OfferId, OfferOutcome, RescindReason,
    SessionId, UserId,
};

pub struct NewOffer<'a> {
    pub session_id: SessionId,
    pub consultant_id: UserId,
    pub tier: MatchTier,
    pub score: i64,
    pub reasons: &'a [String],
    pub at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub auto_accept: bool,
    pub epoch: i64,
}

/// Reserves the request for the consultant: the request must be pending with no
/// offer out, the consultant available, in no call and holding no other offer.
pub async fn create(db: &Db, o: &NewOffer<'_>) -> Guarded<Committed<(OfferRow, SessionRow)>> {
    let reasons = serde_json::to_string(o.reasons).map_err(|e| DbError::Query(e.to_string()))?;
    let stored = db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let session = lock_session!(conn, o.session_id, Action::Offer);
            // The availability row names the call a consultant is in: accept sets it
            // and end or cancel clear it in the transaction that moves the session,
            // so no count of their sessions is needed.
            let free = lock_availability!(conn, o.consultant_id).is_some_and(|a| {
                a.status == ConsultantStatus::Available && a.current_session_id.is_none()
            });
            if !free {
                return Ok(Err(Guard::Busy));
            }
            let out: Vec<(SessionId, UserId)> = offers::table
                .filter(pending_outcome())
                .filter(
                    offers::session_id
                        .eq(o.session_id)
                        .or(offers::consultant_id.eq(o.consultant_id)),
                )
                .select((offers::session_id, offers::consultant_id))
                .load(conn)
                .await?;
            if out.iter().any(|(s, _)| *s == o.session_id) {
                return Ok(Err(Guard::OfferedToAnother));
            }
            if !out.is_empty() {
                return Ok(Err(Guard::Busy));
            }
            let offer = diesel::insert_into(offers::table)
                .values((
                    offers::session_id.eq(o.session_id),
                    offers::consultant_id.eq(o.consultant_id),
                    offers::outcome.eq(OfferOutcome::Pending),
                    offers::tier.eq(o.tier),
                    offers::score.eq(o.score),
                    offers::reasons.eq(&reasons),
                    offers::offered_at.eq(o.at),
                    offers::expires_at.eq(o.expires_at),
                    offers::epoch.eq(o.epoch),
                ))
                .returning(OfferRow::as_returning())
                .get_result(conn)
                .await?;
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(o.session_id),
                    actor_id: None,
                    consultant_id: Some(o.consultant_id),
                    at: o.at,
                    data: EventData::Offered {
                        offer_id: offer.id,
                        expires_at: o.expires_at,
                        tier: o.tier,
                        score: o.score,
                        reasons: o.reasons.to_vec(),
                        auto_accept: o.auto_accept,
                    },
                }
            );
            Ok(Ok(Committed::new((offer, session), vec![event])))
        })
        .await
    });
    match stored {
        // The unique indexes are the backstop for a race the checks above lost.
        Err(DbError::Conflict(_)) => Ok(Err(Guard::OfferedToAnother)),
        other => other,
    }
}

/// How a pending offer ends, other than by an accept or a cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Declined,
    TimedOut,
    Rescinded(RescindReason),
}

/// Which pending offer.
#[derive(Debug, Clone, Copy)]
pub enum OfferRef {
    Id(OfferId),
    /// The one this consultant holds for this request.
    Held {
        session_id: SessionId,
        consultant_id: UserId,
    },
}

/// Ends a pending offer; `Guard::NotOffered` when it is not (or no longer) pending.
pub async fn resolve(
    db: &Db,
    which: OfferRef,
    resolution: Resolution,
    actor: Option<UserId>,
    at: NaiveDateTime,
) -> Guarded<Committed<OfferRow>> {
    let outcome = match resolution {
        Resolution::Declined => OfferOutcome::Declined,
        Resolution::TimedOut => OfferOutcome::TimedOut,
        Resolution::Rescinded(_) => OfferOutcome::Rescinded,
    };
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let id = match which {
                OfferRef::Id(id) => Some(id),
                OfferRef::Held {
                    session_id,
                    consultant_id,
                } => offers::table
                    .filter(offers::session_id.eq(session_id))
                    .filter(offers::consultant_id.eq(consultant_id))
                    .filter(pending_outcome())
                    .select(offers::id)
                    .get_result(conn)
                    .await
                    .optional()?,
            };
            let Some(id) = id else {
                return Ok(Err(Guard::NotOffered));
            };
            let offer: Option<OfferRow> = reusable(
                diesel::update(offers::table.find(id).filter(pending_outcome()))
                    .set((
                        offers::outcome.eq(outcome),
                        offers::resolved_at.eq(Some(at)),
                    ))
                    .returning(OfferRow::as_returning()),
            )
            .get_result(conn)
            .await
            .optional()?;
            let Some(offer) = offer else {
                return Ok(Err(Guard::NotOffered));
            };
            let data = match resolution {
                Resolution::Declined => EventData::Declined { offer_id: offer.id },
                Resolution::TimedOut => EventData::OfferTimedOut { offer_id: offer.id },
                Resolution::Rescinded(reason) => EventData::OfferRescinded {
                    offer_id: offer.id,
                    reason,
                },
            };
            let event = insert_event!(
                conn,
                &NewEvent {
                    session_id: Some(offer.session_id),
                    actor_id: actor,
                    consultant_id: Some(offer.consultant_id),
                    at,
                    data,
                }
            );
            Ok(Ok(Committed::new(offer, vec![event])))
        })
        .await
    })
}

/// Offers still out, for rebuilding the dispatcher's view after a restart.
pub async fn pending_all(db: &Db) -> DbResult<Vec<OfferRow>> {
    db_run!(db, read, |conn| {
        Ok(offers::table
            .filter(pending_outcome())
            .order(offers::id)
            .select(OfferRow::as_select())
            .load(conn)
            .await?)
    })
}

/// The offer out for this request, if any.
pub async fn pending_for(db: &Db, session_id: SessionId) -> DbResult<Option<OfferRow>> {
    db_run!(db, lookup, |conn| {
        Ok(offers::table
            .filter(offers::session_id.eq(session_id))
            .filter(pending_outcome())
            .select(OfferRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
}

/// Whether this request was ever offered to this consultant (they may hear what
/// became of it).
pub async fn ever_offered(db: &Db, session_id: SessionId, consultant_id: UserId) -> DbResult<bool> {
    db_run!(db, lookup, |conn| {
        let n: i64 = offers::table
            .filter(offers::session_id.eq(session_id))
            .filter(offers::consultant_id.eq(consultant_id))
            .count()
            .get_result(conn)
            .await?;
        Ok(n > 0)
    })
}

/// `outcome = 'pending'` with the word in the SQL, as the pending-offer partial
/// indexes spell it: a bound word would make SQLite re-plan the statement on every
/// execution (see `db::sql`).
pub(super) fn pending_outcome() -> diesel::dsl::Eq<offers::outcome, Word> {
    offers::outcome.eq(word(OfferOutcome::Pending.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sqlite::Sqlite;

    #[test]
    fn the_pending_filter_is_written_as_the_partial_indexes_spell_it() {
        let query = offers::table
            .filter(offers::session_id.eq(SessionId(7)))
            .filter(pending_outcome())
            .select(offers::id);
        let sql = diesel::debug_query::<Sqlite, _>(&query).to_string();
        assert!(
            sql.contains("`offers`.`outcome` = 'pending'"),
            "the word is not in the SQL: {sql}"
        );
        assert!(sql.ends_with("-- binds: [SessionId(7)]"), "{sql}");
    }
}
