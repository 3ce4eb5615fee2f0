//! HTTP routes. One file per resource; every handler has the same shape: extract the
//! user, check the role, call the domain, map the result.

pub mod admin;
pub mod admin_console;
pub mod analytics;
pub mod auth;
pub mod consultants;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod pages;
pub mod retention;
pub mod sso;
pub mod support;
pub mod webhooks;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .configure(auth::routes)
            .configure(sso::routes)
            .configure(admin::routes)
            .configure(admin_console::routes)
            .configure(admin::dispatch_routes)
            .configure(retention::routes)
            .configure(analytics::routes)
            .configure(support::routes)
            .configure(consultants::routes)
            .configure(webhooks::routes)
            .configure(openapi::routes)
            .default_service(web::to(api_not_found)),
    )
    .configure(health::routes)
    .configure(crate::ws::routes)
    .configure(pages::routes);
}

/// Unknown routes answer in the same JSON shape as every other error.
pub async fn api_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// `{}`: the reply of an action that has nothing to report.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Empty {}

/// An empty JSON object, for replies that carry no data.
pub fn empty_ok() -> HttpResponse {
    HttpResponse::Ok().json(Empty {})
}
