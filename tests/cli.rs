//! The command line of API.md: migrate and admin provisioning, on both backends.

mod common;

use std::process::Command;

use common::{Backend, TestApp, TestDb};
use serde_json::json;

backend_tests!(admin_commands_provision_and_fail_clearly);

fn run(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

async fn admin_commands_provision_and_fail_clearly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.clone();
    let (ok, out, err) = run(&url, &["migrate"]);
    assert!(ok, "migrate: {out} {err}");
    let (ok, hospital_id, err) = run(
        &url,
        &[
            "admin",
            "create-hospital",
            "--name",
            "Cli General",
            "--plan",
            "premium",
            "--timezone",
            "America/Chicago",
        ],
    );
    assert!(ok, "{err}");
    let hospital_id: i64 = hospital_id.parse().expect("prints the new id");
    let (ok, user_id, err) = run(
        &url,
        &[
            "admin",
            "create-user",
            "--email",
            "n@cli.org",
            "--name",
            "N",
            "--role",
            "hospital_staff",
            "--password",
            "first-quartz-lantern-91",
            "--hospital-id",
            &hospital_id.to_string(),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        user_id.parse::<i64>().is_ok(),
        "prints the new id: {user_id}"
    );

    for (args, expect) in [
        (
            vec![
                "admin",
                "create-user",
                "--email",
                "n@cli.org",
                "--name",
                "N",
                "--role",
                "hospital_staff",
                "--password",
                "another-quartz-ember-52",
                "--hospital-id",
                "1",
            ],
            "already exists",
        ),
        (
            vec![
                "admin",
                "create-user",
                "--email",
                "x@cli.org",
                "--name",
                "X",
                "--role",
                "hospital_staff",
                "--password",
                "violet-harbour-lantern-84",
                "--hospital-id",
                "999",
            ],
            "does not exist",
        ),
        (
            vec![
                "admin",
                "create-user",
                "--email",
                "y@cli.org",
                "--name",
                "Y",
                "--role",
                "janitor",
                "--password",
                "violet-harbour-lantern-84",
            ],
            "role",
        ),
        (
            vec![
                "admin",
                "create-hospital",
                "--name",
                "Bad",
                "--plan",
                "platinum",
            ],
            "plan",
        ),
        (
            vec![
                "admin",
                "set-password",
                "--email",
                "nobody@cli.org",
                "--password",
                "violet-harbour-lantern-84",
            ],
            "no user",
        ),
        // Issue 16: weak passwords are refused by both commands, saying why.
        (
            vec![
                "admin",
                "create-user",
                "--email",
                "w@cli.org",
                "--name",
                "W",
                "--role",
                "consultant",
                "--password",
                "password",
            ],
            "too easy to guess",
        ),
        (
            vec![
                "admin",
                "create-user",
                "--email",
                "w@cli.org",
                "--name",
                "W",
                "--role",
                "consultant",
                "--password",
                "        ",
            ],
            "only spaces",
        ),
        (
            vec![
                "admin",
                "create-user",
                "--email",
                "w@cli.org",
                "--name",
                "W",
                "--role",
                "consultant",
                "--password",
                "w@cli.org",
            ],
            "email",
        ),
        (
            vec![
                "admin",
                "set-password",
                "--email",
                "n@cli.org",
                "--password",
                "12345678",
            ],
            "too easy to guess",
        ),
        (
            vec![
                "admin",
                "set-password",
                "--email",
                "n@cli.org",
                "--password",
                "n@cli.org",
            ],
            "must not be the account's email",
        ),
    ] {
        let (ok, out, err) = run(&url, &args);
        assert!(!ok, "{args:?} must fail: {out}");
        assert!(
            err.contains(expect),
            "{args:?}: clear message containing {expect:?}, got {err:?}"
        );
    }
    let (ok, _, err) = run(
        &url,
        &[
            "admin",
            "set-password",
            "--email",
            "n@cli.org",
            "--password",
            "second-violet-harbour-37",
        ],
    );
    assert!(ok, "{err}");

    // The server started on that database accepts the provisioned account.
    let app = TestApp::start_on(db, common::test_config_for(&url)).await;
    let (status, _) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "n@cli.org", "password": "first-quartz-lantern-91"}),
        )
        .await;
    assert_eq!(status, 401);
    app.login("n@cli.org", "second-violet-harbour-37").await;
}
