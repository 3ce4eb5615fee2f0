//! `/api/consultants/*` and `/api/support/preferences`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, Body};
use crate::db::repo;
use crate::dispatch::messages::{
    AutoAcceptChanged, ConsultantsSnapshot, PreferencesChanged, SpecialtiesChanged,
};
use crate::error::{ApiError, ApiResult};
use crate::model::vocab::canonical_department;
use crate::model::{ConsultantStatus, Proficiency, Role, UserId};
use crate::state::AppState;
use crate::support::consultants;

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

/// API.md `Specialty`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Specialty {
    #[schema(schema_with = crate::model::vocab::department_schema)]
    department: String,
    proficiency: Proficiency,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ConsultantItem {
    id: UserId,
    name: String,
    status: ConsultantStatus,
    specialties: Vec<Specialty>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ConsultantsReply {
    consultants: Vec<ConsultantItem>,
}

fn specialties_of(list: &[(String, Proficiency)]) -> Vec<Specialty> {
    list.iter()
        .map(|(department, proficiency)| Specialty {
            department: department.clone(),
            proficiency: *proficiency,
        })
        .collect()
}

/// Every consultant who is not offline, with live status; a consultant always sees
/// themselves (their own status page reads it from here).
#[utoipa::path(
    get,
    path = "/api/consultants/available",
    tag = "consultants",
    responses((status = 200, description = "consultants and their status", body = ConsultantsReply)),
)]
async fn available(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let live = state
        .dispatcher
        .send(ConsultantsSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the dispatcher is restarting ({e})")))?;
    let consultants = live
        .into_iter()
        .filter(|c| c.status != ConsultantStatus::Offline || c.id == user.id())
        .map(|c| ConsultantItem {
            id: c.id,
            name: c.name,
            status: c.status,
            specialties: specialties_of(&c.specialties),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ConsultantsReply { consultants }))
}

/// The consultant an action is about: yourself, or (admins only) the one named.
fn target_consultant(user: &AuthUser, named: Option<UserId>) -> ApiResult<UserId> {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: ConsultantStatus,
    consultant_id: Option<UserId>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct StatusReply {
    status: ConsultantStatus,
    consultant_id: UserId,
}

#[utoipa::path(
    post,
    path = "/api/consultants/status",
    tag = "consultants",
    request_body = StatusBody,
    responses((status = 200, description = "the status now", body = StatusReply)),
)]
async fn set_status(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<StatusBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let consultant_id = target_consultant(&user, body.consultant_id)?;
    let status =
        consultants::set_status(&state.core, consultant_id, body.status, user.id()).await?;
    Ok(HttpResponse::Ok().json(StatusReply {
        status,
        consultant_id,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SpecialtyQuery {
    consultant_id: Option<UserId>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SpecialtiesReply {
    consultant_id: UserId,
    specialties: Vec<Specialty>,
}

#[utoipa::path(
    get,
    path = "/api/consultants/specialties",
    tag = "consultants",
    params(SpecialtyQuery),
    responses((status = 200, description = "the consultant's departments and proficiency", body = SpecialtiesReply)),
)]
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
    let specialties = rows
        .into_iter()
        .map(|s| Specialty {
            department: s.department,
            proficiency: s.proficiency,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SpecialtiesReply {
        consultant_id,
        specialties,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SpecialtiesBody {
    consultant_id: Option<UserId>,
    specialties: Vec<Specialty>,
}

#[utoipa::path(
    post,
    path = "/api/consultants/specialties",
    tag = "consultants",
    request_body = SpecialtiesBody,
    responses((status = 200, description = "stored", body = SpecialtiesReply)),
)]
async fn set_specialties(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<SpecialtiesBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    let consultant_id = target_consultant(&user, body.consultant_id)?;
    if body.specialties.len() > MAX_SPECIALTIES {
        return Err(ApiError::invalid(
            "specialties",
            format!("at most {MAX_SPECIALTIES}"),
        ));
    }
    let mut clean: Vec<(String, Proficiency)> = Vec::new();
    for item in &body.specialties {
        let department = canonical_department(&item.department).ok_or_else(|| {
            ApiError::invalid(
                "specialties",
                format!("unknown department {:?}", item.department),
            )
        })?;
        if clean.iter().any(|(d, _)| d == department) {
            return Err(ApiError::invalid(
                "specialties",
                format!("{department} is listed twice"),
            ));
        }
        clean.push((department.to_string(), item.proficiency));
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
    if user.is(Role::Admin) {
        let detail = serde_json::json!({ "departments": clean.len() }).to_string();
        repo::audit::record_entry(
            &state.db,
            &repo::audit::Entry {
                by: Some(user.id()),
                action: crate::model::AdminAction::SetSpecialties.as_str(),
                target_type: crate::console::TARGET_USER,
                target_id: Some(consultant_id.0),
                detail: Some(detail),
                at: repo::now(),
            },
        )
        .await?;
    }
    state.dispatcher.do_send(SpecialtiesChanged {
        consultant_id,
        specialties: clean.clone(),
    });
    Ok(HttpResponse::Ok().json(SpecialtiesReply {
        consultant_id,
        specialties: specialties_of(&clean),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AutoAcceptBody {
    enabled: bool,
    consultant_id: Option<UserId>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AutoAcceptReply {
    consultant_id: UserId,
    auto_accept: bool,
}

#[utoipa::path(
    post,
    path = "/api/consultants/auto_accept",
    tag = "consultants",
    request_body = AutoAcceptBody,
    responses((status = 200, description = "stored", body = AutoAcceptReply)),
)]
async fn set_auto_accept(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<AutoAcceptBody>,
) -> ApiResult<HttpResponse> {
    let body = body.0;
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
    Ok(HttpResponse::Ok().json(AutoAcceptReply {
        consultant_id,
        auto_accept: body.enabled,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PreferencesReply {
    consultant_ids: Vec<UserId>,
}

#[utoipa::path(
    get,
    path = "/api/support/preferences",
    tag = "consultants",
    responses((status = 200, description = "the requester's preferred consultants", body = PreferencesReply)),
)]
async fn get_preferences(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::HospitalStaff, Role::HospitalLeadership])?;
    let consultant_ids = repo::consultants::preferences_of(&state.db, user.id()).await?;
    Ok(HttpResponse::Ok().json(PreferencesReply { consultant_ids }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PreferencesBody {
    consultant_ids: Vec<UserId>,
}

#[utoipa::path(
    put,
    path = "/api/support/preferences",
    tag = "consultants",
    request_body = PreferencesBody,
    responses((status = 200, description = "stored", body = PreferencesReply)),
)]
async fn put_preferences(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<PreferencesBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::HospitalStaff, Role::HospitalLeadership])?;
    let ids = body.0.consultant_ids;
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
            .any(|u| u.id == *id && u.role == Role::Consultant)
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
    Ok(HttpResponse::Ok().json(PreferencesReply {
        consultant_ids: ids,
    }))
}
