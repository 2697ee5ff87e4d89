//! The command line as a person uses it: the scripted console, `timeline verify` against a
//! tampered SQLite file, `postmortem`, `playbooks check`, and `drill`.

use erlmcp_tests::cli;

fn db_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("bot.db").display())
}

const SCRIPT: &str = "as alice\n/erlmcp p0 declare API down\nas bob\n/erlmcp ack\nnote failing over\n/erlmcp mitigated\n/erlmcp resolve failed over to us-west-2\n/erlmcp postmortem\n";

#[tokio::test]
async fn scripted_console_run_ends_with_a_postmortem() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let (code, out) = cli(&["--database-url", &url, "console"], SCRIPT).await;
    assert_eq!(code, 0, "{out}");
    for expected in [
        "alice> /erlmcp p0 declare API down",
        "🚨 INC-",
        "declared: P0 API down",
        "bob> /erlmcp ack",
        "Acknowledged by bob",
        "📝 Noted on",
        "Impact mitigated (reported by bob)",
        "Resolved by bob",
        "# Postmortem: API down",
        "| Time to acknowledge |",
        "| 5m 00s | met |",
        "| Time to resolve |",
        "| 1h 00m | met |",
        "| bob | console | failing over |",
    ] {
        assert!(
            out.contains(expected),
            "console output lacks {expected:?}:\n{out}"
        );
    }
}

#[tokio::test]
async fn editing_a_timeline_row_in_the_sqlite_file_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let (code, _) = cli(&["--database-url", &url, "console"], SCRIPT).await;
    assert_eq!(code, 0);
    let (code, out) = cli(&["--database-url", &url, "timeline", "verify"], "").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": intact, "), "{out}");

    // Tamper with the file the way an attacker with write access would: drop the guard, edit a row.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER timeline_no_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE timeline SET text = 'nothing to see here' WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, out) = cli(&["--database-url", &url, "timeline", "verify"], "").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TAMPERED: entry #3 was modified: its content does not match its hash"),
        "{out}"
    );

    // Editing the incident row instead (say, hiding a late acknowledgement) is caught against the timeline.
    let dir3 = tempfile::tempdir().unwrap();
    let url3 = db_url(&dir3);
    cli(&["--database-url", &url3, "console"], SCRIPT).await;
    let (code, out) = cli(&["--database-url", &url3, "timeline", "verify"], "").await;
    assert_eq!(code, 0, "{out}");
    let pool = sqlx::SqlitePool::connect(&url3).await.unwrap();
    sqlx::query("UPDATE incidents SET severity = 'p2', acknowledged_at = declared_at")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, out) = cli(&["--database-url", &url3, "timeline", "verify"], "").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TAMPERED: the incident row's acknowledged_at is"),
        "{out}"
    );
    assert!(
        out.contains("TAMPERED: the incident row's severity is P2 but its timeline says P0"),
        "{out}"
    );

    // Deleting the last row is caught too, by the incident's recorded head.
    let dir2 = tempfile::tempdir().unwrap();
    let url2 = db_url(&dir2);
    cli(&["--database-url", &url2, "console"], SCRIPT).await;
    let pool = sqlx::SqlitePool::connect(&url2).await.unwrap();
    sqlx::query("DROP TRIGGER timeline_no_delete")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM timeline WHERE seq = (SELECT MAX(seq) FROM timeline)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, out) = cli(&["--database-url", &url2, "timeline", "verify"], "").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("were deleted"), "{out}");
}

#[tokio::test]
async fn postmortem_command_and_unknown_incident() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    cli(&["--database-url", &url, "console"], SCRIPT).await;
    let today = chrono::Utc::now().format("%Y%m%d");
    let (code, out) = cli(
        &[
            "--database-url",
            &url,
            "postmortem",
            &format!("INC-{today}-1"),
        ],
        "",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("# Postmortem: API down"), "{out}");
    let (code, out) = cli(
        &["--database-url", &url, "postmortem", "INC-19990101-1"],
        "",
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "error: there is no incident INC-19990101-1; incident ids look like INC-20261128-1 (`erlmcp-bot timeline verify` lists them)"
    );
}

#[tokio::test]
async fn playbooks_check_lists_builtins_and_rejects_a_bad_file_with_its_line() {
    let (code, out) = cli(&["playbooks", "check"], "").await;
    assert_eq!(code, 0, "{out}");
    for name in [
        "p0-outage",
        "security-isolation",
        "data-corruption",
        "failover",
        "failback",
        "rollback",
        "scale",
    ] {
        assert!(
            out.contains(&format!("ok  {name}")),
            "{name} missing:\n{out}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\ndescription: x\nseverities: [p1]\nsteps:\n  - name: Boom\n    kind: kube.explode\n").unwrap();
    let (code, out) = cli(&["playbooks", "check", bad.to_str().unwrap()], "").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}:6: step `Boom`: unknown step kind `kube.explode`",
            bad.display()
        )),
        "{out}"
    );
}

#[tokio::test]
async fn bad_arguments_and_configuration_are_explained() {
    let (code, out) = cli(&["--database-url", "mysql://x", "console"], "").await;
    assert_eq!(code, 2);
    assert!(
        out.contains("is neither sqlite:… nor postgres://…"),
        "{out}"
    );
    let (code, out) = cli(&["frobnicate"], "").await;
    assert_eq!(code, 2);
    assert!(
        out.contains("unrecognized subcommand 'frobnicate'"),
        "{out}"
    );
}

#[tokio::test]
async fn console_two_person_failover_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let script = "as alice\np0 declare API down\n/failover us-west-2\napprove\nas bob\napprove\nas carol\napprove\n";
    let (code, out) = cli(&["--database-url", &url, "console"], script).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("⚠ Not approved: you requested REQ-"), "{out}");
    assert!(
        out.contains("✅ REQ-") && out.contains("approved by bob; running failover"),
        "{out}"
    );
    assert_eq!(
        out.matches("▶ RUN-").count(),
        6,
        "six steps, run once:\n{out}"
    );
    assert!(
        out.contains("was already approved and executed"),
        "carol's approval does nothing more:\n{out}"
    );

    // Expiry configured to one second: a request left alone is refused after it.
    let config = dir.path().join("short.toml");
    std::fs::write(&config, "approval_expiry = \"1s\"\n").unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let url2 = db_url(&dir2);
    let (code, out) = cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            &url2,
            "console",
        ],
        "as alice\np0 declare API down\n/failover us-west-2\n",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expires after 1s"), "{out}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (code, out) = cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            &url2,
            "console",
        ],
        "as bob\napprove\n",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("expired unapproved") && out.contains("expired at"),
        "{out}"
    );
    assert!(!out.contains("▶ RUN-"), "{out}");
}

#[tokio::test]
async fn drill_failover_ends_with_the_dr_region_serving_and_a_postmortem() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let (code, out) = cli(
        &[
            "--database-url",
            &url,
            "drill",
            "failover",
            "region=us-west-2",
        ],
        "",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    for expected in [
        "declared: P0 [DRILL] failover region=us-west-2",
        "DRILL on the simulated world",
        "alice> /erlmcp run failover region=us-west-2",
        "bob> /erlmcp approve",
        "# Postmortem: [DRILL] failover region=us-west-2",
        "> This was a drill on the simulated world.",
        "| 2 | Promote database | bob (console:bob) |",
        "| 5 | Move DNS | bob (console:bob) |",
        "Simulated world after the drill: erlmcp.io -> us-west-2",
    ] {
        assert!(
            out.contains(expected),
            "drill output lacks {expected:?}:\n{out}"
        );
    }
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("us-west-2")
            && l.contains("3/3 pods ready")
            && l.contains("database primary")),
        "{out}"
    );
    // A second drill in the same database works too (the first one is closed).
    let (code, out) = cli(
        &[
            "--database-url",
            &url,
            "drill",
            "scale",
            "region=eu-west-1",
            "replicas=4",
        ],
        "",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(
        &["--database-url", &url, "drill", "failover", "region=mars-1"],
        "",
    )
    .await;
    assert_eq!(
        code, 2,
        "a drill refused its parameters exits 2, like any usage error: {out}"
    );
    assert!(
        out.contains("/erlmcp close"),
        "the drill's incident is closed: {out}"
    );
    let (code, out) = cli(&["--database-url", &url, "drill", "nope"], "").await;
    assert_eq!(code, 2);
    assert!(out.contains("there is no playbook `nope`"), "{out}");
    let (code, _) = cli(&["--database-url", &url, "timeline", "verify"], "").await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn the_monthly_sla_report_counts_incidents_and_leaves_drills_out() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    cli(&["--database-url", &url, "console"], SCRIPT).await;
    cli(
        &["--database-url", &url, "drill", "scale", "replicas=4"],
        "",
    )
    .await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let (code, out) = cli(&["--database-url", &url, "report", "--month", &month], "").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("# erlmcp SLA Report - "), "{out}");
    assert!(
        out.contains("- Incidents: 1 (P0 1, P1 0, P2 0, P3 0); drills, not counted: 1"),
        "{out}"
    );
    assert!(out.contains("| P0 | 1 |"), "{out}");
    let (code, out) = cli(
        &["--database-url", &url, "report", "--month", "2026-13"],
        "",
    )
    .await;
    assert_eq!(
        (code, out.trim()),
        (
            2,
            "error: `2026-13` is not a month; use the form 2026-11 (`--month 2026-11`)"
        )
    );
    let (code, out) = cli(
        &["--database-url", &url, "console"],
        &format!("report {month}\nreport soon\n"),
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("(only you) # erlmcp SLA Report")
            && out.contains("`soon` is not a month like 2026-11"),
        "{out}"
    );
}
