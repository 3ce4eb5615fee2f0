//! Housekeeping for provider rooms beyond a single request: keeping the rooms of
//! live calls from expiring, and deleting rooms that no session owns any more.
//!
//! Both run from the periodic loops started in `server.rs`, never on the path of
//! an HTTP request, so they may wait on a slow provider; a failure is logged and
//! the next pass tries again.

use std::collections::HashMap;

use super::Core;
use crate::db::repo;
use crate::model::{SessionId, SessionStatus};
use crate::video::{session_id_from_room_name, VideoError};

/// Keeps `eq_any` lists well under SQLite's bound-parameter limit.
const OWNER_LOOKUP_CHUNK: usize = 500;

/// Pushes forward the expiry of every connecting or active call's room.
///
/// Sessions have no time limit, and although a room's expiry does not eject
/// anyone already in the call, a party who reconnects after it would be refused.
pub async fn extend_live_rooms(core: &Core) {
    let rooms = match repo::sessions::live_rooms(&core.db).await {
        Ok(rooms) => rooms,
        Err(e) => {
            tracing::warn!(error = %e, "room extension: cannot read live calls");
            return;
        }
    };
    for (session_id, room_name) in rooms {
        match core.video.extend_room(&room_name).await {
            Ok(()) => {}
            // Usually the call ended between the read and the extension.
            Err(VideoError::NotFound) => {
                tracing::info!(
                    session_id = session_id.0,
                    "room extension: the room no longer exists"
                )
            }
            Err(e) => {
                tracing::warn!(session_id = session_id.0, error = %e, "room extension failed; will retry")
            }
        }
    }
}

/// A room the provider lists, judged against the session its name points at.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// Delete it; when it is the stored room of a finished session, also mark
    /// that session's room deleted so the stored-room sweep stops retrying it.
    Delete {
        finished_owner: Option<SessionId>,
    },
}

/// `owners` maps session id → (status, stored room name).
///
/// A room of a *pending* session is kept: an accept may be creating it right now,
/// before the room is stored. Once the session has moved on, a room that is not
/// the one it stored is a leftover, e.g. from a create whose reply timed out.
fn judge(room_name: &str, owners: &HashMap<SessionId, (SessionStatus, Option<String>)>) -> Verdict {
    let Some(session_id) = session_id_from_room_name(room_name).map(SessionId) else {
        return Verdict::Delete {
            finished_owner: None,
        };
    };
    let Some((status, stored)) = owners.get(&session_id) else {
        return Verdict::Delete {
            finished_owner: None,
        };
    };
    let is_stored = stored.as_deref() == Some(room_name);
    match status {
        SessionStatus::Pending => Verdict::Keep,
        SessionStatus::Connecting | SessionStatus::Active if is_stored => Verdict::Keep,
        SessionStatus::Connecting | SessionStatus::Active => Verdict::Delete {
            finished_owner: None,
        },
        SessionStatus::Completed | SessionStatus::Cancelled => Verdict::Delete {
            finished_owner: is_stored.then_some(session_id),
        },
    }
}

/// Deletes rooms carrying our prefix that belong to no live session: rooms a
/// crash left behind before their session stored them or deleted them.
///
/// Only rooms the provider lists under our prefix are seen, so rooms a HIPAA
/// domain renamed are covered by the stored-room sweep alone (`sweep_rooms`).
pub async fn sweep_leftover_rooms(core: &Core) {
    let rooms = match core.video.list_rooms().await {
        Ok(rooms) => rooms,
        Err(e) => {
            tracing::warn!(error = %e, "leftover room sweep: cannot list rooms");
            return;
        }
    };
    if rooms.is_empty() {
        return;
    }
    let ids: Vec<SessionId> = rooms
        .iter()
        .filter_map(|r| session_id_from_room_name(&r.name).map(SessionId))
        .collect();
    let mut owners = HashMap::new();
    for chunk in ids.chunks(OWNER_LOOKUP_CHUNK) {
        match repo::sessions::room_owners(&core.db, chunk).await {
            Ok(rows) => owners.extend(rows.into_iter().map(|(id, s, r)| (id, (s, r)))),
            Err(e) => {
                // Without the owners every room would look abandoned.
                tracing::warn!(error = %e, "leftover room sweep: cannot read sessions");
                return;
            }
        }
    }
    for room in rooms {
        let Verdict::Delete { finished_owner } = judge(&room.name, &owners) else {
            continue;
        };
        match core.video.delete_room(&room.name).await {
            Ok(()) => {
                tracing::info!(room = %room.name, "deleted a leftover room");
                if let Some(session_id) = finished_owner {
                    if let Err(e) = repo::sessions::mark_room_deleted(&core.db, session_id).await {
                        tracing::warn!(session_id = session_id.0, error = %e, "cannot mark room deleted");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(room = %room.name, error = %e, "leftover room sweep: delete failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(
        rows: &[(i64, &str, Option<&str>)],
    ) -> HashMap<SessionId, (SessionStatus, Option<String>)> {
        rows.iter()
            .map(|(id, status, room)| {
                let status = SessionStatus::parse(status).expect("a status word");
                (SessionId(*id), (status, room.map(str::to_owned)))
            })
            .collect()
    }

    const GONE: Verdict = Verdict::Delete {
        finished_owner: None,
    };

    #[test]
    fn live_and_pending_sessions_keep_their_rooms() {
        let o = owners(&[
            (1, "pending", None),
            (2, "connecting", Some("nicehr-s2-aaaa")),
            (3, "active", Some("nicehr-s3-aaaa")),
        ]);
        assert_eq!(judge("nicehr-s1-zzzz", &o), Verdict::Keep);
        assert_eq!(judge("nicehr-s2-aaaa", &o), Verdict::Keep);
        assert_eq!(judge("nicehr-s3-aaaa", &o), Verdict::Keep);
    }

    #[test]
    fn rooms_nobody_stored_or_needs_are_deleted() {
        let o = owners(&[
            (2, "connecting", Some("nicehr-s2-aaaa")),
            (4, "completed", Some("nicehr-s4-aaaa")),
            (5, "cancelled", None),
        ]);
        // A second room of a live call: the first create's reply was lost.
        assert_eq!(judge("nicehr-s2-bbbb", &o), GONE);
        // A finished session's own room is marked deleted once it is gone.
        assert_eq!(
            judge("nicehr-s4-aaaa", &o),
            Verdict::Delete {
                finished_owner: Some(SessionId(4))
            }
        );
        assert_eq!(judge("nicehr-s4-bbbb", &o), GONE);
        assert_eq!(judge("nicehr-s5-aaaa", &o), GONE);
        // No such session (a wiped database), or a name we cannot read.
        assert_eq!(judge("nicehr-s99-aaaa", &o), GONE);
        assert_eq!(judge("nicehr-stray", &o), GONE);
    }
}
