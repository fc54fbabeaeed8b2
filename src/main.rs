//! The `claude-pool` binary: `serve`, `check-config`, `healthcheck`, `gen-certs`,
//! `hash-password` and `keys`. Everything else lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use claude_pool::config::{Config, FlagOverrides};
use claude_pool::keys_cli::{self, KeysCommand};
use tracing_subscriber::EnvFilter;

/// OpenAI-compatible gateway in front of a pool of warm Claude Code CLI workers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Config file (default: config/claude-pool.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to bind (overrides server.host).
        #[arg(long)]
        host: Option<String>,
        /// Port of the API (overrides server.port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Validate the configuration and exit.
    CheckConfig {
        /// Config file (default: config/claude-pool.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Ask the running server's `/readyz`: exit 0 when ready, 1 otherwise (container health
    /// checks; the image has no curl).
    Healthcheck {
        /// Config file (default: config/claude-pool.toml when present); gives the port.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Port to ask (overrides server.port).
        #[arg(long)]
        port: Option<u16>,
        /// Path to ask.
        #[arg(long, default_value = "/readyz")]
        path: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Write a new self-signed certificate for the admin console (server.tls_cert and
    /// server.tls_key) for localhost, the configured host names and `--host` names.
    GenCerts {
        /// Config file (default: config/claude-pool.toml when present); gives the file paths.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Another host name or IP address the certificate is for (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Read a password from standard input and print its argon2id hash, for ADMIN_PASSWORD.
    HashPassword,
    /// (Internal) start a worker's CLI: die with the server, then exec the command.
    #[command(hide = true)]
    LaunchWorker {
        /// The server's process id: if it is gone already, do not start.
        parent: i32,
        /// The CLI and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Manage API keys directly in the store (`store.database_url`).
    Keys {
        /// Config file (default: config/claude-pool.toml when present).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// The log subscriber: the filter, the OpenTelemetry layer when traces are exported, and the
/// lines as text or JSON (`server.log_format`).
fn init_logging(
    config: &Config,
    filter: EnvFilter,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let lines = match config.server.log_format {
        claude_pool::config::LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
        // Colours only on a terminal: container and journal logs stay plain text.
        claude_pool::config::LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
    };
    // Traces take the server's own spans whatever the log level says.
    let traces = tracer.map(|t| {
        let ours = tracing_subscriber::filter::Targets::new()
            .with_target("claude_pool", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_filter(ours)
    });
    tracing_subscriber::registry()
        .with(traces)
        .with(lines.with_filter(filter))
        .init();
}

/// Every client connection and every worker's three pipes take a descriptor; the usual soft
/// limit of 1024 would cap the server far below what it can serve.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(error = %e, soft, "cannot raise the open-file limit");
            }
        }
        _ => {}
    }
}

/// `claude-pool keys ...`: prints the result as JSON; exit 1 on failure.
fn run_keys(config: &Config, command: KeysCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("claude-pool: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(keys_cli::run(config, command)) {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claude-pool keys: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `claude-pool healthcheck`: the server's own address (a wildcard bind is asked on loopback).
fn healthcheck(config: Option<&Path>, port: Option<u16>, path: &str, timeout: u64) -> ExitCode {
    // Only the address matters here: no API key is required to ask.
    let config = match Config::load_for_key_admin(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("claude-pool: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let host = match config.server.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    };
    let port = port.unwrap_or(config.server.port);
    let timeout = std::time::Duration::from_secs(timeout.max(1));
    match claude_pool::healthcheck::check(host, port, path, timeout) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claude-pool healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `claude-pool gen-certs`.
fn gen_certs(config: Option<&Path>, hosts: &[String], force: bool) -> ExitCode {
    use claude_pool::console::tls;
    let config = match Config::load_for_key_admin(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("claude-pool: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let server = &config.server;
    let mut extra = server.tls_hosts.clone();
    extra.extend(hosts.iter().cloned());
    let names = tls::host_names(&server.host, &extra);
    match tls::gen_certs(&server.tls_cert, &server.tls_key, &names, force) {
        Ok(fingerprint) => {
            println!(
                "wrote {} and {} (key mode 0600) for {}
SHA-256 fingerprint: {fingerprint}",
                server.tls_cert.display(),
                server.tls_key.display(),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claude-pool gen-certs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `claude-pool hash-password`: the first line of standard input, hashed.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("claude-pool hash-password: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("claude-pool hash-password: give the password on standard input");
        return ExitCode::from(EXIT_CONFIG);
    }
    match claude_pool::console::password::hash(password) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claude-pool hash-password: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `claude-pool launch-worker <server pid> -- <command> <args>`: asks the kernel to SIGKILL this
/// process when its parent (the server's spawning thread) goes, checks the server is still
/// there, then becomes the CLI (same pid, process group and pipes).
fn launch_worker(parent: i32, command: &[std::ffi::OsString]) -> ExitCode {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("claude-pool launch-worker: cannot set the parent-death signal: {e}");
        return ExitCode::from(126);
    }
    if nix::unistd::getppid().as_raw() != parent {
        // The server went away before the signal was armed.
        return ExitCode::from(126);
    }
    let args: Result<Vec<CString>, _> =
        command.iter().map(|a| CString::new(a.as_bytes())).collect();
    let Ok(args) = args else {
        eprintln!("claude-pool launch-worker: an argument contains a NUL byte");
        return ExitCode::from(126);
    };
    let Some(program) = args.first() else {
        return ExitCode::from(126);
    };
    match nix::unistd::execvp(program, &args) {
        Err(e) => {
            eprintln!(
                "claude-pool launch-worker: cannot start {}: {e}",
                command[0].to_string_lossy()
            );
            ExitCode::from(127)
        }
        Ok(never) => match never {},
    }
}

/// `EX_USAGE`: bad configuration.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (path, flags, check_only) = match cli.command {
        Command::Keys { config, command } => {
            return match Config::load_for_key_admin(config.as_deref()) {
                Ok(c) => run_keys(&c, command),
                Err(e) => {
                    eprintln!("claude-pool: bad configuration: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            };
        }
        Command::Healthcheck {
            config,
            port,
            path,
            timeout,
        } => return healthcheck(config.as_deref(), port, &path, timeout),
        Command::GenCerts {
            config,
            hosts,
            force,
        } => return gen_certs(config.as_deref(), &hosts, force),
        Command::HashPassword => return hash_password(),
        Command::LaunchWorker { parent, command } => return launch_worker(parent, &command),
        Command::Serve { config, host, port } => (config, FlagOverrides { host, port }, false),
        Command::CheckConfig { config } => (config, FlagOverrides::default(), true),
    };
    let config = match Config::load(path.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("claude-pool: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if check_only {
        println!(
            "configuration OK: port {}, pool {}..{} workers, worker command {}",
            config.server.port,
            config.pool.min_workers,
            config.pool.max_workers,
            config.worker.command.display()
        );
        return ExitCode::SUCCESS;
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(claude_pool::logging::filter(&config.server.log_level)))
        .unwrap_or_else(|_| EnvFilter::new(claude_pool::logging::filter("info")));
    let telemetry = match claude_pool::telemetry::Telemetry::from_env() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("claude-pool: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (telemetry, tracer) = telemetry.unzip();
    init_logging(&config, filter, tracer);
    raise_fd_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("claude-pool: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reload: claude_pool::server::Reload =
        Box::new(move || Config::load(path.as_deref(), &flags));
    let served = runtime.block_on(claude_pool::server::serve(
        config,
        Some(reload),
        claude_pool::server::shutdown_signal(),
    ));
    drop(runtime);
    if let Some(t) = telemetry {
        t.shutdown();
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("claude-pool: {e}");
            ExitCode::FAILURE
        }
    }
}
