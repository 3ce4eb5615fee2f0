//! Single sign-on storage: sign-ins under way (`sso_logins`, single use, with an
//! expiry) and which account an identity provider's subject is (`sso_identities`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::tx::{ensure_availability_in_tx, insert_user};
use crate::db::models::{NewUser, UserRow};
use crate::db::schema::{hospitals, sso_identities, sso_logins, users};
use crate::db::{Db, DbError, DbResult};
use crate::model::{HospitalId, Role, UserId};

/// A sign-in that went to the identity provider and has not come back yet.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sso_logins)]
pub struct LoginRow {
    pub state: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Who a provider's subject is, as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sso_identities)]
pub struct IdentityRow {
    pub id: i64,
    pub user_id: UserId,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub created_at: NaiveDateTime,
    pub last_sign_in_at: NaiveDateTime,
}

/// The identity a new or linked account gets.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub provider: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
}

/// Stores a sign-in under way, and forgets those that ran out: abandoned sign-ins
/// (a closed tab at the provider's page) must not pile up.
pub async fn insert_login(db: &Db, login: &LoginRow) -> DbResult<()> {
    let now = login.created_at;
    db_run!(db, write, |conn| {
        diesel::delete(sso_logins::table.filter(sso_logins::expires_at.le(now)))
            .execute(conn)
            .await?;
        diesel::insert_into(sso_logins::table)
            .values(login)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Takes (deletes and returns) the sign-in with this state: a state is good once,
/// so a replayed callback finds nothing. Expiry is the caller's to check.
pub async fn take_login(db: &Db, state: &str) -> DbResult<Option<LoginRow>> {
    db_run!(db, write, |conn| {
        Ok(
            diesel::delete(sso_logins::table.filter(sso_logins::state.eq(state)))
                .returning(LoginRow::as_returning())
                .get_result(conn)
                .await
                .optional()?,
        )
    })
}

/// The account of this issuer's subject, if it signed in before.
pub async fn account_of(
    db: &Db,
    issuer: &str,
    subject: &str,
) -> DbResult<Option<(IdentityRow, UserRow)>> {
    db_run!(db, lookup, |conn| {
        Ok(sso_identities::table
            .inner_join(users::table)
            .filter(sso_identities::issuer.eq(issuer))
            .filter(sso_identities::subject.eq(subject))
            .select((IdentityRow::as_select(), UserRow::as_select()))
            .get_result(conn)
            .await
            .optional()?)
    })
}

/// Notes a sign-in, and brings the role the provider's claims now give.
pub async fn signed_in(
    db: &Db,
    identity_id: i64,
    user_id: UserId,
    role: Role,
    now: NaiveDateTime,
) -> DbResult<UserRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            diesel::update(sso_identities::table.find(identity_id))
                .set(sso_identities::last_sign_in_at.eq(now))
                .execute(conn)
                .await?;
            let row = diesel::update(users::table.find(user_id))
                .set(users::role.eq(role))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await?;
            if role == Role::Consultant {
                ensure_availability_in_tx!(conn, row.id, now);
            }
            Ok(row)
        })
        .await
    })
}

/// Ties an identity to an account that already exists (made with a password
/// before the hospital turned to its identity provider).
pub async fn link(
    db: &Db,
    user_id: UserId,
    who: Subject<'_>,
    now: NaiveDateTime,
) -> DbResult<IdentityRow> {
    db_run!(db, write, |conn| {
        Ok(diesel::insert_into(sso_identities::table)
            .values((
                sso_identities::user_id.eq(user_id),
                sso_identities::provider.eq(who.provider),
                sso_identities::issuer.eq(who.issuer),
                sso_identities::subject.eq(who.subject),
                sso_identities::created_at.eq(now),
                sso_identities::last_sign_in_at.eq(now),
            ))
            .returning(IdentityRow::as_returning())
            .get_result(conn)
            .await?)
    })
}

/// Makes the account of a first sign-in and its identity in one transaction: two
/// callbacks of one person racing make one account (the second hits the unique
/// indexes and is told to retry).
pub async fn create_account(
    db: &Db,
    user: &NewUser<'_>,
    who: Subject<'_>,
) -> DbResult<(IdentityRow, UserRow)> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: UserRow = insert_user!(conn, user);
            let identity = diesel::insert_into(sso_identities::table)
                .values((
                    sso_identities::user_id.eq(row.id),
                    sso_identities::provider.eq(who.provider),
                    sso_identities::issuer.eq(who.issuer),
                    sso_identities::subject.eq(who.subject),
                    sso_identities::created_at.eq(row.created_at),
                    sso_identities::last_sign_in_at.eq(row.created_at),
                ))
                .returning(IdentityRow::as_returning())
                .get_result(conn)
                .await?;
            Ok((identity, row))
        })
        .await
    })
}

/// How many accounts came through identity providers (tests, metrics).
pub async fn identity_count(db: &Db, issuer: &str) -> DbResult<i64> {
    db_run!(db, read, |conn| {
        Ok(sso_identities::table
            .filter(sso_identities::issuer.eq(issuer))
            .count()
            .get_result(conn)
            .await?)
    })
}

/// Whether people of this hospital may sign in with a password.
pub async fn password_login_allowed(db: &Db, hospital: HospitalId) -> DbResult<bool> {
    db_run!(db, lookup, |conn| {
        Ok(hospitals::table
            .find(hospital)
            .select(hospitals::password_login)
            .get_result(conn)
            .await
            .optional()?
            .unwrap_or(true))
    })
}

/// Turns password sign-in on or off for a hospital; `false` if there is no such
/// hospital.
pub async fn set_password_login(db: &Db, hospital: HospitalId, allowed: bool) -> DbResult<bool> {
    db_run!(db, write, |conn| {
        let changed = diesel::update(hospitals::table.find(hospital))
            .set(hospitals::password_login.eq(allowed))
            .execute(conn)
            .await?;
        Ok(changed > 0)
    })
}
