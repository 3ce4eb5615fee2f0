//! Auto-accept: a consultant who turned it on is connected the moment an offer is
//! made. It reacts to the `offered` event like any subscriber, and accepts through
//! the same path as a click on Accept.

use std::sync::Arc;

use crate::db::models::User;
use crate::db::repo;
use crate::events::Published;
use crate::model::EventData;
use crate::support::{offers, Core};

pub fn react(core: &Arc<Core>, published: &Published) {
    let EventData::Offered {
        auto_accept: true, ..
    } = published.event.data
    else {
        return;
    };
    let (Some(session_id), Some(consultant_id)) =
        (published.event.session_id, published.event.consultant_id)
    else {
        return;
    };
    let core = core.clone();
    actix::spawn(async move {
        let consultant = match repo::users::by_id(&core.db, consultant_id).await {
            Ok(Some(row)) => User::from(&row),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(session_id = session_id.0, error = %e, "auto-accept: consultant not loaded");
                return;
            }
        };
        if let Err(e) = offers::auto_accept(&core, &consultant, session_id).await {
            tracing::warn!(
                session_id = session_id.0,
                consultant_id = consultant_id.0,
                error = %e,
                "auto-accept failed"
            );
        }
    });
}
