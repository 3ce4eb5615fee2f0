use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::models::{NewUser, UserRow};
use diesel_async::AsyncConnection;

use super::tx::insert_user;
use crate::db::schema::users;
use crate::db::{Db, DbError, DbResult};
use crate::model::{Role, UserId};

/// Creates the user; a consultant also gets their availability row (offline) in the
/// same transaction so presence never meets a consultant without one.
pub async fn create(db: &Db, user: &NewUser<'_>) -> DbResult<UserRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: UserRow = insert_user!(conn, user);
            Ok(row)
        })
        .await
    })
}

pub async fn by_email(db: &Db, email: &str) -> DbResult<Option<UserRow>> {
    let email = email.trim().to_lowercase();
    db_run!(db, read, |conn| {
        Ok(users::table
            .filter(users::email.eq(&email))
            .select(UserRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
}

pub async fn by_id(db: &Db, id: UserId) -> DbResult<Option<UserRow>> {
    db_run!(db, lookup, |conn| {
        Ok(users::table
            .find(id)
            .select(UserRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
}

pub async fn by_ids(db: &Db, ids: &[UserId]) -> DbResult<Vec<UserRow>> {
    db_run!(db, read, |conn| {
        Ok(users::table
            .filter(users::id.eq_any(ids))
            .select(UserRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn by_role(db: &Db, role: Role) -> DbResult<Vec<UserRow>> {
    db_run!(db, read, |conn| {
        Ok(users::table
            .filter(users::role.eq(role))
            .order(users::id)
            .select(UserRow::as_select())
            .load(conn)
            .await?)
    })
}

/// Returns whether a user with that email existed.
pub async fn set_password(db: &Db, email: &str, password_hash: &str) -> DbResult<bool> {
    let email = email.trim().to_lowercase();
    db_run!(db, write, |conn| {
        let changed = diesel::update(users::table.filter(users::email.eq(&email)))
            .set(users::password_hash.eq(password_hash))
            .execute(conn)
            .await?;
        Ok(changed > 0)
    })
}

pub async fn count(db: &Db) -> DbResult<i64> {
    db_run!(db, read, |conn| {
        Ok(users::table.count().get_result(conn).await?)
    })
}
