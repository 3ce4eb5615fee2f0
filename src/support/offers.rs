//! Offers (reservations of a request for one consultant) and the ways a consultant
//! gets a request: accepting the offer they hold, or taking it from the queue.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::{can_view, guard_error, not_found, Core, SessionView};
use crate::db::models::SessionRow;
use crate::db::models::User;
use crate::db::repo::offers::{NewOffer, OfferRef, Resolution};
use crate::db::repo::sessions::{Acceptance, Claim};
use crate::db::repo::{self, Guard};
use crate::error::{ApiError, ApiResult};
use crate::model::lifecycle::{transition, Action};
use crate::model::{MatchTier, OfferId, RescindReason, Role, SessionId, UserId};

/// What the dispatcher decided to offer.
pub struct OfferPlan {
    pub session_id: SessionId,
    pub consultant_id: UserId,
    pub tier: MatchTier,
    pub score: i64,
    pub reasons: Vec<String>,
    pub expires_at: NaiveDateTime,
    pub auto_accept: bool,
    pub epoch: i64,
}

/// Stores the offer with its event and publishes it; the consultant hears of it from
/// the stream. `Err(guard)` when storage disagrees with the dispatcher's view (the
/// request was taken or cancelled meanwhile, the consultant went away): nothing was
/// written, and the event that explains it is on its way to the dispatcher.
pub async fn make_offer(core: &Core, plan: &OfferPlan) -> Result<OfferId, OfferFailure> {
    let new = NewOffer {
        session_id: plan.session_id,
        consultant_id: plan.consultant_id,
        tier: plan.tier,
        score: plan.score,
        reasons: &plan.reasons,
        at: repo::now(),
        expires_at: plan.expires_at,
        auto_accept: plan.auto_accept,
        epoch: plan.epoch,
    };
    match repo::offers::create(&core.db, &new).await {
        Ok(Ok(committed)) => {
            let (offer, session) = committed.value;
            core.hub.publish(committed.events, Some(Arc::new(session)));
            Ok(offer.id)
        }
        Ok(Err(guard)) => Err(OfferFailure::Refused(guard)),
        Err(e) => Err(OfferFailure::Storage(e.to_string())),
    }
}

#[derive(Debug)]
pub enum OfferFailure {
    Refused(Guard),
    /// The database did not answer; the offer may be retried.
    Storage(String),
}

/// Ends a pending offer the server decided about (its timer ran out, the consultant
/// became unavailable). `Ok(false)` when it was no longer pending.
pub async fn resolve_offer(
    core: &Core,
    offer_id: OfferId,
    resolution: Resolution,
) -> Result<bool, String> {
    match repo::offers::resolve(
        &core.db,
        OfferRef::Id(offer_id),
        resolution,
        None,
        repo::now(),
    )
    .await
    {
        Ok(Ok(committed)) => {
            core.hub.publish(committed.events, None);
            Ok(true)
        }
        Ok(Err(_)) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// The offered consultant says no; the request goes to the next best consultant.
pub async fn decline(core: &Core, user: &User, session_id: SessionId) -> ApiResult<()> {
    if user.role != Role::Consultant {
        return Err(ApiError::Forbidden(
            "only the offered consultant can decline".into(),
        ));
    }
    let row = load_offered(core, user, session_id).await?;
    transition(row.status, Action::Decline)
        .map_err(|refusal| guard_error(Guard::Refused(refusal), session_id))?;
    let committed = repo::offers::resolve(
        &core.db,
        OfferRef::Held {
            session_id,
            consultant_id: user.id,
        },
        Resolution::Declined,
        Some(user.id),
        repo::now(),
    )
    .await?
    .map_err(|guard| guard_error(guard, session_id))?;
    core.hub.publish(committed.events, None);
    tracing::info!(
        session_id = session_id.0,
        consultant_id = user.id.0,
        "offer declined"
    );
    Ok(())
}

/// The offered consultant says yes (an admin accepting takes it for themselves).
pub async fn accept(core: &Core, user: &User, session_id: SessionId) -> ApiResult<SessionView> {
    let claim = match user.role {
        Role::Consultant => Claim::Accept,
        Role::Admin => Claim::TakeOverriding,
        _ => {
            return Err(ApiError::Forbidden(
                "only consultants and admins accept requests".into(),
            ))
        }
    };
    claim_request(core, user, session_id, claim).await
}

/// A consultant (or admin) takes a waiting request from the queue, under the same
/// guard as accept: not while it is offered to someone else (an admin overrides).
pub async fn take(core: &Core, user: &User, session_id: SessionId) -> ApiResult<SessionView> {
    let claim = match user.role {
        Role::Consultant => Claim::Take,
        Role::Admin => Claim::TakeOverriding,
        _ => {
            return Err(ApiError::Forbidden(
                "only consultants and admins take requests".into(),
            ))
        }
    };
    claim_request(core, user, session_id, claim).await
}

/// A session the user may see, or one they were offered (a consultant who held the
/// offer hears that it was cancelled or taken, not that it never existed).
async fn load_offered(core: &Core, user: &User, session_id: SessionId) -> ApiResult<SessionRow> {
    let row = repo::sessions::get(&core.db, session_id)
        .await?
        .ok_or_else(|| not_found(session_id))?;
    if can_view(user, &row)
        || (user.role == Role::Consultant
            && repo::offers::ever_offered(&core.db, session_id, user.id).await?)
    {
        Ok(row)
    } else {
        Err(not_found(session_id))
    }
}

/// Auto-accept takes the same path as a click on Accept, as the consultant.
pub async fn auto_accept(
    core: &Core,
    consultant: &User,
    session_id: SessionId,
) -> ApiResult<SessionView> {
    claim_request(core, consultant, session_id, Claim::Accept).await
}

async fn claim_request(
    core: &Core,
    user: &User,
    session_id: SessionId,
    claim: Claim,
) -> ApiResult<SessionView> {
    let row = load_offered(core, user, session_id).await?;
    let action = if claim == Claim::Accept {
        Action::Accept
    } else {
        Action::Take
    };
    transition(row.status, action)
        .map_err(|refusal| guard_error(Guard::Refused(refusal), session_id))?;
    // Refuse before creating a room that would only be thrown away.
    let offer = repo::offers::pending_for(&core.db, session_id).await?;
    match (claim, offer.as_ref().map(|o| o.consultant_id)) {
        (Claim::Accept, None) => return Err(guard_error(Guard::NotOffered, session_id)),
        (Claim::Accept | Claim::Take, Some(holder)) if holder != user.id => {
            return Err(guard_error(Guard::OfferedToAnother, session_id))
        }
        _ => {}
    }
    let room = match core.video.create_room(session_id.0).await {
        Ok(room) => room,
        Err(e) => {
            // The consultant could not be connected: withdraw their offer so the
            // request is offered again rather than left with them.
            if let Some(offer) = offer.filter(|o| o.consultant_id == user.id) {
                let reason = Resolution::Rescinded(RescindReason::VideoUnavailable);
                if let Err(db) = resolve_offer(core, offer.id, reason).await {
                    tracing::warn!(session_id = session_id.0, error = %db, "could not withdraw the offer");
                }
            }
            return Err(e.into());
        }
    };
    let acceptance = Acceptance {
        session_id,
        consultant_id: user.id,
        claim,
        at: repo::now(),
        provider: core.video.kind().as_str(),
        room_name: &room.name,
        room_url: room.url.as_deref(),
    };
    let stored = repo::sessions::accept(&core.db, &acceptance)
        .await
        .map_err(ApiError::from)
        .and_then(|guarded| guarded.map_err(|guard| guard_error(guard, session_id)));
    let committed = match stored {
        Ok(committed) => committed,
        Err(e) => {
            super::calls::delete_room_later(core, session_id, room.name.clone());
            return Err(e);
        }
    };
    let row = core.publish(committed);
    tracing::info!(
        session_id = session_id.0,
        consultant_id = user.id.0,
        tier = row.match_tier.map(|t| t.as_str()).unwrap_or("-"),
        "request accepted"
    );
    Ok(SessionView::from_row(&row))
}
