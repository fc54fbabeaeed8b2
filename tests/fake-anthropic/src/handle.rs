//! The fake API in-process, for Rust tests: [`FakeApi::start`] serves it on a free loopback port
//! from its own thread and runtime (so it keeps answering whatever the test's runtime does),
//! and dropping the handle stops it and closes its connections.

use std::io;
use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::server::Server;
use crate::state::Options;

/// A running fake API; stops on drop.
#[derive(Debug)]
pub struct FakeApi {
    server: Server,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApi {
    /// Starts the fake API on `127.0.0.1` and a free port.
    pub fn start(options: Options) -> io::Result<Self> {
        let std_listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let server = Server::new(options);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-anthropic-{port}"))
            .spawn(move || {
                runtime.block_on(serving.run(listener, async {
                    let _ = stopped.await;
                }));
            })?;
        Ok(Self {
            server,
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the CLI's `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What `GET /_stats` answers.
    pub fn stats(&self) -> Value {
        self.server.stats()
    }

    /// What `GET /_last_request` answers: the last `/v1/messages` body (`{}` if none).
    pub fn last_request(&self) -> Value {
        self.server.last_request()
    }

    /// Requests held by `[[hang]]` right now.
    pub fn hanging(&self) -> usize {
        self.server.hanging()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
