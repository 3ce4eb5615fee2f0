use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::models::{Hospital, NewHospital};
use crate::db::schema::hospitals;
use crate::db::{Db, DbResult};
use crate::model::{HospitalId, Plan};

pub async fn create(db: &Db, name: &str, plan: Plan, timezone: &str) -> DbResult<Hospital> {
    let row = NewHospital {
        name,
        plan,
        timezone,
        created_at: super::now(),
    };
    db_run!(db, write, |conn| {
        Ok(diesel::insert_into(hospitals::table)
            .values(&row)
            .returning(Hospital::as_returning())
            .get_result(conn)
            .await?)
    })
}

pub async fn get(db: &Db, id: HospitalId) -> DbResult<Hospital> {
    db_run!(db, lookup, |conn| {
        Ok(hospitals::table
            .find(id)
            .select(Hospital::as_select())
            .get_result(conn)
            .await?)
    })
}

pub async fn list(db: &Db) -> DbResult<Vec<Hospital>> {
    db_run!(db, read, |conn| {
        Ok(hospitals::table
            .order(hospitals::id)
            .select(Hospital::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn count(db: &Db) -> DbResult<i64> {
    db_run!(db, read, |conn| {
        Ok(hospitals::table.count().get_result(conn).await?)
    })
}
