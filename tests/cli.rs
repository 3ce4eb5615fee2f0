//! The command line of API.md: migrate and admin provisioning, on both backends; the
//! configuration file and `config check`; backup and restore of a live SQLite
//! database; what the server writes to a log that is not a terminal.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// Runs the binary with exactly these extra environment variables (and none of the
/// settings' own from the test's environment, so defaults are defaults).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nicehr-support"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("NICEHR_CONFIG")
        .env_remove("DATABASE_URL")
        .env_remove("BIND_ADDR")
        .env_remove("OFFER_TIMEOUT_SECS")
        .env_remove("WRAP_UP_SECS");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn line_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{text}"))
}

#[test]
fn config_file_sits_between_environment_and_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "# a deployment's file\n\
         bind_addr = \"127.0.0.1:9123\"\n\
         offer_timeout_secs = 12\n\
         wrap_up_secs = 3\n\
         database_url = \"postgres://nicehr:s3cret-pw@db.internal/nicehr\"\n\
         daily_webhook_secret = \"c2VjcmV0LXNoYXJlZA==\"\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");

    // The file alone, through --config and through NICEHR_CONFIG.
    for (args, env) in [
        (vec!["config", "check", "--config", path], vec![]),
        (vec!["config", "check"], vec![("NICEHR_CONFIG", path)]),
    ] {
        let (ok, out, err) = run_env(&args, &env);
        assert!(ok, "{args:?}: {err}");
        assert_eq!(
            line_of(&out, "bind_addr"),
            "bind_addr = \"127.0.0.1:9123\"  # file"
        );
        assert_eq!(
            line_of(&out, "offer_timeout_secs"),
            "offer_timeout_secs = 12.0  # file"
        );
        assert_eq!(
            line_of(&out, "max_missed_offers"),
            "max_missed_offers = 2  # default"
        );
        assert!(out.contains("# configuration is valid"), "{out}");
        assert!(
            !out.contains("s3cret-pw") && !out.contains("c2VjcmV0"),
            "secrets: {out}"
        );
        assert!(
            out.contains("daily_webhook_secret = \"<redacted>\"  # file"),
            "{out}"
        );
    }

    // flag > environment > file > default.
    let (ok, out, err) = run_env(
        &[
            "config",
            "check",
            "--config",
            path,
            "--offer-timeout-secs",
            "30",
        ],
        &[("OFFER_TIMEOUT_SECS", "25"), ("WRAP_UP_SECS", "7")],
    );
    assert!(ok, "{err}");
    assert_eq!(
        line_of(&out, "offer_timeout_secs"),
        "offer_timeout_secs = 30.0  # flag"
    );
    assert_eq!(
        line_of(&out, "wrap_up_secs"),
        "wrap_up_secs = 7.0  # environment (WRAP_UP_SECS)"
    );

    // Commands that only need the database read it from the same file.
    let sqlite = dir.path().join("from-file.db");
    std::fs::write(
        &file,
        format!("database_url = \"sqlite://{}\"\n", sqlite.display()),
    )
    .expect("write");
    let (ok, out, err) = run_env(&["migrate", "--config", path], &[]);
    assert!(ok, "migrate with the file: {out} {err}");
    assert!(
        sqlite.exists(),
        "the database named in the file was created"
    );
    let (ok, id, err) = run_env(
        &[
            "admin",
            "create-hospital",
            "--name",
            "File General",
            "--plan",
            "premium",
            "--config",
            path,
        ],
        &[],
    );
    assert!(ok && id.parse::<i64>().is_ok(), "{id} {err}");
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    let path = file.to_str().expect("utf-8 path");
    for (text, expected) in [
        (
            "bind_addr = \"127.0.0.1:0\"\nofer_timeout_secs = 3\n",
            "line 2: unknown key `ofer_timeout_secs`",
        ),
        (
            "offer_timeout_secs = \"soon\"\n",
            "`offer_timeout_secs` must be a number, not string",
        ),
        ("demo = \"yes\"\n", "`demo` must be true or false"),
        (
            "log_format = \"xml\"\n",
            "`log_format` has an invalid value \"xml\"",
        ),
        ("bind_addr = \n", "not valid TOML"),
    ] {
        std::fs::write(&file, text).expect("write");
        for command in [
            vec!["config", "check", "--config", path],
            vec!["serve", "--config", path],
        ] {
            let (ok, out, err) = run_env(&command, &[]);
            assert!(!ok, "{command:?} with {text:?} must fail: {out}");
            assert!(
                err.contains(expected),
                "{text:?}: want {expected:?}, got {err:?}"
            );
            assert!(err.contains(path), "names the file: {err}");
        }
    }
    // A file that is fine on its own, but a setting `serve` would refuse.
    std::fs::write(&file, "ice_servers = \"not json\"\n").expect("write");
    let (ok, _, err) = run_env(&["config", "check", "--config", path], &[]);
    assert!(!ok && err.contains("ICE_SERVERS"), "{err}");
    let (ok, _, err) = run_env(
        &["config", "check", "--config", "/nonexistent/config.toml"],
        &[],
    );
    assert!(
        !ok && err.contains("cannot read configuration file /nonexistent/config.toml"),
        "{err}"
    );
    // The environment is checked too, even without a file.
    let (ok, _, err) = run_env(&["config", "check"], &[("OFFER_TIMEOUT_SECS", "soon")]);
    assert!(!ok && err.contains("soon"), "{err}");
}

/// `serve` from a configuration file, its log on a pipe: the settings took effect
/// (address, metrics token) and the log has no colour codes.
#[test]
fn serve_runs_from_a_file_and_logs_without_colour_to_a_pipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!(
            "database_url = \"sqlite://{}\"\nbind_addr = \"127.0.0.1:0\"\n\
             log_level = \"info\"\nmetrics_token = \"scrape-token\"\nhttp_workers = 1\n",
            dir.path().join("serve.db").display()
        ),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .args(["serve", "--config", file.to_str().expect("path")])
        .env_remove("RUST_LOG")
        .env_remove("NICEHR_CONFIG")
        .env_remove("DATABASE_URL")
        .env_remove("BIND_ADDR")
        // tracing-subscriber's own opt-out; without it the test shows our choice.
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    let url = first
        .trim()
        .rsplit(' ')
        .next()
        .expect("listening on URL")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (health, open, scraped) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let health = http
            .head(format!("{url}/healthz"))
            .send()
            .await
            .expect("head");
        let open = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("metrics");
        let scraped = http
            .get(format!("{url}/metrics"))
            .bearer_auth("scrape-token")
            .send()
            .await
            .expect("metrics");
        (
            health.status().as_u16(),
            open.status().as_u16(),
            scraped.status().as_u16(),
        )
    });
    assert_eq!((health, open, scraped), (200, 401, 200));
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(log.contains("listening"), "info lines were logged: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escape codes in a piped log: {log:?}"
    );
}

/// A consistent copy of a database a live server keeps writing to, put back in a
/// new place, serves again with everything committed before the copy began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_live_server_restores_elsewhere() {
    let app = TestApp::start(Backend::Sqlite).await;
    let live_url = app.db.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join("nightly.db");
    let backup_path = backup.to_str().expect("path").to_string();

    // One writer creating hospitals in sequence, acknowledged one by one.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let writer = {
        let http = app.http.clone();
        let url = app.url.clone();
        let token = app.admin_token.clone();
        tokio::spawn(async move {
            let mut acknowledged = 0usize;
            while !*stop_rx.borrow_and_update() {
                let reply = http
                    .post(format!("{url}/api/admin/hospitals"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("Load {acknowledged:05}"), "plan": "premium"}))
                    .send()
                    .await
                    .expect("write");
                assert_eq!(reply.status().as_u16(), 201);
                acknowledged += 1;
            }
            acknowledged
        })
    };
    // Let some writes land, then copy while they go on.
    let started = std::time::Instant::now();
    while app
        .get(Some(&app.admin_token), "/api/admin/hospitals")
        .await
        .1["hospitals"]
        .as_array()
        .map_or(0, Vec::len)
        < 20
    {
        assert!(started.elapsed() < Duration::from_secs(60), "writes land");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = app
        .get(Some(&app.admin_token), "/api/admin/hospitals")
        .await
        .1["hospitals"]
        .as_array()
        .map_or(0, Vec::len);
    let url = live_url.clone();
    let to = backup_path.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        run_env(&["backup", "--to", &to], &[("DATABASE_URL", &url)])
    })
    .await
    .expect("backup ran");
    assert!(ok, "backup: {out} {err}");
    assert!(out.contains("backed up"), "{out}");
    stop_tx.send(true).expect("stop writer");
    let acknowledged = writer.await.expect("writer");

    // Never over an existing file unless told.
    let (ok, _, err) = run_env(
        &["backup", "--to", &backup_path],
        &[("DATABASE_URL", &live_url)],
    );
    assert!(!ok && err.contains("already exists"), "{err}");

    // Not over the database a server has open; not from something that is not ours.
    let (ok, _, err) = run_env(
        &["restore", "--from", &backup_path],
        &[("DATABASE_URL", &live_url)],
    );
    assert!(
        !ok && err.contains("in use"),
        "refused while the server runs: {err}"
    );
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "not a database at all, just text").expect("write");
    let foreign = dir.path().join("foreign.db");
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn =
            diesel::SqliteConnection::establish(foreign.to_str().expect("path")).expect("sqlite");
        conn.batch_execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
            .expect("foreign schema");
    }
    let target = TestDb::new(Backend::Sqlite).await;
    for (from, expected) in [
        (&junk, "not a NICEHR database"),
        (&foreign, "no migration history"),
    ] {
        let (ok, _, err) = run_env(
            &["restore", "--from", from.to_str().expect("path")],
            &[("DATABASE_URL", &target.url)],
        );
        assert!(!ok && err.contains(expected), "{}: {err}", from.display());
    }
    assert!(
        !sqlite_file(&target.url).exists(),
        "a refused restore leaves nothing behind"
    );

    let (ok, out, err) = run_env(
        &["restore", "--from", &backup_path],
        &[("DATABASE_URL", &target.url)],
    );
    assert!(ok, "restore: {out} {err}");

    // A server on the restored copy: the same accounts, and a gap-free prefix of the
    // writes that holds at least every one acknowledged before the copy started.
    let config = common::test_config(&target);
    let restored = TestApp::start_on(target, config).await;
    restored.login("root@test.local", common::PASSWORD).await;
    let (status, body) = restored
        .get(Some(&restored.admin_token), "/api/admin/hospitals")
        .await;
    assert_eq!(status, 200);
    let mut names: Vec<String> = body["hospitals"]
        .as_array()
        .expect("hospitals")
        .iter()
        .filter_map(|h| h["name"].as_str().map(str::to_string))
        .filter(|n| n.starts_with("Load "))
        .collect();
    names.sort();
    let expected: Vec<String> = (0..names.len()).map(|i| format!("Load {i:05}")).collect();
    assert_eq!(names, expected, "a consistent snapshot has no gaps");
    assert!(
        names.len() >= before && names.len() <= acknowledged,
        "{} restored, {before} acknowledged before the backup, {acknowledged} in all",
        names.len()
    );
    assert!(
        acknowledged > names.len(),
        "writes went on during and after the copy"
    );
}

fn sqlite_file(url: &str) -> std::path::PathBuf {
    Path::new(url.trim_start_matches("sqlite://")).to_path_buf()
}
