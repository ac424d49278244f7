//! The systemd unit: `systemd-analyze verify` accepts it (with ExecStart pointed at the test
//! binary), and it has what the service needs.

mod common;

use std::process::Command;

const UNIT: &str = include_str!("../systemd/kalipso-ingest.service");

#[test]
fn the_unit_has_notify_watchdog_restart_and_hardening() {
    for needle in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "ReadOnlyPaths=/opt/zeek/logs",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "--config /etc/kalipso-ingest/config.toml",
    ] {
        assert!(UNIT.contains(needle), "{needle} missing from the unit");
    }
}

#[test]
fn systemd_analyze_verify_passes() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        // make test installs it (scripts/ensure-deps.sh): fails in CI, skipped elsewhere.
        common::missing("systemd-analyze");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("kalipso-ingest.service");
    std::fs::write(
        &unit,
        UNIT.replace(
            "/usr/local/bin/kalipso-ingest",
            env!("CARGO_BIN_EXE_kalipso-ingest"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("kalipso-ingest.service"),
        "warnings about the unit: {stderr}"
    );
}
