//! The browser client: static files under `/static`, and one HTML page per route.

use actix_files::NamedFile;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

const PAGES: &[(&str, &str)] = &[
    ("/", "index.html"),
    ("/login", "login.html"),
    ("/support/request", "request.html"),
    ("/support/queue", "queue.html"),
    ("/support/call/{id}", "call.html"),
    ("/support/history", "history.html"),
    ("/support/settings", "settings.html"),
    ("/support/analytics", "analytics.html"),
    ("/admin", "admin.html"),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, file) in PAGES {
        let file = *file;
        cfg.route(
            path,
            web::get()
                .to(move |state: web::Data<AppState>, req: HttpRequest| page(state, req, file)),
        );
    }
}

pub(crate) async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: &'static str,
) -> Result<HttpResponse, ApiError> {
    let path = state.config.resolved_static_dir().join(file);
    let named = NamedFile::open_async(&path).await.map_err(|_| {
        ApiError::NotFound(format!("page {file} is missing from the static directory"))
    })?;
    let mut response = named.use_etag(true).into_response(&req);
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}
