//! Revocation reaches open sockets: a token revoked anywhere (sign-out, a password
//! change, a deactivated account, `admin set-password` from another process, another
//! node) closes its sockets with code 4001 within [`POLL`].
//!
//! Sign-outs on this node close their sockets at once; this watch is for every other
//! path. It asks storage for tokens revoked since its previous look, which the
//! partial index on `auth_tokens.revoked_at` answers without a scan.

use std::sync::Arc;
use std::time::Duration;

use super::registry::{Closing, Registry};
use crate::db::{repo, Db};

/// How often the watch looks.
pub const POLL: Duration = Duration::from_millis(500);
/// Looked-at windows overlap by this much, so a revocation committed with a
/// timestamp a little before it became visible is not missed.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(2);

pub fn spawn(db: Db, registry: Arc<Registry>) {
    actix::spawn(async move {
        let mut since = repo::now();
        let mut interval = tokio::time::interval(POLL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = repo::now();
            match repo::tokens::revoked_since(&db, since - OVERLAP).await {
                Ok(revoked) => {
                    for (hash, _) in revoked {
                        registry.close_token(&hash, Closing::SignedOut("you were signed out"));
                    }
                    since = now;
                }
                Err(e) => tracing::debug!(error = %e, "revocation watch: storage unavailable"),
            }
        }
    });
}
