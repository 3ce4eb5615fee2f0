//! Writes that record what already happened (offer timeline entries, server-initiated
//! status changes) go through one ordered queue off the dispatch path: the dispatcher
//! never waits on storage, and two writes about one consultant land in order.

use tokio::sync::mpsc;

use crate::db::models::ConsultantStatus;
use crate::db::{repo, Db};

pub enum BackgroundWrite {
    Event {
        session_id: i64,
        kind: &'static str,
        actor_id: Option<i64>,
        consultant_id: Option<i64>,
        detail: Option<String>,
    },
    Status {
        consultant_id: i64,
        status: ConsultantStatus,
    },
    RoomDeleted {
        session_id: i64,
    },
}

#[derive(Clone)]
pub struct BackgroundWriter {
    tx: mpsc::UnboundedSender<BackgroundWrite>,
}

impl BackgroundWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Db) -> BackgroundWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<BackgroundWrite>();
        actix::spawn(async move {
            while let Some(write) = rx.recv().await {
                let result = match &write {
                    BackgroundWrite::Event {
                        session_id,
                        kind,
                        actor_id,
                        consultant_id,
                        detail,
                    } => {
                        repo::sessions::add_event(
                            &db,
                            *session_id,
                            kind,
                            *actor_id,
                            *consultant_id,
                            detail.as_deref(),
                        )
                        .await
                    }
                    BackgroundWrite::Status {
                        consultant_id,
                        status,
                    } => {
                        repo::consultants::set_status(&db, *consultant_id, status.as_str(), None)
                            .await
                    }
                    BackgroundWrite::RoomDeleted { session_id } => {
                        repo::sessions::mark_room_deleted(&db, *session_id).await
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "background write failed");
                }
            }
        });
        BackgroundWriter { tx }
    }

    pub fn send(&self, write: BackgroundWrite) {
        if self.tx.send(write).is_err() {
            tracing::warn!("background writer has stopped; a timeline entry was not stored");
        }
    }

    pub fn event(
        &self,
        session_id: i64,
        kind: &'static str,
        actor_id: Option<i64>,
        consultant_id: Option<i64>,
        detail: Option<String>,
    ) {
        self.send(BackgroundWrite::Event {
            session_id,
            kind,
            actor_id,
            consultant_id,
            detail,
        });
    }
}
