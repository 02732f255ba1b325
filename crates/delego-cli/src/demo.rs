//! `delego demo`: a living floor to look at. Seeds three clients with support engagements
//! and an engagement of every other built-in service, workers and users, a backlog of
//! work, then keeps new work arriving and simulated agents working while it serves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use delego_core::definition::{FieldType, ServiceDefinition};
use delego_core::id::{ClientId, EngagementId, WorkerId};
use delego_core::identity::{Preferences, Role};
use delego_core::knowledge::ArticleDraft;
use delego_core::model::{Actor, Presence, Worker};
use delego_core::routing::Channel;
use delego_core::values::{EmailAddress, Key, Language, Name, Priority, SkillLevel};
use delego_server::auth;
use delego_store::{Backend, NewItem, NewMessage, NewUser};
use serde_json::json;

use crate::{DatabaseArgs, catalog, serve};

mod sample;

/// Every demo user signs in with this password.
pub const DEMO_PASSWORD: &str = "delego-demo-2026";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the demo data lives.
    #[arg(
        long,
        env = "DELEGO_DATABASE_URL",
        default_value = "sqlite://delego-data/demo.db"
    )]
    pub database_url: String,
    #[command(flatten)]
    pub node: serve::NodeArgs,
    /// Seed and exit instead of serving (for scripts and tests).
    #[arg(long)]
    pub seed_only: bool,
}

struct Floor {
    engagements: Vec<DemoEngagement>,
    bots: Vec<WorkerId>,
}

struct DemoEngagement {
    client: ClientId,
    id: EngagementId,
    definition: Arc<ServiceDefinition>,
    subjects: &'static [&'static str],
}

/// How many policies the demo's insurance client has; claims name them in turn.
const DEMO_POLICIES: u64 = 40;

fn policy_number(n: u64) -> String {
    format!("POL-{}", 10_000 + n % DEMO_POLICIES)
}

/// The built-in services besides customer support, each contracted by one demo client
/// (by index into the clients), with what its items are typically about. A service the
/// catalog does not ship is skipped.
struct DemoService {
    key: &'static str,
    client: usize,
    engagement: &'static str,
    subjects: &'static [&'static str],
}

const OTHER_SERVICES: &[DemoService] = &[
    DemoService {
        key: "technical-support",
        client: 2,
        engagement: "Initech product support",
        subjects: &[
            "VPN client will not connect",
            "Licence key rejected",
            "Sync fails after the update",
            "Error 0x80070005 during install",
            "API answers 502 since this morning",
        ],
    },
    DemoService {
        key: "it-helpdesk",
        client: 1,
        engagement: "Globex IT service desk",
        subjects: &[
            "Laptop does not boot",
            "Access to the finance share",
            "Outlook keeps asking for my password",
            "New starter: accounts and laptop",
            "Printer on floor 3 jams",
        ],
    },
    DemoService {
        key: "telemarketing",
        client: 0,
        engagement: "Acme winter campaign",
        subjects: &["Winter sale"],
    },
    DemoService {
        key: "insurance-claims",
        client: 1,
        engagement: "Globex home insurance claims",
        subjects: &[
            "Water damage in the kitchen",
            "Stolen bicycle",
            "Storm damage to the roof",
        ],
    },
];

const SUBJECTS: &[&str] = &[
    "Order arrived damaged",
    "Cannot reset my password",
    "Invoice shows the wrong VAT",
    "Where is my parcel?",
    "Refund not received after 14 days",
    "App crashes when I open my account",
    "Change of delivery address",
    "Charged twice for one order",
    "Loyalty points missing",
    "How do I cancel my subscription?",
];

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let database = DatabaseArgs {
        database_url: args.database_url.clone(),
        max_connections: delego_store::DEFAULT_MAX_CONNECTIONS,
    };
    let store = database.open().await?;
    let definitions = catalog::publish_built_in(store.as_ref()).await?;
    let floor = match seed(store.as_ref(), &definitions).await? {
        Some(floor) => floor,
        None => {
            println!("The demo data is already there; starting the flow again.");
            existing_floor(store.as_ref()).await?
        }
    };
    print_sign_ins();
    if args.seed_only {
        return Ok(());
    }
    tokio::spawn(keep_work_flowing(store.clone(), floor));
    serve::serve_until_stopped(store, &args.node).await
}

fn print_sign_ins() {
    println!("Sign in with any of these (password `{DEMO_PASSWORD}`):");
    for (email, what) in [
        ("admin@demo.delego.dev", "admin"),
        ("manager@demo.delego.dev", "operations manager"),
        ("lucia@demo.delego.dev", "team lead, all clients"),
        (
            "jana@demo.delego.dev",
            "agent, English and Slovak, all clients",
        ),
        (
            "peter@demo.delego.dev",
            "agent, Acme Retail only; the web UI in Slovak",
        ),
        ("service@acme.example", "client user of Acme Retail"),
        ("support@globex.example", "client user of Globex Bank"),
    ] {
        println!("  {email:<28} {what}");
    }
    println!(
        "Mail to the support engagements: drop a message into <data-dir>/maildirs/<address>/new/ \
         ({}, …)",
        demo_mail_address("Acme Retail")
    );
}

/// The address a demo client's support engagement takes mail at.
fn demo_mail_address(client_name: &str) -> String {
    let slug = client_name.to_lowercase().replace(' ', "-");
    format!("help@{slug}.example")
}

fn demo_actor() -> Actor {
    Actor::Operator("demo".into())
}

fn name(s: &str) -> anyhow::Result<Name> {
    Name::parse(s).map_err(|e| anyhow::anyhow!("{e}"))
}

fn email(s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(s).map_err(|e| anyhow::anyhow!("{e}"))
}

fn at_level(skills: &BTreeSet<Key>, level: u8) -> anyhow::Result<BTreeMap<Key, SkillLevel>> {
    let level = SkillLevel::new(level).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(skills.iter().map(|skill| (skill.clone(), level)).collect())
}

async fn engage(
    store: &dyn Backend,
    client: ClientId,
    engagement_name: &str,
    definition: &Arc<ServiceDefinition>,
    subjects: &'static [&'static str],
) -> anyhow::Result<DemoEngagement> {
    let engagement = store
        .create_engagement(
            client,
            name(engagement_name)?,
            &definition.key,
            definition.version,
            Default::default(),
            &demo_actor(),
        )
        .await?;
    Ok(DemoEngagement {
        client,
        id: engagement.id,
        definition: definition.clone(),
        subjects,
    })
}

fn languages(tags: &[&str]) -> BTreeSet<Language> {
    tags.iter()
        .filter_map(|t| Language::parse(t).ok())
        .collect()
}

/// Seeds the demo once; `None` when it is already seeded.
async fn seed(
    store: &dyn Backend,
    definitions: &[Arc<ServiceDefinition>],
) -> anyhow::Result<Option<Floor>> {
    if !store.clients().await?.is_empty() {
        return Ok(None);
    }
    let actor = demo_actor();
    let mut engagements = Vec::new();
    let mut clients = Vec::new();
    let support = definitions
        .iter()
        .find(|definition| definition.key.as_str() == "customer-support")
        .ok_or_else(|| anyhow::anyhow!("the catalog has no customer support service"))?;
    for client_name in ["Acme Retail", "Globex Bank", "Initech Software"] {
        let client = store.create_client(name(client_name)?, &actor).await?;
        let engagement = engage(
            store,
            client.id,
            &format!("{client_name} support"),
            support,
            SUBJECTS,
        )
        .await?;
        // Customer support takes mail too: drop a message into its maildir to see it.
        let mail = delego_core::model::MailSettings {
            from_name: Some(format!("{client_name} Support")),
            signature: Some(format!("{client_name} Support")),
            open_from_unknown: true,
            ..delego_core::model::MailSettings::new(email(&demo_mail_address(client_name))?)
        };
        let settings = delego_core::model::EngagementSettings {
            mail: Some(mail),
            ..Default::default()
        };
        store
            .set_engagement_settings(engagement.id, settings, &actor)
            .await?;
        engagements.push(engagement);
        clients.push(client.id);
    }
    for service in OTHER_SERVICES {
        if let Some(definition) = definitions.iter().find(|d| d.key.as_str() == service.key) {
            let client = clients[service.client];
            engagements.push(
                engage(
                    store,
                    client,
                    service.engagement,
                    definition,
                    service.subjects,
                )
                .await?,
            );
        }
    }
    // The claims client's policy register: policies the demo's claims name.
    if let Some(claims) = engagements
        .iter()
        .find(|e| e.definition.key.as_str() == "insurance-claims")
    {
        let policies = (0..DEMO_POLICIES)
            .map(|n| delego_store::NewEntry {
                key: policy_number(n),
                data: json!({"holder": format!("Customer {n}"), "start": "2025-01-01",
                             "end": "2027-12-31", "covered": "water fire theft storm glass"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            })
            .collect();
        let register = Key::parse("policies").map_err(|e| anyhow::anyhow!("{e}"))?;
        store
            .upsert_register_entries(&register, Some(claims.client), policies, &actor)
            .await?;
    }
    // Everyone works every service the demo runs.
    let skills: BTreeSet<Key> = definitions
        .iter()
        .flat_map(|definition| definition.skills.iter().cloned())
        .collect();
    let all: BTreeSet<ClientId> = clients.iter().copied().collect();
    let acme_only = BTreeSet::from([clients[0]]);

    let hash = auth::hash_password(DEMO_PASSWORD.into()).await?;
    let add_user = async |address: &str,
                          full_name: &str,
                          role: Role,
                          client: Option<ClientId>,
                          worker: Option<WorkerId>| {
        store
            .create_user(
                NewUser {
                    email: email(address)?,
                    name: name(full_name)?,
                    role,
                    client_id: client,
                    worker_id: worker,
                    password_hash: Some(hash.clone()),
                },
                &actor,
            )
            .await
            .map_err(anyhow::Error::from)
    };
    add_user(
        "admin@demo.delego.dev",
        "Alena Admin",
        Role::Admin,
        None,
        None,
    )
    .await?;
    add_user(
        "manager@demo.delego.dev",
        "Marek Manager",
        Role::Manager,
        None,
        None,
    )
    .await?;
    add_user(
        "service@acme.example",
        "Ann Acme",
        Role::ClientUser,
        Some(clients[0]),
        None,
    )
    .await?;
    add_user(
        "support@globex.example",
        "Gus Globex",
        Role::ClientUser,
        Some(clients[1]),
        None,
    )
    .await?;

    let people = [
        (
            "Lucia Kováčová",
            "lucia@demo.delego.dev",
            Role::TeamLead,
            5,
            &["en", "sk"][..],
            &all,
        ),
        (
            "Jana Nováková",
            "jana@demo.delego.dev",
            Role::Agent,
            4,
            &["en", "sk"][..],
            &all,
        ),
        (
            "Peter Horváth",
            "peter@demo.delego.dev",
            Role::Agent,
            2,
            &["en", "sk", "hu"][..],
            &acme_only,
        ),
    ];
    let bratislava = Key::parse("bratislava").map_err(|e| anyhow::anyhow!("{e}"))?;
    for (full_name, address, role, level, tongues, clearances) in people {
        let worker = Worker {
            id: WorkerId::new(),
            name: name(full_name)?,
            skills: at_level(&skills, level)?,
            languages: languages(tongues),
            clearances: clearances.clone(),
            capacity: [
                (Channel::Email, 3),
                (Channel::BackOffice, 3),
                (Channel::Voice, 1),
                (Channel::Chat, 2),
            ]
            .into(),
            presence: Presence::Offline,
            certifications: Default::default(),
            exclusions: Default::default(),
            idle_since: None,
            wrap_up_secs: 0,
            team: Some(bratislava.clone()),
        };
        store.create_worker(&worker, &actor).await?;
        let user = add_user(address, full_name, role, None, Some(worker.id)).await?;
        store
            .set_preferences(
                user.id,
                &Preferences {
                    // Peter shows the UI in Slovak whatever his browser says.
                    language: (address == "peter@demo.delego.dev").then(|| "sk".to_owned()),
                    time_zone: Some("Europe/Bratislava".to_owned()),
                },
                &actor,
            )
            .await?;
    }
    // Simulated colleagues who keep the floor moving while you look around.
    let mut bots = Vec::new();
    for (n, tongues) in [&["en"][..], &["en", "de"][..], &["en", "sk"][..]]
        .into_iter()
        .enumerate()
    {
        let worker = Worker {
            id: WorkerId::new(),
            name: name(&format!("Simulated agent {}", n + 1))?,
            skills: at_level(&skills, 5)?,
            languages: languages(tongues),
            clearances: all.clone(),
            capacity: Channel::ALL
                .into_iter()
                .map(|channel| (channel, 1))
                .collect(),
            presence: Presence::Available,
            certifications: Default::default(),
            exclusions: Default::default(),
            idle_since: None,
            wrap_up_secs: 0,
            team: Key::parse("simulated").ok(),
        };
        store.create_worker(&worker, &actor).await?;
        bots.push(worker.id);
    }

    let floor = Floor { engagements, bots };
    for n in 0..36 {
        submit_ticket(store, &floor, n).await?;
    }
    Ok(Some(floor))
}

/// The demo's floor as `delego demo` seeds it, then `rounds` more rounds of its flow
/// (a ticket every other round, a simulated agent answering one each round) run at once,
/// as if the demo had been running for a while, and a backlog of `rounds / 10` new
/// tickets: for measuring pages on demo data.
pub async fn seed_with_history(store: &dyn Backend, rounds: u64) -> anyhow::Result<()> {
    let definitions = catalog::publish_built_in(store).await?;
    let floor = match seed(store, &definitions).await? {
        Some(floor) => floor,
        None => existing_floor(store).await?,
    };
    for n in 0..rounds {
        flow_once(store, &floor, 1_000 + n).await?;
    }
    for n in 0..rounds / 10 {
        submit_ticket(store, &floor, 1_000 + rounds + n).await?;
    }
    Ok(())
}

async fn existing_floor(store: &dyn Backend) -> anyhow::Result<Floor> {
    let mut engagements = Vec::new();
    for engagement in store.engagements(None).await? {
        let definition = store
            .service(&engagement.service_key, engagement.service_version)
            .await?;
        let subjects = OTHER_SERVICES
            .iter()
            .find(|service| service.key == engagement.service_key.as_str())
            .map_or(SUBJECTS, |service| service.subjects);
        engagements.push(DemoEngagement {
            client: engagement.client_id,
            id: engagement.id,
            definition,
            subjects,
        });
    }
    let bots = store
        .workers()
        .await?
        .into_iter()
        .filter(|w| w.name.as_str().starts_with("Simulated agent"))
        .map(|w| w.id)
        .collect();
    Ok(Floor { engagements, bots })
}

async fn submit_ticket(store: &dyn Backend, floor: &Floor, n: u64) -> anyhow::Result<()> {
    let Some(engagement) = floor
        .engagements
        .get(n as usize % floor.engagements.len().max(1))
    else {
        return Ok(());
    };
    let definition = &engagement.definition;
    let mut data = sample::intake(
        &definition.intake,
        n * 7,
        engagement.subjects,
        jiff::Timestamp::now(),
    );
    if definition.key.as_str() == "customer-support" {
        // Tickets read like a real support inbox: channels, categories and languages mix.
        let subject = data["subject"]
            .as_str()
            .unwrap_or("Support request")
            .to_owned();
        data.insert(
            "description".into(),
            json!(format!("{subject}. Customer reference {}.", 10_000 + n)),
        );
        data.insert(
            "channel".into(),
            json!(["email", "web", "chat", "phone"][n as usize % 4]),
        );
        data.insert(
            "language".into(),
            json!(["en", "en", "sk", "en", "de"][n as usize % 5]),
        );
    }
    if definition.key.as_str() == "insurance-claims" {
        // Claims name the client's policies; one in twelve names none, and is declined.
        let policy = if n.is_multiple_of(12) {
            "POL-UNKNOWN".into()
        } else {
            policy_number(n)
        };
        data.insert("policy_number".into(), json!(policy));
    }
    let requester = match definition
        .requester_field
        .as_ref()
        .and_then(|field| data.get(field.as_str()))
        .and_then(|address| address.as_str())
    {
        Some(address) => Some(
            store
                .requester_for_email(engagement.client, &email(address)?, None)
                .await?
                .id,
        ),
        None => None,
    };
    let priority = match n % 9 {
        0 => Priority::High,
        4 => Priority::Urgent,
        7 => Priority::Low,
        _ => Priority::Normal,
    };
    let actor = requester.map_or_else(demo_actor, Actor::Requester);
    let new = |data| NewItem {
        engagement_id: engagement.id,
        data,
        priority,
        requester_id: requester,
        idempotency_key: None,
    };
    match store.create_item(new(data.clone()), &actor).await {
        // A sample the service's own rules refuse is sent again without the refused
        // fields, as a hurried requester would.
        Err(delego_store::StoreError::Invalid(errors)) => {
            for error in &errors {
                data.remove(error.field.split(['.', '[']).next().unwrap_or_default());
            }
            store.create_item(new(data), &actor).await?;
        }
        other => {
            other?;
        }
    }
    Ok(())
}

/// New tickets arrive every few seconds; simulated agents answer some, resolve others,
/// and requesters reply to waiting tickets now and then.
async fn keep_work_flowing(store: Arc<dyn Backend>, floor: Floor) {
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    for n in 1_000u64.. {
        tick.tick().await;
        if let Err(error) = flow_once(store.as_ref(), &floor, n).await {
            tracing::warn!(%error, "demo flow hiccup");
        }
    }
}

async fn flow_once(store: &dyn Backend, floor: &Floor, n: u64) -> anyhow::Result<()> {
    if n.is_multiple_of(2) {
        submit_ticket(store, floor, n).await?;
    }
    // As a node's runtime would: waits that are over (a contact's calling hours) move on.
    store.fire_due_timers().await?;
    let bot = floor.bots[n as usize % floor.bots.len().max(1)];
    if let Some(claimed) = store.claim_next_task(bot).await? {
        work_on(store, &claimed, bot, n).await?;
    }
    if n.is_multiple_of(5) {
        let waiting = store
            .items(&delego_store::ItemFilter {
                status: Some("waiting".into()),
                limit: 1,
                ..Default::default()
            })
            .await?;
        if let Some(item) = waiting.first()
            && let Some(requester) = item.requester_id
        {
            store
                .add_message(NewMessage {
                    item_id: item.id(),
                    author: Actor::Requester(requester),
                    visibility: delego_core::model::Visibility::Public,
                    body: "Thanks, but it still does not work.".into(),
                    attachments: Vec::new(),
                    event: Key::parse("requester_reply").ok(),
                    quoted: None,
                })
                .await?;
        }
    }
    Ok(())
}

/// A simulated agent's answer to the task it took: the step's usual outcome (now and then
/// another), with the form filled in. What the step refuses is left out and the answer
/// sent again; a task it still cannot answer goes back in line.
async fn work_on(
    store: &dyn Backend,
    claimed: &delego_store::Claimed,
    bot: WorkerId,
    n: u64,
) -> anyhow::Result<()> {
    let item = &claimed.item;
    let definition = store
        .service(&item.service_key, item.service_version)
        .await?;
    let step = definition.step(&claimed.task.step);
    let Some((outcome, mut data)) =
        step.and_then(|step| sample::answer(step, n, jiff::Timestamp::now()))
    else {
        store.release_task(claimed.task.id, bot).await?;
        return Ok(());
    };
    // Where a resolution must name a knowledge-base article, the agent writes one.
    let article_field = step
        .and_then(|step| step.work())
        .and_then(|work| {
            work.form
                .fields
                .iter()
                .find(|f| f.kind == FieldType::Article)
        })
        .map(|field| field.name.to_string());
    let mut write_article = false;
    for _ in 0..3 {
        let submitted = if write_article {
            let subject = item.state.data.get("subject").and_then(|s| s.as_str());
            let draft = ArticleDraft {
                title: format!("How we solved: {}", subject.unwrap_or("a support case")),
                body: "Steps that resolved it, written by the demo's simulated agent.".into(),
                tags: Vec::new(),
            };
            store
                .submit_task_with_article(
                    claimed.task.id,
                    bot,
                    outcome.clone(),
                    data.clone(),
                    draft,
                )
                .await
        } else {
            store
                .submit_task(claimed.task.id, bot, outcome.clone(), data.clone())
                .await
        };
        match submitted {
            Ok(_) => return Ok(()),
            Err(delego_store::StoreError::Invalid(errors)) => {
                for error in &errors {
                    let field = error.field.split(['.', '[']).next().unwrap_or_default();
                    write_article |= article_field.as_deref() == Some(field);
                    data.remove(field);
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    store.release_task(claimed.task.id, bot).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo is what a newcomer judges the product by: every built-in service must be
    /// there and its work must move, end to end, by the simulated agents alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulated_agents_finish_work_of_every_built_in_service() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Backend> = Arc::new(
            delego_store::SqliteStore::open(
                &dir.path().join("demo.db"),
                Arc::new(delego_core::clock::SystemClock),
            )
            .await
            .unwrap(),
        );
        seed_with_history(store.as_ref(), 600).await.unwrap();
        let engagements = store.engagements(None).await.unwrap();
        for (_, source) in catalog::BUILT_IN {
            let key = delego_core::definition::load_definition(source)
                .unwrap()
                .key;
            let engagement = engagements
                .iter()
                .find(|e| e.service_key == key)
                .unwrap_or_else(|| panic!("the demo runs no {key} engagement"));
            let finished = store
                .items(&delego_store::ItemFilter {
                    engagement_id: Some(engagement.id),
                    status: Some("completed".into()),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(!finished.is_empty(), "no {key} item was finished");
        }
    }
}
