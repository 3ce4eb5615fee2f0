use actix_web::{web, HttpResponse};
use serde_json::json;

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

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
