//! Request extractors shared by every handler: the signed-in user, and JSON bodies
//! that parse completely or are refused.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::auth::{self, TokenSource, CSRF_HEADER};
use crate::db::models::User;
use crate::error::{is_deadline, ApiError};
use crate::model::{Role, UserId};
use crate::support::Core;

/// The signed-in user of a request. Handlers take this and check the role.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub token_hash: String,
}

impl AuthUser {
    pub fn id(&self) -> UserId {
        self.user.id
    }
    pub fn role(&self) -> Role {
        self.user.role
    }
    pub fn is(&self, role: Role) -> bool {
        self.user.role == role
    }
    /// Fails with 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let core = req
                .app_data::<web::Data<Core>>()
                .ok_or_else(|| ApiError::Internal("application state missing".into()))?
                .clone();
            let (token, source) = auth::token_from_request(&req, false).ok_or_else(|| {
                ApiError::Unauthenticated("sign in first: no token was sent".into())
            })?;
            if source == TokenSource::Cookie
                && is_write(req.method())
                && req.headers().get(CSRF_HEADER).is_none()
            {
                return Err(ApiError::Forbidden(
                    "cookie-authenticated writes need the X-Requested-With header (CSRF protection)".into(),
                ));
            }
            let signed_in = auth::authenticate(&core.db, &token).await?;
            Ok(AuthUser {
                user: signed_in.user,
                token_hash: auth::token_hash(&token),
            })
        })
    }
}

/// A JSON body that parsed completely into `T`: unknown fields (where `T` denies
/// them), wrong types, broken JSON and trailing garbage are all `400
/// validation_failed` naming the field, never a quietly empty body.
pub struct Body<T>(pub T);

/// Like [`Body`], but an empty body means `T::default()` (`POST /end` with no body).
pub struct OptionalBody<T>(pub T);

/// Reads the whole body within the configured size (413 past it) and the body-read
/// deadline (408 past it).
async fn read_body(limit: usize, mut payload: Payload) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if is_deadline(&e) {
                ApiError::RequestTimeout(format!("{e}; send the whole body at once"))
            } else {
                ApiError::BadRequest(format!("unreadable body: {e}"))
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "body is over the {limit} byte limit"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The body limit (`MAX_BODY_BYTES`); a declared length over it is refused at once.
fn body_limit(req: &HttpRequest) -> Result<usize, ApiError> {
    let limit = req
        .app_data::<web::Data<Core>>()
        .map_or(DEFAULT_BODY_LIMIT, |core| core.config.max_body_bytes);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Err(ApiError::PayloadTooLarge(format!(
            "body of {length} bytes is over the {limit} byte limit"
        ))),
        _ => Ok(limit),
    }
}

/// Only when no configuration is reachable (never in the server).
const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = body_limit(req);
        let payload = payload.take();
        let json = is_json(req);
        Box::pin(async move {
            let bytes = read_body(limit?, payload).await?;
            if !json {
                return Err(unsupported());
            }
            Ok(Body(parse(&bytes)?))
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = body_limit(req);
        let payload = payload.take();
        let json = is_json(req);
        Box::pin(async move {
            let bytes = read_body(limit?, payload).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalBody(T::default()));
            }
            if !json {
                return Err(unsupported());
            }
            Ok(OptionalBody(parse(&bytes)?))
        })
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
        })
}

fn unsupported() -> ApiError {
    ApiError::UnsupportedMediaType("send JSON with Content-Type: application/json".into())
}

/// Parses a whole body, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of the API is an object. serde would also read a struct from an
    // array of its fields in order (`[30]` for `{"days": 30}`), which nobody means.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let field = if inner.is_syntax() || inner.is_eof() {
            "body".to_string()
        } else {
            named_in(&message).unwrap_or_else(|| {
                if path.is_empty() || path == "." {
                    "body".to_string()
                } else {
                    path
                }
            })
        };
        ApiError::invalid(&field, without_position(&message))
    })?;
    de.end().map_err(|e| {
        ApiError::invalid(
            "body",
            format!("unexpected data after the JSON value ({e})"),
        )
    })?;
    Ok(value)
}

/// The field serde names in "missing field `x`" and "unknown field `x`, expected …".
fn named_in(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_string)
}

/// serde_json appends " at line 1 column 17"; the field name says more.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Default, PartialEq, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    struct End {
        resolution_notes: Option<String>,
        resolved: Option<bool>,
    }

    fn field_of(text: &str) -> String {
        match parse::<End>(text.as_bytes()) {
            Err(ApiError::Validation { fields, .. }) => {
                fields.keys().next().cloned().unwrap_or_default()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_body_names_its_field() {
        assert_eq!(field_of(r#"{"resolved":"yes"}"#), "resolved");
        assert_eq!(field_of(r#"{"resolution_notes":5}"#), "resolution_notes");
        assert_eq!(field_of(r#"{"resolved":true,"extra":1}"#), "extra");
        assert_eq!(field_of(r#"{"resolved":tru"#), "body");
        assert_eq!(field_of(r#"{"resolved":true} {}"#), "body");
        assert_eq!(
            parse::<End>(br#"{"resolved":false}"#).unwrap(),
            End {
                resolution_notes: None,
                resolved: Some(false)
            }
        );
    }
}
