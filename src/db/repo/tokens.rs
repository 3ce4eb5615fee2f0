use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::tx::revoke_tokens_in_tx;
use crate::db::models::UserRow;
use crate::db::schema::{auth_tokens, users};
use crate::db::sql::reusable;
use crate::db::{Db, DbResult};
use crate::model::UserId;

pub async fn insert(
    db: &Db,
    user_id: UserId,
    token_hash: &str,
    expires_at: NaiveDateTime,
) -> DbResult<()> {
    let now = super::now();
    db_run!(db, write, |conn| {
        diesel::insert_into(auth_tokens::table)
            .values((
                auth_tokens::user_id.eq(user_id),
                auth_tokens::token_hash.eq(token_hash),
                auth_tokens::created_at.eq(now),
                auth_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The user a live (unexpired, unrevoked) token belongs to, and when it expires. A
/// deactivated account's tokens are revoked with the deactivation; the `active`
/// check also covers a sign-in that raced it.
pub async fn user_for(
    db: &Db,
    token_hash: &str,
    now: NaiveDateTime,
) -> DbResult<Option<(UserRow, NaiveDateTime)>> {
    db_run!(db, lookup, |conn| {
        Ok(auth_tokens::table
            .inner_join(users::table)
            .filter(auth_tokens::token_hash.eq(token_hash))
            .filter(auth_tokens::revoked_at.is_null())
            .filter(auth_tokens::expires_at.gt(now))
            .filter(users::active.eq(true))
            .select((UserRow::as_select(), auth_tokens::expires_at))
            .get_result(conn)
            .await
            .optional()?)
    })
}

pub async fn revoke(db: &Db, token_hash: &str) -> DbResult<()> {
    let now = super::now();
    db_run!(db, write, |conn| {
        reusable(
            diesel::update(auth_tokens::table.filter(auth_tokens::token_hash.eq(token_hash)))
                .set(auth_tokens::revoked_at.eq(Some(now))),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}

/// Revokes every token of a user (password reset).
pub async fn revoke_all(db: &Db, user_id: UserId) -> DbResult<()> {
    let now = super::now();
    db_run!(db, write, |conn| {
        revoke_tokens_in_tx!(conn, eq(user_id), now);
        Ok(())
    })
}

/// Hashes of tokens revoked at or after `since`, with when: the revocation watch
/// closes their sockets.
pub async fn revoked_since(
    db: &Db,
    since: NaiveDateTime,
) -> DbResult<Vec<(String, NaiveDateTime)>> {
    db_run!(db, lookup, |conn| {
        let rows: Vec<(String, Option<NaiveDateTime>)> = auth_tokens::table
            .filter(auth_tokens::revoked_at.ge(since))
            .select((auth_tokens::token_hash, auth_tokens::revoked_at))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(hash, at)| at.map(|at| (hash, at)))
            .collect())
    })
}
