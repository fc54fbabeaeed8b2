//! `fake-anthropic`: the fake Anthropic Messages API on 127.0.0.1, for scripts and the Python
//! tests. Point the CLI at it with `ANTHROPIC_BASE_URL=http://127.0.0.1:<port>`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fake_anthropic::{Options, serve};

/// A fake Anthropic Messages API for offline tests of the real Claude Code CLI.
#[derive(Debug, Parser)]
#[command(name = "fake-anthropic")]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 18555)]
    port: u16,
    /// Pause before each text chunk of a `[[slow]]` answer, in milliseconds.
    #[arg(long, default_value_t = 200)]
    slow_ms: u64,
    /// API key to answer with 401 (repeatable).
    #[arg(long = "reject-key", value_name = "KEY")]
    reject_keys: Vec<String>,
    /// Write the bound port to this file once listening.
    #[arg(long, value_name = "PATH")]
    port_file: Option<PathBuf>,
    /// Log every request to stderr.
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-anthropic: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    if let Some(path) = &args.port_file {
        write_port_file(path, port)?;
    }
    eprintln!("fake-anthropic listening on 127.0.0.1:{port}");
    let options = Options {
        slow: Duration::from_millis(args.slow_ms),
        reject_keys: args.reject_keys,
        verbose: args.verbose,
    };
    runtime.block_on(serve(listener, options, std::future::pending()));
    Ok(())
}

/// Writes the port next to `path` and renames it into place: a reader sees no file or the
/// whole number, never a part of it.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, port.to_string())?;
    std::fs::rename(&tmp, path)
}
