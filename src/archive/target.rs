//! Where an archive is: its URL, parsed (`s3://BUCKET/PREFIX`,
//! `file:///DIR`), and a connection to it, with credentials and endpoint
//! from the usual environment variables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, HeaderMap, HeaderValue, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

use crate::error::{Error, Result};
use crate::hooks::Hooks;

/// The longest an S3 bucket name may be (S3's own rule).
const MAX_BUCKET_NAME_BYTES: usize = 63;

/// Retries of a failed request (a server error or a dropped connection)
/// before the operation fails; a refusal (4xx) is never retried.
const MAX_REQUEST_RETRIES: usize = 3;

/// How long one request may keep being retried.
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// An archive's location, parsed from its URL.
///
/// ```
/// use annals::archive::ArchiveTarget;
/// let target: ArchiveTarget = "s3://audit-bucket/stores/orders".parse()?;
/// assert_eq!(target.to_string(), "s3://audit-bucket/stores/orders");
/// assert!("s3://".parse::<ArchiveTarget>().is_err());
/// # Ok::<(), annals::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTarget {
    url: String,
    location: Location,
    /// Objects are named under it (no leading or trailing `/`; may be empty).
    prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    S3 { bucket: String },
    File { dir: PathBuf },
}

impl ArchiveTarget {
    /// Whether `text` is meant as an archive URL rather than a directory
    /// (it starts with `s3://` or `file://`).
    pub fn is_url(text: &str) -> bool {
        text.starts_with("s3://") || text.starts_with("file://")
    }

    /// The URL, as given (less a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the target is S3 (object lock is only there).
    pub fn is_s3(&self) -> bool {
        matches!(self.location, Location::S3 { .. })
    }

    /// The error for this target.
    pub(crate) fn error(&self, object: Option<&str>, detail: impl Into<String>) -> Error {
        Error::Archive {
            target: self.url.clone(),
            object: object.map(str::to_string),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for ArchiveTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl std::str::FromStr for ArchiveTarget {
    type Err = Error;

    /// Parses `s3://BUCKET[/PREFIX]` or `file:///ABSOLUTE/DIR`.
    ///
    /// # Errors
    /// [`Error::Archive`] for anything else: another scheme, an empty or
    /// invalid bucket name, a prefix with empty, `.` or `..` parts, a
    /// relative path, a query or fragment.
    fn from_str(text: &str) -> Result<ArchiveTarget> {
        let url = text.trim_end_matches('/').to_string();
        let refuse = |detail: String| Error::Archive {
            target: text.to_string(),
            object: None,
            detail: format!("{detail} (an archive is s3://BUCKET/PREFIX or file:///DIR)"),
        };
        if text.contains(['?', '#']) || text.chars().any(char::is_control) {
            return Err(refuse(
                "a URL with a query, a fragment or control characters".into(),
            ));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=MAX_BUCKET_NAME_BYTES).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && !bucket.starts_with(['-', '.'])
                && !bucket.ends_with(['-', '.']);
            if !valid_bucket {
                return Err(refuse(format!(
                    "{bucket:?} is not an S3 bucket name (3 to {MAX_BUCKET_NAME_BYTES} lower-case \
                     letters, digits, '-' and '.')"
                )));
            }
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty()
                && prefix
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..")
            {
                return Err(refuse(format!(
                    "the prefix {prefix:?} has an empty, '.' or '..' part"
                )));
            }
            return Ok(ArchiveTarget {
                url,
                location: Location::S3 {
                    bucket: bucket.to_string(),
                },
                prefix: prefix.to_string(),
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(refuse(format!(
                    "file://{path} is not an absolute path (write file:///DIR)"
                )));
            }
            if path.split('/').any(|p| p == "." || p == "..") {
                return Err(refuse(format!("the path {path:?} has a '.' or '..' part")));
            }
            return Ok(ArchiveTarget {
                url,
                location: Location::File {
                    dir: PathBuf::from(path),
                },
                prefix: String::new(),
            });
        }
        Err(refuse("not an archive URL".into()))
    }
}

/// Object lock retention for segments uploaded (S3 only): COMPLIANCE
/// mode, which nobody, the account's root included, can shorten or lift
/// before `retain_until_ns`. The bucket must have object lock enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    /// Until when, nanoseconds since the Unix epoch (sent to the second).
    pub retain_until_ns: u64,
}

impl ObjectLock {
    /// The retain-until date as S3 takes it: `YYYY-MM-DDTHH:MM:SSZ`.
    pub(crate) fn retain_until_text(&self) -> String {
        let text = crate::timestamp::rfc3339_nanos(self.retain_until_ns);
        format!("{}Z", &text[..19])
    }
}

/// What a create-only put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    /// The object was created.
    Created,
    /// An object of that name was there already (not changed).
    Existed,
}

/// An open connection to an archive: a runtime for the object store's
/// requests, and its clients.
pub(crate) struct Connection {
    pub target: ArchiveTarget,
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    /// For segment and record uploads under object lock: a client that
    /// sends the lock headers with every request. object_store has no
    /// per-put attribute for object lock, so the headers are its client's
    /// default headers, and this client only ever puts.
    locked: Option<Arc<dyn ObjectStore>>,
    hooks: Hooks,
}

impl Connection {
    /// Connects to `target` (nothing is sent yet). `lock` makes every put
    /// set it; `create_dir` creates a `file://` directory that is missing.
    ///
    /// # Errors
    /// [`Error::Archive`] for missing credentials, a lock asked of a
    /// `file://` target, a directory that is missing (and not to be
    /// created), or a client that cannot be built.
    pub fn open(
        target: &ArchiveTarget,
        lock: Option<&ObjectLock>,
        create_dir: bool,
        hooks: &Hooks,
    ) -> Result<Connection> {
        // The process's TLS provider, unless one was chosen already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| target.error(None, format!("starting the I/O runtime: {e}")))?;
        let (store, locked): (Arc<dyn ObjectStore>, Option<Arc<dyn ObjectStore>>) = match &target
            .location
        {
            Location::File { dir } => {
                if lock.is_some() {
                    return Err(target.error(
                        None,
                        "object lock retention needs an s3:// target (a directory has no \
                             object lock)",
                    ));
                }
                if create_dir {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        target.error(None, format!("creating {}: {e}", dir.display()))
                    })?;
                } else if !dir.is_dir() {
                    return Err(target.error(None, format!("{} is not a directory", dir.display())));
                }
                let store = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| target.error(None, e.to_string()))?;
                (Arc::new(store), None)
            }
            Location::S3 { bucket } => {
                check_credentials(target)?;
                let plain = s3_builder(bucket, ClientOptions::new())
                    .build()
                    .map_err(|e| target.error(None, e.to_string()))?;
                let locked = match lock {
                    None => None,
                    Some(lock) => {
                        let mut headers = HeaderMap::new();
                        headers.insert(
                            "x-amz-object-lock-mode",
                            HeaderValue::from_static("COMPLIANCE"),
                        );
                        let until = HeaderValue::from_str(&lock.retain_until_text())
                            .map_err(|e| target.error(None, e.to_string()))?;
                        headers.insert("x-amz-object-lock-retain-until-date", until);
                        // S3 requires a checksum with a lock; the
                        // client sends x-amz-checksum-sha256, and this
                        // names its algorithm.
                        headers.insert(
                            "x-amz-sdk-checksum-algorithm",
                            HeaderValue::from_static("SHA256"),
                        );
                        let client =
                            s3_builder(bucket, ClientOptions::new().with_default_headers(headers))
                                .build()
                                .map_err(|e| target.error(None, e.to_string()))?;
                        Some(Arc::new(client) as Arc<dyn ObjectStore>)
                    }
                };
                (Arc::new(plain), locked)
            }
        };
        Ok(Connection {
            target: target.clone(),
            runtime,
            store,
            locked,
            hooks: hooks.clone(),
        })
    }

    /// The object store path of `name` (relative to the target's prefix).
    fn path(&self, name: &str) -> ObjectPath {
        if self.target.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.target.prefix))
        }
    }

    /// The objects under `folder` (relative to the prefix), by their name
    /// within it, with their sizes.
    ///
    /// # Errors
    /// [`Error::Archive`] when the listing fails (an unknown bucket, a
    /// refused request, an unreachable server).
    pub fn list(&self, folder: &str) -> Result<BTreeMap<String, u64>> {
        let prefix = self.path(folder);
        let listed: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(|e| self.request_error(Some(folder), "listing", e))?;
        let mut objects = BTreeMap::new();
        for meta in listed {
            if let Some(name) = meta.location.filename() {
                objects.insert(name.to_string(), meta.size);
            }
        }
        Ok(objects)
    }

    /// The bytes of the object `name`; `None` when there is none. An object
    /// larger than `max_bytes` is refused before it is read.
    ///
    /// # Errors
    /// [`Error::Archive`] when the request fails or the object is too large.
    pub fn get(&self, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path(name);
        self.runtime.block_on(async {
            let result = match self.store.get(&path).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.request_error(Some(name), "reading", e)),
            };
            if result.meta.size > max_bytes {
                return Err(self.target.error(
                    Some(name),
                    format!(
                        "it is {} bytes, more than the {max_bytes} such an object may have",
                        result.meta.size
                    ),
                ));
            }
            let bytes = result
                .bytes()
                .await
                .map_err(|e| self.request_error(Some(name), "reading", e))?;
            Ok(Some(bytes.to_vec()))
        })
    }

    /// Puts `bytes` as `name` only if no object has that name (an existing
    /// one is never overwritten), with the object lock if the connection
    /// has one.
    ///
    /// # Errors
    /// [`Error::Archive`] when the request fails.
    pub fn put_create(&self, name: &str, bytes: Vec<u8>) -> Result<Put> {
        self.hooks
            .before_archive_put(name)
            .map_err(|e| self.target.error(Some(name), format!("putting: {e}")))?;
        let path = self.path(name);
        let store = self.locked.as_ref().unwrap_or(&self.store);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let result = self
            .runtime
            .block_on(store.put_opts(&path, PutPayload::from(bytes), options));
        match result {
            Ok(_) => Ok(Put::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::Existed),
            Err(e) => Err(self.request_error(Some(name), "putting", e)),
        }
    }

    fn request_error(&self, object: Option<&str>, action: &str, e: object_store::Error) -> Error {
        if let Some(refusal) = Refusal::of(&e) {
            return self.target.error(object, refusal.explain(action));
        }
        let advice = match &e {
            object_store::Error::NotFound { .. } => {
                "; check that the bucket exists and the credentials may use it"
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                "; check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            }
            _ => "",
        };
        self.target
            .error(object, format!("{action} failed: {e}{advice}"))
    }
}

/// S3 error codes saying that the credentials themselves were refused
/// (unknown key, wrong secret, an expired or invalid session token), as
/// opposed to credentials that may not do what was asked (`AccessDenied`).
const CREDENTIALS_REFUSED_CODES: [&str; 5] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
];

/// A request the server refused as unauthenticated or forbidden (HTTP 401
/// or 403), with the S3 error code and message of its answer, if any.
struct Refusal {
    status: u16,
    code: Option<String>,
    message: Option<String>,
}

impl Refusal {
    /// The refusal `e` carries, if it is one. object_store reports a
    /// refused get or put as `PermissionDenied` / `Unauthenticated`, but a
    /// refused list as a generic error, and keeps the answer's status and
    /// body in private types: its text, with its sources', is all there is
    /// to read them from.
    fn of(e: &object_store::Error) -> Option<Refusal> {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(error) = source {
            text.push_str(&format!(": {error}"));
            source = error.source();
        }
        let status = match e {
            object_store::Error::PermissionDenied { .. } => 403,
            object_store::Error::Unauthenticated { .. } => 401,
            _ if text.contains("status code: 403") => 403,
            _ if text.contains("status code: 401") => 401,
            _ => return None,
        };
        Some(Refusal {
            status,
            code: xml_element(&text, "Code"),
            message: xml_element(&text, "Message"),
        })
    }

    /// What to say of it: whether the credentials were refused or only
    /// may not do this, what the server said, and what to check.
    fn explain(&self, action: &str) -> String {
        let code = self.code.as_deref().unwrap_or("no error code");
        let said = match &self.message {
            Some(message) => format!("HTTP {}, {code}: {message}", self.status),
            None => format!("HTTP {}, {code}", self.status),
        };
        if CREDENTIALS_REFUSED_CODES.contains(&code) || self.status == 401 {
            format!(
                "{action} refused: the server does not accept the credentials ({said}); check \
                 AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
            )
        } else {
            format!(
                "{action} refused: access denied ({said}); the credentials were accepted but \
                 may not use this bucket or prefix"
            )
        }
    }
}

/// The text of the first `<name>` element of an S3 error answer.
fn xml_element(body: &str, name: &str) -> Option<String> {
    let (_, rest) = body.split_once(&format!("<{name}>"))?;
    let (text, _) = rest.split_once(&format!("</{name}>"))?;
    Some(text.to_string())
}

/// An S3 client for `bucket` from the environment (AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL or
/// AWS_ENDPOINT, AWS_ALLOW_HTTP, ...), path-style unless configured
/// otherwise, sending a SHA-256 checksum with every put (S3 checks it).
fn s3_builder(bucket: &str, mut client: ClientOptions) -> AmazonS3Builder {
    // The client options of the environment (AWS_ALLOW_HTTP, proxies,
    // timeouts), which `with_client_options` would otherwise replace.
    for (name, value) in std::env::vars() {
        if name.starts_with("AWS_")
            && let Ok(AmazonS3ConfigKey::Client(key)) = name.to_ascii_lowercase().parse()
        {
            client = client.with_config(key, value);
        }
    }
    let retry = RetryConfig {
        max_retries: MAX_REQUEST_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
        backoff: BackoffConfig::default(),
    };
    AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_checksum_algorithm(Checksum::SHA256)
        .with_client_options(client)
}

/// Refuses an S3 target without credentials in the environment, rather
/// than letting the client fall back to an instance metadata service.
fn check_credentials(target: &ArchiveTarget) -> Result<()> {
    const SOURCES: [&str; 4] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ];
    if SOURCES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    {
        return Ok(());
    }
    Err(target.error(
        None,
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION, and \
         AWS_ENDPOINT_URL for a server other than AWS)",
    ))
}
