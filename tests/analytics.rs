//! Analytics and the CSV export, on a fixed data set written straight into the
//! database: every figure is worked out by hand in the comments and must come back
//! exactly (floats to 1e-9) from both backends.
//!
//! The data set, all in January 2025. Hospital A is on Enterprise (response target
//! 15 min = 900 s) in America/New_York (UTC-5 then); hospital B on Premium (1 h =
//! 3600 s) in UTC. Times are UTC; "NY" is the local time in A.
//!
//! | id | hosp | dept      | created (UTC)     | NY           | outcome                                   |
//! |----|------|-----------|-------------------|--------------|-------------------------------------------|
//! | A0 | A    | ER        | 01-14 04:59:59    | 01-13 23:59  | completed, wait 7777 — before the window  |
//! | A1 | A    | ER        | 01-14 14:00       | 01-14 09:00  | C1, wait 60, 600 s, resolved, rating 5    |
//! | A2 | A    | ER        | 01-14 14:30       | 01-14 09:30  | C1, wait 120, 300 s, unresolved, rating 3 |
//! | A3 | A    | Pharmacy  | 01-14 20:00       | 01-14 15:00  | C2, wait 1200 (late), 900 s, resolved, 4  |
//! | A4 | A    | Pharmacy  | 01-15 04:30       | 01-14 23:30  | C2, wait 30, then cancelled (connecting)  |
//! | A5 | A    | ER        | 01-15 15:00       | 01-15 10:00  | cancelled unanswered after 300 s          |
//! | A6 | A    | Radiology | 01-15 16:00       | 01-15 11:00  | cancelled unanswered after 1000 s (late)  |
//! | A7 | A    | Radiology | 01-15 17:00       | 01-15 12:00  | still pending (long past its deadline)    |
//! | A8 | A    | ER        | 01-15 18:00       | 01-15 13:00  | C1, wait 900 (= deadline), 1200 s, resolved unanswered, no rating |
//! | A9 | A    | ER        | 01-16 05:00       | 01-16 00:00  | completed, wait 9999 — after the window   |
//! | B1 | B    | ER        | 01-14 14:00       |              | C1, wait 3000, 100 s, resolved, rating 1  |
//! | B2 | B    | Laboratory| 01-15 10:00       |              | cancelled unanswered after 60 s           |
//! | BL | B    | ER        | now - 600 s       |              | pending now (the live queue)              |
//!
//! Status log (UTC), window of A's report = [01-14 05:00, 01-16 05:00):
//! C1: available 01-14 04:00–06:00 (3600 s inside), busy 06:00–08:00 (7200),
//!     available 08:00–12:00 (14400), offline 12:00–01-15 00:00 (not counted),
//!     busy 01-16 04:00–06:00 (3600 inside). Available 18000, busy 10800 → 0.375.
//! C2: busy 01-15 10:00–12:00 (7200), available 12:00–18:00 (21600), online from
//!     18:00, open (online is not available). → 7200 / 28800 = 0.25.
//! C3: available 01-15 05:00–01-17 00:00 (86400 inside), no sessions. → 0.
//! C4: available now-3h–now-1h, busy since now-1h (open) → 3600 / 10800 = 1/3.

mod common;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use common::{assert_error, Backend, TestApp};
use nicehr_support::db::repo;
use nicehr_support::db::repo::analytics::{HistoricSession, HistoricStatus};
use nicehr_support::model::Plan;
use serde_json::{json, Value};

const A_NAME: &str = "Alpha \"General\", North\nWing";
const B_NAME: &str = "=Beta Clinic";
const SECRET: &str = "Patient Jane Roe, MRN 0042, bed 7";

fn at(text: &str) -> NaiveDateTime {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
        .naive_utc()
}

/// One past session; timestamps derived from `created` and the outcome.
struct Past<'a> {
    hospital: i64,
    requester: i64,
    consultant: Option<i64>,
    department: &'a str,
    status: &'a str,
    created: NaiveDateTime,
    target_secs: i64,
    wait: Option<i64>,
    duration: Option<i64>,
    resolved: Option<bool>,
    rating: Option<i32>,
    cancelled_after: Option<i64>,
}

impl Past<'_> {
    fn row(&self) -> HistoricSession {
        let accepted = self.wait.map(|w| self.created + Duration::seconds(w));
        let started = accepted.filter(|_| self.duration.is_some());
        let ended = match (self.cancelled_after, started, self.duration) {
            (Some(after), _, _) => Some(self.created + Duration::seconds(after)),
            (None, Some(s), Some(d)) => Some(s + Duration::seconds(d)),
            _ => None,
        };
        HistoricSession {
            hospital_id: self.hospital,
            requester_id: self.requester,
            consultant_id: self.consultant,
            department: self.department.into(),
            urgency: "normal".into(),
            status: self.status.into(),
            issue_summary: SECRET.into(),
            resolved: self.resolved,
            created_at: self.created,
            response_deadline: self.created + Duration::seconds(self.target_secs),
            accepted_at: accepted,
            started_at: started,
            ended_at: ended,
            wait_time_seconds: self.wait,
            duration_seconds: self.duration,
            rating: self.rating,
            feedback: self.rating.map(|_| SECRET.to_string()),
            match_tier: self.consultant.map(|_| "C".to_string()),
            cancelled_by: self.cancelled_after.map(|_| self.requester),
        }
    }
}

struct World {
    a: i64,
    b: i64,
    leader_a: String,
    leader_b: String,
    staff_a: String,
    staff_a_id: i64,
    consultant_token: String,
    c1: i64,
    c2: i64,
    c3: i64,
    c4: i64,
    /// Session ids A0..A9, B1, B2, BL in that order.
    ids: Vec<i64>,
}

async fn world(app: &TestApp) -> World {
    let a = repo::hospitals::create(&app.store, A_NAME, Plan::Enterprise, "America/New_York")
        .await
        .expect("hospital A")
        .id
        .0;
    let b = repo::hospitals::create(&app.store, B_NAME, Plan::Premium, "UTC")
        .await
        .expect("hospital B")
        .id
        .0;
    let staff_a = app.person("nurse@a.test", "hospital_staff", Some(a)).await;
    let staff_b = app.person("nurse@b.test", "hospital_staff", Some(b)).await;
    let leader_a = app
        .person("lead@a.test", "hospital_leadership", Some(a))
        .await;
    let leader_b = app
        .person("lead@b.test", "hospital_leadership", Some(b))
        .await;
    let c1 = app
        .create_user_direct("c1@n.test", "Cora One", "consultant", None)
        .await;
    let c2 = app
        .create_user_direct("c2@n.test", "Dev Two", "consultant", None)
        .await;
    let c3 = app
        .create_user_direct("c3@n.test", "Eli Three", "consultant", None)
        .await;
    let c4 = app
        .create_user_direct("c4@n.test", "Fay Four", "consultant", None)
        .await;
    let consultant_token = app.login("c1@n.test", common::PASSWORD).await;

    let (sa, sb) = (staff_a.id, staff_b.id);
    let ent = 900;
    let prem = 3600;
    let now = Utc::now().naive_utc();
    #[rustfmt::skip]
    let past = [
        // A0..A9
        Past { hospital: a, requester: sa, consultant: Some(c1), department: "ER", status: "completed", created: at("2025-01-14T04:59:59Z"), target_secs: ent, wait: Some(7777), duration: Some(50), resolved: Some(true), rating: Some(1), cancelled_after: None },
        Past { hospital: a, requester: sa, consultant: Some(c1), department: "ER", status: "completed", created: at("2025-01-14T14:00:00Z"), target_secs: ent, wait: Some(60), duration: Some(600), resolved: Some(true), rating: Some(5), cancelled_after: None },
        Past { hospital: a, requester: sa, consultant: Some(c1), department: "ER", status: "completed", created: at("2025-01-14T14:30:00Z"), target_secs: ent, wait: Some(120), duration: Some(300), resolved: Some(false), rating: Some(3), cancelled_after: None },
        Past { hospital: a, requester: sa, consultant: Some(c2), department: "Pharmacy", status: "completed", created: at("2025-01-14T20:00:00Z"), target_secs: ent, wait: Some(1200), duration: Some(900), resolved: Some(true), rating: Some(4), cancelled_after: None },
        Past { hospital: a, requester: sa, consultant: Some(c2), department: "Pharmacy", status: "cancelled", created: at("2025-01-15T04:30:00Z"), target_secs: ent, wait: Some(30), duration: None, resolved: None, rating: None, cancelled_after: Some(100) },
        Past { hospital: a, requester: sa, consultant: None, department: "ER", status: "cancelled", created: at("2025-01-15T15:00:00Z"), target_secs: ent, wait: None, duration: None, resolved: None, rating: None, cancelled_after: Some(300) },
        Past { hospital: a, requester: sa, consultant: None, department: "Radiology", status: "cancelled", created: at("2025-01-15T16:00:00Z"), target_secs: ent, wait: None, duration: None, resolved: None, rating: None, cancelled_after: Some(1000) },
        Past { hospital: a, requester: sa, consultant: None, department: "Radiology", status: "pending", created: at("2025-01-15T17:00:00Z"), target_secs: ent, wait: None, duration: None, resolved: None, rating: None, cancelled_after: None },
        Past { hospital: a, requester: sa, consultant: Some(c1), department: "ER", status: "completed", created: at("2025-01-15T18:00:00Z"), target_secs: ent, wait: Some(900), duration: Some(1200), resolved: None, rating: None, cancelled_after: None },
        Past { hospital: a, requester: sa, consultant: Some(c1), department: "ER", status: "completed", created: at("2025-01-16T05:00:00Z"), target_secs: ent, wait: Some(9999), duration: Some(50), resolved: Some(false), rating: Some(1), cancelled_after: None },
        // B1, B2, BL
        Past { hospital: b, requester: sb, consultant: Some(c1), department: "ER", status: "completed", created: at("2025-01-14T14:00:00Z"), target_secs: prem, wait: Some(3000), duration: Some(100), resolved: Some(true), rating: Some(1), cancelled_after: None },
        Past { hospital: b, requester: sb, consultant: None, department: "Laboratory", status: "cancelled", created: at("2025-01-15T10:00:00Z"), target_secs: prem, wait: None, duration: None, resolved: None, rating: None, cancelled_after: Some(60) },
        Past { hospital: b, requester: sb, consultant: None, department: "ER", status: "pending", created: now - Duration::seconds(600), target_secs: prem, wait: None, duration: None, resolved: None, rating: None, cancelled_after: None },
    ];
    let rows: Vec<HistoricSession> = past.iter().map(Past::row).collect();
    let ids = repo::analytics::import_sessions(&app.store, &rows)
        .await
        .expect("sessions imported");

    let log = |consultant: i64, status: &str, from: NaiveDateTime, to: Option<NaiveDateTime>| {
        HistoricStatus {
            consultant_id: consultant,
            status: status.into(),
            started_at: from,
            ended_at: to,
        }
    };
    let statuses = vec![
        log(
            c1,
            "available",
            at("2025-01-14T04:00:00Z"),
            Some(at("2025-01-14T06:00:00Z")),
        ),
        log(
            c1,
            "busy",
            at("2025-01-14T06:00:00Z"),
            Some(at("2025-01-14T08:00:00Z")),
        ),
        log(
            c1,
            "available",
            at("2025-01-14T08:00:00Z"),
            Some(at("2025-01-14T12:00:00Z")),
        ),
        log(
            c1,
            "offline",
            at("2025-01-14T12:00:00Z"),
            Some(at("2025-01-15T00:00:00Z")),
        ),
        log(
            c1,
            "busy",
            at("2025-01-16T04:00:00Z"),
            Some(at("2025-01-16T06:00:00Z")),
        ),
        log(
            c2,
            "busy",
            at("2025-01-15T10:00:00Z"),
            Some(at("2025-01-15T12:00:00Z")),
        ),
        log(
            c2,
            "available",
            at("2025-01-15T12:00:00Z"),
            Some(at("2025-01-15T18:00:00Z")),
        ),
        log(c2, "online", at("2025-01-15T18:00:00Z"), None),
        log(
            c3,
            "available",
            at("2025-01-15T05:00:00Z"),
            Some(at("2025-01-17T00:00:00Z")),
        ),
        log(
            c4,
            "available",
            now - Duration::hours(3),
            Some(now - Duration::hours(1)),
        ),
        log(c4, "busy", now - Duration::hours(1), None),
    ];
    repo::analytics::import_status_log(&app.store, &statuses)
        .await
        .expect("status log imported");

    World {
        a,
        b,
        leader_a: leader_a.token,
        leader_b: leader_b.token,
        staff_a: staff_a.token,
        staff_a_id: staff_a.id,
        consultant_token,
        c1,
        c2,
        c3,
        c4,
        ids,
    }
}

#[track_caller]
fn close(value: &Value, want: f64) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"));
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

fn hours(report: &Value) -> Vec<i64> {
    let list = report["peak_hours"].as_array().expect("peak_hours");
    assert_eq!(list.len(), 24, "all 24 hours: {list:?}");
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            assert_eq!(h["hour"], i as i64);
            h["count"].as_i64().expect("count")
        })
        .collect()
}

fn hour_vec(pairs: &[(usize, i64)]) -> Vec<i64> {
    let mut v = vec![0; 24];
    for (h, c) in pairs {
        v[*h] = *c;
    }
    v
}

fn consultant(report: &Value, id: i64) -> &Value {
    report["consultants"]
        .as_array()
        .expect("consultants")
        .iter()
        .find(|c| c["consultant_id"] == id)
        .unwrap_or_else(|| panic!("consultant {id} missing from {}", report["consultants"]))
}

const JAN: &str = "from=2025-01-14&to=2025-01-15";

async fn leadership_sees_exact_figures_for_own_hospital(backend: Backend) {
    let app = TestApp::start(backend).await;
    let w = world(&app).await;
    // Dates in A's zone (its default): [2025-01-14T05:00Z, 2025-01-16T05:00Z).
    let (status, r) = app
        .get(Some(&w.leader_a), &format!("/api/support/analytics?{JAN}"))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["timezone"], "America/New_York");
    assert_eq!(r["from"], "2025-01-14T05:00:00Z");
    assert_eq!(r["to"], "2025-01-16T05:00:00Z");
    assert_eq!(r["first_day"], "2025-01-14");
    assert_eq!(r["last_day"], "2025-01-15");
    // A1..A8 (A0 one second early, A9 exactly at the exclusive end).
    assert_eq!(r["total_requests"], 8);
    // Waits of accepted A1,A2,A3,A4,A8: 60+120+1200+30+900 = 2310 / 5.
    close(&r["avg_wait_seconds"], 462.0);
    // Sorted 30,60,120,900,1200: p50 rank 2 → 120; p90 rank 3.6 → 900 + 0.6·300.
    close(&r["wait_p50_seconds"], 120.0);
    close(&r["wait_p90_seconds"], 1080.0);
    // Completed A1,A2,A3,A8: (600+300+900+1200) / 4.
    close(&r["avg_duration_seconds"], 750.0);
    // Resolved A1,A3 of 4 completed (A8's unanswered flag counts as not resolved).
    close(&r["first_call_resolution_rate"], 0.5);
    // Ratings 5,3,4.
    close(&r["rating_avg"], 4.0);
    // Met: A1,A2,A4,A8 (900 ≤ 900). Due: those + A3 (late) + A7 (pending, overdue)
    // + A6 (cancelled after its deadline); A5 left before its deadline. 4/7.
    close(&r["service_level"], 4.0 / 7.0);
    // A5, A6 cancelled with no consultant, of 8.
    close(&r["abandonment_rate"], 0.25);
    // Oldest pending in A is A7 (B's live request is not A's).
    let a7_age = (Utc::now().naive_utc() - at("2025-01-15T17:00:00Z")).num_seconds();
    let longest = r["longest_current_wait_seconds"]
        .as_i64()
        .expect("longest wait");
    assert!(
        (a7_age - 5..=a7_age).contains(&longest),
        "{longest} vs {a7_age}"
    );
    assert_eq!(
        r["requests_by_department"],
        json!([
            {"department": "ER", "count": 4},
            {"department": "Pharmacy", "count": 2},
            {"department": "Radiology", "count": 2},
        ])
    );
    assert_eq!(
        r["requests_by_hospital"],
        json!([{"hospital_id": w.a, "hospital_name": A_NAME, "count": 8}])
    );
    // NY hours: A1 9, A2 9, A5 10, A6 11, A7 12, A8 13, A3 15, A4 23.
    assert_eq!(
        hours(&r),
        hour_vec(&[(9, 2), (10, 1), (11, 1), (12, 1), (13, 1), (15, 1), (23, 1)])
    );
    // NY days: 14th A1..A4 (A4 is 23:30 local), waits 60,120,1200,30 → 352.5;
    // 15th A5..A8, one wait (A8, 900).
    assert_eq!(
        r["wait_by_day"],
        json!([
            {"day": "2025-01-14", "avg_wait_seconds": 352.5, "count": 4},
            {"day": "2025-01-15", "avg_wait_seconds": 900.0, "count": 4},
        ])
    );
    // Consultants who served A: C1 (A1,A2,A8 completed; ratings 5,3 → 4; B1's 1 is
    // not A's) and C2 (A3 completed, rating 4; A4 cancelled). C3 never served A.
    let list = r["consultants"].as_array().expect("consultants");
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["consultant_id"], w.c1);
    assert_eq!(list[0]["name"], "Cora One");
    assert_eq!(list[0]["sessions"], 3);
    close(&list[0]["rating_avg"], 4.0);
    close(&list[0]["utilization"], 0.375);
    assert_eq!(list[1]["consultant_id"], w.c2);
    assert_eq!(list[1]["sessions"], 1);
    close(&list[1]["rating_avg"], 4.0);
    close(&list[1]["utilization"], 0.25);
    // (10800 + 7200) busy / (28800 + 28800).
    close(&r["utilization"], 0.3125);
    // The read is audited against the hospital.
    assert!(
        repo::audit::count_for(&app.store, "hospital", w.a)
            .await
            .expect("audit count")
            >= 1
    );
}

async fn admin_sees_all_and_filters(backend: Backend) {
    let app = TestApp::start(backend).await;
    let w = world(&app).await;
    let admin = app.admin_token.clone();
    // Same window, everything: A1..A8, B1, B2.
    let (status, r) = app
        .get(
            Some(&admin),
            &format!("/api/support/analytics?{JAN}&tz=America/New_York"),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["total_requests"], 10);
    // Waits 30,60,120,900,1200,3000: sum 5310 / 6 = 885; p50 rank 2.5 → 510; p90
    // rank 4.5 → 1200 + 0.5·1800 = 2100.
    close(&r["avg_wait_seconds"], 885.0);
    close(&r["wait_p50_seconds"], 510.0);
    close(&r["wait_p90_seconds"], 2100.0);
    // Completed adds B1 (100 s, resolved): 3100 / 5; 3 of 5 resolved.
    close(&r["avg_duration_seconds"], 620.0);
    close(&r["first_call_resolution_rate"], 0.6);
    // Ratings 5,3,4,1.
    close(&r["rating_avg"], 3.25);
    // B1 met (3000 ≤ 3600); B2 left within its hour: 5/8.
    close(&r["service_level"], 0.625);
    // A5, A6, B2 of 10.
    close(&r["abandonment_rate"], 0.3);
    assert_eq!(
        r["requests_by_hospital"],
        json!([
            {"hospital_id": w.a, "hospital_name": A_NAME, "count": 8},
            {"hospital_id": w.b, "hospital_name": B_NAME, "count": 2},
        ])
    );
    assert_eq!(
        r["requests_by_department"],
        json!([
            {"department": "ER", "count": 5},
            {"department": "Pharmacy", "count": 2},
            {"department": "Radiology", "count": 2},
            {"department": "Laboratory", "count": 1},
        ])
    );
    // B1 is 09:00 NY, B2 05:00 NY.
    assert_eq!(
        hours(&r),
        hour_vec(&[
            (5, 1),
            (9, 3),
            (10, 1),
            (11, 1),
            (12, 1),
            (13, 1),
            (15, 1),
            (23, 1)
        ])
    );
    // Unfiltered: every consultant with logged time. C1 now has B1 too (4 completed,
    // ratings 5,3,1 → 3); C3 was available all day and never busy.
    let c1 = consultant(&r, w.c1);
    assert_eq!(c1["sessions"], 4);
    close(&c1["rating_avg"], 3.0);
    let c3 = consultant(&r, w.c3);
    assert_eq!(c3["sessions"], 0);
    assert_eq!(c3["rating_avg"], Value::Null);
    close(&c3["utilization"], 0.0);
    assert_eq!(r["consultants"].as_array().map(Vec::len), Some(3));
    // 18000 busy / (28800 + 28800 + 86400).
    close(&r["utilization"], 0.125);

    // Filtered to A and Pharmacy: A3, A4.
    let (status, r) = app
        .get(
            Some(&admin),
            &format!(
                "/api/support/analytics?{JAN}&hospital_id={}&department=pharmacy",
                w.a
            ),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["timezone"], "America/New_York",
        "a hospital's report defaults to its zone"
    );
    assert_eq!(r["department"], "Pharmacy");
    assert_eq!(r["total_requests"], 2);
    close(&r["avg_wait_seconds"], 615.0);
    close(&r["service_level"], 0.5);
    close(&r["abandonment_rate"], 0.0);
    assert_eq!(r["consultants"].as_array().map(Vec::len), Some(1));
    close(&r["utilization"], 0.25);
    // No pending Pharmacy request anywhere.
    assert_eq!(r["longest_current_wait_seconds"], Value::Null);

    // RFC 3339 bounds in UTC: the same eight A sessions, bucketed by UTC hour and day.
    let (status, r) = app
        .get(
            Some(&admin),
            &format!(
                "/api/support/analytics?from=2025-01-14T05:00:00Z&to=2025-01-16T05:00:00Z&tz=UTC&hospital_id={}",
                w.a
            ),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["total_requests"], 8);
    assert_eq!(
        hours(&r),
        hour_vec(&[(4, 1), (14, 2), (15, 1), (16, 1), (17, 1), (18, 1), (20, 1)])
    );
    // UTC days: 14th A1,A2,A3 (60+120+1200)/3; 15th A4..A8, waits 30 and 900;
    // the window's last hours fall on the 16th, with no requests.
    assert_eq!(
        r["wait_by_day"],
        json!([
            {"day": "2025-01-14", "avg_wait_seconds": 460.0, "count": 3},
            {"day": "2025-01-15", "avg_wait_seconds": 465.0, "count": 5},
            {"day": "2025-01-16", "avg_wait_seconds": null, "count": 0},
        ])
    );

    // Default window (last 30 days, UTC): only B's live request; an open busy
    // interval counts up to now (C4: 3600 busy of 10800).
    let (status, r) = app.get(Some(&admin), "/api/support/analytics").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["timezone"], "UTC");
    assert_eq!(r["total_requests"], 1);
    assert_eq!(r["wait_by_day"].as_array().map(Vec::len), Some(31));
    assert_eq!(hours(&r).iter().sum::<i64>(), 1);
    assert_eq!(r["avg_wait_seconds"], Value::Null);
    assert_eq!(r["wait_p50_seconds"], Value::Null);
    // Pending but inside its hour: neither met nor missed yet.
    assert_eq!(r["service_level"], Value::Null);
    close(&r["abandonment_rate"], 0.0);
    let c4 = consultant(&r, w.c4);
    let util = c4["utilization"].as_f64().expect("C4 utilisation");
    assert!((util - 1.0 / 3.0).abs() < 1e-3, "{util}");
    assert_eq!(r["consultants"].as_array().map(Vec::len), Some(1));

    // An empty window: counts are zero and every average or rate is null.
    let (status, r) = app
        .get(
            Some(&admin),
            "/api/support/analytics?from=2020-02-01&to=2020-02-29",
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["total_requests"], 0);
    for key in [
        "avg_wait_seconds",
        "avg_duration_seconds",
        "first_call_resolution_rate",
        "utilization",
        "rating_avg",
        "service_level",
        "abandonment_rate",
        "wait_p50_seconds",
        "wait_p90_seconds",
    ] {
        assert_eq!(r[key], Value::Null, "{key} in {r}");
    }
    assert_eq!(hours(&r), vec![0; 24]);
    assert_eq!(r["wait_by_day"].as_array().map(Vec::len), Some(29));
    assert_eq!(r["consultants"], json!([]));
    assert_eq!(r["requests_by_department"], json!([]));
}

async fn leadership_never_sees_another_hospital(backend: Backend) {
    let app = TestApp::start(backend).await;
    let w = world(&app).await;
    // B's leader: B1 and B2 only, in UTC (B's zone).
    let (status, r) = app
        .get(Some(&w.leader_b), &format!("/api/support/analytics?{JAN}"))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["timezone"], "UTC");
    assert_eq!(r["total_requests"], 2);
    close(&r["rating_avg"], 1.0);
    close(&r["avg_wait_seconds"], 3000.0);
    assert_eq!(
        r["requests_by_hospital"],
        json!([{"hospital_id": w.b, "hospital_name": B_NAME, "count": 2}])
    );
    // C1 served both; B sees only B1 in C1's row.
    let list = r["consultants"].as_array().expect("consultants");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["consultant_id"], w.c1);
    assert_eq!(list[0]["sessions"], 1);
    close(&list[0]["rating_avg"], 1.0);
    // B's own live request has waited about 600 s.
    let longest = r["longest_current_wait_seconds"].as_i64().expect("longest");
    assert!((600..=660).contains(&longest), "{longest}");
    assert!(!r.to_string().contains("Alpha"), "A's name leaked: {r}");

    // A's leader may name A but never B.
    let (status, body) = app
        .get(
            Some(&w.leader_a),
            &format!("/api/support/analytics?{JAN}&hospital_id={}", w.b),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, _) = app
        .get(
            Some(&w.leader_a),
            &format!("/api/support/analytics?{JAN}&hospital_id={}", w.a),
        )
        .await;
    assert_eq!(status, 200);
    // Nobody else sees analytics.
    for token in [&w.staff_a, &w.consultant_token] {
        let (status, body) = app.get(Some(token), "/api/support/analytics").await;
        assert_error(status, &body, 403, "forbidden");
        let (status, body) = app.get(Some(token), "/api/support/history.csv").await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, body) = app.get(None, "/api/support/analytics").await;
    assert_error(status, &body, 401, "unauthenticated");

    // The CSV of A's leader holds A's rows only; naming B is refused.
    let (status, _, text) = csv_get(&app, &w.leader_a, "").await;
    assert_eq!(status, 200, "{text}");
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 10, "A0..A9");
    assert!(rows.iter().all(|r| r[2] == w.a.to_string()));
    let (status, body) = csv_error(&app, &w.leader_a, &format!("?hospital_id={}", w.b)).await;
    assert_error(status, &body, 403, "forbidden");
}

async fn bad_parameters_are_named(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2025-02-30", "to"),
        ("tz=Mars/Olympus_Mons", "tz"),
        ("department=Cardiology", "department"),
        ("hospital_id=abc", "hospital_id"),
        ("hospital_id=-3", "hospital_id"),
        ("from=2025-03-02&to=2025-03-01", "from"),
        ("from=2020-01-01&to=2025-01-01", "to"),
    ] {
        let (status, body) = app
            .get(Some(&admin), &format!("/api/support/analytics?{query}"))
            .await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["fields"][field].is_string(), "{query}: {body}");
    }
    let (status, body) = app
        .get(Some(&admin), "/api/support/analytics?colour=blue")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .get(Some(&admin), "/api/support/analytics?hospital_id=999999")
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = csv_error(&app, &admin, "?from=last-week").await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["fields"]["from"].is_string(), "{body}");
}

async fn csv_export_columns_escaping_and_privacy(backend: Backend) {
    let app = TestApp::start(backend).await;
    let w = world(&app).await;
    let (status, headers, text) = csv_get(
        &app,
        &app.admin_token,
        "?from=2025-01-14T00:00:00Z&to=2025-01-17T00:00:00Z",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        header("content-type").starts_with("text/csv"),
        "{headers:?}"
    );
    assert!(header("content-disposition").starts_with("attachment; filename="));
    assert!(text.starts_with(
        "id,created_at,hospital_id,hospital_name,department,urgency,status,requester_id,\
         consultant_id,accepted_at,started_at,ended_at,wait_time_seconds,duration_seconds,\
         resolved,rating,match_tier\n"
    ));
    // Free text with patient data never leaves in an export.
    assert!(!text.contains("Jane Roe"), "patient data in the export");
    // Quotes doubled, the field quoted because of its comma, quote and newline.
    assert!(
        text.contains("\"Alpha \"\"General\"\", North\nWing\""),
        "{text}"
    );
    // A cell a spreadsheet would run as a formula is defused.
    assert!(text.contains(",'=Beta Clinic,"), "{text}");

    let rows = parse_csv(&text);
    // A0..A9, B1, B2 (BL is now), newest id first.
    assert_eq!(rows.len(), 12);
    let mut want_ids: Vec<i64> = w.ids[..12].to_vec();
    want_ids.reverse();
    let got_ids: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("id")).collect();
    assert_eq!(got_ids, want_ids);
    // A1 in full; the round trip restores the name with its newline.
    let a1 = rows
        .iter()
        .find(|r| r[0] == w.ids[1].to_string())
        .expect("A1 row");
    assert_eq!(
        a1,
        &vec![
            w.ids[1].to_string(),
            "2025-01-14T14:00:00.000Z".to_string(),
            w.a.to_string(),
            A_NAME.to_string(),
            "ER".into(),
            "normal".into(),
            "completed".into(),
            w.staff_a_id.to_string(),
            w.c1.to_string(),
            "2025-01-14T14:01:00.000Z".into(),
            "2025-01-14T14:01:00.000Z".into(),
            "2025-01-14T14:11:00.000Z".into(),
            "60".into(),
            "600".into(),
            "true".into(),
            "5".into(),
            "C".into(),
        ]
    );
    // A7 (pending): empty cells for what has not happened.
    let a7 = rows
        .iter()
        .find(|r| r[0] == w.ids[7].to_string())
        .expect("A7 row");
    assert_eq!(a7[6], "pending");
    for i in [8, 9, 10, 11, 12, 13, 14, 15, 16] {
        assert_eq!(a7[i], "", "column {i} of a pending row");
    }

    // Same filters as the history list: status and department.
    let (status, _, text) = csv_get(
        &app,
        &app.admin_token,
        &format!("?status=cancelled&department=er&hospital_id={}", w.a),
    )
    .await;
    assert_eq!(status, 200);
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 1, "only A5");
    assert_eq!(rows[0][0], w.ids[5].to_string());

    // The export is audited.
    assert!(
        count_audit(&app, "export_sessions").await >= 1,
        "export not audited"
    );

    // A browser download sends only the cookie (no X-Requested-With): it works.
    let token = app.login("lead@a.test", common::PASSWORD).await;
    let resp = app
        .http
        .get(format!("{}/api/support/history.csv", app.url))
        .header("Cookie", format!("nicehr_token={token}"))
        .send()
        .await
        .expect("cookie request");
    assert_eq!(resp.status().as_u16(), 200);
}

async fn count_audit(app: &TestApp, action: &str) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use nicehr_support::db::schema::audit_log;
    let db = &app.store;
    let action = action.to_string();
    let result: Result<i64, nicehr_support::db::DbError> = async {
        nicehr_support::db_run!(db, read, |conn| {
            Ok(audit_log::table
                .filter(audit_log::action.eq(&action))
                .count()
                .get_result(conn)
                .await?)
        })
    }
    .await;
    result.expect("audit count")
}

async fn csv_get(
    app: &TestApp,
    token: &str,
    query: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = app
        .http
        .get(format!("{}/api/support/history.csv{query}", app.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("csv request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (status, headers, text)
}

/// An error reply of the CSV endpoint, which is JSON like every other error.
async fn csv_error(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let (status, _, text) = csv_get(app, token, query).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_string).collect())
        .collect()
}

backend_tests!(
    leadership_sees_exact_figures_for_own_hospital,
    admin_sees_all_and_filters,
    leadership_never_sees_another_hospital,
    bad_parameters_are_named,
    csv_export_columns_escaping_and_privacy,
);
