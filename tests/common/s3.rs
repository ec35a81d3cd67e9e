//! The S3 API server of the archive tests: moto on a loopback port, which
//! `.ci/run` starts and names in ANNALS_TEST_S3_ENDPOINT. Under CI
//! (CI=true) a missing endpoint fails the test; elsewhere the test is
//! skipped with a message. Buckets are made per test (unique names), with
//! a plain HTTP request: object_store cannot create buckets, and this
//! moto does not check signatures (any credentials do, "testing" here).
//! [`CheckingServer`] is a second one, of a test's own, that does.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// The endpoint, or `None` (after saying so) when the test is to be skipped.
pub fn endpoint() -> Option<String> {
    match std::env::var("ANNALS_TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            assert!(
                endpoint.starts_with("http://127.0.0.1:"),
                "the tests only talk to a loopback server, not {endpoint}"
            );
            Some(endpoint)
        }
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ANNALS_TEST_S3_ENDPOINT is not set: .ci/run starts moto_server and sets it"
            );
            eprintln!(
                "skipped: ANNALS_TEST_S3_ENDPOINT is not set (start moto_server, see .ci/run)"
            );
            None
        }
    }
}

/// The environment the object store client reads, for `endpoint`.
pub fn env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ]
}

/// Sets [`env`] in this process, once (every test sets the same values).
pub fn set_env(endpoint: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (name, value) in env(endpoint) {
            // SAFETY: set once, before any client of this process reads
            // the environment, to the same values for every test.
            unsafe { std::env::set_var(name, value) };
        }
    });
}

/// A bucket name no other test uses.
pub fn unique_bucket(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "annals-{what}-{}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The answer to a plain request: status code, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request to moto. (An Authorization header of the
/// right shape: moto does not check it, but refuses some requests without.)
pub fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let host = endpoint.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\
         Content-Type: application/octet-stream\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n",
        body.len()
    );
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let text = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = text.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: answer[split + 4..].to_vec(),
    }
}

/// Creates a bucket, with object lock enabled or not.
pub fn create_bucket(endpoint: &str, bucket: &str, object_lock: bool) {
    let headers: &[(&str, &str)] = if object_lock {
        &[("x-amz-bucket-object-lock-enabled", "true")]
    } else {
        &[]
    };
    let answer = request(endpoint, "PUT", &format!("/{bucket}"), headers, b"");
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// The keys of a bucket's objects under `prefix` (ListObjectsV2).
pub fn keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let answer = request(
        endpoint,
        "GET",
        &format!("/{bucket}?list-type=2&prefix={prefix}"),
        &[],
        b"",
    );
    assert_eq!(answer.status, 200);
    let body = String::from_utf8_lossy(&answer.body).to_string();
    let mut keys: Vec<String> = body
        .split("<Key>")
        .skip(1)
        .map(|rest| rest.split("</Key>").next().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

/// A second moto server of the test's own that checks credentials
/// (`INITIAL_NO_AUTH_ACTION_COUNT=0`: it knows no access key, so every
/// signed request is refused with 403 InvalidAccessKeyId). Started from
/// the `moto_server` that `.ci/run` names in ANNALS_TEST_MOTO_SERVER, on a
/// free loopback port, in a temporary directory; stopped (its process
/// only, by its pid) when dropped.
pub struct CheckingServer {
    child: std::process::Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

/// How long a started moto server may take to answer.
const SERVER_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl CheckingServer {
    /// Starts one, or `None` (after saying so) when the test is to be
    /// skipped: no ANNALS_TEST_MOTO_SERVER outside CI.
    pub fn start() -> Option<CheckingServer> {
        let program = match std::env::var("ANNALS_TEST_MOTO_SERVER") {
            Ok(program) if !program.is_empty() => program,
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "ANNALS_TEST_MOTO_SERVER is not set: .ci/run sets it"
                );
                eprintln!("skipped: ANNALS_TEST_MOTO_SERVER is not set (see .ci/run)");
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        // A free port: the one the system hands out, released just before.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let server = CheckingServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let started = std::time::Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < SERVER_START_TIMEOUT,
                "{program} did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(server)
    }
}

impl Drop for CheckingServer {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's pid, and nothing else.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
