//! Writes that record what already happened (offer timeline entries, server-initiated
//! status changes) go through one ordered queue off the dispatch path: the dispatcher
//! never waits on storage, and two writes about one consultant land in order.
//! Whatever has queued up by the time the writer gets the database is stored in one
//! transaction, so a burst costs one commit, not one per fact.

use tokio::sync::mpsc;

use crate::db::models::ConsultantStatus;
use crate::db::repo::sessions::Recorded;
use crate::db::{repo, Db};

/// Most facts stored in one transaction (bounds how long one batch holds the writer).
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct BackgroundWriter {
    tx: mpsc::UnboundedSender<Recorded>,
}

impl BackgroundWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Db) -> BackgroundWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Recorded>();
        actix::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                if let Err(e) = repo::sessions::record_batch(&db, &batch).await {
                    // One bad fact (a session deleted meanwhile) must not take the
                    // others with it: store them one by one.
                    tracing::warn!(error = %e, facts = batch.len(), "background batch failed; retrying one by one");
                    for fact in &batch {
                        if let Err(e) =
                            repo::sessions::record_batch(&db, std::slice::from_ref(fact)).await
                        {
                            tracing::warn!(error = %e, "background write failed");
                        }
                    }
                }
                batch.clear();
            }
        });
        BackgroundWriter { tx }
    }

    fn send(&self, fact: Recorded) {
        if self.tx.send(fact).is_err() {
            tracing::warn!("background writer has stopped; a timeline entry was not stored");
        }
    }

    /// A timeline entry, stamped now (when it happened, not when it is stored).
    pub fn event(
        &self,
        session_id: i64,
        kind: &'static str,
        actor_id: Option<i64>,
        consultant_id: Option<i64>,
        detail: Option<String>,
    ) {
        self.send(Recorded::Event {
            session_id,
            kind,
            actor_id,
            consultant_id,
            detail,
            at: repo::now(),
        });
    }

    /// A status the server set (away after missed offers, offline after the grace).
    pub fn status(&self, consultant_id: i64, status: ConsultantStatus) {
        self.send(Recorded::Status {
            consultant_id,
            status: status.as_str(),
            at: repo::now(),
        });
    }

    pub fn room_deleted(&self, session_id: i64) {
        self.send(Recorded::RoomDeleted { session_id });
    }
}
