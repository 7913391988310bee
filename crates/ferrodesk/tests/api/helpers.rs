//! Test harness: a real server on 127.0.0.1:0 with a fresh database per test — a SQLite file in
//! a temporary folder, or a new PostgreSQL database on the cluster `scripts/test.sh` started.

use std::sync::Arc;

use ferrodesk_core::ids::{TokenId, UserId};
use ferrodesk_core::user::{EmailAddress, Role, User};
use ferrodesk_store::{ApiToken, Store};
use ferrodesk_web::AppState;
use ferrodesk_web::auth::{generate_token, hash_token};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body on both databases: `dual!(name);` defines `name::sqlite` and
/// `name::postgres` from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! dual {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_skipped() {
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )+};
}

/// PostgreSQL runs unless explicitly skipped with `FERRODESK_TEST_POSTGRES_URL=skip` (for a
/// quick local loop); an unset variable is an error so that CI can never skip silently.
pub fn postgres_skipped() -> bool {
    match std::env::var("FERRODESK_TEST_POSTGRES_URL") {
        Ok(v) if v == "skip" => true,
        Ok(_) => false,
        Err(_) => panic!(
            "FERRODESK_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL, \
             or set it to `skip` to leave PostgreSQL out of a local run on purpose"
        ),
    }
}

/// What a `ferrodesk` command did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real binary on the database at `url`, with `stdin` piped in.
pub fn ferrodesk(url: &str, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrodesk"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("FERRODESK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn ferrodesk: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// `GET url` with a bearer token; the JSON answer (`null` when it is not JSON).
pub async fn get_json(http: &reqwest::Client, url: String, token: &str) -> Value {
    http.get(url).bearer_auth(token).send().await.unwrap_or_else(|e| panic!("{e}")).json().await.unwrap_or_default()
}

/// `POST url` with a bearer token and a JSON body; the JSON answer (`null` when it is not JSON).
pub async fn post_json(http: &reqwest::Client, url: String, token: &str, body: &Value) -> Value {
    http.post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default()
}

/// The `name=value` pair of the cookie `name` that a response sets (empty when none).
pub fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// A fresh, empty database for one test; returns its URL. The guard keeps a SQLite folder alive.
pub async fn fresh_database(backend: Backend) -> (String, Option<TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = TempDir::new();
            (format!("sqlite://{}", dir.path.join("ferrodesk.db").display()), Some(dir))
        }
        Backend::Postgres => {
            let admin_url = std::env::var("FERRODESK_TEST_POSTGRES_URL").unwrap_or_default();
            let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL: {e}"));
            tokio::spawn(conn);
            let name = format!("fd_test_{}", uuid::Uuid::now_v7().simple());
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("cannot create {name}: {e}"));
            let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url);
            (format!("{base}/{name}"), None)
        }
    }
}

/// A temporary folder removed on drop.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("ferrodesk-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The secret key test servers seal mailbox passwords with (as `FERRODESK_SECRET_KEY`).
pub const TEST_SECRET_KEY: &str = "q83vEjRWeJq8bN7wEjRWeJq8bN7wEjRWeJq8bN7wEjQ=";

pub fn test_secrets() -> ferrodesk_mail::secret::SecretBox {
    ferrodesk_mail::secret::SecretBox::from_base64(TEST_SECRET_KEY).unwrap_or_else(|e| panic!("{e}"))
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    /// An admin's API token.
    pub admin: String,
    pub admin_id: UserId,
    pub database_url: String,
    /// The server's clock: tests step time instead of sleeping.
    pub clock: ferrodesk_web::Clock,
    _dir: Option<TempDir>,
}

/// A response: status, headers and JSON body (Null when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_owned()
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with_limits(backend, ferrodesk_web::Limits::default()).await
    }

    pub async fn spawn_with_limits(backend: Backend, limits: ferrodesk_web::Limits) -> TestApp {
        Self::spawn_with(backend, |state| state.limits = limits).await
    }

    /// A server whose state `configure` adjusts before it starts.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut AppState)) -> TestApp {
        let (database_url, dir) = fresh_database(backend).await;
        let store = ferrodesk_store::open(&database_url).await.unwrap_or_else(|e| panic!("open store: {e}"));
        store.migrate().await.unwrap_or_else(|e| panic!("migrate: {e}"));
        let mut state = AppState::new(store.clone());
        state.secrets = Some(test_secrets());
        configure(&mut state);
        let clock = state.clock().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        tokio::spawn(async move {
            ferrodesk_web::serve(listener, state, ferrodesk_ui::router(), std::future::pending()).await
        });
        let mut app = TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            store,
            admin: String::new(),
            admin_id: UserId::generate(),
            database_url: database_url.clone(),
            clock,
            _dir: dir,
        };
        let (id, token) = app.user_with_token("admin@example.org", Role::Admin).await;
        app.admin = token;
        app.admin_id = id;
        app
    }

    /// Creates a user directly in the store and returns (id, API token).
    pub async fn user_with_token(&self, email: &str, role: Role) -> (UserId, String) {
        let user = User {
            id: UserId::generate(),
            email: EmailAddress::parse(email).unwrap_or_else(|e| panic!("{e}")),
            name: format!("Test {role}"),
            role,
            organisation_id: None,
            active: true,
            created_at: jiff::Timestamp::now(),
        };
        self.store.create_user(&user, None).await.unwrap_or_else(|e| panic!("create user: {e}"));
        (user.id, self.token_for(user.id).await)
    }

    pub async fn token_for(&self, user: UserId) -> String {
        let secret = generate_token();
        let token = ApiToken {
            id: TokenId::generate(),
            user_id: user,
            name: "test".into(),
            created_at: jiff::Timestamp::now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.create_token(&token, &hash_token(&secret)).await.unwrap_or_else(|e| panic!("create token: {e}"));
        secret
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("request {path}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None, &[]).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, token, Some(body), &[]).await
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(&self, method: Method, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {path}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// Uploads a file to a ticket with a multipart form; `extra` adds text fields.
    pub async fn upload(
        &self,
        ticket: &str,
        token: &str,
        filename: &str,
        content_type: &str,
        data: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let part = reqwest::multipart::Part::bytes(data)
            .file_name(filename.to_owned())
            .mime_str(content_type)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut form = reqwest::multipart::Form::new().part("file", part);
        for (k, v) in extra {
            form = form.text(k.to_string(), v.to_string());
        }
        let resp = self
            .http
            .post(format!("{}/api/v1/tickets/{ticket}/attachments", self.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// Downloads raw bytes: (status, headers, body).
    pub async fn download(&self, path: &str, token: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
    }

    /// Sets a user's password directly in the store.
    pub async fn set_password(&self, user: UserId, password: &str) {
        let hash = ferrodesk_web::auth::hash_password(password.to_owned()).await.unwrap_or_else(|e| panic!("{e:?}"));
        self.store.set_password_hash(user, &hash).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Signs in; returns (cookie header value, CSRF token).
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let r = self.post("/api/v1/auth/login", "", serde_json::json!({"email": email, "password": password})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let cookie = set_cookie(&r.headers, "__Host-fd_session");
        (cookie, r.body["csrf_token"].as_str().unwrap_or_default().to_owned())
    }

    /// A request authenticated by session cookie (and CSRF header when given).
    pub async fn with_cookie(
        &self,
        method: Method,
        path: &str,
        cookie: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut headers = vec![("cookie", cookie)];
        if let Some(c) = csrf {
            headers.push(("x-csrf-token", c));
        }
        self.call(method, path, "", body, &headers).await
    }

    /// Creates a group through the API and returns its id.
    pub async fn group(&self, name: &str) -> String {
        let r = self.post("/api/v1/groups", &self.admin, serde_json::json!({"name": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.id()
    }

    pub async fn add_member(&self, group: &str, user: UserId) {
        let r = self
            .post(&format!("/api/v1/groups/{group}/members"), &self.admin, serde_json::json!({"user_id": user}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    }

    /// Opens a ticket as `token` and returns the reply body.
    pub async fn ticket(&self, token: &str, body: Value) -> Value {
        let r = self.post("/api/v1/tickets", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body
    }
}

/// A port bound but not listening, held until the socket is dropped: connecting to it is
/// refused (a server that is down), and no other test can be handed it meanwhile (a port from
/// `free_port` is free again at once, so a concurrent test's server may be handed it while a
/// test keeps its relay "down" on it).
pub fn reserved_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).unwrap_or_else(|e| panic!("bind: {e}"));
    let port = socket.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("no port: {e}"));
    (socket, port)
}

/// A port free on 127.0.0.1 right now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The HTML of a page as the holder of a session cookie sees it.
pub async fn page_html(client: &reqwest::Client, base: &str, cookie: &str, path: &str) -> String {
    client
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// Waits (up to 5 s) until something listens on 127.0.0.1:`port`; false if nothing came.
pub fn wait_for_port(port: u16) -> bool {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}
