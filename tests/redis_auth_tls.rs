//! Redis with a password (ACL user and `requirepass`) and over TLS (`rediss://`), against real
//! `redis-server`s: the URL comes from the environment, the config file (refused when every
//! user can read it) or a systemd credential, never from an argument (`ps` shows those); the
//! password is never shown; TLS checks the server against the CA file given.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::redis_server::{RedisServer, free_port};
use common::*;

fn ingest(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"));
    c.arg("--zeek-dir")
        .arg(fixtures().join("slips/test9"))
        .args(["--once", "--no-progress"])
        .args(args)
        .env_remove("KALIPSO_REDIS_URL")
        .env_remove("CREDENTIALS_DIRECTORY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn profiles(server: &RedisServer) -> u64 {
    redis::cmd("SCARD")
        .arg("profiles")
        .query(&mut server.connection())
        .unwrap()
}

fn flush(server: &RedisServer) {
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut server.connection())
        .unwrap();
}

#[test]
fn a_password_comes_from_the_environment_the_config_or_a_credential_never_an_argument() {
    let server = RedisServer::start_with_args(false, &["--requirepass", "s3cret-pw"]);
    let url = server.url_with_password();
    // On the command line: refused before anything is done.
    let out = ingest(&["--redis-url", &url], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("visible") && !stderr.contains("s3cret-pw"),
        "{stderr}"
    );
    assert_eq!(profiles(&server), 0);
    // From the environment.
    let out = ingest(&[], &[("KALIPSO_REDIS_URL", &url)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(profiles(&server), 125);
    flush(&server);
    // From a config file every user can read: refused; readable by its owner only: used.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("redis-url = \"{url}\"\n")).unwrap();
    std::fs::set_permissions(&config, PermissionsExt::from_mode(0o644)).unwrap();
    let c = config.to_str().unwrap();
    let out = ingest(&["--config", c], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("chmod") && !stderr.contains("s3cret-pw"),
        "{stderr}"
    );
    std::fs::set_permissions(&config, PermissionsExt::from_mode(0o640)).unwrap();
    let out = ingest(&["--config", c], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(profiles(&server), 125);
    flush(&server);
    // From a systemd credential (LoadCredential=redis-url:...), over a public config file.
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("redis-url"), format!("{url}\n")).unwrap();
    std::fs::write(&config, "label = \"unknown\"\n").unwrap();
    std::fs::set_permissions(&config, PermissionsExt::from_mode(0o644)).unwrap();
    let out = ingest(
        &["--config", c],
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(profiles(&server), 125);
    // A wrong password: one line, exit 1, the password not shown.
    let wrong = url.replace("s3cret-pw", "wrong-pw");
    let out = ingest(&[], &[("KALIPSO_REDIS_URL", &wrong)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        !stderr.contains("wrong-pw") && stderr.contains(":***@"),
        "{stderr}"
    );
}

#[test]
fn an_acl_user_with_its_password() {
    let server = RedisServer::start_with_args(false, &["--requirepass", "admin-pw"]);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("kalipso")
        .arg("on")
        .arg(">user-pw")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query(&mut server.connection())
        .unwrap();
    let url = server.url().replace("redis://", "redis://kalipso:user-pw@");
    let out = ingest(&[], &[("KALIPSO_REDIS_URL", &url)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(profiles(&server), 125);
}

/// A CA and a server certificate for 127.0.0.1 (openssl).
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=kalipso test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn over_tls_the_server_is_checked_against_the_ca_file() {
    if Command::new("openssl").arg("version").output().is_err() {
        missing("openssl (to make the test certificates)");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let file = |n: &str| certs.path().join(n).to_str().unwrap().to_string();
    let tls_port = free_port().to_string();
    let server = RedisServer::start_with_args(
        false,
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let ca = file("ca.pem");
    let out = ingest(&["--redis-url", &url, "--redis-ca-file", &ca], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(profiles(&server), 125);
    // Without the CA the server's certificate is not trusted: one line, exit 1.
    let out = ingest(&["--redis-url", &url], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // A CA file with a plain URL is a settings error.
    let out = ingest(&["--redis-url", &server.url(), "--redis-ca-file", &ca], &[]);
    assert_eq!(out.status.code(), Some(2));
}
