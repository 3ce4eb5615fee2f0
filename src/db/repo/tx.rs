//! Statement groups shared by the transactions of several repositories. They are
//! macros, not functions, because each expands inside a `db_run!` body once per
//! backend, where the connection has a different concrete type.

/// Inserts one event of the stream and evaluates to the committed-to-be
/// [`crate::model::event::Event`] (with its id). Write it last in a transaction: on
/// PostgreSQL an id taken by a transaction that then rolls back is a gap the event
/// hub has to wait out.
macro_rules! insert_event {
    ($conn:expr, $new:expr) => {{
        let new: &$crate::db::repo::events::NewEvent = $new;
        let detail = serde_json::to_string(&new.data)
            .map_err(|e| $crate::db::DbError::Query(format!("event payload: {e}")))?;
        let id: $crate::model::EventId =
            diesel::insert_into($crate::db::schema::session_events::table)
                .values((
                    $crate::db::schema::session_events::session_id.eq(new.session_id),
                    $crate::db::schema::session_events::kind.eq(new.data.kind()),
                    $crate::db::schema::session_events::actor_id.eq(new.actor_id),
                    $crate::db::schema::session_events::consultant_id.eq(new.consultant_id),
                    $crate::db::schema::session_events::detail.eq(Some(detail)),
                    $crate::db::schema::session_events::created_at.eq(new.at),
                ))
                .returning($crate::db::schema::session_events::id)
                .get_result($conn)
                .await?;
        new.committed(id)
    }};
}
pub(crate) use insert_event;

/// Inserts a user and evaluates to its [`crate::db::models::UserRow`]; a consultant also
/// gets their availability row (offline) in the same transaction, so presence never
/// meets a consultant without one.
macro_rules! insert_user {
    ($conn:expr, $user:expr) => {{
        use $crate::db::schema::{consultant_availability, users};
        let row = diesel::insert_into(users::table)
            .values($user)
            .returning($crate::db::models::UserRow::as_returning())
            .get_result($conn)
            .await?;
        if row.role == $crate::model::Role::Consultant {
            diesel::insert_into(consultant_availability::table)
                .values((
                    consultant_availability::consultant_id.eq(row.id),
                    consultant_availability::status.eq($crate::model::ConsultantStatus::Offline),
                    consultant_availability::updated_at.eq(row.created_at),
                ))
                .execute($conn)
                .await?;
        }
        row
    }};
}
pub(crate) use insert_user;

/// Revokes every live token of the users `$who` (a `users::id` filter such as
/// `.eq(id)` or `.eq_any(&ids)`); their sockets close when the revocation watch or the
/// caller sees it.
macro_rules! revoke_tokens_in_tx {
    ($conn:expr, $who:ident ( $($arg:tt)* ), $at:expr) => {{
        use $crate::db::schema::auth_tokens;
        let at: chrono::NaiveDateTime = $at;
        diesel::update(
            auth_tokens::table
                .filter(auth_tokens::user_id.$who($($arg)*))
                .filter(auth_tokens::revoked_at.is_null()),
        )
        .set(auth_tokens::revoked_at.eq(Some(at)))
        .execute($conn)
        .await?
    }};
}
pub(crate) use revoke_tokens_in_tx;

/// Gives a user who has just become a consultant their availability row (offline),
/// unless they had one from an earlier time as a consultant.
macro_rules! ensure_availability_in_tx {
    ($conn:expr, $consultant:expr, $at:expr) => {{
        use $crate::db::schema::consultant_availability;
        diesel::insert_into(consultant_availability::table)
            .values((
                consultant_availability::consultant_id.eq($consultant),
                consultant_availability::status.eq($crate::model::ConsultantStatus::Offline),
                consultant_availability::updated_at.eq($at),
            ))
            .on_conflict_do_nothing()
            .execute($conn)
            .await?
    }};
}
pub(crate) use ensure_availability_in_tx;

/// Takes the consultant's availability row for the rest of the transaction and
/// evaluates to it (`None` when there is none). A no-op update rather than a read: on
/// PostgreSQL it locks the row, so changes racing for one consultant (a socket's
/// `online` and their own `available`, an offer and a status change) are checked one
/// after the other, each against what the other left.
macro_rules! lock_availability {
    ($conn:expr, $consultant:expr) => {{
        use $crate::db::schema::consultant_availability;
        let row: Option<$crate::db::models::AvailabilityRow> = $crate::db::sql::reusable(
            diesel::update(consultant_availability::table.find($consultant))
                .set(consultant_availability::updated_at.eq(consultant_availability::updated_at))
                .returning($crate::db::models::AvailabilityRow::as_returning()),
        )
        .get_result($conn)
        .await
        .optional()?;
        row
    }};
}
pub(crate) use lock_availability;

/// Takes the user's row for the rest of the transaction (a no-op update, as in
/// [`lock_availability!`]), for checks about someone who has no availability row.
macro_rules! lock_user {
    ($conn:expr, $user:expr) => {{
        use $crate::db::schema::users;
        $crate::db::sql::reusable(
            diesel::update(users::table.find($user)).set(users::id.eq(users::id)),
        )
        .execute($conn)
        .await?
    }};
}
pub(crate) use lock_user;

/// How many sessions the consultant is in a call in (connecting or active): a
/// consultant in one can neither be offered nor take another.
macro_rules! calls_in_progress {
    ($conn:expr, $consultant:expr) => {{
        use $crate::db::schema::support_sessions;
        let count: i64 = $crate::db::sql::reusable(
            support_sessions::table
                .filter(support_sessions::consultant_id.eq($consultant))
                .filter(support_sessions::status.eq_any($crate::model::SessionStatus::IN_CALL))
                .count(),
        )
        .get_result($conn)
        .await?;
        count
    }};
}
pub(crate) use calls_in_progress;

/// Moves the consultant's stored status, closing the open status-log interval and
/// opening a new one, so utilisation can be computed from intervals.
macro_rules! set_status_in_tx {
    ($conn:expr, $consultant:expr, $status:expr, $session:expr, $at:expr) => {{
        use $crate::db::schema::{consultant_availability, consultant_status_log};
        let status: $crate::model::ConsultantStatus = $status;
        let session: Option<$crate::model::SessionId> = $session;
        $crate::db::sql::reusable(
            diesel::update(consultant_availability::table.find($consultant)).set((
                consultant_availability::status.eq(status),
                consultant_availability::current_session_id.eq(session),
                consultant_availability::updated_at.eq($at),
            )),
        )
        .execute($conn)
        .await?;
        $crate::db::sql::reusable(
            diesel::update(
                consultant_status_log::table
                    .filter(consultant_status_log::consultant_id.eq($consultant))
                    .filter(consultant_status_log::ended_at.is_null()),
            )
            .set(consultant_status_log::ended_at.eq(Some($at))),
        )
        .execute($conn)
        .await?;
        diesel::insert_into(consultant_status_log::table)
            .values((
                consultant_status_log::consultant_id.eq($consultant),
                consultant_status_log::status.eq(status),
                consultant_status_log::started_at.eq($at),
            ))
            .execute($conn)
            .await?;
    }};
}
pub(crate) use set_status_in_tx;

/// Takes the session's row for `$action` (on PostgreSQL the update locks it until the
/// transaction ends, so a concurrent change of the same session waits), returning the
/// row; when the session is missing or in a status the lifecycle table does not allow
/// `$action` from, returns `Ok(Err(guard))` from the enclosing transaction.
macro_rules! lock_session {
    ($conn:expr, $id:expr, $action:expr) => {{
        use $crate::db::schema::support_sessions;
        let action: $crate::model::Action = $action;
        let allowed = action.allowed_from();
        let row: Option<$crate::db::models::SessionRow> = $crate::db::sql::reusable(
            diesel::update(
                support_sessions::table
                    .find($id)
                    .filter(support_sessions::status.eq_any(allowed)),
            )
            .set(support_sessions::status.eq(support_sessions::status))
            .returning($crate::db::models::SessionRow::as_returning()),
        )
        .get_result($conn)
        .await
        .optional()?;
        match row {
            Some(row) => row,
            None => {
                let status: Option<$crate::model::SessionStatus> = support_sessions::table
                    .find($id)
                    .select(support_sessions::status)
                    .get_result($conn)
                    .await
                    .optional()?;
                return Ok(Err(match status {
                    Some(status) => {
                        $crate::db::repo::Guard::Refused($crate::model::Refusal { action, status })
                    }
                    None => $crate::db::repo::Guard::Missing,
                }));
            }
        }
    }};
}
pub(crate) use lock_session;
