//! The admin console's rules: what a change to an account or a hospital may be, a
//! consultant's weekly hours, and which audit rows a filter asks for. Checked here,
//! stored by [`crate::db::repo::admin`] with their audit rows in one transaction.
//!
//! The HTTP layer (`api::admin_console`) does what follows a stored change: closing
//! the sockets of the accounts it signed out and telling the dispatcher.
//!
//! Working hours are stored and shown in **UTC**: consultants are NICEHR's, not a
//! hospital's, and have no time zone of their own in storage; an interval that
//! crosses midnight UTC is two intervals.

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};

use crate::accounts::{self, HospitalView, PasswordPolicy};
use crate::auth;
use crate::db::models::{User, UserRow};
use crate::db::repo::admin::{HospitalChange, HoursRow, UserChange};
use crate::db::repo::audit::Entry;
use crate::db::{repo, Db, DbError};
use crate::error::ApiError;
use crate::model::{AdminAction, HospitalId, Plan, Role, UserId};

/// Target types of the console's audit rows.
pub const TARGET_USER: &str = "user";
pub const TARGET_HOSPITAL: &str = "hospital";
pub const TARGET_ASSIGNMENT: &str = "dedicated_assignment";
/// What session reads and joins are audited as; the audit filter's `session_id`.
pub const TARGET_SESSION: &str = "support_session";

/// Four intervals a day is more than any rota needs; more is a client bug.
pub const MAX_HOURS_ROWS: usize = 28;
pub const MINUTES_PER_DAY: i32 = 24 * 60;

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /api/admin/users/:id`: every field optional, at least one given.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `null` takes the account out of its hospital.
    #[serde(default, deserialize_with = "present")]
    pub hospital_id: Option<Option<HospitalId>>,
    pub active: Option<bool>,
    /// A new password, held to the password policy; signs the account out.
    pub password: Option<String>,
}

/// An account as the console shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: User,
    pub active: bool,
    pub created_at: String,
}

impl From<&UserRow> for AdminUser {
    fn from(row: &UserRow) -> Self {
        AdminUser {
            user: User::from(row),
            active: row.active,
            created_at: crate::support::rfc3339(row.created_at),
        }
    }
}

/// Which roles belong to a hospital, and the hospital a role must (or must not) have.
pub fn check_hospital_rule(role: Role, hospital_id: Option<HospitalId>) -> Result<(), ApiError> {
    let needs_hospital = matches!(role, Role::HospitalStaff | Role::HospitalLeadership);
    match (needs_hospital, hospital_id) {
        (true, None) => Err(ApiError::invalid(
            "hospital_id",
            "is required for hospital staff and leadership",
        )),
        (false, Some(_)) => Err(ApiError::invalid(
            "hospital_id",
            "only hospital staff and leadership belong to a hospital",
        )),
        _ => Ok(()),
    }
}

/// What a user change did, for what has to follow it.
#[derive(Debug)]
pub struct UserUpdated {
    pub row: UserRow,
    /// Its tokens were revoked: close its sockets.
    pub signed_out: bool,
    /// It was a consultant and is no longer one that can take calls (deactivated or
    /// another role): set them offline.
    pub consultant_withdrawn: bool,
}

/// Checks and applies an admin's change to an account.
pub async fn update_user(
    db: &Db,
    by: UserId,
    id: UserId,
    patch: UserPatch,
    policy: &PasswordPolicy,
) -> Result<UserUpdated, ApiError> {
    if patch.name.is_none()
        && patch.role.is_none()
        && patch.hospital_id.is_none()
        && patch.active.is_none()
        && patch.password.is_none()
    {
        return Err(ApiError::invalid(
            "body",
            "give at least one of name, role, hospital_id, active, password",
        ));
    }
    let current = repo::users::by_id(db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} does not exist")))?;
    let name = patch
        .name
        .as_deref()
        .map(|n| accounts::validate_name("name", n))
        .transpose()?;
    let role = patch.role.unwrap_or(current.role);
    if by == id && (patch.active == Some(false) || role != current.role) {
        return Err(ApiError::Conflict(
            "you cannot deactivate your own account or change your own role; ask another admin"
                .into(),
        ));
    }
    // A role without a hospital drops it unless the patch names one (to be refused).
    let hospital_id = match patch.hospital_id {
        Some(given) => given,
        None if matches!(role, Role::HospitalStaff | Role::HospitalLeadership) => {
            current.hospital_id
        }
        None => None,
    };
    check_hospital_rule(role, hospital_id)?;
    if let Some(hospital) = hospital_id.filter(|h| Some(*h) != current.hospital_id) {
        match repo::hospitals::get(db, hospital).await {
            Ok(h) if h.active => {}
            Ok(_) => {
                return Err(ApiError::invalid(
                    "hospital_id",
                    format!("hospital {hospital} is deactivated"),
                ))
            }
            Err(DbError::NotFound) => {
                return Err(ApiError::invalid(
                    "hospital_id",
                    format!("hospital {hospital} does not exist"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let leaves_desk = current.role == Role::Consultant
        && (role != Role::Consultant || patch.active == Some(false));
    if leaves_desk && role != Role::Consultant {
        let availability = repo::consultants::availability_of(db, id).await?;
        if availability.is_some_and(|a| a.current_session_id.is_some()) {
            return Err(ApiError::Conflict(
                "the consultant is in a call; change their role after it ends".into(),
            ));
        }
    }
    let password_hash = match patch.password {
        Some(password) => {
            policy.check(
                &password,
                &current.email,
                name.as_deref().unwrap_or(&current.name),
            )?;
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Some(hash)
        }
        None => None,
    };

    let change = UserChange {
        name: name.filter(|n| *n != current.name),
        role: Some(role).filter(|r| *r != current.role),
        hospital_id: Some(hospital_id).filter(|h| *h != current.hospital_id),
        active: patch.active.filter(|a| *a != current.active),
        password_hash,
    };
    let audit = user_audit(by, id, &change);
    if audit.is_empty() {
        // Nothing differs from what is stored: nothing to write or audit.
        return Ok(UserUpdated {
            row: current,
            signed_out: false,
            consultant_withdrawn: false,
        });
    }
    let entries: Vec<Entry> = audit.iter().map(|(a, d)| a.entry(d)).collect();
    let row = repo::admin::update_user(db, id, &change, &entries)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} does not exist")))?;
    Ok(UserUpdated {
        row,
        signed_out: change.signs_out(),
        consultant_withdrawn: leaves_desk,
    })
}

/// An audit row to be: the action and its detail JSON, about one target.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditNote {
    pub by: UserId,
    pub action: AdminAction,
    pub target_type: &'static str,
    pub target_id: i64,
}

impl AuditNote {
    pub fn entry<'a>(&self, detail: &'a Option<String>) -> Entry<'a> {
        Entry {
            by: Some(self.by),
            action: self.action.as_str(),
            target_type: self.target_type,
            target_id: Some(self.target_id),
            detail: detail.clone(),
            at: repo::now(),
        }
    }
}

/// The audit rows of a user change: one per kind of change (a deactivation, a
/// password reset and an edit read apart in the log). The detail names the fields
/// and the new values that are not personal; a name or password never appears.
pub fn user_audit(by: UserId, id: UserId, change: &UserChange) -> Vec<(AuditNote, Option<String>)> {
    let note = |action| AuditNote {
        by,
        action,
        target_type: TARGET_USER,
        target_id: id.0,
    };
    let mut out = Vec::new();
    match change.active {
        Some(false) => out.push((note(AdminAction::DeactivateUser), None)),
        Some(true) => out.push((note(AdminAction::ReactivateUser), None)),
        None => {}
    }
    if change.password_hash.is_some() {
        out.push((note(AdminAction::ResetPassword), None));
    }
    let mut detail = serde_json::Map::new();
    let mut fields = Vec::new();
    if change.name.is_some() {
        fields.push("name");
    }
    if let Some(role) = change.role {
        fields.push("role");
        detail.insert("role".into(), role.as_str().into());
    }
    if let Some(hospital) = change.hospital_id {
        fields.push("hospital_id");
        detail.insert("hospital_id".into(), hospital.map(|h| h.0).into());
    }
    if !fields.is_empty() {
        detail.insert("fields".into(), fields.into());
        let detail = serde_json::Value::Object(detail).to_string();
        out.push((note(AdminAction::UpdateUser), Some(detail)));
    }
    out
}

/// `PATCH /api/admin/hospitals/:id`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HospitalPatch {
    pub name: Option<String>,
    pub plan: Option<Plan>,
    pub timezone: Option<String>,
    pub active: Option<bool>,
    /// Off: the hospital's people sign in only through its identity provider.
    pub password_login: Option<bool>,
}

/// A hospital change as stored.
#[derive(Debug)]
pub struct HospitalUpdated {
    pub hospital: HospitalView,
    /// People whose tokens the deactivation revoked.
    pub signed_out: Vec<UserId>,
    /// The time zone changed (the dispatcher reads assignment windows in it).
    pub timezone_changed: bool,
}

pub fn check_timezone(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    text.parse::<Tz>().map_err(|_| {
        ApiError::invalid(
            "timezone",
            "must be an IANA time zone such as America/Chicago",
        )
    })?;
    Ok(text.to_string())
}

pub async fn update_hospital(
    db: &Db,
    by: UserId,
    id: HospitalId,
    patch: HospitalPatch,
) -> Result<HospitalUpdated, ApiError> {
    if patch.name.is_none()
        && patch.plan.is_none()
        && patch.timezone.is_none()
        && patch.active.is_none()
        && patch.password_login.is_none()
    {
        return Err(ApiError::invalid(
            "body",
            "give at least one of name, plan, timezone, active, password_login",
        ));
    }
    let name = patch
        .name
        .as_deref()
        .map(|n| accounts::validate_name("name", n))
        .transpose()?;
    let timezone = patch.timezone.as_deref().map(check_timezone).transpose()?;
    let current = match repo::hospitals::get(db, id).await {
        Ok(h) => h,
        Err(DbError::NotFound) => {
            return Err(ApiError::NotFound(format!("hospital {id} does not exist")))
        }
        Err(e) => return Err(e.into()),
    };
    let change = HospitalChange {
        name: name.filter(|n| *n != current.name),
        plan: patch.plan.filter(|p| *p != current.plan),
        timezone: timezone.filter(|t| *t != current.timezone),
        active: patch.active.filter(|a| *a != current.active),
        password_login: patch
            .password_login
            .filter(|p| *p != current.password_login),
    };
    let audit = hospital_audit(by, id, &change);
    if audit.is_empty() {
        return Ok(HospitalUpdated {
            hospital: current.into(),
            signed_out: Vec::new(),
            timezone_changed: false,
        });
    }
    let entries: Vec<Entry> = audit.iter().map(|(a, d)| a.entry(d)).collect();
    let taken = change.name.clone();
    let (row, signed_out) = repo::admin::update_hospital(db, id, &change, &entries)
        .await
        .map_err(|e| match (e, taken) {
            (DbError::Conflict(_), Some(name)) => {
                ApiError::Conflict(format!("a hospital named {name:?} already exists"))
            }
            (other, _) => other.into(),
        })?
        .ok_or_else(|| ApiError::NotFound(format!("hospital {id} does not exist")))?;
    Ok(HospitalUpdated {
        hospital: row.into(),
        signed_out,
        timezone_changed: change.timezone.is_some(),
    })
}

/// The audit rows of a hospital change (see [`user_audit`]).
pub fn hospital_audit(
    by: UserId,
    id: HospitalId,
    change: &HospitalChange,
) -> Vec<(AuditNote, Option<String>)> {
    let note = |action| AuditNote {
        by,
        action,
        target_type: TARGET_HOSPITAL,
        target_id: id.0,
    };
    let mut out = Vec::new();
    match change.active {
        Some(false) => out.push((note(AdminAction::DeactivateHospital), None)),
        Some(true) => out.push((note(AdminAction::ReactivateHospital), None)),
        None => {}
    }
    let mut detail = serde_json::Map::new();
    let mut fields = Vec::new();
    if change.name.is_some() {
        fields.push("name");
    }
    if let Some(plan) = change.plan {
        fields.push("plan");
        detail.insert("plan".into(), plan.as_str().into());
    }
    if let Some(tz) = &change.timezone {
        fields.push("timezone");
        detail.insert("timezone".into(), tz.clone().into());
    }
    if let Some(allowed) = change.password_login {
        fields.push("password_login");
        detail.insert("password_login".into(), allowed.into());
    }
    if !fields.is_empty() {
        detail.insert("fields".into(), fields.into());
        let detail = serde_json::Value::Object(detail).to_string();
        out.push((note(AdminAction::UpdateHospital), Some(detail)));
    }
    out
}

/// One weekly interval on the wire: `{"weekday": 1, "start": "08:00", "end": "17:00"}`
/// (ISO weekday, Monday = 1; UTC; `end` may be `24:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursItem {
    pub weekday: u8,
    pub start: String,
    pub end: String,
}

/// `HH:MM` as minutes after midnight; `24:00` only where `end_of_day` allows it.
fn parse_clock(field: &str, text: &str, end_of_day: bool) -> Result<i32, ApiError> {
    let bad = || ApiError::invalid(field, "must be a time like 08:30 (24-hour, UTC)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    let minute = h * 60 + m;
    let max = if end_of_day {
        MINUTES_PER_DAY
    } else {
        MINUTES_PER_DAY - 1
    };
    if !(0..60).contains(&m) || !(0..=max).contains(&minute) {
        return Err(bad());
    }
    Ok(minute)
}

pub fn format_clock(minute: i32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Checks a week of intervals: known weekdays, start before end, no two overlapping
/// on one day. Returns them sorted as stored.
pub fn check_hours(items: &[HoursItem]) -> Result<Vec<HoursRow>, ApiError> {
    if items.len() > MAX_HOURS_ROWS {
        return Err(ApiError::invalid(
            "hours",
            format!("at most {MAX_HOURS_ROWS} intervals"),
        ));
    }
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if !(1..=7).contains(&item.weekday) {
            return Err(ApiError::invalid(
                &format!("hours[{i}].weekday"),
                "ISO weekdays 1 (Monday) to 7 (Sunday)",
            ));
        }
        let start = parse_clock(&format!("hours[{i}].start"), &item.start, false)?;
        let end = parse_clock(&format!("hours[{i}].end"), &item.end, true)?;
        if start >= end {
            return Err(ApiError::invalid(
                &format!("hours[{i}].end"),
                "must be after start (an interval past midnight UTC is two intervals)",
            ));
        }
        rows.push(HoursRow {
            weekday: i32::from(item.weekday),
            start_minute: start,
            end_minute: end,
        });
    }
    rows.sort_by_key(|r| (r.weekday, r.start_minute));
    for pair in rows.windows(2) {
        if pair[0].weekday == pair[1].weekday && pair[1].start_minute < pair[0].end_minute {
            return Err(ApiError::invalid(
                "hours",
                format!(
                    "intervals overlap on weekday {} ({}–{} and {}–{})",
                    pair[0].weekday,
                    format_clock(pair[0].start_minute),
                    format_clock(pair[0].end_minute),
                    format_clock(pair[1].start_minute),
                    format_clock(pair[1].end_minute)
                ),
            ));
        }
    }
    Ok(rows)
}

pub fn hours_items(rows: &[HoursRow]) -> Vec<HoursItem> {
    rows.iter()
        .map(|r| HoursItem {
            weekday: r.weekday as u8,
            start: format_clock(r.start_minute),
            end: format_clock(r.end_minute),
        })
        .collect()
}

/// A consultant named in a console path: 404 unless the account exists and is one.
pub async fn consultant(db: &Db, id: UserId) -> Result<UserRow, ApiError> {
    repo::users::by_id(db, id)
        .await?
        .filter(|u| u.role == Role::Consultant)
        .ok_or_else(|| ApiError::NotFound(format!("consultant {id} does not exist")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(weekday: u8, start: &str, end: &str) -> HoursItem {
        HoursItem {
            weekday,
            start: start.into(),
            end: end.into(),
        }
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::Validation { fields, .. } => fields.into_keys().collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn hours_round_trip_sorted() {
        let rows = check_hours(&[item(3, "13:00", "17:00"), item(1, "08:00", "24:00")]).unwrap();
        assert_eq!(
            hours_items(&rows),
            vec![item(1, "08:00", "24:00"), item(3, "13:00", "17:00")]
        );
    }

    #[test]
    fn bad_hours_name_their_field() {
        assert_eq!(
            field_of(check_hours(&[item(0, "08:00", "09:00")]).unwrap_err()),
            "hours[0].weekday"
        );
        assert_eq!(
            field_of(check_hours(&[item(1, "8:00", "09:00")]).unwrap_err()),
            "hours[0].start"
        );
        assert_eq!(
            field_of(check_hours(&[item(1, "24:00", "24:00")]).unwrap_err()),
            "hours[0].start"
        );
        assert_eq!(
            field_of(check_hours(&[item(1, "08:60", "09:00")]).unwrap_err()),
            "hours[0].start"
        );
        assert_eq!(
            field_of(check_hours(&[item(1, "09:00", "08:00")]).unwrap_err()),
            "hours[0].end"
        );
        assert_eq!(
            field_of(
                check_hours(&[item(2, "08:00", "12:00"), item(2, "11:59", "13:00")]).unwrap_err()
            ),
            "hours"
        );
        assert!(check_hours(&[item(2, "08:00", "12:00"), item(2, "12:00", "13:00")]).is_ok());
        let many: Vec<HoursItem> = (0..=MAX_HOURS_ROWS)
            .map(|_| item(1, "01:00", "02:00"))
            .collect();
        assert_eq!(field_of(check_hours(&many).unwrap_err()), "hours");
    }

    #[test]
    fn a_users_audit_never_holds_a_name_or_password() {
        let change = UserChange {
            name: Some("Nora Secret".into()),
            role: Some(Role::HospitalLeadership),
            hospital_id: None,
            active: Some(false),
            password_hash: Some("$argon2id$...".into()),
        };
        let notes = user_audit(UserId(1), UserId(2), &change);
        let actions: Vec<_> = notes.iter().map(|(n, _)| n.action).collect();
        assert_eq!(
            actions,
            [
                AdminAction::DeactivateUser,
                AdminAction::ResetPassword,
                AdminAction::UpdateUser
            ]
        );
        let detail = notes[2].1.clone().unwrap();
        assert!(detail.contains("hospital_leadership") && detail.contains("\"name\""));
        assert!(!detail.contains("Nora") && !detail.contains("argon"));
    }

    #[test]
    fn roles_and_hospitals_go_together() {
        assert!(check_hospital_rule(Role::HospitalStaff, None).is_err());
        assert!(check_hospital_rule(Role::Consultant, Some(HospitalId(1))).is_err());
        assert!(check_hospital_rule(Role::Consultant, None).is_ok());
        assert!(check_hospital_rule(Role::HospitalLeadership, Some(HospitalId(1))).is_ok());
    }
}
