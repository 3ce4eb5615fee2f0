//! The admin console's storage: searching accounts, changing accounts and hospitals
//! (deactivation revokes tokens in the same transaction), consultants' weekly hours.
//! Every change writes its audit row in its own transaction.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::audit::{insert_audit, Entry};
use super::tx::{ensure_availability_in_tx, revoke_tokens_in_tx};
use crate::db::models::{Hospital, UserRow};
use crate::db::schema::{consultant_hours, hospitals, users};
use crate::db::{Db, DbError, DbResult};
use crate::model::{HospitalId, Plan, Role, UserId};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Which accounts to list: all filters optional, in id order after the cursor.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    /// Lowercased text that the name or email must contain.
    pub text: Option<String>,
    pub role: Option<Role>,
    pub hospital_id: Option<HospitalId>,
    pub active: Option<bool>,
    pub after: Option<UserId>,
    pub limit: i64,
}

/// `%` and `_` in what an admin typed are letters, not wildcards.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub async fn search_users(db: &Db, s: &UserSearch) -> DbResult<Vec<UserRow>> {
    let pattern = s.text.as_deref().map(contains_pattern);
    db_run!(db, read, |conn| {
        let mut query = users::table.select(UserRow::as_select()).into_boxed();
        if let Some(pattern) = &pattern {
            query = query.filter(
                lower(users::name)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(users::email).like(pattern.clone()).escape('\\')),
            );
        }
        if let Some(role) = s.role {
            query = query.filter(users::role.eq(role));
        }
        if let Some(hospital_id) = s.hospital_id {
            query = query.filter(users::hospital_id.eq(hospital_id));
        }
        if let Some(active) = s.active {
            query = query.filter(users::active.eq(active));
        }
        if let Some(after) = s.after {
            query = query.filter(users::id.gt(after));
        }
        Ok(query.order(users::id).limit(s.limit).load(conn).await?)
    })
}

/// The stored fields an admin may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` takes the account out of any hospital.
    pub hospital_id: Option<Option<HospitalId>>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
}

impl UserChange {
    /// Whether the change ends the account's sign-ins: a deactivation, a new
    /// password, or a new role or hospital (open pages and sockets would keep the old
    /// one's view).
    pub fn signs_out(&self) -> bool {
        self.active == Some(false)
            || self.password_hash.is_some()
            || self.role.is_some()
            || self.hospital_id.is_some()
    }
}

/// Applies the change with its audit rows, revoking the account's tokens when the
/// change signs it out; a new consultant gets their (offline) availability row.
/// `None` when there is no such user.
pub async fn update_user(
    db: &Db,
    id: UserId,
    change: &UserChange,
    audit: &[Entry<'_>],
) -> DbResult<Option<UserRow>> {
    let now = super::now();
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<UserRow> = diesel::update(users::table.find(id))
                .set(change)
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            if row.role == Role::Consultant {
                ensure_availability_in_tx!(conn, row.id, now);
            }
            if change.signs_out() {
                revoke_tokens_in_tx!(conn, eq(id), now);
            }
            for entry in audit {
                insert_audit!(conn, entry);
            }
            Ok(Some(row))
        })
        .await
    })
}

/// The stored fields of a hospital an admin may change.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = hospitals)]
pub struct HospitalChange {
    pub name: Option<String>,
    pub plan: Option<Plan>,
    pub timezone: Option<String>,
    pub active: Option<bool>,
    pub password_login: Option<bool>,
}

/// Applies the change with its audit rows. Deactivating a hospital revokes every
/// token of its people; their ids come back so their sockets can be closed.
/// `None` when there is no such hospital.
pub async fn update_hospital(
    db: &Db,
    id: HospitalId,
    change: &HospitalChange,
    audit: &[Entry<'_>],
) -> DbResult<Option<(Hospital, Vec<UserId>)>> {
    let now = super::now();
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<Hospital> = diesel::update(hospitals::table.find(id))
                .set(change)
                .returning(Hospital::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            let mut signed_out = Vec::new();
            if change.active == Some(false) {
                signed_out = users::table
                    .filter(users::hospital_id.eq(id))
                    .select(users::id)
                    .load::<UserId>(conn)
                    .await?;
                revoke_tokens_in_tx!(conn, eq_any(&signed_out), now);
            }
            for entry in audit {
                insert_audit!(conn, entry);
            }
            Ok(Some((row, signed_out)))
        })
        .await
    })
}

/// One weekly working interval (UTC): ISO weekday and minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = consultant_hours)]
pub struct HoursRow {
    pub weekday: i32,
    pub start_minute: i32,
    pub end_minute: i32,
}

pub async fn hours_of(db: &Db, consultant_id: UserId) -> DbResult<Vec<HoursRow>> {
    db_run!(db, read, |conn| {
        Ok(consultant_hours::table
            .filter(consultant_hours::consultant_id.eq(consultant_id))
            .order((consultant_hours::weekday, consultant_hours::start_minute))
            .select(HoursRow::as_select())
            .load(conn)
            .await?)
    })
}

/// Replaces a consultant's weekly hours with its audit row.
pub async fn replace_hours(
    db: &Db,
    consultant_id: UserId,
    hours: &[HoursRow],
    audit: &Entry<'_>,
) -> DbResult<()> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            diesel::delete(
                consultant_hours::table.filter(consultant_hours::consultant_id.eq(consultant_id)),
            )
            .execute(conn)
            .await?;
            for h in hours {
                diesel::insert_into(consultant_hours::table)
                    .values((
                        consultant_hours::consultant_id.eq(consultant_id),
                        consultant_hours::weekday.eq(h.weekday),
                        consultant_hours::start_minute.eq(h.start_minute),
                        consultant_hours::end_minute.eq(h.end_minute),
                    ))
                    .execute(conn)
                    .await?;
            }
            insert_audit!(conn, audit);
            Ok(())
        })
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn wildcards_typed_by_an_admin_are_letters() {
        assert_eq!(contains_pattern("ann"), "%ann%");
        assert_eq!(contains_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
    }
}
