//! The API's one error type and its single mapping to API.md's JSON shape
//! `{"error": code, "message": text}`. Every lower layer converts into it with `?`.

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Validation {
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PlanNotIncluded(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a BTreeMap<String, String>>,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PlanNotIncluded(_) => "plan_not_included",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// One invalid field, the common case.
    pub fn invalid(field: &str, problem: impl Into<String>) -> ApiError {
        let problem = problem.into();
        ApiError::Validation {
            message: format!("{field}: {problem}"),
            fields: BTreeMap::from([(field.to_string(), problem)]),
        }
    }

    pub fn forbidden() -> ApiError {
        ApiError::Forbidden("your role does not allow this".into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::PlanNotIncluded(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            // Internal details go to the log (without patient data), not to the client.
            ApiError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error");
                "something went wrong on the server".to_string()
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "dependency unavailable");
                detail.clone()
            }
            other => other.to_string(),
        };
        let fields = match self {
            ApiError::Validation { fields, .. } => Some(fields),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        // The rest of a late body may never come: the connection is not worth keeping.
        if matches!(self, ApiError::RequestTimeout(_)) {
            response.force_close();
        }
        response.json(ErrorBody {
            error: self.code(),
            message,
            fields,
        })
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(detail) => {
                ApiError::Unavailable(format!("the database is unavailable, try again ({detail})"))
            }
            DbError::NotFound => ApiError::NotFound("record not found".into()),
            DbError::Conflict(detail) => ApiError::Conflict(format!("already exists ({detail})")),
            DbError::Constraint(detail) => {
                ApiError::BadRequest(format!("invalid reference ({detail})"))
            }
            DbError::Query(detail) | DbError::Migration(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<crate::video::VideoError> for ApiError {
    fn from(error: crate::video::VideoError) -> Self {
        use crate::video::VideoError;
        match error {
            VideoError::Unavailable(detail) => ApiError::Unavailable(format!(
                "the video service is unavailable, try again ({detail})"
            )),
            other => ApiError::Unavailable(format!("the video service refused: {other}")),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The text of the I/O error a body fails with when it did not arrive in time (the
/// deadline of `limits::body`); [`is_deadline`] recognises it.
pub const DEADLINE_PASSED: &str = "the request body did not arrive in time";

/// Whether a payload error is the body-read deadline passing.
pub fn is_deadline(error: &actix_web::error::PayloadError) -> bool {
    matches!(error, actix_web::error::PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// Turns actix's own extractor failures (bad JSON, wrong content type, body too big,
/// bad path or query) into our error shape.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    use actix_web::error::JsonPayloadError;
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            let api = match &err {
                JsonPayloadError::OverflowKnownLength { length, limit } => {
                    ApiError::PayloadTooLarge(format!(
                        "body of {length} bytes is over the {limit} byte limit"
                    ))
                }
                JsonPayloadError::Overflow { limit } => {
                    ApiError::PayloadTooLarge(format!("body is over the {limit} byte limit"))
                }
                JsonPayloadError::Payload(e) if is_deadline(e) => {
                    ApiError::RequestTimeout(format!("{e}; send the whole body at once"))
                }
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                    "send JSON with Content-Type: application/json".into(),
                ),
                JsonPayloadError::Deserialize(e) => {
                    if e.is_data() {
                        ApiError::BadRequest(format!("invalid body: {e}"))
                    } else {
                        ApiError::BadRequest(format!("malformed JSON: {e}"))
                    }
                }
                other => ApiError::BadRequest(format!("unreadable body: {other}")),
            };
            api.into()
        })
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::BadRequest(format!("invalid query: {err}")).into())
}

pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default()
        .error_handler(|err, _req| ApiError::NotFound(format!("no such resource: {err}")).into())
}
