//! The API as a document: OpenAPI 3.1, generated from the handlers' own request and
//! reply types (`utoipa`), so it cannot drift from what the server does. Served at
//! `/api/openapi.json`; `/api/docs` renders it with the vendored Swagger UI
//! (`static/vendor/swagger-ui/`, nothing from a CDN). The WebSocket frames are not
//! HTTP operations: docs/API.md describes them.

use std::sync::OnceLock;

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, Ref, RefOr, ResponseBuilder, SecurityRequirement,
};
use utoipa::{Modify, OpenApi};

use super::{admin, admin_console, analytics, auth, consultants, health, retention, sso};
use super::{pages, support, webhooks};
use crate::auth::COOKIE_NAME;
use crate::error::ApiError;
use crate::state::AppState;

/// The security schemes' names in the document.
const BEARER: &str = "bearer";
const COOKIE: &str = "cookie";
/// The shared response every operation refers to for its refusals.
const ERROR_RESPONSE: &str = "Error";
const ERROR_SCHEMA: &str = "ErrorBody";
/// The reference page in the static directory, served at `/api/docs`.
const REFERENCE_PAGE: &str = "api-docs.html";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NICEHR Remote Support",
        description = "Live video support for hospital staff: requests, the queue, offers, \
            calls, history and analytics, and the administration of accounts. Every \
            refusal has the JSON shape `{\"error\": code, \"message\": text}` (with \
            `fields` for validation). Sign in with `POST /api/auth/login` and send the \
            token as `Authorization: Bearer <token>`; a browser may use the cookie \
            instead, and then every write needs `X-Requested-With`. Live updates come \
            over the WebSocket `/ws` (docs/API.md).",
    ),
    paths(
        auth::login, auth::logout, auth::me,
        sso::providers, sso::start, sso::callback,
        support::request, support::queue, support::accept, support::take,
        support::decline, support::cancel, support::join, support::end,
        support::wrap_up, support::rate, support::history, support::active,
        support::detail,
        consultants::available, consultants::set_status, consultants::get_specialties,
        consultants::set_specialties, consultants::set_auto_accept,
        consultants::get_preferences, consultants::put_preferences,
        analytics::analytics, analytics::history_csv,
        admin::create_hospital, admin::list_hospitals, admin::create_user, admin::unlock,
        admin::list_assignments, admin::create_assignment, admin::update_assignment,
        admin::delete_assignment, admin::restart_dispatcher, admin::dispatcher_view,
        admin_console::search_users, admin_console::get_user, admin_console::patch_user,
        admin_console::patch_hospital, admin_console::get_hours, admin_console::put_hours,
        admin_console::audit, admin_console::audit_csv,
        retention::overview, retention::set_policy,
        webhooks::daily,
        health::healthz, health::metrics,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Signing in and out, single sign-on"),
        (name = "support", description = "A session from request to rating"),
        (name = "consultants", description = "Status, specialties, preferences"),
        (name = "analytics", description = "Figures and exports"),
        (name = "admin", description = "Accounts, hospitals, assignments, audit, retention"),
        (name = "video", description = "The video provider's webhooks"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// What every operation shares and the derive cannot say once: the security
/// schemes, and that any operation may be refused with the error shape (a 4xx for
/// the caller's mistakes, 503 when storage or the dispatcher is not there).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(COOKIE_NAME))),
        );
        components.responses.insert(
            ERROR_RESPONSE.to_string(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("Refused: the JSON error shape")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(ERROR_SCHEMA)))
                            .build(),
                    )
                    .build(),
            ),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(COOKIE, Vec::<String>::new()),
        ]);
        let error = || RefOr::Ref(Ref::new(format!("#/components/responses/{ERROR_RESPONSE}")));
        for item in openapi.paths.paths.values_mut() {
            for method in [
                HttpMethod::Get,
                HttpMethod::Post,
                HttpMethod::Put,
                HttpMethod::Patch,
                HttpMethod::Delete,
            ] {
                let Some(operation) = operation_mut(item, method) else {
                    continue;
                };
                let responses = &mut operation.responses.responses;
                for status in ["4XX", "503"] {
                    responses.entry(status.to_string()).or_insert_with(error);
                }
            }
        }
    }
}

fn operation_mut(
    item: &mut utoipa::openapi::PathItem,
    method: HttpMethod,
) -> Option<&mut utoipa::openapi::path::Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// The document, rendered once: it depends on nothing but the code.
pub(crate) fn document_json() -> Result<&'static str, ApiError> {
    static DOCUMENT: OnceLock<Result<String, String>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            ApiDoc::openapi()
                .to_pretty_json()
                .map_err(|e| e.to_string())
        })
        .as_deref()
        .map_err(|e| ApiError::Internal(format!("the API document: {e}")))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(document)).route(
        "/docs",
        web::get().to(|state: web::Data<AppState>, req: HttpRequest| {
            pages::page(state, req, REFERENCE_PAGE)
        }),
    );
}

async fn document() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_its_refusals() {
        let doc: serde_json::Value = serde_json::from_str(document_json().unwrap()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() > 40, "only {} paths", paths.len());
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["responses"]["4XX"].is_object(),
                    "{method} {path} lacks 4XX"
                );
            }
        }
    }
}
