//! A real server on a fresh database, and signed-in HTTP sessions against it.

use std::sync::Arc;

use delego_core::clock::ManualClock;
use delego_core::id::{ClientId, WorkerId};
use delego_core::identity::{Role, User};
use delego_core::model::{Actor, Presence, Worker};
use delego_core::values::{EmailAddress, Key, Language, Name, SkillLevel};
use delego_server::{AppState, Config, auth};
use delego_store::testing::Harness;
use delego_store::{Backend, NewUser};
use reqwest::cookie::Jar;
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

pub const PASSWORD: &str = "correct horse battery staple";
pub const CUSTOMER_SUPPORT: &str = include_str!("../../../../catalog/customer-support.toml");

/// The day the test clock starts on (Monday 2026-03-02, at 08:00), as the metrics routes
/// take a window.
pub const TEST_DAY: &str = "from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z";

/// The version of customer support every test server publishes.
pub fn customer_support_version() -> u32 {
    delego_core::definition::load_definition(CUSTOMER_SUPPORT)
        .expect("the catalog's customer support loads")
        .version
}

/// Declares one test per backend for each scenario function `async fn(TestServer)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = $crate::harness::TestServer::start(
                        delego_store::testing::Harness::sqlite().await,
                    ).await;
                    super::$case(server).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = delego_store::testing::Harness::postgres().await else { return };
                    let server = $crate::harness::TestServer::start(db).await;
                    super::$case(server).await;
                }
            )*
        }
    };
}

pub struct TestServer {
    pub base: String,
    /// The database; shared with the other nodes of a multi-node test.
    pub db: Arc<Harness>,
    pub state: AppState,
    /// Holds the attachment files (under `attachments/`) for as long as the server runs.
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(db: Harness) -> Self {
        Self::start_with(db, Config::default()).await
    }

    pub async fn start_with(db: Harness, config: Config) -> Self {
        db.store.publish_service(CUSTOMER_SUPPORT).await.unwrap();
        let store = db.store.clone();
        Self::start_node(Arc::new(db), store, config).await
    }

    /// Another node over the same database, through its own connection pool.
    pub async fn another_node(&self, store: Arc<dyn Backend>, config: Config) -> Self {
        Self::start_node(self.db.clone(), store, config).await
    }

    async fn start_node(db: Arc<Harness>, store: Arc<dyn Backend>, config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Config {
            public_url: base.clone(),
            ..config
        };
        let clock: Arc<ManualClock> = db.clock();
        let data_dir = tempfile::tempdir().unwrap();
        let blobs = delego_server::blobs::LocalDirectory::open(data_dir.path().join("attachments"))
            .await
            .unwrap();
        let state = AppState::new(store, clock, Arc::new(blobs), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(delego_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            base,
            db,
            state,
            data_dir,
            shutdown: Some(stop),
        }
    }

    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.db.store
    }

    /// A client without a session.
    pub fn anonymous(&self) -> Session {
        let jar = Arc::new(Jar::default());
        Session {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .build()
                .unwrap(),
            bearer: None,
            jar,
        }
    }

    pub async fn client(&self, name: &str) -> ClientId {
        self.store()
            .create_client(Name::parse(name).unwrap(), &Actor::System)
            .await
            .unwrap()
            .id
    }

    /// An engagement of `client` named Support, on the catalog's customer support.
    pub async fn engagement(&self, client: ClientId) -> String {
        let service = Key::parse("customer-support").unwrap();
        self.engagement_on(client, "Support", &service, customer_support_version())
            .await
    }

    /// An engagement of `client` called `name`, on version `version` of the service `key`.
    pub async fn engagement_on(
        &self,
        client: ClientId,
        name: &str,
        key: &Key,
        version: u32,
    ) -> String {
        self.store()
            .create_engagement(
                client,
                Name::parse(name).unwrap(),
                key,
                version,
                Default::default(),
                &Actor::System,
            )
            .await
            .unwrap()
            .id
            .to_string()
    }

    /// A worker profile with the customer-support skill, cleared for `clients`.
    pub async fn worker(&self, clients: &[ClientId]) -> WorkerId {
        self.worker_like(clients, |_| {}).await
    }

    /// A worker as [`Self::worker`] makes one, changed by `adjust` (other skills or
    /// languages, say).
    pub async fn worker_like(
        &self,
        clients: &[ClientId],
        adjust: impl FnOnce(&mut Worker),
    ) -> WorkerId {
        let mut worker = Worker {
            id: WorkerId::new(),
            name: Name::parse("Jana Nováková").unwrap(),
            skills: [(
                Key::parse("customer_support").unwrap(),
                SkillLevel::new(3).unwrap(),
            )]
            .into(),
            languages: [Language::parse("en").unwrap()].into(),
            clearances: clients.iter().copied().collect(),
            capacity: [
                (delego_core::routing::Channel::Email, 5),
                (delego_core::routing::Channel::BackOffice, 5),
            ]
            .into(),
            certifications: Default::default(),
            exclusions: Default::default(),
            idle_since: None,
            wrap_up_secs: 0,
            team: None,
            presence: Presence::Available,
        };
        adjust(&mut worker);
        self.store()
            .create_worker(&worker, &Actor::System)
            .await
            .unwrap();
        worker.id
    }

    /// Creates a user with [`PASSWORD`] and signs it in.
    pub async fn sign_in(
        &self,
        role: Role,
        client: Option<ClientId>,
        worker: Option<WorkerId>,
    ) -> Session {
        self.sign_in_as(&self.user(role, client, worker).await)
            .await
    }

    /// Signs `user` in (made by [`Self::user`], so with [`PASSWORD`]).
    pub async fn sign_in_as(&self, user: &User) -> Session {
        let session = self.anonymous();
        let (status, body) = session
            .call(
                Method::POST,
                "/api/v1/auth/login",
                Some(serde_json::json!({"email": user.email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        session
    }

    pub async fn user(
        &self,
        role: Role,
        client: Option<ClientId>,
        worker: Option<WorkerId>,
    ) -> User {
        let email = format!(
            "{}-{}@example.com",
            role.as_str().replace('_', "-"),
            uuid::Uuid::now_v7().simple()
        );
        self.store()
            .create_user(
                NewUser {
                    email: EmailAddress::parse(&email).unwrap(),
                    name: Name::parse("Test User").unwrap(),
                    role,
                    client_id: client,
                    worker_id: worker,
                    password_hash: Some(auth::hash_password(PASSWORD.into()).await.unwrap()),
                },
                &Actor::System,
            )
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP client with its own cookie jar (and optionally a bearer token).
pub struct Session {
    pub base: String,
    pub http: reqwest::Client,
    pub bearer: Option<String>,
    jar: Arc<Jar>,
}

impl Session {
    pub fn with_token(&self, token: &str) -> Session {
        Session {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            bearer: Some(token.to_owned()),
            jar: Default::default(),
        }
    }

    /// The same browser, cookies and all, but one that stops at redirects, so that a
    /// form's answer is the redirect itself: its status, and its target as the address.
    pub fn stopping_at_redirects(&self) -> Session {
        Session {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_provider(self.jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            bearer: self.bearer.clone(),
            jar: self.jar.clone(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends JSON (if any) and returns the status and the body as JSON (`Null` if empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Json>) -> (StatusCode, Json) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Json::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Json) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Json) -> (StatusCode, Json) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates an item of `engagement` from `body` (`{"data": …}`), which must be
    /// accepted: the item as created.
    pub async fn raise(&self, engagement: &str, body: Json) -> Json {
        let (status, item) = self
            .post(&format!("/api/v1/engagements/{engagement}/items"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        item
    }

    /// Claims the caller's next task: its id and its item's id, or `None` when there is
    /// none for them (204).
    pub async fn next_task(&self) -> Option<(String, String)> {
        let (status, claimed) = self.post("/api/v1/tasks/next", serde_json::json!({})).await;
        match status {
            StatusCode::NO_CONTENT => None,
            StatusCode::OK => Some((
                claimed["task"]["id"].as_str().unwrap().to_owned(),
                claimed["item"]["id"].as_str().unwrap().to_owned(),
            )),
            other => panic!("{other}: {claimed}"),
        }
    }

    /// Submits `task` with `outcome` and `data`, which must be accepted: the item as the
    /// submission left it.
    pub async fn submit_ok(&self, task: &str, outcome: &str, data: Json) -> Json {
        let (status, item) = self
            .post(
                &format!("/api/v1/tasks/{task}/submit"),
                serde_json::json!({"outcome": outcome, "data": data}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{item}");
        item
    }

    /// Where an item is: its step while open, its resolution once finished.
    pub async fn position(&self, item: &str) -> String {
        let (_, item) = self.get(&format!("/api/v1/items/{item}")).await;
        let position = &item["position"];
        position["resolution"]
            .as_str()
            .or(position["step"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The first record of `item`'s history with `action`, which must be there.
    pub async fn history_entry(&self, item: &str, action: &str) -> Json {
        let (status, history) = self.get(&format!("/api/v1/items/{item}/history")).await;
        assert_eq!(status, StatusCode::OK, "{history}");
        history
            .as_array()
            .unwrap()
            .iter()
            .find(|record| record["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {history:#}"))
            .clone()
    }

    /// A web page as a browser asks for it: the status and the HTML.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let (status, html, _) = self.browse(self.request(Method::GET, path)).await;
        (status, html)
    }

    /// A page that must be there (200 OK): its HTML.
    pub async fn page_ok(&self, path: &str) -> String {
        let (status, html) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        html
    }

    /// Sends `request` as a browser does, asking for HTML: the status, the HTML and the
    /// address (path and query) it leaves the browser at: a redirect's target where the
    /// session stops at redirects, else where the request ended.
    pub async fn browse(&self, request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let response = request.header("accept", "text/html").send().await.unwrap();
        let address = match response.headers().get(reqwest::header::LOCATION) {
            Some(target) => target.to_str().unwrap().to_owned(),
            None => {
                let url = response.url();
                match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_owned(),
                }
            }
        };
        (response.status(), response.text().await.unwrap(), address)
    }

    /// Posts `fields` as a browser posts a form, just as they are: the form token is the
    /// caller's to add (or to leave out or forge). Answers as [`Self::browse`].
    pub async fn post_form(
        &self,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        self.browse(self.request(Method::POST, action).form(fields))
            .await
    }

    /// Posts a form from the page at `from` (which must be there) as a browser would,
    /// with the page's form token. Answers as [`Self::browse`].
    pub async fn submit_form(
        &self,
        from: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let token = csrf_of(&self.page_ok(from).await);
        let mut pairs = vec![("csrf", token.as_str())];
        pairs.extend_from_slice(fields);
        self.post_form(action, &pairs).await
    }
}

/// The state (`running`, `met`, `breached`, …) of an item's SLA clock of `kind`, as the
/// API shows the item.
pub fn sla_clock(item: &Json, kind: &str) -> String {
    let clocks = item["sla"].as_array().unwrap();
    let clock = clocks.iter().find(|c| c["kind"] == kind).unwrap();
    clock["state"].as_str().unwrap().to_owned()
}

/// The sum of `measure` over the rows of a metrics answer: only `engagement`'s rows, if
/// one is named.
pub fn metric_total(metrics: &Json, engagement: Option<&str>, measure: &str) -> u64 {
    metrics["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| engagement.is_none_or(|id| row["engagement_id"] == id))
        .map(|row| row[measure].as_u64().unwrap())
        .sum()
}

/// The form token in a page's first form.
pub fn csrf_of(html: &str) -> String {
    input_value(html, "csrf")
}

/// The value of the first input called `name` in a page (a hidden field's, say).
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}
