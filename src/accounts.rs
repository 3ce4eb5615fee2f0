//! Creating hospitals and users, shared by the `admin` CLI and the admin HTTP API so
//! both validate the same way, password policy included ([`crate::auth::password`]).

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::auth::password;
use crate::config::PolicyArgs;
use crate::db::models::{Hospital, NewUser, User};
use crate::db::{repo, Db, DbError};
use crate::error::ApiError;
use crate::model::{HospitalId, Plan, Role};
use crate::validate::{self, Lines};

pub const MAX_NAME_LEN: usize = 200;

/// What a new password must satisfy (`PASSWORD_MIN_SCORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_score: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_score: password::DEFAULT_MIN_SCORE,
        }
    }
}

impl From<&PolicyArgs> for PasswordPolicy {
    fn from(args: &PolicyArgs) -> Self {
        PasswordPolicy {
            min_score: args.password_min_score,
        }
    }
}

impl PasswordPolicy {
    /// The password for an account with this email and name, or why it is refused.
    pub(crate) fn check(&self, password: &str, email: &str, name: &str) -> Result<(), ApiError> {
        password::check(password, email, name, self.min_score)
            .map_err(|weak| ApiError::invalid("password", weak.0))
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HospitalView {
    pub id: HospitalId,
    pub name: String,
    pub plan: Plan,
    pub timezone: String,
    pub includes_video: bool,
    /// Off: its people sign in only through its identity provider.
    pub password_login: bool,
    pub active: bool,
}

impl From<Hospital> for HospitalView {
    fn from(h: Hospital) -> Self {
        let includes_video = h.plan.includes_video();
        HospitalView {
            id: h.id,
            name: h.name,
            plan: h.plan,
            timezone: h.timezone,
            includes_video,
            password_login: h.password_login,
            active: h.active,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHospitalInput {
    pub name: String,
    #[schema(value_type = crate::model::Plan)]
    pub plan: String,
    pub timezone: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    pub email: String,
    pub name: String,
    #[schema(value_type = crate::model::Role)]
    pub role: String,
    pub password: String,
    pub hospital_id: Option<HospitalId>,
}

pub fn validate_name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(validate::text(field, trimmed, Lines::Single)?.to_string())
}

pub(crate) fn validate_email(value: &str) -> Result<String, ApiError> {
    let email = validate::text("email", value.trim(), Lines::Single)?.to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::invalid(
            "email",
            "must be an email address like name@hospital.org",
        ))
    }
}

pub async fn create_hospital(db: &Db, input: NewHospitalInput) -> Result<HospitalView, ApiError> {
    let name = validate_name("name", &input.name)?;
    let plan = Plan::parse(input.plan.trim())
        .ok_or_else(|| ApiError::invalid("plan", format!("must be one of {}", Plan::words())))?;
    let timezone = input
        .timezone
        .as_deref()
        .unwrap_or("UTC")
        .trim()
        .to_string();
    if timezone.parse::<Tz>().is_err() {
        return Err(ApiError::invalid(
            "timezone",
            "must be an IANA time zone such as America/Chicago",
        ));
    }
    let hospital = repo::hospitals::create(db, &name, plan, &timezone)
        .await
        .map_err(|e| match e {
            DbError::Conflict(_) => {
                ApiError::Conflict(format!("a hospital named {name:?} already exists"))
            }
            other => other.into(),
        })?;
    Ok(hospital.into())
}

pub async fn create_user(
    db: &Db,
    input: NewUserInput,
    policy: &PasswordPolicy,
) -> Result<User, ApiError> {
    let email = validate_email(&input.email)?;
    let name = validate_name("name", &input.name)?;
    let role = Role::parse(input.role.trim())
        .ok_or_else(|| ApiError::invalid("role", format!("must be one of {}", Role::words())))?;
    policy.check(&input.password, &email, &name)?;
    let needs_hospital = matches!(role, Role::HospitalStaff | Role::HospitalLeadership);
    match (needs_hospital, input.hospital_id) {
        (true, None) => {
            return Err(ApiError::invalid(
                "hospital_id",
                "is required for hospital staff and leadership",
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "hospital_id",
                "only hospital staff and leadership belong to a hospital",
            ))
        }
        (true, Some(id)) => match repo::hospitals::get(db, id).await {
            Ok(hospital) if !hospital.active => {
                return Err(ApiError::invalid(
                    "hospital_id",
                    format!("hospital {id} is deactivated"),
                ))
            }
            Err(DbError::NotFound) => {
                return Err(ApiError::invalid(
                    "hospital_id",
                    format!("hospital {id} does not exist"),
                ))
            }
            _ => {}
        },
        (false, None) => {}
    }
    let password = input.password;
    let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let row = repo::users::create(
        db,
        &NewUser {
            email: &email,
            name: &name,
            role,
            hospital_id: input.hospital_id,
            password_hash: &password_hash,
            created_at: repo::now(),
        },
    )
    .await
    .map_err(|e| match e {
        DbError::Conflict(_) => {
            ApiError::Conflict(format!("a user with email {email} already exists"))
        }
        other => other.into(),
    })?;
    Ok(User::from(&row))
}

pub async fn set_password(
    db: &Db,
    email: &str,
    password: String,
    policy: &PasswordPolicy,
) -> Result<(), ApiError> {
    let email = validate_email(email)?;
    let user = repo::users::by_email(db, &email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user with email {email}")))?;
    policy.check(&password, &user.email, &user.name)?;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    repo::users::set_password(db, &user.email, &hash).await?;
    repo::tokens::revoke_all(db, user.id).await?;
    Ok(())
}
