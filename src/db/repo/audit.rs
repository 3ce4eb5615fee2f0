use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::audit_log;
use crate::db::{Db, DbResult};
use crate::model::UserId;

/// Records who read or changed what. Only ids and an action name: never the patient
/// data itself.
pub async fn record(
    db: &Db,
    user_id: Option<UserId>,
    action: &str,
    target_type: &str,
    target_id: Option<i64>,
) -> DbResult<()> {
    let now = super::now();
    db_run!(db, write, |conn| {
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::user_id.eq(user_id),
                audit_log::action.eq(action),
                audit_log::target_type.eq(target_type),
                audit_log::target_id.eq(target_id),
                audit_log::created_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn count_for(db: &Db, target_type: &str, target_id: i64) -> DbResult<i64> {
    db_run!(db, read, |conn| {
        Ok(audit_log::table
            .filter(audit_log::target_type.eq(target_type))
            .filter(audit_log::target_id.eq(target_id))
            .count()
            .get_result(conn)
            .await?)
    })
}
