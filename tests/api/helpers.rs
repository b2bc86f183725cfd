//! Starting the service for a test, minting tokens, and the few direct database reads that prove "nothing written".
use purser::auth::{Authenticator, Role};
use purser::domain::ids::ClientId;
use purser::settings::{Secret, Settings};
use purser::startup::Application;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one test per database from a `async fn name(db: Db)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Db::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Db::Postgres).await } )*
        }
    };
}

pub const WEBHOOK_SECRET: &str = "whsec_test_integration";
/// The tests run with the development tools (the sandbox's hooks, `/dev/crash`), so tokens are signed with the
/// built-in development secret.
pub const JWT_SECRET: &str = purser::auth::DEVELOPMENT_SECRET;

pub fn base_settings() -> Settings {
    let mut settings = Settings::from_toml_str(include_str!("../../config.toml")).expect("config.toml parses");
    settings.server.port = 0;
    settings.sandbox.webhook_secret = Some(Secret::new(WEBHOOK_SECRET.into()));
    settings.payments.retry_base = Duration::from_millis(50);
    settings
}

pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Another handle on a database that `owner` keeps (and drops) for the test: a second node's.
    pub fn shared(owner: &TestDatabase) -> TestDatabase {
        TestDatabase { url: owner.url.clone(), _dir: None }
    }
}

/// Starts the real binary the way an operator does (the repository's config.toml, environment overrides on top) and
/// waits until it is ready: a node of its own process, as a deployment runs several on one database. It listens on a
/// port the kernel gives it, read from its "purser listening" line: a port chosen here and bound there could be taken
/// by another test's node in between, and this test would then drive that one.
pub async fn start_node(database_url: &str, env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    purser::startup::install_crypto();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_purser"))
        .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"), "serve"])
        .env("PURSER_SERVER__PORT", "0")
        .env("PURSER_DATABASE__URL", database_url)
        .env("PURSER_SANDBOX__WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RUST_LOG", "warn,purser::startup=info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start purser");
    let logs = std::io::BufReader::new(child.stderr.take().expect("the node's stderr"));
    let (listening, port) = std::sync::mpsc::channel();
    // The node's log goes on to the test's, as it did when inherited.
    std::thread::spawn(move || {
        for line in logs.lines().map_while(Result::ok) {
            if let Some(port) =
                line.split_once("purser listening port=").and_then(|(_, p)| p.trim().parse::<u16>().ok())
            {
                let _ = listening.send(port);
            }
            eprintln!("{line}");
        }
    });
    let port = tokio::task::spawn_blocking(move || port.recv_timeout(Duration::from_secs(60))).await.unwrap();
    let port = port.expect("purser did not start listening within 60 s");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = eventually(Duration::from_secs(30), || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(ready.is_some(), "purser did not become ready on {base}");
    (child, base)
}

pub async fn fresh_database(db: Db) -> TestDatabase {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("purser.db").display());
            TestDatabase { url, _dir: Some(dir) }
        }
        Db::Postgres => {
            let admin = std::env::var("PURSER_TEST_POSTGRES_URL").expect(
                "PURSER_TEST_POSTGRES_URL is not set: run the test suite with `scripts/test`, which starts PostgreSQL",
            );
            let name = format!("purser_test_{}", uuid::Uuid::new_v4().simple());
            let conn = Database::connect(&admin).await.expect("connect to the PostgreSQL test server");
            conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            conn.close().await.ok();
            let (prefix, _) = admin.rsplit_once('/').expect("PURSER_TEST_POSTGRES_URL ends in /<database>");
            TestDatabase { url: format!("{prefix}/{name}"), _dir: None }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub database: TestDatabase,
    /// Where the file mail transport writes this app's email.
    pub mail_dir: std::path::PathBuf,
    _mail: Option<tempfile::TempDir>,
    auth: Authenticator,
    shutdown: Option<oneshot::Sender<()>>,
    /// Finishes once the service has stopped: its actors down, its port closed.
    stopped: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestApp {
    /// Stops the service and waits (up to 30 s) until it has: its actors down and its database pool closed before
    /// the test's runtime goes, so no task of it is left running into the runtime's shutdown.
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(stopped) = self.stopped.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            tokio::task::block_in_place(|| {
                let _ = runtime.block_on(tokio::time::timeout(Duration::from_secs(30), stopped));
            });
        }
    }
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: Db, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(fresh_database(db).await, configure).await
}

/// A service on an existing database, as after a restart.
async fn spawn_app_on(database: TestDatabase, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = base_settings();
    settings.database.url = database.url.clone();
    let mail = tempfile::tempdir().expect("mail dir");
    settings.email.dir = mail.path().display().to_string();
    settings.email.poll_interval = Duration::from_millis(100);
    configure(&mut settings);
    let auth = Authenticator::from_settings(&settings).expect("auth settings");
    let app = Application::build(settings).await.expect("the service starts");
    let base = format!("{}://127.0.0.1:{}", app.scheme(), app.port());
    let (tx, rx) = oneshot::channel();
    let stopped = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        http: reqwest::Client::new(),
        database,
        mail_dir: mail.path().to_path_buf(),
        _mail: Some(mail),
        auth,
        shutdown: Some(tx),
        stopped: Some(stopped),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn data(&self) -> &Value {
        assert_eq!(self.body["success"], true, "expected success, got {} {}", self.status, self.body);
        &self.body["data"]
    }

    pub fn error_code(&self) -> &str {
        assert_eq!(self.body["success"], false, "expected an error, got {} {}", self.status, self.body);
        self.body["error"]["code"].as_str().expect("error.code is a string")
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body, headers }
}

impl TestApp {
    /// Stops this service (as a deploy would) and starts a new one on the same database.
    pub async fn restart(mut self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let database = std::mem::replace(&mut self.database, TestDatabase { url: String::new(), _dir: None });
        // Dropping waits until the service has stopped.
        drop(self);
        spawn_app_on(database, configure).await
    }

    /// A handle on a service this test started some other way (a `purser serve` child process).
    pub fn external(base: String, database: TestDatabase) -> Self {
        let auth = Authenticator::from_settings(&base_settings()).expect("auth settings");
        TestApp {
            base,
            http: reqwest::Client::new(),
            database,
            mail_dir: "data/mail".into(),
            _mail: None,
            auth,
            shutdown: None,
            stopped: None,
        }
    }

    pub fn token(&self, user: &str, role: Role) -> String {
        self.auth.mint(&ClientId::parse(user).unwrap(), role, None, Duration::from_secs(600)).unwrap()
    }

    pub fn client(&self, user: &str) -> Client<'_> {
        Client { app: self, token: self.token(user, Role::Client) }
    }

    /// A client whose token carries an email address, where receipts go.
    pub fn client_with_email(&self, user: &str, email: &str) -> Client<'_> {
        let token = self
            .auth
            .mint(&ClientId::parse(user).unwrap(), Role::Client, Some(email.into()), Duration::from_secs(600))
            .unwrap();
        Client { app: self, token }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.expect("GET")).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.expect("POST")).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        answer(self.http.delete(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("DELETE")).await
    }

    /// POSTs a JSON body of `size` bytes over a plain socket. The server may answer 413 and close before the body is
    /// all sent; an HTTP client library reports that as a broken pipe, so this writes what it can and reads the
    /// answer the way a browser does.
    pub async fn post_oversized(&self, path: &str, token: &str, size: usize) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.base.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(address).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("request head");
        let body = format!("{{\"packageId\":\"{}\"}}", "x".repeat(size.saturating_sub(16)));
        let _ = socket.write_all(&body.as_bytes()[..size.min(body.len())]).await;
        let mut raw = Vec::new();
        let _ = socket.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let (_, payload) = text.split_once("\r\n\r\n").expect("a response body");
        let json = payload.find('{').map(|start| &payload[start..payload.rfind('}').unwrap() + 1]).unwrap_or("null");
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: serde_json::from_str(json).unwrap_or(Value::Null),
            headers: Default::default(),
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.post_raw(path, token, &[("content-type", "application/json")], body.to_string()).await
    }

    /// Sends a Stripe-shaped event signed with the sandbox's webhook secret, as Stripe would.
    pub async fn send_stripe_event(&self, event: &Value) -> Answer {
        self.send_signed_event(event, WEBHOOK_SECRET).await
    }

    /// Sends a signed Stripe event and, once it is acknowledged as new, waits until the service has routed it (the
    /// acknowledgement comes as soon as the event is stored; routing runs on), as a provider's next event would.
    pub async fn send_signed_event(&self, event: &Value, secret: &str) -> Answer {
        let body = event.to_string();
        let signature = purser::domain::signature::sign(body.as_bytes(), secret, chrono::Utc::now().timestamp());
        let answer = self
            .post_raw(
                "/api/v1/webhooks/stripe",
                None,
                &[("content-type", "application/json"), ("stripe-signature", &signature)],
                body,
            )
            .await;
        if answer.status == StatusCode::OK && answer.body.get("duplicate").is_none() {
            self.wait_until_routed(event["id"].as_str().unwrap_or_default()).await;
        }
        answer
    }

    /// Waits until the inbox row of `event_id` has left `received`.
    pub async fn wait_until_routed(&self, event_id: &str) {
        let routed = format!("event_id = '{}' AND status <> 'received'", event_id.replace('\'', "''"));
        let done = eventually(Duration::from_secs(10), || async {
            (self.count_where("webhook_events", &routed).await > 0).then_some(())
        });
        done.await.unwrap_or_else(|| panic!("event {event_id} was stored but never routed"));
    }

    pub async fn authenticate_3ds(&self, intent_id: &str, success: bool) -> Answer {
        self.post(
            &format!("/sandbox/v1/payment_intents/{intent_id}/_authenticate"),
            None,
            &json!({ "success": success }),
        )
        .await
    }

    /// The emails this app wrote with the file transport whose text contains `needle`, once there is one.
    pub async fn mail_containing(&self, needle: &str) -> Option<String> {
        eventually(Duration::from_secs(10), || async {
            std::fs::read_dir(&self.mail_dir).ok()?.flatten().find_map(|file| {
                let text = std::fs::read_to_string(file.path()).ok()?;
                text.contains(needle).then_some(text)
            })
        })
        .await
    }

    /// Writes straight to the database: the state a crash or the passing of time leaves behind.
    pub async fn execute(&self, sql: &str) {
        let db: DatabaseConnection = Database::connect(&self.database.url).await.expect("connect for a write");
        db.execute_unprepared(sql).await.expect("the write");
        db.close().await.ok();
    }

    /// Waits until the inbox holds `n` events and has applied every one of them (none left `received`): what a
    /// check that "nothing more happened" must wait for.
    pub async fn inbox_applied(&self, n: i64) {
        let applied = eventually(Duration::from_secs(15), || async {
            let stored = self.count_rows("webhook_events").await;
            let waiting = self.count_where("webhook_events", "status = 'received'").await;
            (stored >= n && waiting == 0).then_some(())
        })
        .await;
        assert!(applied.is_some(), "the inbox never held {n} applied events");
    }

    pub async fn count_rows(&self, table: &str) -> i64 {
        self.count_where(table, "1 = 1").await
    }

    pub async fn count_where(&self, table: &str, condition: &str) -> i64 {
        count_rows(&self.database.url, &format!("{table} WHERE {condition}")).await
    }
}

pub async fn count_rows(url: &str, table: &str) -> i64 {
    scalar(url, &format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}")).await
}

/// The one `BIGINT` that `sql` selects, read straight from the database, as a check does.
pub async fn scalar(url: &str, sql: &str) -> i64 {
    let db: DatabaseConnection = Database::connect(url).await.expect("connect for a check");
    let statement = sea_orm::Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await.expect("the query").expect("a row");
    let n: i64 = row.try_get_by_index(0).expect("a BIGINT");
    db.close().await.ok();
    n
}

/// A signed-in client and the calls a checkout page makes.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl Client<'_> {
    pub async fn create_intent(&self, package: &str, method: Option<&str>) -> Answer {
        let mut body = json!({ "packageId": package });
        if let Some(method) = method {
            body["paymentMethodId"] = json!(method);
        }
        self.app.post("/api/v1/payments/stripe/intent", Some(&self.token), &body).await
    }

    pub async fn confirm(&self, intent_id: &str, package: &str) -> Answer {
        self.app
            .post(
                "/api/v1/payments/confirm",
                Some(&self.token),
                &json!({ "paymentIntentId": intent_id, "packageId": package }),
            )
            .await
    }

    /// The manual retry after a failure.
    pub async fn retry(&self, intent_id: &str, package: &str) -> Answer {
        let body = json!({ "paymentIntentId": intent_id, "packageId": package, "retry": true });
        self.app.post("/api/v1/payments/confirm", Some(&self.token), &body).await
    }

    /// Opens a checkout with `method` and returns (transactionId, paymentIntentId).
    pub async fn open(&self, package: &str, method: &str) -> (String, String) {
        let intent = self.create_intent(package, Some(method)).await;
        assert_eq!(intent.status, StatusCode::OK, "{}", intent.body);
        let data = intent.data();
        (data["transactionId"].as_str().unwrap().to_owned(), data["paymentIntentId"].as_str().unwrap().to_owned())
    }

    pub async fn balance(&self) -> i64 {
        self.app.get("/api/v1/credits/balance", Some(&self.token)).await.data()["balance"].as_i64().unwrap()
    }

    pub async fn transaction(&self, id: &str) -> Answer {
        self.app.get(&format!("/api/v1/payments/{id}"), Some(&self.token)).await
    }

    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        eventually(Duration::from_secs(15), || async {
            let tx = self.transaction(id).await;
            (tx.data()["status"] == status).then(|| tx.data().clone())
        })
        .await
        .unwrap_or_else(|| panic!("transaction {id} never reached {status}"))
    }
}

/// Polls `check` until it yields a value or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One part of a `multipart/form-data` body: its name, its file name if it is a file, and its bytes.
pub struct FormPart {
    pub name: String,
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parts of a `multipart/form-data` body (RFC 7578), as the fakes of Stripe's file upload and PayPal's disputes
/// API read them.
pub fn form_parts(content_type: &str, body: &[u8]) -> Vec<FormPart> {
    let Some(boundary) = content_type.split("boundary=").nth(1).map(|b| b.trim_matches('"')) else { return vec![] };
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let positions: Vec<usize> =
        text.windows(delimiter.len()).enumerate().filter(|(_, w)| *w == delimiter.as_bytes()).map(|(i, _)| i).collect();
    for pair in positions.windows(2) {
        let part = &text[pair[0] + delimiter.len()..pair[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let quoted = |key: &str| {
            head.split(&format!("{key}=\"")).nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned)
        };
        parts.push(FormPart {
            name: quoted(" name").unwrap_or_default(),
            file_name: quoted("filename"),
            bytes: part[split + 4..].to_vec(),
        });
    }
    parts
}

/// The UUID inside an API id (`txn_…`, `ref_…`): what the database and the providers' metadata hold.
pub fn uuid_of(id: &str) -> &str {
    id.split_once('_').map_or(id, |(_, uuid)| uuid)
}
