//! `/api/support/analytics` and `/api/support/history.csv`: reports for hospital
//! leadership (their own hospital only) and admins (everything, filterable).
//! Definitions of every figure: [`crate::analytics`].

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use chrono_tz::Tz;
use serde::Deserialize;

use super::extract::AuthUser;
use crate::analytics::{self, FieldErrors, ReportScope};
use crate::db::repo::{self, analytics::ExportRow};
use crate::db::DbError;
use crate::error::{ApiError, ApiResult};
use crate::model::vocab::canonical_department;
use crate::model::{HospitalId, Role};
use crate::state::AppState;
use crate::support::rfc3339;

use super::support::{scoped_filter, HistoryQuery};

/// Most rows one CSV export may carry. Larger selections are refused (with a message
/// saying to narrow the filters) rather than silently cut short.
pub const CSV_MAX_ROWS: i64 = 100_000;

/// Column order of the CSV export. Free text that may hold patient data (issue
/// summary, resolution notes, feedback) is left out on purpose: an export leaves the
/// audited system, and none of the figures need it.
pub const CSV_COLUMNS: [&str; 17] = [
    "id",
    "created_at",
    "hospital_id",
    "hospital_name",
    "department",
    "urgency",
    "status",
    "requester_id",
    "consultant_id",
    "accepted_at",
    "started_at",
    "ended_at",
    "wait_time_seconds",
    "duration_seconds",
    "resolved",
    "rating",
    "match_tier",
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/support/analytics", web::get().to(analytics))
        .route("/support/history.csv", web::get().to(history_csv));
}

/// Query parameters arrive as text so that every malformed one is reported by name
/// (`validation_failed` with `fields`), not as one generic parse error.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    hospital_id: Option<String>,
    department: Option<String>,
    tz: Option<String>,
}

/// Blank parameters (an untouched form field) mean "not given".
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[utoipa::path(
    get,
    path = "/api/support/analytics",
    tag = "analytics",
    params(AnalyticsQuery),
    responses((status = 200, description = "the figures of the window", body = crate::analytics::Analytics)),
)]
async fn analytics(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AnalyticsQuery>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::HospitalLeadership, Role::Admin])?;
    let q = query.into_inner();
    let mut errors = FieldErrors::new();

    let asked_hospital = match given(&q.hospital_id) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(id) if id > 0 => Some(HospitalId(id)),
            _ => {
                errors.insert("hospital_id".into(), "must be a positive integer".into());
                None
            }
        },
    };
    let hospital_id = match user.role() {
        Role::HospitalLeadership => {
            let own = user.user.hospital_id.ok_or_else(|| {
                ApiError::Forbidden("this leadership account belongs to no hospital".into())
            })?;
            if asked_hospital.is_some_and(|id| id != own) {
                return Err(ApiError::Forbidden(
                    "leadership sees its own hospital only".into(),
                ));
            }
            Some(own)
        }
        _ => asked_hospital,
    };
    let department = match given(&q.department) {
        None => None,
        Some(text) => match canonical_department(text) {
            Some(d) => Some(d.to_string()),
            None => {
                errors.insert("department".into(), "unknown department".into());
                None
            }
        },
    };
    let asked_tz = match given(&q.tz) {
        None => None,
        Some(text) => match text.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                errors.insert(
                    "tz".into(),
                    "must be an IANA time zone such as America/Chicago".into(),
                );
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(validation(errors));
    }

    // The hospital must exist (an admin may mistype it); its zone is the default.
    let hospital = match hospital_id {
        Some(id) => Some(
            repo::hospitals::get(&state.db, id)
                .await
                .map_err(|e| match e {
                    DbError::NotFound => {
                        ApiError::NotFound(format!("hospital {id} does not exist"))
                    }
                    other => other.into(),
                })?,
        ),
        None => None,
    };
    let tz = asked_tz
        .or_else(|| {
            hospital
                .as_ref()
                .and_then(|h| h.timezone.parse::<Tz>().ok())
        })
        .unwrap_or(Tz::UTC);

    let now = Utc::now();
    let window =
        analytics::resolve_window(given(&q.from), given(&q.to), tz, now).map_err(validation)?;
    let scope = repo::analytics::Scope {
        from: window.from.naive_utc(),
        to: window.to.naive_utc(),
        now: now.naive_utc(),
        hospital_id: hospital_id.map(i64::from),
        department: department.clone(),
        timezone: tz.name().to_string(),
    };
    let raw = repo::analytics::gather(&state.db, &scope).await?;
    repo::audit::record(
        &state.db,
        Some(user.id()),
        "read_analytics",
        "hospital",
        hospital_id.map(i64::from),
    )
    .await?;
    let report = analytics::build(
        &raw,
        &window,
        &ReportScope {
            hospital_id: hospital_id.map(i64::from),
            department,
            tz,
        },
        now.naive_utc(),
    );
    Ok(HttpResponse::Ok().json(report))
}

fn validation(fields: FieldErrors) -> ApiError {
    let message = fields
        .iter()
        .map(|(field, problem)| format!("{field}: {problem}"))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::Validation { message, fields }
}

/// The history list as a spreadsheet: the same filters and scope as
/// `GET /api/support/history`, for leadership and admins, without paging. Built in one
/// go (at most [`CSV_MAX_ROWS`] rows, a few megabytes) so a database error is still a
/// clean JSON error rather than a truncated download.
#[utoipa::path(
    get,
    path = "/api/support/history.csv",
    tag = "analytics",
    params(HistoryQuery),
    responses((status = 200, description = "past sessions as CSV (no patient text)", body = String, content_type = "text/csv")),
)]
async fn history_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::HospitalLeadership, Role::Admin])?;
    let mut q = query.into_inner();
    // Paging does not apply to an export; the cap below does.
    q.limit = None;
    let mut filter = scoped_filter(&user, &q)?;
    filter.limit = CSV_MAX_ROWS + 1;
    let rows = repo::analytics::export(&state.db, &filter).await?;
    if rows.len() as i64 > CSV_MAX_ROWS {
        return Err(validation(FieldErrors::from([
            (
                "from".to_string(),
                format!("more than {CSV_MAX_ROWS} sessions match; narrow the dates or filters"),
            ),
            (
                "to".to_string(),
                format!("more than {CSV_MAX_ROWS} sessions match; narrow the dates or filters"),
            ),
        ])));
    }
    repo::audit::record(
        &state.db,
        Some(user.id()),
        "export_sessions",
        "support_session",
        None,
    )
    .await?;
    let body = to_csv(&rows).map_err(|e| ApiError::Internal(format!("CSV encoding: {e}")))?;
    let filename = format!("support-history-{}.csv", Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A spreadsheet opens a cell starting with `=`, `+`, `-`, `@` (or a tab or carriage
/// return) as a formula; free text from the database is defused with a leading `'`.
pub(crate) fn defuse_formula(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// Encodes rows with the `csv` crate (RFC 4180 quoting of commas, quotes, newlines).
/// Timestamps are RFC 3339 UTC like the JSON API; absent values are empty cells.
pub fn to_csv(rows: &[ExportRow]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 160 + 256));
    out.write_record(CSV_COLUMNS)?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let at = |v: Option<chrono::NaiveDateTime>| v.map(rfc3339).unwrap_or_default();
    for r in rows {
        out.write_record([
            r.id.to_string(),
            rfc3339(r.created_at),
            r.hospital_id.to_string(),
            defuse_formula(&r.hospital_name),
            r.department.clone(),
            r.urgency.clone(),
            r.status.clone(),
            r.requester_id.to_string(),
            opt(r.consultant_id),
            at(r.accepted_at),
            at(r.started_at),
            at(r.ended_at),
            opt(r.wait_time_seconds),
            opt(r.duration_seconds),
            r.resolved.map(|v| v.to_string()).unwrap_or_default(),
            opt(r.rating.map(i64::from)),
            r.match_tier.clone().unwrap_or_default(),
        ])?;
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}
