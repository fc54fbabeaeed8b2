//! Unit tests of `child`: arguments, environment, spawning, framing and stopping.

use super::*;
use crate::turn::Secret;

fn env_of(spec: &SpawnSpec, name: &str) -> Option<String> {
    spec.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn spec_uses_allow_list_and_extras_only() {
    let mut cfg = WorkerConfig::default();
    cfg.env
        .insert("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:9".into());
    let server_env = |name: &str| match name {
        "PATH" => Some("/usr/bin".to_owned()),
        "ANTHROPIC_API_KEY" => Some("k".to_owned()),
        "MASTER_KEY" | "API_KEYS" | "ADMIN_PASSWORD" | "DATABASE_URL" => Some("secret".to_owned()),
        _ => None,
    };
    let spec = spawn_spec(
        &cfg,
        &Profile::default(),
        Path::new("/tmp/w"),
        &Conversation::Fresh,
        None,
        server_env,
    );
    let names: Vec<&str> = spec.env.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"PATH"));
    assert!(names.contains(&"HOME"));
    assert_eq!(
        env_of(&spec, "ANTHROPIC_BASE_URL").as_deref(),
        Some("http://127.0.0.1:9")
    );
    for secret in ["MASTER_KEY", "API_KEYS", "ADMIN_PASSWORD", "DATABASE_URL"] {
        assert!(
            !names.contains(&secret),
            "{secret} leaked into the child env"
        );
    }
    let args: Vec<String> = spec
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--tools", ""]));
    assert!(args.contains(&"--bare".to_owned()));
    assert!(!args.contains(&"--resume".to_owned()));
}

#[test]
fn oauth_profile_turns_bare_off_and_sets_token() {
    let cfg = WorkerConfig::default();
    let profile = Profile {
        model: Some("haiku".into()),
        oauth_token: Some(Secret::new("tok")),
        system_prompt: Some("You are terse.".into()),
        external_tools: None,
    };
    let spec = spawn_spec(
        &cfg,
        &profile,
        Path::new("/tmp/w"),
        &Conversation::Resume("abc".into()),
        None,
        |name| (name == "ANTHROPIC_API_KEY").then(|| "server-key".to_owned()),
    );
    let args: Vec<String> = spec
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        env_of(&spec, "ANTHROPIC_API_KEY"),
        None,
        "the server's key is withheld"
    );
    assert!(!args.contains(&"--bare".to_owned()));
    assert!(args.windows(2).any(|w| w == ["--model", "haiku"]));
    assert!(args.windows(2).any(|w| w == ["--resume", "abc"]));
    assert!(
        args.windows(2)
            .any(|w| w == ["--system-prompt", "You are terse."])
    );
    assert!(!profile.label().contains("terse"), "{}", profile.label());
    assert_eq!(
        env_of(&spec, "CLAUDE_CODE_OAUTH_TOKEN").as_deref(),
        Some("tok")
    );
    assert!(
        !format!("{spec:?}").contains("tok\""),
        "Debug must not print values"
    );
}

#[test]
fn external_tools_add_only_their_mcp_server_and_the_workers_token() {
    // An operator's lower value cannot cut a held call short.
    let mut cfg = WorkerConfig::default();
    cfg.env
        .insert(MCP_IDLE_TIMEOUT_ENV.to_owned(), "1000".to_owned());
    let profile = Profile {
        external_tools: Some(crate::turn::ExternalTools {
            server: "client".into(),
            config: r#"{"mcpServers":{"client":{"type":"http","url":"http://127.0.0.1:1/mcp/t"}}}"#
                .into(),
        }),
        ..Profile::default()
    };
    let token = Secret::new("worker-token");
    let spec = spawn_spec(
        &cfg,
        &profile,
        Path::new("/tmp/w"),
        &Conversation::Fresh,
        Some((&token, Duration::from_secs(600))),
        |_| None,
    );
    let args: Vec<String> = spec
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--mcp-config" && w[1].contains("/mcp/t"))
    );
    assert!(args.contains(&"--strict-mcp-config".to_owned()));
    assert!(
        args.windows(2)
            .any(|w| w == ["--allowedTools", "mcp__client"])
    );
    assert!(
        args.windows(2).any(|w| w == ["--tools", ""]),
        "built-in tools stay off"
    );
    assert_eq!(
        env_of(&spec, TOOL_TOKEN_ENV).as_deref(),
        Some("worker-token")
    );
    assert_eq!(env_of(&spec, "MCP_TOOL_TIMEOUT").as_deref(), Some("660000"));
    assert_eq!(
        env_of(&spec, MCP_IDLE_TIMEOUT_ENV).as_deref(),
        Some("660000"),
        "the CLI's idle limit on a call follows the pool's deadline too"
    );
    assert!(profile.label().contains(", tools "), "{}", profile.label());
    let plain = spawn_spec(
        &cfg,
        &Profile::default(),
        Path::new("/tmp/w"),
        &Conversation::Fresh,
        Some((&token, Duration::ZERO)),
        |_| None,
    );
    assert!(!plain.args.iter().any(|a| a == "--mcp-config"));
    assert_eq!(env_of(&plain, TOOL_TOKEN_ENV), None);
}

#[tokio::test]
async fn stop_terminates_the_whole_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SpawnSpec {
        command: "/bin/sh".into(),
        args: vec!["-c".into(), "sleep 1000 & sleep 1000; wait".into()],
        cwd: dir.path().to_path_buf(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        max_line_bytes: 1024,
        launcher: None,
    };
    let (_io, control) = spawn(&spec).expect("spawn");
    let pgid = control.pid() as i32;
    // Wait until both sleeps are in the group.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while group_members(pgid) < 3 {
        assert!(std::time::Instant::now() < deadline, "group never formed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let info = control.stop(Duration::from_secs(2)).await;
    assert!(info.is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while group_members(pgid) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "group members survived the stop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Live (non-zombie) processes in a process group.
fn group_members(pgid: i32) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            let mut f = stat[close + 2..].split_whitespace();
            let state = f.next();
            let pgrp = f.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && state != Some("Z")
        })
        .count()
}
