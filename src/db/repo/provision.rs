//! Bulk provisioning for the load generator: thousands of accounts in one transaction
//! each, with sign-in tokens minted directly. Logging 5,000 consultants in through
//! `/api/auth/login` would spend minutes in argon2 (deliberately slow) and measure the
//! password hash, not dispatch.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::models::{NewUser, UserRow};
use crate::db::schema::{auth_tokens, consultant_availability, consultant_specialties, users};
use crate::db::{Db, DbError, DbResult};
use crate::model::{ConsultantStatus, HospitalId, Proficiency, Role, UserId};

/// One account to create, with the hash of the token it will sign in with.
pub struct BulkAccount {
    pub email: String,
    pub name: String,
    pub token_hash: String,
}

/// What every account of one call shares.
pub struct BulkSpec<'a> {
    pub role: Role,
    pub hospital_id: Option<HospitalId>,
    /// One argon2 hash computed once: every generated account has the same password.
    pub password_hash: &'a str,
    /// `(department, proficiency)` given to each consultant.
    pub specialties: &'a [(String, Proficiency)],
    pub token_expires_at: NaiveDateTime,
}

/// Creates the accounts in one transaction (all or none) and returns their ids in
/// input order.
pub async fn bulk_accounts(
    db: &Db,
    spec: &BulkSpec<'_>,
    accounts: &[BulkAccount],
) -> DbResult<Vec<UserId>> {
    let now = super::now();
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let mut ids = Vec::with_capacity(accounts.len());
            for account in accounts {
                let row = diesel::insert_into(users::table)
                    .values(&NewUser {
                        email: &account.email,
                        name: &account.name,
                        role: spec.role,
                        hospital_id: spec.hospital_id,
                        password_hash: spec.password_hash,
                        created_at: now,
                    })
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .await?;
                diesel::insert_into(auth_tokens::table)
                    .values((
                        auth_tokens::user_id.eq(row.id),
                        auth_tokens::token_hash.eq(&account.token_hash),
                        auth_tokens::created_at.eq(now),
                        auth_tokens::expires_at.eq(spec.token_expires_at),
                    ))
                    .execute(conn)
                    .await?;
                if spec.role == Role::Consultant {
                    diesel::insert_into(consultant_availability::table)
                        .values((
                            consultant_availability::consultant_id.eq(row.id),
                            consultant_availability::status.eq(ConsultantStatus::Offline),
                            consultant_availability::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    for (department, proficiency) in spec.specialties {
                        diesel::insert_into(consultant_specialties::table)
                            .values((
                                consultant_specialties::consultant_id.eq(row.id),
                                consultant_specialties::department.eq(department),
                                consultant_specialties::proficiency.eq(proficiency),
                            ))
                            .execute(conn)
                            .await?;
                    }
                }
                ids.push(row.id);
            }
            Ok(ids)
        })
        .await
    })
}
