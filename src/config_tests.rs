//! Config layering and validation.

use super::*;

fn write(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(&p, body).unwrap();
    p
}

/// The error `Config::load` gives for a file with `body`.
fn load_error(dir: &Path, body: &str) -> String {
    let p = write(dir, body);
    Config::load(Some(&p), &FlagOverrides::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn file_values_flags_and_defaults_layer() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "[pool]\nmax_workers = 3\nqueue_timeout = \"5s\"\n[auth]\napi_keys = [\"sk-test-12345678\"]\n[models]\nmine = \"haiku\"\n",
    );
    let flags = FlagOverrides {
        host: None,
        port: Some(9001),
    };
    let c = Config::load(Some(&p), &flags).unwrap();
    assert_eq!(c.pool.max_workers, 3);
    assert_eq!(c.pool.queue_timeout, Duration::from_secs(5));
    assert_eq!(c.pool.min_workers, 2, "default kept");
    assert_eq!(c.server.port, 9001, "flag wins");
    assert_eq!(c.models["mine"], "haiku");
    assert_eq!(
        c.models["gpt-4"], "opus",
        "defaults merged under the file's table"
    );
    let pc = c.pool_config();
    assert_eq!(pc.max_workers, 3);
    assert_eq!(pc.worker.model.as_deref(), Some("sonnet"));
}

#[test]
fn unknown_keys_and_bad_types_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_error(dir.path(), "[pool]\nmax_wrkers = 3\n");
    assert!(e.contains("max_wrkers"), "{e}");
    let e = load_error(dir.path(), "[server]\nport = \"eighty\"\n");
    assert!(e.contains("port"), "{e}");
    let e = load_error(
        dir.path(),
        "[pool]\nmin_workers = 5\nmax_workers = 2\n[auth]\nallow_open = true\n",
    );
    assert!(e.contains("pool.min_workers"), "{e}");
}

#[test]
fn missing_keys_without_open_mode_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_error(dir.path(), "");
    assert!(e.contains("auth.api_keys"), "{e}");
    assert!(
        Config::load(
            Some(&dir.path().join("nope.toml")),
            &FlagOverrides::default()
        )
        .is_err()
    );
}

#[test]
fn the_placeholder_admin_password_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_error(
        dir.path(),
        "[auth]\napi_keys = [\"sk-test-key-123\"]\nadmin_password = \"changeme\"\n",
    );
    assert!(
        e.contains("auth.admin_password") && e.contains("ADMIN_PASSWORD"),
        "{e}"
    );
    let p = write(
        dir.path(),
        "[auth]\napi_keys = [\"sk-test-key-123\"]\nadmin_password = \"a-real-one\"\n",
    );
    assert!(Config::load(Some(&p), &FlagOverrides::default()).is_ok());
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let mut c = Config::default();
    c.auth.master_key = "sk-master-secret".into();
    c.auth.api_keys = vec!["sk-user-secret".into()];
    c.store.database_url = "postgres://u:pw-secret@h/db".into();
    let dbg = format!("{c:?}");
    for s in ["sk-master-secret", "sk-user-secret", "pw-secret"] {
        assert!(!dbg.contains(s), "{s} leaked in {dbg}");
    }
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure type, not ours
fn the_rate_limit_window_takes_plain_seconds_or_a_duration() {
    let dir = tempfile::tempdir().unwrap();
    for (written, secs) in [
        ("60", 60),
        ("\"60\"", 60),
        ("\"60s\"", 60),
        ("\"1m\"", 60),
        ("90", 90),
    ] {
        let p = write(
            dir.path(),
            &format!("[auth]\nallow_open = true\n[limits]\nrate_limit_window = {written}\n"),
        );
        let c = Config::load(Some(&p), &FlagOverrides::default()).unwrap();
        assert_eq!(
            c.limits.rate_limit_window,
            Duration::from_secs(secs),
            "{written}"
        );
    }
    let e = load_error(dir.path(), "[limits]\nrate_limit_window = \"soon\"\n");
    assert!(
        e.contains("rate_limit_window") && e.contains("seconds"),
        "{e}"
    );
    // The seed's environment form: RATE_LIMIT_WINDOW=60.
    figment::Jail::expect_with(|jail| {
        jail.set_env("RATE_LIMIT_WINDOW", "60");
        jail.set_env("API_KEYS", "sk-test-key-123");
        let c = Config::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(c.limits.rate_limit_window, Duration::from_secs(60));
        jail.set_env("RATE_LIMIT_WINDOW", "2m");
        let c = Config::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(c.limits.rate_limit_window, Duration::from_secs(120));
        Ok(())
    });
}
