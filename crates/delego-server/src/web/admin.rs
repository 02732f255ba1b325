//! The admin area of the provider's administrators and managers: clients, engagements,
//! workers, users, the signed-in user's own API tokens, and the mail kept aside.
//!
//! Every list and every change goes through the API's own functions, so that a page
//! allows exactly what the API allows the same caller (adding users stays with
//! administrators). A form the API refuses is shown again as typed, each problem beside
//! its field.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use delego_core::identity::Role;
use delego_core::model::{ApiToken, Client, Engagement, Worker};
use delego_core::routing::Channel;
use delego_store::ServiceVersion;
use serde::Deserialize;

use super::forms::Posted;
use super::{Ctx, Web, page, render};
use crate::AppState;
use crate::api::directory::{self, NewEngagement, NewUserBody, NewWorker};
use crate::api::session;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/clients", get(clients).post(add_client))
        .route("/admin/engagements", get(engagements).post(add_engagement))
        .route("/admin/workers", get(workers).post(add_worker))
        .route("/admin/users", get(users).post(add_user))
        .route("/admin/tokens", get(tokens).post(add_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/mail", get(kept_aside))
}

/// The area is the provider's managers'; anyone else finds nothing here.
fn admin_area(web: &Web) -> Result<(), ApiError> {
    web.require(web.caller.role().manages())
}

/// What is wrong with a posted form: each field's problem in the user's language.
#[derive(Default)]
struct Problems(BTreeMap<String, String>);

impl Problems {
    fn insert(&mut self, field: &str, message: String) {
        self.0.entry(field.to_owned()).or_insert(message);
    }

    /// The message `admin-invalid-<field>`, told what was wrong (`value`).
    fn add(&mut self, ctx: &Ctx, field: &str, value: &str) {
        let id = format!("admin-invalid-{}", field.replace('_', "-"));
        self.insert(field, ctx.t_arg(&id, "value", value));
    }

    /// An error of the API as problems of the form's fields. An API field names its form
    /// field up to a `.` or `[` (`skills.billing` is about `billing` in `skills`), and so
    /// does the thing an unknown id was of; `renamed` maps the API's names to the form's
    /// where they differ. Any other error is the page's.
    fn of(ctx: &Ctx, error: ApiError, renamed: &[(&str, &str)]) -> Result<Self, ApiError> {
        let field = |name: &str| {
            renamed
                .iter()
                .find(|(api, _)| *api == name)
                .map_or(name.to_owned(), |(_, form)| (*form).to_owned())
        };
        let mut problems = Self::default();
        match error {
            ApiError::Validation { errors, .. } => {
                for error in errors {
                    let name = error.field.split(['.', '[']).next().unwrap_or_default();
                    let about = error.field.split_once('.').map_or("", |(_, about)| about);
                    problems.add(ctx, &field(name), about);
                }
            }
            ApiError::NotFound(what) if renamed.iter().any(|(api, _)| *api == what) => {
                problems.add(ctx, &field(what), "");
            }
            other => return Err(other),
        }
        Ok(problems)
    }

    fn get(&self, field: &str) -> Option<&String> {
        self.0.get(field)
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `aria-describedby` (its hint, its problem) and `aria-invalid` attributes of a
    /// field, written out for the template: field names are ours, never typed by users.
    fn aria(&self, field: &str, hint: bool) -> String {
        let problem = self.0.contains_key(field);
        let described: Vec<String> = [(hint, "hint"), (problem, "error")]
            .into_iter()
            .filter(|(shown, _)| *shown)
            .map(|(_, part)| format!("{field}-{part}"))
            .collect();
        let mut attributes = String::new();
        if !described.is_empty() {
            attributes = format!(" aria-describedby=\"{}\"", described.join(" "));
        }
        if problem {
            attributes.push_str(" aria-invalid=\"true\"");
        }
        attributes
    }

    /// A form with problems is unprocessable as posted.
    fn status(&self) -> StatusCode {
        if self.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// One option of a select.
struct Choice {
    value: String,
    label: String,
}

fn client_choices(clients: &[Client]) -> Vec<Choice> {
    clients
        .iter()
        .map(|client| Choice {
            value: client.id.to_string(),
            label: client.name.to_string(),
        })
        .collect()
}

fn client_name(clients: &[Client], id: delego_core::id::ClientId) -> String {
    clients
        .iter()
        .find(|client| client.id == id)
        .map_or_else(|| id.to_string(), |client| client.name.to_string())
}

/// A list page sent back to after a change says it is done.
#[derive(Deserialize)]
struct Done {
    #[serde(default)]
    done: bool,
}

impl Done {
    fn notice(&self, ctx: &Ctx, message: &str) -> Option<String> {
        self.done.then(|| ctx.t(message))
    }
}

/// After a change, its list: reloading the page then changes nothing twice.
fn done(list: &str) -> Response {
    Redirect::to(&format!("{list}?done=true")).into_response()
}

#[derive(Template)]
#[template(path = "admin.html")]
struct OverviewPage {
    ctx: Ctx,
}

async fn overview(web: Web) -> Result<Response, ApiError> {
    admin_area(&web)?;
    page(&OverviewPage { ctx: web.ctx })
}

/// A form of one name and the page's token: a new client, a new token.
#[derive(Default, Deserialize)]
#[serde(default)]
struct NameForm {
    csrf: String,
    name: String,
}

#[derive(Template)]
#[template(path = "admin-clients.html")]
struct ClientsPage {
    ctx: Ctx,
    clients: Vec<Client>,
    notice: Option<String>,
    name: String,
    problems: Problems,
}

async fn clients_page(
    state: &AppState,
    web: Web,
    notice: Option<String>,
    name: String,
    problems: Problems,
) -> Result<Response, ApiError> {
    let page = ClientsPage {
        clients: directory::visible_clients(state, &web.caller).await?,
        notice,
        name,
        ctx: web.ctx,
        problems,
    };
    Ok(render(page.problems.status(), &page))
}

async fn clients(
    State(state): State<AppState>,
    web: Web,
    Query(after): Query<Done>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let notice = after.notice(&web.ctx, "admin-client-added");
    clients_page(&state, web, notice, String::new(), Problems::default()).await
}

async fn add_client(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<NameForm>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    web.check_csrf(&form.csrf)?;
    match directory::add_client(&state, &web.caller, &form.name).await {
        Ok(_) => Ok(done("/admin/clients")),
        Err(error) => {
            let problems = Problems::of(&web.ctx, error, &[])?;
            clients_page(&state, web, None, form.name, problems).await
        }
    }
}

#[derive(Template)]
#[template(path = "admin-engagements.html")]
struct EngagementsPage {
    ctx: Ctx,
    engagements: Vec<EngagementRow>,
    clients: Vec<Choice>,
    services: Vec<Choice>,
    notice: Option<String>,
    form: EngagementForm,
    problems: Problems,
}

struct EngagementRow {
    client: String,
    service: String,
    name: String,
    created_at: jiff::Timestamp,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct EngagementForm {
    csrf: String,
    client_id: String,
    /// A published version as `key:version`.
    service: String,
    name: String,
}

/// A service version as people read it: its name and version.
fn service_label(ctx: &Ctx, services: &[ServiceVersion], key: &str, version: u32) -> String {
    let name = services
        .iter()
        .find(|service| service.key == key && service.version == version)
        .map_or(key, |service| service.name.as_str());
    ctx.t_args(
        "admin-service-version",
        &[("name", name), ("version", &version.to_string())],
    )
}

async fn engagements_page(
    state: &AppState,
    web: Web,
    notice: Option<String>,
    form: EngagementForm,
    problems: Problems,
) -> Result<Response, ApiError> {
    let clients = directory::visible_clients(state, &web.caller).await?;
    let services = state.store.services().await?;
    let engagements = directory::visible_engagements(state, &web.caller)
        .await?
        .into_iter()
        .map(|engagement: Engagement| EngagementRow {
            client: client_name(&clients, engagement.client_id),
            service: service_label(
                &web.ctx,
                &services,
                engagement.service_key.as_str(),
                engagement.service_version,
            ),
            name: engagement.name.to_string(),
            created_at: engagement.created_at,
        })
        .collect();
    let page = EngagementsPage {
        engagements,
        clients: client_choices(&clients),
        services: services
            .iter()
            .map(|service| Choice {
                value: format!("{}:{}", service.key, service.version),
                label: service_label(&web.ctx, &services, &service.key, service.version),
            })
            .collect(),
        notice,
        form,
        problems,
        ctx: web.ctx,
    };
    Ok(render(page.problems.status(), &page))
}

async fn engagements(
    State(state): State<AppState>,
    web: Web,
    Query(after): Query<Done>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let notice = after.notice(&web.ctx, "admin-engagement-added");
    engagements_page(
        &state,
        web,
        notice,
        EngagementForm::default(),
        Problems::default(),
    )
    .await
}

async fn add_engagement(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<EngagementForm>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    web.check_csrf(&form.csrf)?;
    // The choice is the API's key and version; what is no choice of ours names no service.
    let (key, version) = form.service.rsplit_once(':').unwrap_or_default();
    let new = NewEngagement {
        client_id: form.client_id.clone(),
        name: form.name.clone(),
        service_key: key.to_owned(),
        service_version: version.parse().unwrap_or_default(),
        settings: Default::default(),
    };
    match directory::add_engagement(&state, &web.caller, new).await {
        Ok(_) => Ok(done("/admin/engagements")),
        Err(error) => {
            let renamed = [
                ("service_key", "service"),
                ("service version", "service"),
                ("client", "client_id"),
            ];
            let problems = Problems::of(&web.ctx, error, &renamed)?;
            engagements_page(&state, web, None, form, problems).await
        }
    }
}

#[derive(Template)]
#[template(path = "admin-workers.html")]
struct WorkersPage {
    ctx: Ctx,
    workers: Vec<WorkerRow>,
    clients: Vec<Choice>,
    capacity: Vec<CapacityInput>,
    notice: Option<String>,
    form: WorkerForm,
    problems: Problems,
}

struct WorkerRow {
    name: String,
    team: String,
    skills: String,
    languages: String,
    clearances: String,
    presence: String,
}

/// The tasks a worker may hold at once on one channel.
struct CapacityInput {
    field: String,
    label: String,
    value: String,
}

/// A new worker as typed: skills as `customer_support:3, billing:2`, languages as
/// `en, sk`, the ids of the clients ticked, and a count per channel.
#[derive(Default)]
struct WorkerForm {
    name: String,
    team: String,
    skills: String,
    languages: String,
    clearances: BTreeSet<String>,
    capacity: BTreeMap<Channel, String>,
}

fn capacity_field(channel: Channel) -> String {
    format!("capacity_{}", channel.as_str())
}

impl WorkerForm {
    fn read(posted: &Posted) -> Self {
        let text = |name: &str| posted.first(name).unwrap_or_default().to_owned();
        Self {
            name: text("name"),
            team: text("team"),
            skills: text("skills"),
            languages: text("languages"),
            clearances: posted
                .0
                .iter()
                .filter(|(name, _)| name == "clearances")
                .map(|(_, id)| id.clone())
                .collect(),
            capacity: Channel::ALL
                .into_iter()
                .map(|channel| (channel, text(&capacity_field(channel))))
                .collect(),
        }
    }

    /// The API's request; or the problems that keep it from being one: a skill not
    /// written as `key:level`, a capacity that is no count. The API judges the rest.
    fn request(&self, ctx: &Ctx) -> Result<NewWorker, Problems> {
        let mut problems = Problems::default();
        let mut skills = BTreeMap::new();
        for item in items(&self.skills) {
            match item
                .split_once(':')
                .map(|(skill, level)| (skill.trim(), level.trim().parse()))
            {
                Some((skill, Ok(level))) => {
                    skills.insert(skill.to_owned(), level);
                }
                _ => problems.add(ctx, "skills", item),
            }
        }
        let mut capacity = BTreeMap::new();
        for (channel, count) in &self.capacity {
            match count.trim() {
                "" => {}
                count => match count.parse() {
                    Ok(count) => {
                        capacity.insert(*channel, count);
                    }
                    Err(_) => {
                        problems.insert(&capacity_field(*channel), ctx.t("admin-invalid-capacity"))
                    }
                },
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(NewWorker {
            name: self.name.clone(),
            skills,
            languages: items(&self.languages).map(str::to_owned).collect(),
            clearances: self.clearances.iter().cloned().collect(),
            capacity,
            team: Some(self.team.trim().to_owned()).filter(|team| !team.is_empty()),
            ..NewWorker::default()
        })
    }
}

/// The items of a comma-separated list, blanks left out.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn worker_row(ctx: &Ctx, clients: &[Client], worker: Worker) -> WorkerRow {
    let skills: Vec<String> = worker
        .skills
        .iter()
        .map(|(skill, level)| {
            ctx.t_args(
                "admin-skill-level",
                &[
                    ("skill", skill.as_str()),
                    ("level", &level.get().to_string()),
                ],
            )
        })
        .collect();
    let languages: Vec<&str> = worker.languages.iter().map(|l| l.as_str()).collect();
    let clearances: Vec<String> = worker
        .clearances
        .iter()
        .map(|id| client_name(clients, *id))
        .collect();
    WorkerRow {
        name: worker.name.to_string(),
        team: worker.team.map(|team| team.to_string()).unwrap_or_default(),
        skills: skills.join(", "),
        languages: languages.join(", "),
        clearances: clearances.join(", "),
        presence: super::presence(ctx, &worker.presence).1,
    }
}

async fn workers_page(
    state: &AppState,
    web: Web,
    notice: Option<String>,
    form: WorkerForm,
    problems: Problems,
) -> Result<Response, ApiError> {
    let clients = directory::visible_clients(state, &web.caller).await?;
    let workers = directory::all_workers(state, &web.caller)
        .await?
        .into_iter()
        .map(|worker| worker_row(&web.ctx, &clients, worker))
        .collect();
    let capacity = Channel::ALL
        .into_iter()
        .map(|channel| CapacityInput {
            field: capacity_field(channel),
            label: web.ctx.t(&format!(
                "admin-channel-{}",
                channel.as_str().replace('_', "-")
            )),
            value: form.capacity.get(&channel).cloned().unwrap_or_default(),
        })
        .collect();
    let page = WorkersPage {
        workers,
        clients: client_choices(&clients),
        capacity,
        notice,
        form,
        problems,
        ctx: web.ctx,
    };
    Ok(render(page.problems.status(), &page))
}

async fn workers(
    State(state): State<AppState>,
    web: Web,
    Query(after): Query<Done>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let notice = after.notice(&web.ctx, "admin-worker-added");
    workers_page(
        &state,
        web,
        notice,
        WorkerForm::default(),
        Problems::default(),
    )
    .await
}

/// Posted as pairs: the cleared clients are one `clearances` per box ticked.
async fn add_worker(
    State(state): State<AppState>,
    web: Web,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let posted = Posted(pairs);
    web.check_csrf(posted.first("csrf").unwrap_or_default())?;
    let form = WorkerForm::read(&posted);
    let problems = match form.request(&web.ctx) {
        Ok(new) => match directory::add_worker(&state, &web.caller, new).await {
            Ok(_) => return Ok(done("/admin/workers")),
            Err(error) => Problems::of(&web.ctx, error, &[])?,
        },
        Err(problems) => problems,
    };
    workers_page(&state, web, None, form, problems).await
}

#[derive(Template)]
#[template(path = "admin-users.html")]
struct UsersPage {
    ctx: Ctx,
    users: Vec<UserRow>,
    /// Only administrators add users; managers see the list.
    may_add: bool,
    roles: Vec<Choice>,
    clients: Vec<Choice>,
    workers: Vec<Choice>,
    notice: Option<String>,
    form: UserForm,
    problems: Problems,
}

struct UserRow {
    name: String,
    email: String,
    role: String,
    client: String,
    worker: String,
    created_at: jiff::Timestamp,
}

/// A new user as typed. The password is never shown again.
#[derive(Default, Deserialize)]
#[serde(default)]
struct UserForm {
    csrf: String,
    email: String,
    name: String,
    role: String,
    client_id: String,
    worker_id: String,
    password: String,
}

async fn users_page(
    state: &AppState,
    web: Web,
    notice: Option<String>,
    form: UserForm,
    problems: Problems,
) -> Result<Response, ApiError> {
    let clients = directory::visible_clients(state, &web.caller).await?;
    let workers = directory::all_workers(state, &web.caller).await?;
    let worker_name = |id: delego_core::id::WorkerId| {
        workers
            .iter()
            .find(|worker| worker.id == id)
            .map_or_else(|| id.to_string(), |worker| worker.name.to_string())
    };
    let users = directory::visible_users(state, &web.caller)
        .await?
        .into_iter()
        .map(|user| UserRow {
            name: user.name.to_string(),
            email: user.email.to_string(),
            role: super::role_name(&web.ctx, user.role),
            client: user
                .client_id
                .map(|id| client_name(&clients, id))
                .unwrap_or_default(),
            worker: user.worker_id.map(worker_name).unwrap_or_default(),
            created_at: user.created_at,
        })
        .collect();
    let page = UsersPage {
        users,
        may_add: web.caller.role() == Role::Admin,
        roles: Role::ALL
            .into_iter()
            .map(|role| Choice {
                value: role.as_str().to_owned(),
                label: super::role_name(&web.ctx, role),
            })
            .collect(),
        clients: client_choices(&clients),
        workers: workers
            .iter()
            .map(|worker| Choice {
                value: worker.id.to_string(),
                label: worker.name.to_string(),
            })
            .collect(),
        notice,
        form: UserForm {
            password: String::new(),
            ..form
        },
        problems,
        ctx: web.ctx,
    };
    Ok(render(page.problems.status(), &page))
}

async fn users(
    State(state): State<AppState>,
    web: Web,
    Query(after): Query<Done>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let notice = after.notice(&web.ctx, "admin-user-added");
    users_page(
        &state,
        web,
        notice,
        UserForm::default(),
        Problems::default(),
    )
    .await
}

async fn add_user(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<UserForm>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    web.check_csrf(&form.csrf)?;
    let chosen = |value: &str| Some(value.to_owned()).filter(|value| !value.is_empty());
    let new = NewUserBody {
        email: form.email.trim().to_owned(),
        name: form.name.clone(),
        role: form.role.clone(),
        password: chosen(&form.password),
        client_id: chosen(&form.client_id),
        worker_id: chosen(&form.worker_id),
    };
    let problems = match directory::add_user(&state, &web.caller, new).await {
        Ok(_) => return Ok(done("/admin/users")),
        Err(ApiError::Conflict(_)) => {
            let mut problems = Problems::default();
            problems.insert("email", web.ctx.t("admin-email-taken"));
            problems
        }
        Err(error) => {
            let renamed = [("client", "client_id"), ("worker", "worker_id")];
            Problems::of(&web.ctx, error, &renamed)?
        }
    };
    users_page(&state, web, None, form, problems).await
}

#[derive(Template)]
#[template(path = "admin-tokens.html")]
struct TokensPage {
    ctx: Ctx,
    tokens: Vec<ApiToken>,
    /// A token just made: on this response only, never again.
    created: Option<NewSecret>,
    notice: Option<String>,
    name: String,
    problems: Problems,
}

struct NewSecret {
    name: String,
    secret: String,
}

async fn tokens_page(
    state: &AppState,
    web: Web,
    created: Option<NewSecret>,
    notice: Option<String>,
    name: String,
    problems: Problems,
) -> Result<Response, ApiError> {
    let page = TokensPage {
        tokens: state.store.api_tokens(web.caller.user.id).await?,
        created,
        notice,
        name,
        problems,
        ctx: web.ctx,
    };
    Ok(render(page.problems.status(), &page))
}

async fn tokens(
    State(state): State<AppState>,
    web: Web,
    Query(after): Query<Done>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let notice = after.notice(&web.ctx, "admin-token-revoked");
    tokens_page(
        &state,
        web,
        None,
        notice,
        String::new(),
        Problems::default(),
    )
    .await
}

/// The secret goes into this response's page and nowhere else: not into an address, not
/// through a redirect.
async fn add_token(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<NameForm>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    web.check_csrf(&form.csrf)?;
    match session::add_token(&state, &web.caller, &form.name).await {
        Ok((token, secret)) => {
            let created = Some(NewSecret {
                name: token.name.to_string(),
                secret,
            });
            tokens_page(
                &state,
                web,
                created,
                None,
                String::new(),
                Problems::default(),
            )
            .await
        }
        Err(error) => {
            let problems = Problems::of(&web.ctx, error, &[])?;
            tokens_page(&state, web, None, None, form.name, problems).await
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RevokeForm {
    csrf: String,
}

async fn revoke_token(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ApiError> {
    admin_area(&web)?;
    web.check_csrf(&form.csrf)?;
    session::revoke_own_token(&state, &web.caller, &id).await?;
    Ok(done("/admin/tokens"))
}

#[derive(Template)]
#[template(path = "admin-mail.html")]
struct KeptAsidePage {
    ctx: Ctx,
    messages: Vec<KeptAsideRow>,
}

struct KeptAsideRow {
    received: String,
    engagement: String,
    from: String,
    subject: String,
    reason: String,
    size: String,
    href: String,
}

/// The newest messages the e-mail channel kept aside, with why, for someone to look at.
async fn kept_aside(State(state): State<AppState>, web: Web) -> Result<Response, ApiError> {
    admin_area(&web)?;
    let kept = state.store.kept_aside(None, KEPT_ASIDE_SHOWN).await?;
    let engagements: BTreeMap<_, _> = state
        .store
        .engagements(None)
        .await?
        .into_iter()
        .map(|engagement| (engagement.id, engagement.name.to_string()))
        .collect();
    let tr = &web.ctx;
    let messages = kept
        .into_iter()
        .map(|message| KeptAsideRow {
            received: tr.date_time(message.received_at),
            engagement: message
                .engagement_id
                .and_then(|id| engagements.get(&id).cloned())
                .unwrap_or_else(|| "–".to_owned()),
            from: message.from_address.unwrap_or_else(|| "–".to_owned()),
            subject: message.subject.unwrap_or_default(),
            reason: message.reason,
            size: tr.int(i64::try_from(message.size).unwrap_or(i64::MAX)),
            href: format!("/api/v1/mail/kept-aside/{}", message.id),
        })
        .collect();
    page(&KeptAsidePage {
        ctx: web.ctx,
        messages,
    })
}

/// How many kept-aside messages the page lists; the API pages further.
const KEPT_ASIDE_SHOWN: u32 = 200;
