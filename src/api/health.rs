use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::{token_from_request, token_hash, TokenSource};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics));
}

/// Healthy only when the database answers: a load balancer should stop sending work
/// to a server that cannot store it.
async fn healthz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let backend = format!("{:?}", state.db.backend()).to_lowercase();
    match state.db.ping().await {
        Ok(()) => Ok(HttpResponse::Ok()
            .json(json!({ "status": "ok", "database": "ok", "backend": backend }))),
        Err(e) => Err(ApiError::Unavailable(format!("database check failed: {e}"))),
    }
}

/// Open unless `METRICS_TOKEN` is set; then only a scraper sending that bearer
/// token gets the figures.
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
