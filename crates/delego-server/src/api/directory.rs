//! Clients, users, workers, the service catalog and engagements.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use delego_core::definition::parse_duration;
use delego_core::id::{ClientId, WorkerId};
use delego_core::identity::{Role, Scope, User};
use delego_core::model::{Client, Engagement, EngagementSettings, Presence, Worker};
use delego_core::routing::{Channel, Exclusions};
use delego_core::values::{EmailAddress, Key, Language, Name, SkillLevel};
use delego_store::{NewUser, ServiceVersion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{in_scope, invalid, parse_id};
use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

use axum::Json;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    name: String,
}

/// Clients the caller may see.
#[utoipa::path(get, path = "/clients", tag = "clients", responses((status = 200, body = Vec<Object>)))]
pub async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Client>>> {
    Ok(Json(visible_clients(&state, &caller).await?))
}

/// The clients in the caller's scope; the API and the admin pages share it.
pub(crate) async fn visible_clients(state: &AppState, caller: &Caller) -> ApiResult<Vec<Client>> {
    let clients = state.store.clients().await?;
    Ok(clients
        .into_iter()
        .filter(|c| caller.scope.allows(c.id))
        .collect())
}

/// Adds a client (admins and managers).
#[utoipa::path(post, path = "/clients", tag = "clients", request_body = NewClient,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewClient>,
) -> ApiResult<(StatusCode, Json<Client>)> {
    let client = add_client(&state, &caller, &new.name).await?;
    Ok((StatusCode::CREATED, Json(client)))
}

pub(crate) async fn add_client(state: &AppState, caller: &Caller, name: &str) -> ApiResult<Client> {
    caller.require_manager()?;
    let name = Name::parse(name).map_err(|e| invalid("name", e))?;
    Ok(state.store.create_client(name, &caller.actor()).await?)
}

/// One client.
#[utoipa::path(get, path = "/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Client>> {
    let id: ClientId = parse_id(&id, "client")?;
    in_scope(&caller, id, (), "client")?;
    Ok(Json(state.store.client(id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub(crate) email: String,
    pub(crate) name: String,
    #[schema(value_type = String, example = "agent")]
    pub(crate) role: String,
    /// At least 12 characters. Without one the user cannot sign in with a password.
    pub(crate) password: Option<String>,
    /// Required for a client user.
    pub(crate) client_id: Option<String>,
    /// Required for team leads, agents, experts and QA reviewers.
    pub(crate) worker_id: Option<String>,
}

/// Users: admins and managers see all; a client user sees its own client's users.
#[utoipa::path(get, path = "/users", tag = "users", responses((status = 200, body = Vec<Object>)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(visible_users(&state, &caller).await?))
}

pub(crate) async fn visible_users(state: &AppState, caller: &Caller) -> ApiResult<Vec<User>> {
    Ok(match (&caller.scope, caller.role()) {
        (Scope::AllClients, _) => state.store.users(None).await?,
        (_, Role::ClientUser) => state.store.users(caller.user.client_id).await?,
        _ => vec![caller.user.clone()],
    })
}

/// Creates a user (admins only).
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserBody,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewUserBody>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = add_user(&state, &caller, new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub(crate) async fn add_user(
    state: &AppState,
    caller: &Caller,
    new: NewUserBody,
) -> ApiResult<User> {
    caller.require_admin()?;
    let email = EmailAddress::parse(&new.email).map_err(|e| invalid("email", e))?;
    let name = Name::parse(&new.name).map_err(|e| invalid("name", e))?;
    let role: Role = new.role.parse().map_err(|e| invalid("role", e))?;
    let client_id = new
        .client_id
        .map(|id| {
            id.parse()
                .map_err(|_| invalid("client_id", "not a client id"))
        })
        .transpose()?;
    let worker_id = new
        .worker_id
        .map(|id| {
            id.parse()
                .map_err(|_| invalid("worker_id", "not a worker id"))
        })
        .transpose()?;
    let password_hash = match new.password {
        Some(password) if password.chars().count() < 12 => {
            return Err(ApiError::field(
                "password",
                "too_short",
                "use at least 12 characters",
            ));
        }
        Some(password) => Some(auth::hash_password(password).await?),
        None => None,
    };
    Ok(state
        .store
        .create_user(
            NewUser {
                email,
                name,
                role,
                client_id,
                worker_id,
                password_hash,
            },
            &caller.actor(),
        )
        .await?)
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorker {
    pub(crate) name: String,
    /// Skill key to level 1–5, e.g. `{"customer_support": 3}`.
    #[schema(value_type = Object)]
    pub(crate) skills: BTreeMap<String, u8>,
    #[serde(default)]
    pub(crate) languages: Vec<String>,
    /// Ids of the clients whose work this worker may see.
    #[serde(default)]
    pub(crate) clearances: Vec<String>,
    /// Tasks held at once per channel (`voice`, `chat`, `email`, `back_office`), e.g.
    /// `{"chat": 3, "back_office": 5}`; none on a channel not listed.
    #[schema(value_type = Object)]
    pub(crate) capacity: BTreeMap<Channel, u32>,
    /// Qualifications some steps require.
    #[serde(default)]
    pub(crate) certifications: Vec<String>,
    /// Ethical walls: clients and engagements this worker must never see.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) exclusions: Exclusions,
    /// Seconds of after-work following each task before the next one.
    #[serde(default)]
    pub(crate) wrap_up_secs: u32,
    /// The team the worker belongs to, e.g. `billing-nights`: metrics add up per team.
    pub(crate) team: Option<String>,
}

/// Workers (admins and managers).
#[utoipa::path(get, path = "/workers", tag = "workers", responses((status = 200, body = Vec<Object>), (status = 403, body = Problem)))]
pub async fn list_workers(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Worker>>> {
    Ok(Json(all_workers(&state, &caller).await?))
}

pub(crate) async fn all_workers(state: &AppState, caller: &Caller) -> ApiResult<Vec<Worker>> {
    caller.require_manager()?;
    Ok(state.store.workers().await?)
}

/// Adds a worker profile (admins and managers).
#[utoipa::path(post, path = "/workers", tag = "workers", request_body = NewWorker,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_worker(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewWorker>,
) -> ApiResult<(StatusCode, Json<Worker>)> {
    let worker = add_worker(&state, &caller, new).await?;
    Ok((StatusCode::CREATED, Json(worker)))
}

/// Checks every field of a new worker, reporting all problems at once, and stores it.
pub(crate) async fn add_worker(
    state: &AppState,
    caller: &Caller,
    new: NewWorker,
) -> ApiResult<Worker> {
    caller.require_manager()?;
    let mut errors = Vec::new();
    let mut field = |name: String, message: String| {
        errors.push(delego_core::definition::FieldError {
            field: name,
            code: "invalid".into(),
            message,
        });
    };
    let name = Name::parse(&new.name)
        .map_err(|e| field("name".into(), e.0))
        .ok();
    let mut skills = BTreeMap::new();
    for (skill, level) in &new.skills {
        match (Key::parse(skill), SkillLevel::new(*level)) {
            (Ok(skill), Ok(level)) => {
                skills.insert(skill, level);
            }
            (Err(e), _) | (_, Err(e)) => field(format!("skills.{skill}"), e.0),
        }
    }
    let mut languages = BTreeSet::new();
    for (n, tag) in new.languages.iter().enumerate() {
        match Language::parse(tag) {
            Ok(language) => {
                languages.insert(language);
            }
            Err(e) => field(format!("languages[{n}]"), e.0),
        }
    }
    let mut certifications = BTreeSet::new();
    for (n, certification) in new.certifications.iter().enumerate() {
        match Key::parse(certification) {
            Ok(key) => {
                certifications.insert(key);
            }
            Err(e) => field(format!("certifications[{n}]"), e.0),
        }
    }
    let mut clearances = BTreeSet::new();
    for (n, id) in new.clearances.iter().enumerate() {
        match id.parse::<ClientId>() {
            Ok(client) if state.store.client(client).await.is_ok() => {
                clearances.insert(client);
            }
            _ => field(format!("clearances[{n}]"), format!("no client `{id}`")),
        }
    }
    let team = match new.team.as_deref().map(Key::parse).transpose() {
        Ok(team) => team,
        Err(e) => {
            field("team".into(), e.0);
            None
        }
    };
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation {
            detail: format!("{} fields have problems", errors.len()),
            errors,
        });
    };
    let worker = Worker {
        id: WorkerId::new(),
        name,
        skills,
        languages,
        clearances,
        capacity: new.capacity,
        presence: Presence::Offline,
        certifications,
        exclusions: new.exclusions,
        idle_since: None,
        wrap_up_secs: new.wrap_up_secs,
        team,
    };
    state.store.create_worker(&worker, &caller.actor()).await?;
    Ok(worker)
}

/// A worker profile: managers see any, a worker its own.
#[utoipa::path(get, path = "/workers/{id}", tag = "workers", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_worker(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Worker>> {
    let id: WorkerId = parse_id(&id, "worker")?;
    if !caller.role().manages() && caller.user.worker_id != Some(id) {
        return Err(ApiError::NotFound("worker"));
    }
    Ok(Json(state.store.worker(id).await?))
}

/// Sets a worker's presence: `available`, `break` (with a reason) or `offline`.
#[utoipa::path(put, path = "/workers/{id}/presence", tag = "workers", params(("id" = String, Path)),
    request_body = Object, responses((status = 200, body = Object), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(presence): ApiJson<Presence>,
) -> ApiResult<Json<Worker>> {
    let id: WorkerId = parse_id(&id, "worker")?;
    if !caller.role().manages() && caller.user.worker_id != Some(id) {
        return Err(ApiError::NotFound("worker"));
    }
    if let Presence::Break { reason } = &presence
        && reason.trim().is_empty()
    {
        return Err(ApiError::field(
            "reason",
            "required",
            "say why you take a break",
        ));
    }
    Ok(Json(
        state
            .store
            .set_presence(id, presence, &caller.actor())
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceView {
    key: String,
    version: u32,
    name: String,
    #[schema(value_type = String, format = DateTime)]
    published_at: jiff::Timestamp,
}

impl From<ServiceVersion> for ServiceView {
    fn from(v: ServiceVersion) -> Self {
        Self {
            key: v.key,
            version: v.version,
            name: v.name,
            published_at: v.published_at,
        }
    }
}

/// The service catalog: every published version.
#[utoipa::path(get, path = "/services", tag = "services", responses((status = 200, body = Vec<ServiceView>)))]
pub async fn list_services(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<ServiceView>>> {
    Ok(Json(
        state
            .store
            .services()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// One service version's definition: intake form, steps and SLA defaults.
#[utoipa::path(get, path = "/services/{key}/versions/{version}", tag = "services",
    params(("key" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_service(
    State(state): State<AppState>,
    _caller: Caller,
    Path((key, version)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = Key::parse(&key).map_err(|_| ApiError::NotFound("service version"))?;
    let version: u32 = parse_id(&version, "service version")?;
    let definition = state.store.service(&key, version).await?;
    Ok(Json(
        serde_json::to_value(definition.as_ref()).map_err(anyhow::Error::from)?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEngagement {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) service_key: String,
    pub(crate) service_version: u32,
    #[serde(default)]
    pub(crate) settings: SettingsBody,
}

/// How an engagement tunes its pinned process.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// Wait step to duration, e.g. `{"await_reply": "48h"}`: how long the step waits before
    /// its timeout (for customer support: the quiet period before a ticket closes itself).
    #[serde(default)]
    #[schema(value_type = Object)]
    wait_timers: BTreeMap<String, String>,
    /// Its share of shared workers relative to other engagements (1 to 1000; 1 if unset):
    /// with weights 2 and 1, two tasks of the first are served for each of the second.
    weight: Option<u32>,
    /// The business hours SLA clocks and step deadlines count in, e.g. `{"zone":
    /// "Europe/Bratislava", "hours": {"mon": ["08:00-12:00", "13:00-17:00"]}, "holidays":
    /// ["2026-12-24"], "exceptions": {"2026-12-31": ["09:00-12:00"]}}`. Always open if unset.
    #[schema(value_type = Object)]
    calendar: Option<delego_core::calendar::CalendarSpec>,
    /// SLA targets replacing the service's defaults where set.
    #[serde(default)]
    sla: SlaBody,
    /// Cells replacing those of the service's priority matrix, impact value to urgency
    /// value to priority, for every pair: e.g. `{"high": {"high": "urgent", "medium":
    /// "high", "low": "normal"}, …}`.
    #[schema(value_type = Option<Object>)]
    priority_matrix: Option<delego_core::definition::MatrixCells>,
    /// Its e-mail channel: `{"address": "support@acme.example", "from_name": "ACME
    /// Support", "signature": "…", "open_from_unknown": false, "subject_field": "subject",
    /// "body_field": "description", "defaults": {…}, "hourly_limit": 20}`; only `address`
    /// is required. No e-mail when unset.
    #[schema(value_type = Option<Object>)]
    mail: Option<delego_core::model::MailSettings>,
}

/// An engagement's SLA targets: business durations like `"4h"` or `"2d"`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaBody {
    first_response: Option<String>,
    next_response: Option<String>,
    resolution: Option<String>,
    /// The due time of a step that sets none of its own.
    step: Option<String>,
    /// A clock past this share of its target (1 to 100) is at risk.
    warn_at_percent: Option<u8>,
    /// What a clock at risk sets off: any of `notify_team_lead`, `raise_priority`,
    /// `reassign` (default: notify).
    #[schema(value_type = Option<Vec<String>>)]
    on_warning: Option<Vec<delego_core::sla::EscalationAction>>,
    /// What a breach sets off (default: notify and raise the priority).
    #[schema(value_type = Option<Vec<String>>)]
    on_breach: Option<Vec<delego_core::sla::EscalationAction>>,
}

impl SlaBody {
    fn parse(self) -> ApiResult<delego_core::sla::SlaOverrides> {
        let duration = |name: &str, text: Option<String>| {
            text.map(|text| {
                parse_duration(&text).map_err(|e| invalid(&format!("settings.sla.{name}"), e))
            })
            .transpose()
        };
        if self
            .warn_at_percent
            .is_some_and(|p| !(1..=100).contains(&p))
        {
            return Err(ApiError::field(
                "settings.sla.warn_at_percent",
                "out_of_range",
                "use 1 to 100",
            ));
        }
        Ok(delego_core::sla::SlaOverrides {
            first_response: duration("first_response", self.first_response)?,
            next_response: duration("next_response", self.next_response)?,
            resolution: duration("resolution", self.resolution)?,
            step: duration("step", self.step)?,
            warn_at_percent: self.warn_at_percent,
            on_warning: self.on_warning,
            on_breach: self.on_breach,
        })
    }
}

impl SettingsBody {
    fn parse(self) -> ApiResult<EngagementSettings> {
        let mut wait_timers = BTreeMap::new();
        for (step, duration) in self.wait_timers {
            let field = format!("settings.wait_timers.{step}");
            let key = Key::parse(&step).map_err(|e| invalid(&field, e))?;
            let duration = parse_duration(&duration).map_err(|e| invalid(&field, e))?;
            wait_timers.insert(key, duration);
        }
        if self.weight.is_some_and(|w| !(1..=1000).contains(&w)) {
            return Err(ApiError::field(
                "settings.weight",
                "out_of_range",
                "use 1 to 1000",
            ));
        }
        let calendar = self
            .calendar
            .map(delego_core::calendar::BusinessCalendar::try_from)
            .transpose()
            .map_err(|e| invalid("settings.calendar", e))?;
        Ok(EngagementSettings {
            wait_timers,
            weight: self.weight,
            calendar,
            sla: self.sla.parse()?,
            priority_matrix: self.priority_matrix,
            // Addresses are compared and name maildirs lower-cased.
            mail: self.mail.map(|mut mail| {
                if let Ok(lower) = EmailAddress::parse(&mail.address.as_str().to_lowercase()) {
                    mail.address = lower;
                }
                mail
            }),
        })
    }
}

/// Engagements of the clients the caller may see.
#[utoipa::path(get, path = "/engagements", tag = "engagements", responses((status = 200, body = Vec<Object>)))]
pub async fn list_engagements(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Engagement>>> {
    Ok(Json(visible_engagements(&state, &caller).await?))
}

pub(crate) async fn visible_engagements(
    state: &AppState,
    caller: &Caller,
) -> ApiResult<Vec<Engagement>> {
    let all = state.store.engagements(None).await?;
    Ok(all
        .into_iter()
        .filter(|e| caller.scope.allows(e.client_id))
        .collect())
}

/// Contracts a client for a pinned service version (admins and managers).
#[utoipa::path(post, path = "/engagements", tag = "engagements", request_body = NewEngagement,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_engagement(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewEngagement>,
) -> ApiResult<(StatusCode, Json<Engagement>)> {
    let engagement = add_engagement(&state, &caller, new).await?;
    Ok((StatusCode::CREATED, Json(engagement)))
}

pub(crate) async fn add_engagement(
    state: &AppState,
    caller: &Caller,
    new: NewEngagement,
) -> ApiResult<Engagement> {
    caller.require_manager()?;
    let client_id: ClientId = new
        .client_id
        .parse()
        .map_err(|_| invalid("client_id", "not a client id"))?;
    let name = Name::parse(&new.name).map_err(|e| invalid("name", e))?;
    let key = Key::parse(&new.service_key).map_err(|e| invalid("service_key", e))?;
    let settings = new.settings.parse()?;
    if let Some(mail) = &settings.mail {
        let definition = state.store.service(&key, new.service_version).await?;
        crate::mail::check_settings(state, None, &definition, mail).await?;
    }
    Ok(state
        .store
        .create_engagement(
            client_id,
            name,
            &key,
            new.service_version,
            settings,
            &caller.actor(),
        )
        .await?)
}

/// One engagement.
#[utoipa::path(get, path = "/engagements/{id}", tag = "engagements", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_engagement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Engagement>> {
    let engagement = state.store.engagement(parse_id(&id, "engagement")?).await?;
    Ok(Json(in_scope(
        &caller,
        engagement.client_id,
        engagement.clone(),
        "engagement",
    )?))
}

/// Replaces an engagement's settings (admins and managers). Items already waiting keep the
/// timers they started with.
#[utoipa::path(put, path = "/engagements/{id}/settings", tag = "engagements", params(("id" = String, Path)),
    request_body = SettingsBody,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn set_engagement_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(settings): ApiJson<SettingsBody>,
) -> ApiResult<Json<Engagement>> {
    let engagement = state.store.engagement(parse_id(&id, "engagement")?).await?;
    in_scope(&caller, engagement.client_id, (), "engagement")?;
    caller.require_manager()?;
    let settings = settings.parse()?;
    if let Some(mail) = &settings.mail {
        let definition = state
            .store
            .service(&engagement.service_key, engagement.service_version)
            .await?;
        crate::mail::check_settings(&state, Some(engagement.id), &definition, mail).await?;
    }
    Ok(Json(
        state
            .store
            .set_engagement_settings(engagement.id, settings, &caller.actor())
            .await?,
    ))
}
