//! `--demo` data that makes the product come alive: three hospitals on different plans
//! (one without live video), consultants with specialties, staff and leadership, and a
//! few weeks of rated past sessions so matching has relationships to learn from.
//! Seeding is idempotent: it does nothing when the demo admin already exists.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::models::{NewHospital, NewUser};
use super::schema::*;
use super::{repo, Db, DbError, DbResult};
use crate::model::{ConsultantStatus, HospitalId, MatchTier, Plan, Role, SessionStatus, Urgency};

pub const DEMO_PASSWORD: &str = "nicehr-demo";
pub const DEMO_ADMIN: &str = "admin@nicehr.demo";

pub struct SeedReport {
    pub created: bool,
    pub accounts: Vec<(String, String)>,
}

impl SeedReport {
    /// Printed at start-up so a newcomer can sign in straight away.
    pub fn print(&self) {
        if self.created {
            println!("Demo data created. Every demo account's password is: {DEMO_PASSWORD}");
        } else {
            println!(
                "Demo data already present. Every demo account's password is: {DEMO_PASSWORD}"
            );
        }
        for (email, what) in &self.accounts {
            println!("  {email:<36} {what}");
        }
    }
}

struct DemoHospital {
    name: &'static str,
    plan: Plan,
    timezone: &'static str,
    slug: &'static str,
}

const HOSPITALS: &[DemoHospital] = &[
    DemoHospital {
        name: "Riverside General Hospital",
        plan: Plan::Enterprise,
        timezone: "America/Chicago",
        slug: "riverside",
    },
    DemoHospital {
        name: "Lakeside Medical Center",
        plan: Plan::Premium,
        timezone: "America/New_York",
        slug: "lakeside",
    },
    DemoHospital {
        name: "Hillcrest Community Hospital",
        plan: Plan::Professional,
        timezone: "America/Denver",
        slug: "hillcrest",
    },
];

/// (department, proficiency)
type Specialties = &'static [(&'static str, &'static str)];

/// (email local part, name, specialties)
const CONSULTANTS: &[(&str, &str, Specialties)] = &[
    (
        "alice.chen",
        "Alice Chen",
        &[("ER", "expert"), ("Nursing", "standard")],
    ),
    (
        "ben.okafor",
        "Ben Okafor",
        &[("Pharmacy", "expert"), ("Laboratory", "standard")],
    ),
    (
        "carmen.diaz",
        "Carmen Diaz",
        &[("Radiology", "expert"), ("ER", "standard")],
    ),
    (
        "david.kim",
        "David Kim",
        &[("Laboratory", "expert"), ("Pharmacy", "standard")],
    ),
    (
        "erin.walsh",
        "Erin Walsh",
        &[("Nursing", "expert"), ("Scheduling", "standard")],
    ),
    (
        "farid.haddad",
        "Farid Haddad",
        &[("Scheduling", "expert"), ("Radiology", "standard")],
    ),
    (
        "grace.lee",
        "Grace Lee",
        &[
            ("ER", "standard"),
            ("Pharmacy", "standard"),
            ("Nursing", "standard"),
        ],
    ),
    (
        "henry.novak",
        "Henry Novak",
        &[
            ("Radiology", "standard"),
            ("Laboratory", "standard"),
            ("Scheduling", "standard"),
        ],
    ),
];

/// (email local part, name, department they usually call about)
const STAFF: &[(&str, &str, &str)] = &[
    ("nurse.er", "Maria Lopez (ER nurse)", "ER"),
    ("pharmacist", "Tom Becker (pharmacist)", "Pharmacy"),
    ("radtech", "Priya Nair (radiology tech)", "Radiology"),
    ("labtech", "Sam Ortiz (lab tech)", "Laboratory"),
];

const LEADERSHIP_NAME: &str = "Director of Nursing";

pub async fn seed_demo(db: &Db) -> DbResult<SeedReport> {
    let mut accounts = vec![(DEMO_ADMIN.to_string(), "admin".to_string())];
    for (local, name, _) in CONSULTANTS {
        accounts.push((
            format!("{local}@nicehr.demo"),
            format!("consultant — {name}"),
        ));
    }
    for h in HOSPITALS {
        accounts.push((
            format!("leader@{}.demo", h.slug),
            format!("leadership — {} ({})", h.name, h.plan),
        ));
        for (local, name, _) in STAFF {
            accounts.push((
                format!("{local}@{}.demo", h.slug),
                format!("staff — {name}, {}", h.name),
            ));
        }
    }
    if repo::users::by_email(db, DEMO_ADMIN).await?.is_some() {
        return Ok(SeedReport {
            created: false,
            accounts,
        });
    }
    let password = DEMO_PASSWORD.to_string();
    let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
        .await
        .map_err(|e| DbError::Query(e.to_string()))?
        .map_err(|e| DbError::Query(e.to_string()))?;
    let now = repo::now();

    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let new_user = |email: String, name: String, role: Role, hospital_id: Option<i64>| {
                (email, name, role, hospital_id)
            };
            let mut hospital_ids = Vec::new();
            for h in HOSPITALS {
                let id: i64 = diesel::insert_into(hospitals::table)
                    .values(NewHospital {
                        name: h.name,
                        plan: h.plan,
                        timezone: h.timezone,
                        created_at: now,
                    })
                    .returning(hospitals::id)
                    .get_result(conn)
                    .await?;
                hospital_ids.push(id);
            }
            let mut people = vec![new_user(
                DEMO_ADMIN.into(),
                "NICEHR Admin".into(),
                Role::Admin,
                None,
            )];
            for (local, name, _) in CONSULTANTS {
                people.push(new_user(
                    format!("{local}@nicehr.demo"),
                    name.to_string(),
                    Role::Consultant,
                    None,
                ));
            }
            for (h, id) in HOSPITALS.iter().zip(&hospital_ids) {
                people.push(new_user(
                    format!("leader@{}.demo", h.slug),
                    format!("{LEADERSHIP_NAME}, {}", h.name),
                    Role::HospitalLeadership,
                    Some(*id),
                ));
                for (local, name, _) in STAFF {
                    people.push(new_user(
                        format!("{local}@{}.demo", h.slug),
                        name.to_string(),
                        Role::HospitalStaff,
                        Some(*id),
                    ));
                }
            }
            let mut ids_by_email: HashMap<String, i64> = HashMap::new();
            for (email, name, role, hospital_id) in &people {
                let id: i64 = diesel::insert_into(users::table)
                    .values(NewUser {
                        email,
                        name,
                        role: *role,
                        hospital_id: hospital_id.map(HospitalId),
                        password_hash: &hash,
                        created_at: now,
                    })
                    .returning(users::id)
                    .get_result(conn)
                    .await?;
                ids_by_email.insert(email.clone(), id);
            }
            let mut consultant_ids = Vec::new();
            for (local, _, specialties) in CONSULTANTS {
                let id = ids_by_email[&format!("{local}@nicehr.demo")];
                consultant_ids.push(id);
                diesel::insert_into(consultant_availability::table)
                    .values((
                        consultant_availability::consultant_id.eq(id),
                        consultant_availability::status.eq(ConsultantStatus::Offline),
                        consultant_availability::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                for (department, proficiency) in specialties.iter() {
                    diesel::insert_into(consultant_specialties::table)
                        .values((
                            consultant_specialties::consultant_id.eq(id),
                            consultant_specialties::department.eq(*department),
                            consultant_specialties::proficiency.eq(*proficiency),
                        ))
                        .execute(conn)
                        .await?;
                }
            }
            let (sessions, relationships, statuses) =
                build_history(now, &hospital_ids, &ids_by_email, &consultant_ids);
            // Row by row: SQLite cannot batch-insert rows with NULLs through diesel.
            for session in &sessions {
                diesel::insert_into(support_sessions::table)
                    .values(session)
                    .execute(conn)
                    .await?;
            }
            for relationship in &relationships {
                diesel::insert_into(staff_consultant_preferences::table)
                    .values(relationship)
                    .execute(conn)
                    .await?;
            }
            for status in &statuses {
                diesel::insert_into(consultant_status_log::table)
                    .values(status)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
    })?;
    Ok(SeedReport {
        created: true,
        accounts,
    })
}

/// Three weeks of past sessions, mostly completed and rated, some cancelled while
/// waiting, with status-log intervals so utilisation has something to measure.
/// Deterministic (fixed seed) so every demo looks the same.
fn build_history(
    now: NaiveDateTime,
    hospital_ids: &[i64],
    ids_by_email: &HashMap<String, i64>,
    consultant_ids: &[i64],
) -> (Vec<SeedSession>, Vec<SeedRelationship>, Vec<SeedStatus>) {
    let mut rng = StdRng::seed_from_u64(2026);
    let departments_of: HashMap<i64, Vec<&str>> = CONSULTANTS
        .iter()
        .zip(consultant_ids)
        .map(|((_, _, specs), id)| (*id, specs.iter().map(|(d, _)| *d).collect()))
        .collect();
    let mut sessions = Vec::new();
    let mut statuses = Vec::new();
    let mut relationships: HashMap<(i64, i64), SeedRelationship> = HashMap::new();
    for day in (1..=21).rev() {
        for (h_index, slug) in HOSPITALS.iter().map(|h| h.slug).enumerate() {
            let sessions_today = rng.gen_range(1..=3);
            for _ in 0..sessions_today {
                let (local, _, department) = STAFF[rng.gen_range(0..STAFF.len())];
                let staff_id = ids_by_email[&format!("{local}@{slug}.demo")];
                // Prefer a consultant who specialises in the department, as matching would.
                let specialists: Vec<i64> = consultant_ids
                    .iter()
                    .copied()
                    .filter(|id| departments_of[id].contains(&department))
                    .collect();
                let consultant_id = if !specialists.is_empty() && rng.gen_bool(0.8) {
                    specialists[rng.gen_range(0..specialists.len())]
                } else {
                    consultant_ids[rng.gen_range(0..consultant_ids.len())]
                };
                let created_at =
                    now - Duration::days(day) + Duration::minutes(rng.gen_range(8 * 60..18 * 60));
                let urgency = [
                    Urgency::Normal,
                    Urgency::Normal,
                    Urgency::Normal,
                    Urgency::Urgent,
                    Urgency::Critical,
                ][rng.gen_range(0..5)];
                let wait = rng.gen_range(5..240_i64);
                let cancelled = rng.gen_bool(0.06);
                let target = HOSPITALS[h_index].plan.response_target();
                if cancelled {
                    sessions.push(SeedSession {
                        hospital_id: hospital_ids[h_index],
                        requester_id: staff_id,
                        consultant_id: None,
                        department: department.into(),
                        urgency,
                        status: SessionStatus::Cancelled,
                        issue_summary: "Demo request (cancelled)".into(),
                        resolution_notes: None,
                        resolved: None,
                        created_at,
                        response_deadline: created_at + target,
                        accepted_at: None,
                        started_at: None,
                        ended_at: Some(created_at + Duration::seconds(wait)),
                        wait_time_seconds: None,
                        duration_seconds: None,
                        rating: None,
                        feedback: None,
                        match_tier: None,
                        match_score: None,
                        video_provider: None,
                        cancelled_by: Some(staff_id),
                        wrapped_up_at: None,
                    });
                    continue;
                }
                let accepted_at = created_at + Duration::seconds(wait);
                let started_at = accepted_at + Duration::seconds(rng.gen_range(3..20));
                let duration = rng.gen_range(180..1500_i64);
                let ended_at = started_at + Duration::seconds(duration);
                let resolved = rng.gen_bool(0.85);
                let rating = if rng.gen_bool(0.8) {
                    Some(if resolved {
                        rng.gen_range(4..=5)
                    } else {
                        rng.gen_range(2..=4)
                    })
                } else {
                    None
                };
                sessions.push(SeedSession {
                    hospital_id: hospital_ids[h_index],
                    requester_id: staff_id,
                    consultant_id: Some(consultant_id),
                    department: department.into(),
                    urgency,
                    status: SessionStatus::Completed,
                    issue_summary: format!("Demo {department} question"),
                    resolution_notes: Some("Walked through the workflow together.".into()),
                    resolved: Some(resolved),
                    created_at,
                    response_deadline: created_at + target,
                    accepted_at: Some(accepted_at),
                    started_at: Some(started_at),
                    ended_at: Some(ended_at),
                    wait_time_seconds: Some(wait),
                    duration_seconds: Some(duration),
                    rating,
                    feedback: None,
                    match_tier: Some(MatchTier::C),
                    match_score: Some(30),
                    video_provider: Some("builtin".into()),
                    cancelled_by: None,
                    wrapped_up_at: Some(ended_at),
                });
                statuses.push(SeedStatus {
                    consultant_id,
                    status: ConsultantStatus::Busy,
                    started_at: accepted_at,
                    ended_at: Some(ended_at),
                });
                statuses.push(SeedStatus {
                    consultant_id,
                    status: ConsultantStatus::Available,
                    started_at: ended_at,
                    ended_at: Some(ended_at + Duration::minutes(rng.gen_range(20..90))),
                });
                let rel =
                    relationships
                        .entry((staff_id, consultant_id))
                        .or_insert(SeedRelationship {
                            staff_id,
                            consultant_id,
                            total_sessions: 0,
                            successful_sessions: 0,
                            rating_sum: 0,
                            rating_count: 0,
                            last_session_at: None,
                        });
                rel.total_sessions += 1;
                rel.successful_sessions += i32::from(resolved);
                if let Some(r) = rating {
                    rel.rating_sum += r;
                    rel.rating_count += 1;
                }
                rel.last_session_at = Some(ended_at);
            }
        }
    }
    let mut relationships: Vec<SeedRelationship> = relationships.into_values().collect();
    relationships.sort_by_key(|r| (r.staff_id, r.consultant_id));
    (sessions, relationships, statuses)
}

#[derive(Insertable)]
#[diesel(table_name = support_sessions)]
pub struct SeedSession {
    hospital_id: i64,
    requester_id: i64,
    consultant_id: Option<i64>,
    department: String,
    urgency: Urgency,
    status: SessionStatus,
    issue_summary: String,
    resolution_notes: Option<String>,
    resolved: Option<bool>,
    created_at: NaiveDateTime,
    response_deadline: NaiveDateTime,
    accepted_at: Option<NaiveDateTime>,
    started_at: Option<NaiveDateTime>,
    ended_at: Option<NaiveDateTime>,
    wait_time_seconds: Option<i64>,
    duration_seconds: Option<i64>,
    rating: Option<i32>,
    feedback: Option<String>,
    match_tier: Option<MatchTier>,
    match_score: Option<i64>,
    video_provider: Option<String>,
    cancelled_by: Option<i64>,
    wrapped_up_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = staff_consultant_preferences)]
pub struct SeedRelationship {
    staff_id: i64,
    consultant_id: i64,
    total_sessions: i32,
    successful_sessions: i32,
    rating_sum: i32,
    rating_count: i32,
    last_session_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = consultant_status_log)]
pub struct SeedStatus {
    consultant_id: i64,
    status: ConsultantStatus,
    started_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
}
