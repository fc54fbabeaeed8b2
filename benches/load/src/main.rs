//! `claude-pool-load`: drives concurrent clients against claude-pool (or straight against the
//! CLI, for comparison) and reports time to first token, total latency, throughput, errors and
//! the server's memory and descriptors.
//!
//! ```text
//! claude-pool-load run --mode gateway --url http://127.0.0.1:8000 --api-key K -c 64 -n 2000 --stream
//! claude-pool-load run --api messages --image-kb 64 --turns-per-session 1 --url ... --api-key K -c 1 -n 50 --stream
//! claude-pool-load run --mode direct --cli target/release/fake-claude -c 64 -n 2000
//! claude-pool-load run --mode spawn-per-request --cli claude --cli-env ANTHROPIC_BASE_URL=... -c 16 -n 64
//! claude-pool-load chart --input bench-results/ --output docs/benchmarks-ttft.svg
//! ```
//! Gateway turns go through chat completions (`--api chat`, the default) or the Messages API
//! (`--api messages`), optionally with a PNG of about `--image-kb` KiB of base64 attached.
//! Every run prints a table and, with `--json PATH`, writes its report as JSON. At high
//! concurrency raise the descriptor limit of both sides (`ulimit -n 65536`); the generator raises
//! its own soft limit to the hard limit at start.

mod chart;
mod conversations;
mod modes;
mod payload;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use modes::{Budget, CliProcess, Plan};
use payload::Api;
use stats::{ProcSample, Recorder, Report};

#[derive(Debug, Parser)]
#[command(about = "Load generator for claude-pool")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Through claude-pool (the API of `--api`).
    Gateway,
    /// Straight to one warm CLI process per client (no gateway).
    Direct,
    /// A fresh CLI process per request.
    SpawnPerRequest,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "gateway")]
    mode: Mode,
    /// Label in the report.
    #[arg(long, default_value = "run")]
    label: String,
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    #[arg(long, default_value = "")]
    api_key: String,
    #[arg(long, default_value = "sonnet")]
    model: String,
    #[arg(long, default_value = "Say hello in one short sentence.")]
    prompt: String,
    /// Concurrent clients.
    #[arg(short = 'c', long, default_value_t = 16)]
    concurrency: usize,
    /// Total requests.
    #[arg(short = 'n', long, default_value_t = 256)]
    requests: u64,
    /// Stream responses (gateway mode).
    #[arg(long)]
    stream: bool,
    /// The gateway API (gateway mode): chat completions or Anthropic's Messages API.
    #[arg(long, value_enum, default_value = "chat")]
    api: Api,
    /// Attach a PNG whose base64 is about this many KiB to every turn (gateway mode; 0 = none).
    #[arg(long, default_value_t = 0)]
    image_kb: usize,
    /// Session ids (`X-Session-Id`) are `<prefix>-<client>`: runs with different prefixes
    /// against one server do not continue each other's conversations.
    #[arg(long, default_value = "load")]
    session_prefix: String,
    /// Turns per conversation (gateway): 0 = one conversation per client, 1 = stateless.
    #[arg(long, default_value_t = 0)]
    turns_per_session: u64,
    /// Multi-turn conversations (of --turns-per-session turns, at least 2) that check every
    /// answer's context against the fake API's `[n=..]` counter (errors: `context-lost`).
    #[arg(long)]
    check_context: bool,
    /// With --check-context: send the whole history each turn instead of `X-Session-Id`.
    #[arg(long)]
    history: bool,
    /// The CLI for direct and spawn-per-request modes.
    #[arg(long, default_value = "claude")]
    cli: String,
    /// Extra CLI arguments (repeat).
    #[arg(long = "cli-arg", allow_hyphen_values = true)]
    cli_args: Vec<String>,
    /// Environment for the CLI, K=V (repeat).
    #[arg(long = "cli-env")]
    cli_env: Vec<String>,
    /// Sample this process's RSS and descriptors (the server).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Write the report here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one load test.
    Run(Box<RunArgs>),
    /// Draw TTFT p50 against concurrency from a directory of JSON reports.
    Chart {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Chart { input, output } => match chart::draw(&input, &output) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chart: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Cmd::Run(run) => {
            raise_fd_limit();
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match rt.block_on(run_load(*run)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("claude-pool-load: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run_load(args: RunArgs) -> Result<(), String> {
    let RunArgs {
        mode,
        label,
        url,
        api_key,
        model,
        prompt,
        concurrency,
        requests,
        stream,
        api,
        image_kb,
        session_prefix,
        turns_per_session,
        check_context,
        history,
        cli,
        cli_args,
        cli_env,
        server_pid,
        timeout,
        json,
        quiet,
    } = args;
    let cli_env = cli_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("--cli-env wants K=V, got {kv}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if api == Api::Messages && (check_context || history) {
        return Err("--check-context and --history drive chat completions only".into());
    }
    let image = (image_kb > 0).then(|| payload::png_base64(image_kb));
    let body = payload::body(api, &model, &prompt, stream, image.as_deref());
    let body = bytes::Bytes::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
    let plan = Arc::new(Plan {
        url: url.trim_end_matches('/').to_owned(),
        api_key,
        model,
        prompt,
        stream,
        api,
        body,
        session_prefix,
        turns_per_session,
        history,
        cli,
        cli_args,
        cli_env,
        timeout: Duration::from_secs(timeout),
    });
    let concurrency = concurrency.max(1);
    let progress = if quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(requests);
        pb.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec}")
                .map_err(|e| e.to_string())?,
        );
        pb
    };
    // Direct mode: every client's process is started and warm before the clock starts.
    let mut warm = Vec::new();
    if matches!(mode, Mode::Direct) {
        for _ in 0..concurrency {
            let mut p =
                CliProcess::spawn(&plan).map_err(|e| format!("cannot start the CLI: {e}"))?;
            p.handshake().await?;
            warm.push(p);
        }
    }
    let before = server_pid.and_then(ProcSample::read);
    let (stop_sampler, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = server_pid.map(|pid| {
        tokio::spawn(async move {
            let mut peak = ProcSample::default();
            loop {
                if let Some(s) = ProcSample::read(pid) {
                    peak.rss_mb = peak.rss_mb.max(s.rss_mb);
                    peak.fds = peak.fds.max(s.fds);
                }
                tokio::select! {
                    _ = &mut stopped => break peak,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    });
    let budget = Budget::new(requests);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for client in 0..concurrency {
        let (plan, budget, pb) = (plan.clone(), budget.clone(), progress.clone());
        tasks.push(match mode {
            Mode::Gateway if check_context || history => tokio::spawn(conversations::client(
                http.clone(),
                plan,
                client,
                budget,
                pb,
            )),
            Mode::Gateway => tokio::spawn(modes::gateway_client(
                http.clone(),
                plan,
                client,
                budget,
                pb,
            )),
            Mode::Direct => {
                let p = warm.pop().expect("one warm process per client");
                tokio::spawn(modes::direct_client(p, plan, budget, pb))
            }
            Mode::SpawnPerRequest => tokio::spawn(modes::spawn_client(plan, budget, pb)),
        });
    }
    let mut rec = Recorder::default();
    for t in tasks {
        match t.await {
            Ok(r) => rec.merge(&r),
            Err(_) => rec.error("client-panicked"),
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    progress.finish_and_clear();
    // Close the client's idle keep-alive connections, so the server's descriptors after the
    // run show what the server itself still holds.
    drop(http);
    let _ = stop_sampler.send(());
    let peak = match sampler {
        Some(handle) => handle.await.ok(),
        None => None,
    };
    // Let the server settle (streams closed, workers idle) before the "after" sample.
    let after = match server_pid {
        Some(pid) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ProcSample::read(pid)
        }
        None => None,
    };
    let (ttft_ms, total_ms) = rec.summary();
    let report = Report {
        label,
        mode: mode
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        concurrency,
        requests,
        ok: rec.ok,
        errors: rec.errors.clone(),
        seconds,
        turns_per_sec: rec.ok as f64 / seconds.max(1e-9),
        ttft_ms,
        total_ms,
        server_before: before,
        server_peak: peak,
        server_after: after,
    };
    print!("{}", report.table());
    if let Some(path) = json {
        let body = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
