//! `delego demo`: a living floor to look at. Seeds three clients with support engagements,
//! workers and users, a backlog of tickets, then keeps new tickets arriving and simulated
//! agents working while it serves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use delego_core::id::{ClientId, EngagementId, WorkerId};
use delego_core::identity::{Preferences, Role};
use delego_core::model::{Actor, Presence, Worker};
use delego_core::routing::Channel;
use delego_core::values::{EmailAddress, Key, Language, Name, Priority, SkillLevel};
use delego_server::auth;
use delego_store::{Backend, NewItem, NewMessage, NewUser};
use serde_json::json;

use crate::{DatabaseArgs, catalog, serve};

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
    engagements: Vec<(ClientId, EngagementId)>,
    bots: Vec<WorkerId>,
}

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
    catalog::publish_built_in(store.as_ref()).await?;
    let floor = match seed(store.as_ref()).await? {
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

fn support_skill(level: u8) -> anyhow::Result<BTreeMap<Key, SkillLevel>> {
    let key = Key::parse("customer_support").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(BTreeMap::from([(
        key,
        SkillLevel::new(level).map_err(|e| anyhow::anyhow!("{e}"))?,
    )]))
}

fn languages(tags: &[&str]) -> BTreeSet<Language> {
    tags.iter()
        .filter_map(|t| Language::parse(t).ok())
        .collect()
}

/// Seeds the demo once; `None` when it is already seeded.
async fn seed(store: &dyn Backend) -> anyhow::Result<Option<Floor>> {
    if !store.clients().await?.is_empty() {
        return Ok(None);
    }
    let actor = demo_actor();
    let service = Key::parse("customer-support").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut engagements = Vec::new();
    let mut clients = Vec::new();
    for client_name in ["Acme Retail", "Globex Bank", "Initech Software"] {
        let client = store.create_client(name(client_name)?, &actor).await?;
        let engagement = store
            .create_engagement(
                client.id,
                name(&format!("{client_name} support"))?,
                &service,
                crate::catalog::CUSTOMER_SUPPORT_VERSION,
                Default::default(),
                &actor,
            )
            .await?;
        engagements.push((client.id, engagement.id));
        clients.push(client.id);
    }
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
            skills: support_skill(level)?,
            languages: languages(tongues),
            clearances: clearances.clone(),
            capacity: [(Channel::Email, 3), (Channel::BackOffice, 3)].into(),
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
            skills: support_skill(3)?,
            languages: languages(tongues),
            clearances: all.clone(),
            capacity: [(Channel::Email, 1)].into(),
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
    catalog::publish_built_in(store).await?;
    let floor = match seed(store).await? {
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
    let engagements = store
        .engagements(None)
        .await?
        .into_iter()
        .map(|e| (e.client_id, e.id))
        .collect();
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
    let Some(&(client, engagement)) = floor
        .engagements
        .get(n as usize % floor.engagements.len().max(1))
    else {
        return Ok(());
    };
    let subject = SUBJECTS[(n as usize * 7) % SUBJECTS.len()];
    let language = ["en", "en", "sk", "en", "de"][n as usize % 5];
    let channel = ["email", "web", "chat", "phone"][n as usize % 4];
    let category = ["question", "problem", "billing", "complaint"][n as usize % 4];
    let address = format!("customer{}@example.com", n % 50);
    let requester = store
        .requester_for_email(client, &email(&address)?, None)
        .await?;
    let priority = match n % 9 {
        0 => Priority::High,
        4 => Priority::Urgent,
        7 => Priority::Low,
        _ => Priority::Normal,
    };
    store
        .create_item(
            NewItem {
                engagement_id: engagement,
                data: json!({
                    "subject": subject,
                    "description": format!("{subject}. Customer reference {}.", 10_000 + n),
                    "requester_email": address,
                    "channel": channel,
                    "category": category,
                    "language": language,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                priority,
                requester_id: Some(requester.id),
                idempotency_key: None,
            },
            &Actor::Requester(requester.id),
        )
        .await?;
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
    let bot = floor.bots[n as usize % floor.bots.len().max(1)];
    if let Some(claimed) = store.claim_next_task(bot).await? {
        let outcome = if n.is_multiple_of(3) {
            "resolved"
        } else {
            "replied"
        };
        let reply = json!({"reply": "Thank you for your patience — we have looked into this and here is what we found."});
        store
            .submit_task(
                claimed.task.id,
                bot,
                Key::parse(outcome).map_err(|e| anyhow::anyhow!("{e}"))?,
                reply.as_object().cloned().unwrap_or_default(),
            )
            .await?;
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
                })
                .await?;
        }
    }
    Ok(())
}
