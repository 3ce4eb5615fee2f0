//! Who a verified sign-in is: the account its issuer and subject were tied to, or
//! an account of the same email made before the hospital turned to its identity
//! provider (tied now), or a new account (first sign-in). A provider only ever
//! signs people into its own hospital's accounts ([`mapping::admits`]).

use crate::accounts;
use crate::auth;
use crate::config::SsoProviderConfig;
use crate::db::models::{NewUser, UserRow};
use crate::db::repo::sso::Subject;
use crate::db::{repo, Db, DbError};

use super::{mapping, SsoError, Verified};

/// How the account came to be signed in, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Signed in through this identity before.
    Returning,
    /// An account of the same email (and the same hospital) is now tied to it.
    Linked,
    /// First sign-in: the account was made now.
    Created,
}

impl Arrival {
    /// The audit log's action name.
    pub fn action(self) -> &'static str {
        match self {
            Arrival::Returning => "sso_sign_in",
            Arrival::Linked => "sso_account_linked",
            Arrival::Created => "sso_account_created",
        }
    }
}

/// The account this sign-in is, made or tied if need be; its role is the one the
/// provider's claims give now (the identity provider is the record for SSO
/// accounts: a nurse promoted in the directory is leadership at her next sign-in).
pub async fn resolve(
    db: &Db,
    provider: &SsoProviderConfig,
    who: &Verified,
) -> Result<(UserRow, Arrival), SsoError> {
    let role = mapping::role_for(&provider.roles, provider.default_role, &who.claims)
        .ok_or_else(|| SsoError::NoRole(provider.display_name.clone()))?;
    let subject = Subject {
        provider: &provider.id,
        issuer: &who.issuer,
        subject: &who.subject,
    };
    let now = repo::now();
    if let Some((identity, user)) = repo::sso::account_of(db, &who.issuer, &who.subject).await? {
        if !mapping::admits(provider.hospital_id, user.hospital_id) {
            return Err(SsoError::WrongHospital { user_id: user.id });
        }
        refuse_deactivated(db, &user).await?;
        let user = repo::sso::signed_in(db, identity.id, user.id, role, now).await?;
        return Ok((user, Arrival::Returning));
    }
    let email = who
        .email
        .as_deref()
        .and_then(|e| accounts::validate_email(e).ok())
        .ok_or(SsoError::NoEmail)?;
    if let Some(user) = repo::users::by_email(db, &email).await? {
        if !mapping::admits(provider.hospital_id, user.hospital_id) {
            return Err(SsoError::WrongHospital { user_id: user.id });
        }
        refuse_deactivated(db, &user).await?;
        let identity = repo::sso::link(db, user.id, subject, now)
            .await
            .map_err(race)?;
        let user = repo::sso::signed_in(db, identity.id, user.id, role, now).await?;
        return Ok((user, Arrival::Linked));
    }
    if let Some(hospital) = provider.hospital_id {
        match repo::hospitals::get(db, hospital).await {
            Err(DbError::NotFound) => return Err(SsoError::NoSuchHospital(provider.id.clone())),
            Ok(row) if !row.active => return Err(SsoError::Deactivated),
            other => {
                other?;
            }
        }
    }
    let name = who
        .name
        .as_deref()
        .and_then(|n| accounts::validate_name("name", n).ok())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_string());
    // Nobody knows this password: the account signs in through its provider (or
    // after an administrator sets a password).
    let unusable = auth::new_token();
    let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&unusable))
        .await
        .map_err(|e| SsoError::Internal(format!("hashing task: {e}")))?
        .map_err(|e| SsoError::Internal(e.to_string()))?;
    let (_, user) = repo::sso::create_account(
        db,
        &NewUser {
            email: &email,
            name: &name,
            role,
            hospital_id: provider.hospital_id,
            password_hash: &password_hash,
            created_at: now,
        },
        subject,
    )
    .await
    .map_err(race)?;
    Ok((user, Arrival::Created))
}

/// The same rule as the password sign-in: an account an admin deactivated, or one of
/// a deactivated hospital, gets no token, whichever way it signs in.
async fn refuse_deactivated(db: &Db, user: &UserRow) -> Result<(), SsoError> {
    let hospital_active = match user.hospital_id {
        Some(id) => repo::hospitals::get(db, id).await?.active,
        None => true,
    };
    if user.active && hospital_active {
        Ok(())
    } else {
        Err(SsoError::Deactivated)
    }
}

/// A unique index said no: a parallel sign-in of the same person got there first.
fn race(e: DbError) -> SsoError {
    match e {
        DbError::Conflict(_) => SsoError::Race,
        other => other.into(),
    }
}
