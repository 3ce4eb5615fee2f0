//! `/api/consultants/*` and `/api/support/preferences`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthUser;
use crate::db::models::{ConsultantStatus, ProficiencyText, Role};
use crate::db::repo;
use crate::dispatch::matching::Proficiency;
use crate::dispatch::messages::{
    AutoAcceptChanged, ConsultantsSnapshot, PreferencesChanged, SpecialtiesChanged,
};
use crate::dispatch::service;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Enough for every department twice over; more is a client bug.
const MAX_SPECIALTIES: usize = 12;
const MAX_PREFERENCES: usize = 10;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/consultants/available", web::get().to(available))
        .route("/consultants/status", web::post().to(set_status))
        .route("/consultants/specialties", web::get().to(get_specialties))
        .route("/consultants/specialties", web::post().to(set_specialties))
        .route("/consultants/auto_accept", web::post().to(set_auto_accept))
        .route("/support/preferences", web::get().to(get_preferences))
        .route("/support/preferences", web::put().to(put_preferences));
}

fn specialty_json(department: &str, proficiency: &str) -> serde_json::Value {
    json!({ "department": department, "proficiency": proficiency })
}

/// Every consultant who is not offline, with live status; a consultant always sees
/// themselves (their own status page reads it from here).
async fn available(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let live = state
        .dispatcher
        .send(ConsultantsSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the dispatcher is restarting ({e})")))?;
    let consultants: Vec<_> = live
        .into_iter()
        .filter(|c| c.status != ConsultantStatus::Offline || c.id == user.id())
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "status": c.status.as_str(),
                "specialties": c.specialties.iter().map(|(d, p)| specialty_json(d, p.as_str())).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "consultants": consultants })))
}

/// The consultant an action is about: yourself, or (admins only) the one named.
fn target_consultant(user: &AuthUser, named: Option<i64>) -> ApiResult<i64> {
    match (user.role(), named) {
        (Role::Consultant, None) => Ok(user.id()),
        (Role::Consultant, Some(id)) if id == user.id() => Ok(id),
        (Role::Consultant, Some(_)) => Err(ApiError::Forbidden(
            "consultants can only change their own settings".into(),
        )),
        (Role::Admin, Some(id)) => Ok(id),
        (Role::Admin, None) => Err(ApiError::invalid(
            "consultant_id",
            "an admin must name the consultant",
        )),
        _ => Err(ApiError::forbidden()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    consultant_id: Option<i64>,
}

async fn set_status(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<StatusBody>,
) -> ApiResult<HttpResponse> {
    let consultant_id = target_consultant(&user, body.consultant_id)?;
    let status = service::parse_settable_status(&body.status)?;
    let status = service::set_status(&state.core, &state.dispatcher, consultant_id, status).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "status": status.as_str(), "consultant_id": consultant_id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialtyQuery {
    consultant_id: Option<i64>,
}

async fn get_specialties(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<SpecialtyQuery>,
) -> ApiResult<HttpResponse> {
    let consultant_id = match (query.consultant_id, user.role()) {
        (Some(id), _) => id,
        (None, Role::Consultant) => user.id(),
        (None, _) => return Err(ApiError::invalid("consultant_id", "name the consultant")),
    };
    let rows = repo::consultants::specialties_of(&state.db, consultant_id).await?;
    let specialties: Vec<_> = rows
        .iter()
        .map(|s| specialty_json(&s.department, &s.proficiency))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "consultant_id": consultant_id, "specialties": specialties })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialtyItem {
    department: String,
    proficiency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialtiesBody {
    consultant_id: Option<i64>,
    specialties: Vec<SpecialtyItem>,
}

async fn set_specialties(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<SpecialtiesBody>,
) -> ApiResult<HttpResponse> {
    let consultant_id = target_consultant(&user, body.consultant_id)?;
    if body.specialties.len() > MAX_SPECIALTIES {
        return Err(ApiError::invalid(
            "specialties",
            format!("at most {MAX_SPECIALTIES}"),
        ));
    }
    let mut clean: Vec<(String, String)> = Vec::new();
    for item in &body.specialties {
        let department = service::canonical_department(&item.department).ok_or_else(|| {
            ApiError::invalid(
                "specialties",
                format!("unknown department {:?}", item.department),
            )
        })?;
        let proficiency = ProficiencyText::parse(item.proficiency.trim()).ok_or_else(|| {
            ApiError::invalid("specialties", "proficiency must be standard or expert")
        })?;
        if clean.iter().any(|(d, _)| d == department) {
            return Err(ApiError::invalid(
                "specialties",
                format!("{department} is listed twice"),
            ));
        }
        clean.push((department.to_string(), proficiency.as_str().to_string()));
    }
    if repo::consultants::availability_of(&state.db, consultant_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "consultant {consultant_id} does not exist"
        )));
    }
    repo::consultants::replace_specialties(&state.db, consultant_id, &clean).await?;
    state.dispatcher.do_send(SpecialtiesChanged {
        consultant_id,
        specialties: clean
            .iter()
            .filter_map(|(d, p)| Proficiency::parse(p).map(|p| (d.clone(), p)))
            .collect(),
    });
    let specialties: Vec<_> = clean.iter().map(|(d, p)| specialty_json(d, p)).collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "consultant_id": consultant_id, "specialties": specialties })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoAcceptBody {
    enabled: bool,
    consultant_id: Option<i64>,
}

async fn set_auto_accept(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<AutoAcceptBody>,
) -> ApiResult<HttpResponse> {
    let consultant_id = target_consultant(&user, body.consultant_id)?;
    if repo::consultants::availability_of(&state.db, consultant_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "consultant {consultant_id} does not exist"
        )));
    }
    repo::consultants::set_auto_accept(&state.db, consultant_id, body.enabled).await?;
    state.dispatcher.do_send(AutoAcceptChanged {
        consultant_id,
        enabled: body.enabled,
    });
    Ok(HttpResponse::Ok()
        .json(json!({ "consultant_id": consultant_id, "auto_accept": body.enabled })))
}

async fn get_preferences(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::HospitalStaff, Role::HospitalLeadership])?;
    let ids = repo::consultants::preferences_of(&state.db, user.id()).await?;
    Ok(HttpResponse::Ok().json(json!({ "consultant_ids": ids })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferencesBody {
    consultant_ids: Vec<i64>,
}

async fn put_preferences(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<PreferencesBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::HospitalStaff, Role::HospitalLeadership])?;
    let ids = body.into_inner().consultant_ids;
    if ids.len() > MAX_PREFERENCES {
        return Err(ApiError::invalid(
            "consultant_ids",
            format!("at most {MAX_PREFERENCES}"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !ids.iter().all(|id| seen.insert(*id)) {
        return Err(ApiError::invalid(
            "consultant_ids",
            "each consultant may appear once",
        ));
    }
    let found = repo::users::by_ids(&state.db, &ids).await?;
    for id in &ids {
        if !found
            .iter()
            .any(|u| u.id == *id && u.role == Role::Consultant.as_str())
        {
            return Err(ApiError::invalid(
                "consultant_ids",
                format!("{id} is not a consultant"),
            ));
        }
    }
    repo::consultants::set_preferences(&state.db, user.id(), &ids).await?;
    state.dispatcher.do_send(PreferencesChanged {
        staff_id: user.id(),
        ordered: ids.clone(),
    });
    Ok(HttpResponse::Ok().json(json!({ "consultant_ids": ids })))
}
