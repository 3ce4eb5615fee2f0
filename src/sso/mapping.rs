//! The rules of single sign-on that need no network or storage: which role a
//! person's claims give, which roles a provider may hand out, and whether a
//! provider may sign someone into an account. Unit-tested alone.

use serde_json::Value;

use crate::config::{SsoConfig, SsoProviderConfig, SsoRoleRule};
use crate::model::{HospitalId, Role};

/// Longest provider id (it is a path segment and a stored column).
pub const MAX_PROVIDER_ID_LEN: usize = 64;

/// The role the claims give: the first rule whose claim is the value (or a list
/// holding it), else the provider's default role.
pub fn role_for(
    rules: &[SsoRoleRule],
    default: Option<Role>,
    claims: &serde_json::Map<String, Value>,
) -> Option<Role> {
    rules
        .iter()
        .find(|rule| {
            claims
                .get(&rule.claim)
                .is_some_and(|v| holds(v, &rule.value))
        })
        .map(|rule| rule.role)
        .or(default)
}

/// Whether a claim's value is, or contains, the wanted text. Numbers and booleans
/// compare by their JSON spelling (`"true"`, `"42"`).
fn holds(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Array(items) => items.iter().any(|item| holds(item, wanted)),
        Value::Bool(b) => b.to_string() == wanted,
        Value::Number(n) => n.to_string() == wanted,
        Value::Null | Value::Object(_) => false,
    }
}

/// Whether a provider may hand out this role: a hospital's provider makes hospital
/// staff and leadership; NICEHR's own provider makes admins and consultants (the
/// same rule `create-user` applies to `hospital_id`).
pub fn role_fits(hospital: Option<HospitalId>, role: Role) -> bool {
    let hospital_role = matches!(role, Role::HospitalStaff | Role::HospitalLeadership);
    hospital.is_some() == hospital_role
}

/// Whether a provider tied to `provider` may sign someone into an account of
/// `account`: only its own hospital's (or, for NICEHR's provider, NICEHR's own). A
/// hospital's identity provider vouches for that hospital's people and nobody else.
pub fn admits(provider: Option<HospitalId>, account: Option<HospitalId>) -> bool {
    provider == account
}

/// Checks the `[[sso.providers]]` of a configuration: every mistake `serve` would
/// otherwise meet at somebody's first sign-in.
pub fn check(config: &SsoConfig) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for provider in &config.providers {
        check_provider(provider).map_err(|e| format!("sso provider {:?}: {e}", provider.id))?;
        if !seen.insert(provider.id.as_str()) {
            return Err(format!(
                "sso provider {:?} is configured twice; ids must be unique",
                provider.id
            ));
        }
    }
    Ok(())
}

fn check_provider(p: &SsoProviderConfig) -> Result<(), String> {
    let id_ok = !p.id.is_empty()
        && p.id.len() <= MAX_PROVIDER_ID_LEN
        && p.id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !id_ok {
        return Err(format!(
            "`id` must be 1 to {MAX_PROVIDER_ID_LEN} lower-case letters, digits, `-` or `_`"
        ));
    }
    if p.display_name.trim().is_empty() {
        return Err("`display_name` must not be empty".into());
    }
    if p.client_id.trim().is_empty() {
        return Err("`client_id` must not be empty".into());
    }
    let issuer = url::Url::parse(&p.issuer_url)
        .map_err(|e| format!("`issuer_url` {:?} is not a URL: {e}", p.issuer_url))?;
    let loopback = matches!(
        issuer.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
        return Err("`issuer_url` must be https (plain http only on localhost)".into());
    }
    let roles = p.roles.iter().map(|r| r.role).chain(p.default_role);
    for role in roles {
        if !role_fits(p.hospital_id, role) {
            return Err(match p.hospital_id {
                Some(h) => format!(
                    "gives the role {role}, but it signs in hospital {h}'s people: \
                     only hospital_staff and hospital_leadership belong to a hospital"
                ),
                None => format!(
                    "gives the role {role}, but it has no `hospital_id`: NICEHR's own \
                     provider makes only admins and consultants"
                ),
            });
        }
    }
    if p.roles.iter().any(|r| r.claim.trim().is_empty()) {
        return Err("a role rule has an empty `claim`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(claim: &str, value: &str, role: Role) -> SsoRoleRule {
        SsoRoleRule {
            claim: claim.into(),
            value: value.into(),
            role,
        }
    }

    fn claims(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_first_matching_rule_wins_and_lists_count_as_holding() {
        let rules = [
            rule("groups", "icu-leads", Role::HospitalLeadership),
            rule("department", "icu", Role::HospitalStaff),
        ];
        let both = claims(json!({"groups": ["nurses", "icu-leads"], "department": "icu"}));
        assert_eq!(
            role_for(&rules, None, &both),
            Some(Role::HospitalLeadership)
        );
        let staff = claims(json!({"groups": ["nurses"], "department": "icu"}));
        assert_eq!(role_for(&rules, None, &staff), Some(Role::HospitalStaff));
    }

    #[test]
    fn without_a_match_the_default_decides_and_no_default_refuses() {
        let rules = [rule("roles", "lead", Role::HospitalLeadership)];
        let none = claims(json!({"roles": "nurse", "other": {"roles": "lead"}}));
        assert_eq!(
            role_for(&rules, Some(Role::HospitalStaff), &none),
            Some(Role::HospitalStaff)
        );
        assert_eq!(role_for(&rules, None, &none), None);
        assert_eq!(role_for(&[], None, &claims(json!({}))), None);
    }

    #[test]
    fn numbers_and_booleans_compare_by_spelling() {
        let rules = [
            rule("is_admin", "true", Role::Admin),
            rule("level", "3", Role::Consultant),
        ];
        assert_eq!(
            role_for(&rules, None, &claims(json!({"is_admin": true}))),
            Some(Role::Admin)
        );
        assert_eq!(
            role_for(
                &rules,
                None,
                &claims(json!({"is_admin": false, "level": 3}))
            ),
            Some(Role::Consultant)
        );
    }

    #[test]
    fn a_provider_admits_only_its_own_hospitals_accounts() {
        let a = Some(HospitalId(1));
        let b = Some(HospitalId(2));
        assert!(admits(a, a));
        assert!(!admits(a, b));
        assert!(
            !admits(a, None),
            "a hospital's provider never makes NICEHR staff"
        );
        assert!(
            !admits(None, a),
            "NICEHR's provider never enters a hospital"
        );
        assert!(admits(None, None));
    }

    fn provider(
        hospital: Option<i64>,
        roles: Vec<SsoRoleRule>,
        default: Option<Role>,
    ) -> SsoConfig {
        SsoConfig {
            providers: vec![SsoProviderConfig {
                id: "entra".into(),
                display_name: "Entra ID".into(),
                issuer_url: "https://login.example.test/tenant/v2.0".into(),
                client_id: "abc".into(),
                client_secret: crate::config::Secret("s".into()),
                hospital_id: hospital.map(HospitalId),
                scopes: vec![],
                roles,
                default_role: default,
            }],
        }
    }

    #[test]
    fn the_configuration_check_names_each_mistake() {
        assert!(check(&provider(Some(1), vec![], Some(Role::HospitalStaff))).is_ok());
        assert!(check(&provider(None, vec![], Some(Role::Consultant))).is_ok());
        let wrong = check(&provider(Some(1), vec![rule("g", "x", Role::Admin)], None));
        assert!(wrong.unwrap_err().contains("only hospital_staff"));
        let wrong = check(&provider(None, vec![], Some(Role::HospitalStaff)));
        assert!(wrong.unwrap_err().contains("no `hospital_id`"));
        let mut bad = provider(Some(1), vec![], None);
        bad.providers[0].issuer_url = "http://idp.example.test".into();
        assert!(check(&bad).unwrap_err().contains("https"));
        bad.providers[0].issuer_url = "http://127.0.0.1:9000".into();
        assert!(check(&bad).is_ok(), "plain http on loopback, for tests");
        bad.providers[0].id = "Entra ID".into();
        assert!(check(&bad).unwrap_err().contains("lower-case"));
        let mut twice = provider(Some(1), vec![], None);
        twice.providers.push(twice.providers[0].clone());
        assert!(check(&twice).unwrap_err().contains("twice"));
    }
}
