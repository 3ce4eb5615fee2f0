//! `/api/admin/retention` and `/api/admin/hospitals/:id/retention`: each hospital's
//! retention of patient text and the job's last run ([`crate::retention`]). Admins
//! only; every change is audited.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{AuthUser, Body};
use crate::error::ApiResult;
use crate::model::{HospitalId, Role};
use crate::retention;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/retention", web::get().to(overview))
        .route("/admin/hospitals/{id}/retention", web::put().to(set_policy));
}

#[utoipa::path(
    get,
    path = "/api/admin/retention",
    tag = "admin",
    responses((status = 200, description = "each hospital's policy and the last runs", body = crate::retention::Overview)),
)]
async fn overview(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let overview = retention::overview(&state.db, &state.config.retention).await?;
    Ok(HttpResponse::Ok().json(overview))
}

/// `{"days": int|null}`: `days` must be present; null hands the hospital back to
/// the server's `RETENTION_DAYS`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    // `deserialize_with` makes a missing `days` an error instead of a quiet null.
    #[serde(deserialize_with = "Option::deserialize")]
    days: Option<i64>,
}

#[utoipa::path(
    put,
    path = "/api/admin/hospitals/{id}/retention",
    tag = "admin",
    params(("id" = i64, Path, description = "the hospital")),
    request_body = PolicyBody,
    responses((status = 200, description = "stored", body = crate::retention::HospitalRetention)),
)]
async fn set_policy(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Body<PolicyBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let days = retention::validate_days(body.0.days)?;
    let policy = retention::set_policy(
        &state.db,
        &state.config.retention,
        HospitalId(id.into_inner()),
        days,
        user.id(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(policy))
}
