use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::{token_from_request, token_hash, TokenSource};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics));
}

/// Healthy only when the database answers: a load balancer should stop sending work
/// to a server that cannot store it.
/// `status` and `database` say "ok" (a failing check is a 503 with the error shape);
/// `backend` is "sqlite" or "postgres".
#[derive(serde::Serialize, utoipa::ToSchema)]
struct HealthReply {
    status: &'static str,
    database: &'static str,
    backend: String,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "the database answers", body = HealthReply)),
)]
async fn healthz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let backend = format!("{:?}", state.db.backend()).to_lowercase();
    match state.db.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(HealthReply {
            status: "ok",
            database: "ok",
            backend,
        })),
        Err(e) => Err(ApiError::Unavailable(format!("database check failed: {e}"))),
    }
}

/// Open unless `METRICS_TOKEN` is set; then only a scraper sending that bearer
/// token gets the figures.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")),
)]
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    if let Some(expected) = state.config.metrics_token.as_deref() {
        let given = match token_from_request(&req, false) {
            Some((token, TokenSource::Header)) => Some(token),
            _ => None,
        };
        // Hashes compared, not the tokens: equal-length digests, so how long the
        // comparison takes says nothing about how much of a guess was right.
        if given.map(|t| token_hash(&t)) != Some(token_hash(expected)) {
            return Err(ApiError::Unauthenticated(
                "/metrics needs Authorization: Bearer <METRICS_TOKEN>".into(),
            ));
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}
