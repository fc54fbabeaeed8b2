//! The log filter: the configured level (`server.log_level`) with third-party libraries'
//! chatter held at WARN (the MCP library logs several INFO lines, one a debug dump, per worker
//! start). A library named in the level keeps what the level says; `RUST_LOG` replaces it all.

/// Libraries held at WARN unless the level names them.
const QUIET: &[&str] = &[
    "rmcp",
    "sqlx",
    "hyper",
    "hyper_util",
    "h2",
    "tower",
    "rustls",
    "reqwest",
];

/// The filter directives for a configured level.
pub fn filter(level: &str) -> String {
    let named = |lib: &str| {
        level.split(',').any(|d| {
            let target = d.split(['=', '[']).next().unwrap_or_default().trim();
            target == lib || target.starts_with(&format!("{lib}::"))
        })
    };
    let mut directives = level.trim().to_owned();
    for lib in QUIET.iter().filter(|l| !named(l)) {
        if !directives.is_empty() {
            directives.push(',');
        }
        directives.push_str(lib);
        directives.push_str("=warn");
    }
    directives
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn libraries_are_quiet_unless_named() {
        let f = filter("info");
        assert!(f.starts_with("info,rmcp=warn,"), "{f}");
        let f = filter("debug,rmcp=info");
        assert!(f.contains("rmcp=info") && !f.contains("rmcp=warn"), "{f}");
        assert!(f.contains("sqlx=warn"), "{f}");
        assert!(tracing_subscriber::EnvFilter::try_new(filter("claude_pool=debug,info")).is_ok());
    }
}
