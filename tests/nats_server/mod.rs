//! A real nats-server for the shipping tests, on 127.0.0.1 only, and helpers
//! that read a JetStream stream back.
//!
//! Where the server comes from:
//! - `ANNALS_TEST_NATS_URL` (set by `.ci/run`, which starts one): used as is;
//! - else, when `CI` is set, the test fails: CI must provide the server;
//! - else `nats-server` from `ANNALS_TEST_NATS_SERVER`, the `PATH` or
//!   `/usr/sbin` is started for the test, in a temporary directory;
//! - else the test is skipped, saying so loudly.
//!
//! Tests that restart the server always start their own (they need the
//! binary; under `CI` its absence is a failure).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};

/// Longest wait for a server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A server to talk to: the shared one, or one of this test's.
pub struct Server {
    pub url: String,
    own: Option<OwnServer>,
}

struct OwnServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// The shared server, or one of the test's own; `None` (after a loud
    /// message) when there is none to be had outside CI.
    pub fn shared_or_own(test: &str) -> Option<Server> {
        if let Ok(url) = std::env::var("ANNALS_TEST_NATS_URL") {
            return Some(Server { url, own: None });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but ANNALS_TEST_NATS_URL is not: .ci/run must start nats-server"
        );
        Server::own(test)
    }

    /// A server of the test's own, which it may stop and start again.
    pub fn own(test: &str) -> Option<Server> {
        let Some(binary) = binary() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{test}: CI is set but there is no nats-server (ANNALS_TEST_NATS_SERVER, \
                     PATH, /usr/sbin) and no ANNALS_TEST_NATS_URL: .ci/run must install and \
                     start it"
                );
            }
            eprintln!(
                "\n\n*** SKIPPED {test}: no nats-server found (apt-get install nats-server, or \
                 set ANNALS_TEST_NATS_URL) ***\n"
            );
            return None;
        };
        let port = free_port();
        let mut own = OwnServer {
            binary,
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        own.start();
        Some(Server {
            url: format!("nats://127.0.0.1:{port}"),
            own: Some(own),
        })
    }

    /// Stops the test's own server gracefully (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        self.own.as_mut().expect("an own server").stop();
    }

    /// Starts the test's own server again, on the same port and data.
    pub fn start(&mut self) {
        self.own.as_mut().expect("an own server").start();
    }
}

impl OwnServer {
    fn start(&mut self) {
        let child = Command::new(&self.binary)
            .args(["-js", "-sd"])
            .arg(self.dir.path())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        wait_for_port(self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + START_TIMEOUT;
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ANNALS_TEST_NATS_SERVER") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// A loopback port nobody listens on (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A runtime for the helpers below.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn context(url: &str) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    jetstream::new(client)
}

/// Creates the JetStream stream `name` holding `subjects`.
pub fn create_stream(url: &str, name: &str, subjects: &[&str]) {
    runtime().block_on(async {
        context(url)
            .await
            .create_stream(stream::Config {
                name: name.to_string(),
                subjects: subjects.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating stream {name}: {e}"));
    });
}

/// The stream's last sequence (0 when it does not exist yet).
pub fn last_sequence(url: &str, name: &str) -> u64 {
    runtime().block_on(async {
        match context(url).await.get_stream(name).await {
            Ok(mut stream) => stream.info().await.unwrap().state.last_sequence,
            Err(_) => 0,
        }
    })
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: u64,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every message of the stream, from sequence 1 to the last, checking that
/// none is missing.
pub fn all_messages(url: &str, name: &str) -> Vec<Stored> {
    runtime().block_on(async {
        let mut stream = context(url).await.get_stream(name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for sequence in 1..=state.last_sequence {
            let message = stream
                .get_raw_message(sequence)
                .await
                .unwrap_or_else(|e| panic!("message {sequence} of {name}: {e}"));
            out.push(Stored {
                sequence,
                subject: message.subject.to_string(),
                headers: message
                    .headers
                    .iter()
                    .flat_map(|(n, values)| {
                        values
                            .iter()
                            .map(move |v| (n.to_string(), v.as_str().to_string()))
                    })
                    .collect(),
                payload: message.payload.to_vec(),
            });
        }
        out
    })
}

/// Waits (bounded by `timeout`) until the stream's last sequence is at least `sequence`.
pub fn wait_for_sequence(url: &str, name: &str, sequence: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = last_sequence(url, name);
        if last >= sequence {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stream {name} reached only message {last} of {sequence} in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
