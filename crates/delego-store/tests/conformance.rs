//! One conformance suite, run against both backends in the same test run: every case is
//! instantiated once on a fresh SQLite file and once on a fresh PostgreSQL database.
//!
//! PostgreSQL needs `DELEGO_TEST_DATABASE_URL` (an account that may create databases).
//! Without it the PostgreSQL cases are skipped locally and fail under CI (`CI=true`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use delego_core::engine::{Event, Position, Rejection};
use delego_core::id::WorkItemId;
use delego_core::id::{ClientId, WorkerId};
use delego_core::model::{Actor, Presence, TaskStatus, Worker};
use delego_core::values::{Key, Language, Name, Priority, SkillLevel};
use delego_store::testing::Harness;
use delego_store::{Backend, NewEntry};
use delego_store::{Disposition, InboundMail, MailStatus, NewKeptAside, NewOutboundMail};
use delego_store::{ItemFilter, NewItem, Store, StoreError};
use delego_store::{NewUser, ServiceVersion};
use jiff::SignedDuration;
use serde_json::{Map, Value as Json, json};

/// A small service touching every step kind: a decision, an automatic action, a human
/// step, a four-eyes review, a wait with a timer, and two ends.
const SUPPORT_V1: &str = r#"
[service]
key = "test-support"
version = 1
name = "Test support"
kind = "bpo"
skills = ["support", "qa"]
start = "triage"
language_field = "language"

[sla]
step = "4h"

[[intake]]
name = "subject"
type = "text"
required = true
max_length = 100

[[intake]]
name = "language"
type = "text"

[[steps]]
id = "triage"
kind = "decision"
branches = [ { when = "subject.startsWith('URGENT')", to = "escalate" } ]
otherwise = "answer"

[[steps]]
id = "escalate"
kind = "automatic"
action = "set_priority"
priority = "urgent"
next = "answer"

[[steps]]
id = "answer"
kind = "human"
skill = "support"
min_level = 2
handle_time = "5m"
outcomes = ["replied", "resolved"]
form = [ { name = "reply", type = "long_text", required = true } ]
[steps.on]
replied = "await_reply"
resolved = "check"

[[steps]]
id = "await_reply"
kind = "wait"
timer = "48h"
events = ["requester_reply"]
[steps.on]
requester_reply = "answer"
timeout = "closed"

[[steps]]
id = "check"
kind = "review"
skill = "qa"
handle_time = "2m"
reviews = "answer"
sample_percent = 100
on_approve = "resolved"
reject_to = "answer"

[[steps]]
id = "resolved"
kind = "end"
resolution = "resolved"

[[steps]]
id = "closed"
kind = "end"
resolution = "closed_without_reply"
"#;

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

fn data(value: Json) -> Map<String, Json> {
    value.as_object().cloned().unwrap()
}

fn operator() -> Actor {
    Actor::Operator("conformance".into())
}

struct Floor {
    client: ClientId,
    engagement: delego_core::id::EngagementId,
}

async fn client(store: &dyn Store, name: &str) -> ClientId {
    store
        .create_client(Name::parse(name).unwrap(), &operator())
        .await
        .unwrap()
        .id
}

/// Publishes `definition` (publishing the same text again changes nothing) and opens an
/// engagement of `client` on it, called `name` and run on `settings`.
async fn engage(
    store: &dyn Store,
    definition: &str,
    client: ClientId,
    name: &str,
    settings: delego_core::model::EngagementSettings,
) -> delego_core::model::Engagement {
    let service = store.publish_service(definition).await.unwrap();
    store
        .create_engagement(
            client,
            Name::parse(name).unwrap(),
            &service.key,
            service.version,
            settings,
            &operator(),
        )
        .await
        .unwrap()
}

/// A new client called `client_name` with one engagement, `engagement_name`, on the
/// service `definition`.
async fn floor_on(
    store: &dyn Store,
    definition: &str,
    client_name: &str,
    engagement_name: &str,
) -> Floor {
    let client = client(store, client_name).await;
    let engagement = engage(
        store,
        definition,
        client,
        engagement_name,
        Default::default(),
    )
    .await;
    Floor {
        client,
        engagement: engagement.id,
    }
}

/// A new client called `client_name` on the test service ([`SUPPORT_V1`]).
async fn floor(store: &dyn Store, client_name: &str) -> Floor {
    floor_on(store, SUPPORT_V1, client_name, "Support").await
}

/// A worker profile with `skills`, cleared for `clients`, taking back-office work.
fn profile(skills: &[(&str, u8)], clients: &[ClientId]) -> Worker {
    Worker {
        id: WorkerId::new(),
        name: Name::parse("Jana Nováková").unwrap(),
        skills: skills
            .iter()
            .map(|(s, l)| (key(s), SkillLevel::new(*l).unwrap()))
            .collect(),
        languages: BTreeSet::from([Language::parse("en").unwrap()]),
        clearances: clients.iter().copied().collect(),
        capacity: BTreeMap::from([(delego_core::routing::Channel::BackOffice, 100)]),
        presence: Presence::Available,
        certifications: Default::default(),
        exclusions: Default::default(),
        idle_since: None,
        wrap_up_secs: 0,
        team: None,
    }
}

async fn hire(store: &dyn Store, worker: Worker) -> WorkerId {
    store.create_worker(&worker, &operator()).await.unwrap();
    worker.id
}

/// A [`profile`] with `skills` and `clients`, stored.
async fn worker(store: &dyn Store, skills: &[(&str, u8)], clients: &[ClientId]) -> WorkerId {
    hire(store, profile(skills, clients)).await
}

/// An agent with `skill` at `level`, cleared for `client`, answering e-mail: the channel
/// of the front-office services (customer and technical support, the IT help desk).
async fn email_agent(store: &dyn Store, skill: &str, level: u8, client: ClientId) -> WorkerId {
    let agent = Worker {
        capacity: BTreeMap::from([(delego_core::routing::Channel::Email, 10)]),
        ..profile(&[(skill, level)], &[client])
    };
    hire(store, agent).await
}

fn new_item(floor: &Floor, subject: &str) -> NewItem {
    NewItem {
        engagement_id: floor.engagement,
        data: data(json!({ "subject": subject })),
        priority: Priority::Normal,
        requester_id: None,
        idempotency_key: None,
    }
}

/// An item for a front-office service: `subject`, a description and the requester's
/// address, with `fields` added (or replacing these).
fn ticket(floor: &Floor, subject: &str, fields: Json) -> NewItem {
    let mut item = new_item(floor, subject);
    item.data.extend(data(json!({
        "description": "It stopped working.", "requester_email": "ann@example.com",
    })));
    item.data.extend(data(fields));
    item
}

/// Creates `new` as the operator: the item as it started.
async fn create(store: &dyn Store, new: NewItem) -> delego_core::model::WorkItem {
    store.create_item(new, &operator()).await.unwrap().value
}

/// Cancels `item` as the operator, whatever its version, for `reason`.
async fn cancel(store: &dyn Store, item: WorkItemId, reason: &str) {
    let event = Event::Cancel {
        reason: reason.into(),
    };
    store
        .apply_event(item, None, event, &operator())
        .await
        .unwrap();
}

/// Declares one `#[tokio::test]` per backend for each case.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = super::Harness::sqlite().await;
                    super::$case(&harness).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres().await else { return };
                    super::$case(&harness).await;
                }
            )*
        }
    };
}

conformance!(
    an_inbound_message_is_kept_once_per_engagement_and_counted_per_sender_since_an_instant,
    a_reply_finds_its_item_by_the_first_id_that_names_one_and_never_in_another_engagement,
    an_items_message_ids_are_oldest_first_and_leave_out_automatic_mail,
    an_item_is_found_by_its_reference_only_in_its_own_engagement,
    a_call_is_taken_only_in_calling_hours_and_one_taken_before_the_close_stays_its_workers,
    queued_mail_is_taken_once_per_lease_retried_failed_sent_and_bounced_with_audits,
    nodes_taking_due_mail_at_once_never_take_the_same_mail,
    messages_kept_aside_keep_their_bytes_and_are_listed_per_client_newest_first,
    a_messages_quoted_history_is_kept_with_it,
    register_entries_are_upserted_read_paged_and_deleted_per_scope_matching_keys_without_case,
    register_fields_and_the_priority_matrix_apply_on_create_and_update,
    linked_children_follow_their_parents_resolution_in_the_same_transaction,
    an_untouched_task_escalates_on_the_calendar_and_its_holder_loses_it,
    articles_are_kept_per_engagement_searched_updated_and_named_by_a_resolution,
    a_merge_moves_the_thread_and_files_to_the_survivor_and_ends_the_duplicate_in_one_go,
    metric_facts_hold_the_ratings_given_in_the_window,
    a_submitted_answer_joins_the_thread_as_a_reply_or_a_note_and_held_tasks_show_the_hand,
    a_shorter_target_takes_effect_on_items_already_open,
    an_escalation_goes_to_the_lead_of_the_team_holding_the_work,
    a_breach_set_to_reassign_puts_the_task_back_for_someone_else,
    a_workers_team_is_kept_and_feeds_the_metric_facts,
    metric_facts_hold_the_windows_items_tasks_and_presence_and_refuse_long_windows,
    sla_escalations_notify_team_leads_once_then_raise_priority_at_the_breach,
    sla_clocks_count_business_hours_pause_while_waiting_and_stop_on_answers,
    push_offers_go_to_the_best_worker_then_the_next_and_missed_ones_lead_to_a_break,
    queue_counters_always_equal_a_full_recount,
    queues_at_a_glance_show_backlog_oldest_age_and_sla_risk,
    a_lapsed_lease_puts_the_task_back_in_its_place_and_a_renewed_one_holds,
    a_node_shutting_down_hands_tasks_back_kept_for_their_holders,
    waiting_workers_are_woken_when_a_task_opens,
    publishing_the_same_version_twice_is_a_no_op_but_changed_content_is_refused,
    a_new_item_runs_to_its_first_human_step_and_every_change_is_audited,
    invalid_intake_data_is_refused_with_every_field_problem,
    creates_with_the_same_idempotency_key_return_the_first_item_and_never_a_twin,
    two_updates_with_the_same_version_let_exactly_one_succeed,
    claims_follow_priority_then_age_and_respect_skill_level_clearance_and_language,
    concurrent_claimers_never_get_the_same_task_and_submit_without_starving_the_pool,
    a_review_is_never_done_by_the_worker_whose_work_it_reviews,
    a_released_task_keeps_its_place_in_line,
    a_wait_step_times_out_on_the_injected_clock_and_a_reply_resumes_work,
    items_in_flight_finish_on_the_version_they_started_on,
    cancelling_withdraws_open_tasks_and_a_finished_item_cannot_change,
    items_list_filters_by_client_and_pages_with_a_cursor,
    users_are_unique_by_email_whatever_its_case,
    a_client_user_needs_a_client_and_an_agent_needs_a_worker_profile,
    sessions_find_their_user_until_they_expire,
    deleted_and_expired_sessions_find_no_user,
    api_tokens_resolve_to_their_user_record_last_use_and_revoked_ones_resolve_to_nothing,
    one_user_cannot_revoke_another_users_token,
    requester_for_email_is_one_requester_per_address_and_client_whatever_its_case,
    concurrent_requester_for_email_calls_make_one_requester,
    secrets_are_32_bytes_and_stable_across_calls_and_racing_callers,
    engagements_workers_users_and_services_are_listed_filtered_and_ordered_as_documented,
    attachments_round_trip_and_are_audited_on_their_item_within_its_client,
    an_items_attachments_are_listed_oldest_first_without_those_of_other_items,
);

async fn publishing_the_same_version_twice_is_a_no_op_but_changed_content_is_refused(h: &Harness) {
    let store = h.store.as_ref();
    store.publish_service(SUPPORT_V1).await.unwrap();
    store.publish_service(SUPPORT_V1).await.unwrap();
    let changed = SUPPORT_V1.replace("max_length = 100", "max_length = 120");
    let err = store.publish_service(&changed).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let broken = SUPPORT_V1.replace("to = \"escalate\"", "to = \"nowhere\"");
    let err = store.publish_service(&broken).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidDefinition(p) if !p.is_empty()));
}

async fn a_new_item_runs_to_its_first_human_step_and_every_change_is_audited(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let created = store
        .create_item(new_item(&floor, "URGENT: printer on fire"), &operator())
        .await
        .unwrap();
    assert!(created.created);
    let item = created.value;
    assert_eq!(item.version, 1);
    assert_eq!(item.state.priority, Priority::Urgent, "escalate step ran");
    assert!(
        matches!(&item.state.position, Position::InStep { step, .. } if step.as_str() == "answer")
    );
    let tasks = store.item_tasks(item.id()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].status, TaskStatus::Open);
    assert_eq!(tasks[0].priority, Priority::Urgent);
    assert_eq!(
        tasks[0].due_at,
        Some(h.clock_now() + SignedDuration::from_hours(4))
    );

    let history = store.item_history(item.id()).await.unwrap();
    let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["item.created", "step.entered", "step.entered"]);
    let steps: Vec<&Json> = history.iter().map(|e| &e.detail["to"]).collect();
    assert_eq!(
        steps,
        [&json!("triage"), &json!("escalate"), &json!("answer")]
    );
    assert!(history.iter().all(|e| e.client_id == Some(floor.client)));
}

async fn invalid_intake_data_is_refused_with_every_field_problem(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let mut item = new_item(&floor, "x");
    item.data = data(json!({ "subject": "y".repeat(101), "colour": "red" }));
    let err = store.create_item(item, &operator()).await.unwrap_err();
    let StoreError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let fields: BTreeSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, BTreeSet::from(["subject", "colour"]));
    let listed = store
        .items(&ItemFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(listed.is_empty(), "nothing is stored for a refused item");
}

async fn creates_with_the_same_idempotency_key_return_the_first_item_and_never_a_twin(h: &Harness) {
    let store = h.store.clone();
    let floor = Arc::new(floor(store.as_ref(), "Acme").await);
    let mut first = new_item(&floor, "hello");
    first.idempotency_key = Some("req-42".into());
    let original = store.create_item(first.clone(), &operator()).await.unwrap();
    assert!(original.created);
    let replay = store.create_item(first, &operator()).await.unwrap();
    assert!(!replay.created);
    assert_eq!(replay.value.id(), original.value.id());

    // Racing creates with one fresh key: exactly one is created, all answer the same item.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let floor = floor.clone();
        racers.push(tokio::spawn(async move {
            let mut item = new_item(&floor, "race");
            item.idempotency_key = Some("req-43".into());
            store.create_item(item, &operator()).await.unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = HashSet::new();
    for racer in racers {
        let result = racer.await.unwrap();
        created += usize::from(result.created);
        ids.insert(result.value.id());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let all = store
        .items(&ItemFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "no twin was stored");
}

async fn two_updates_with_the_same_version_let_exactly_one_succeed(h: &Harness) {
    let store = h.store.clone();
    let floor = floor(store.as_ref(), "Acme").await;
    let item = store
        .create_item(new_item(&floor, "first"), &operator())
        .await
        .unwrap()
        .value;
    let update = |subject: &'static str| {
        let store = store.clone();
        let id = item.id();
        tokio::spawn(async move {
            store
                .update_item_data(id, 1, data(json!({ "subject": subject })), &operator())
                .await
        })
    };
    let (a, b) = (update("second"), update("third"));
    let results = [a.await.unwrap(), b.await.unwrap()];
    let succeeded: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].version, 2);
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Conflict(_))))
    );
    let stored = store.item(item.id()).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.state.data["subject"],
        succeeded[0].state.data["subject"]
    );
    let updates = store
        .item_history(item.id())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "item.updated")
        .count();
    assert_eq!(updates, 1, "only the successful update is audited");
}

async fn claims_follow_priority_then_age_and_respect_skill_level_clearance_and_language(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let low = store
        .create_item(new_item(&acme, "older"), &operator())
        .await
        .unwrap()
        .value;
    h.advance(SignedDuration::from_secs(60));
    let urgent = store
        .create_item(new_item(&acme, "URGENT newer"), &operator())
        .await
        .unwrap()
        .value;
    h.advance(SignedDuration::from_secs(60));
    let mut slovak = new_item(&acme, "po slovensky");
    slovak.data.insert("language".into(), json!("sk"));
    store.create_item(slovak, &operator()).await.unwrap();
    let foreign = store
        .create_item(new_item(&globex, "other client"), &operator())
        .await
        .unwrap()
        .value;

    let novice = worker(store, &[("support", 1)], &[acme.client]).await;
    assert!(
        store.claim_next_task(novice).await.unwrap().is_none(),
        "level 1 < 2"
    );

    let agent = worker(store, &[("support", 3)], &[acme.client]).await;
    let first = store.claim_next_task(agent).await.unwrap().unwrap();
    assert_eq!(first.item.id(), urgent.id(), "urgent first");
    let second = store.claim_next_task(agent).await.unwrap().unwrap();
    assert_eq!(second.item.id(), low.id(), "then the oldest");
    assert!(
        store.claim_next_task(agent).await.unwrap().is_none(),
        "no Slovak, no Globex clearance"
    );
    let globex_agent = worker(store, &[("support", 2)], &[globex.client]).await;
    let claimed = store.claim_next_task(globex_agent).await.unwrap().unwrap();
    assert_eq!(claimed.item.id(), foreign.id());
    assert_eq!(claimed.item.client_id, globex.client);

    store
        .set_presence(
            agent,
            Presence::Break {
                reason: "lunch".into(),
            },
            &operator(),
        )
        .await
        .unwrap();
    let mut another = new_item(&acme, "while on break");
    another.priority = Priority::High;
    store.create_item(another, &operator()).await.unwrap();
    assert!(
        store.claim_next_task(agent).await.unwrap().is_none(),
        "on a break"
    );
}

async fn concurrent_claimers_never_get_the_same_task_and_submit_without_starving_the_pool(
    h: &Harness,
) {
    let store = h.store.clone();
    let floor = floor(store.as_ref(), "Acme").await;
    let tasks = 40;
    for n in 0..tasks {
        store
            .create_item(new_item(&floor, &format!("item {n}")), &operator())
            .await
            .unwrap();
    }
    let mut claimers = Vec::new();
    for _ in 0..8 {
        let id = worker(store.as_ref(), &[("support", 5)], &[floor.client]).await;
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(claimed) = store.claim_next_task(id).await.unwrap() {
                // Submitting while the others claim and submit: on a pool smaller than the
                // number of claimers, no write may need a second connection to finish.
                store
                    .submit_task(
                        claimed.task.id,
                        id,
                        key("replied"),
                        data(json!({ "reply": "On its way." })),
                    )
                    .await
                    .unwrap();
                mine.push(claimed.task.id);
            }
            mine
        }));
    }
    // A caller with an unknown worker, claiming alongside: its claims share groups with
    // the others', and its failures must cost them nothing.
    let stranger = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let refused = store.claim_next_task(WorkerId::new()).await;
                assert!(
                    matches!(refused, Err(StoreError::NotFound("worker"))),
                    "{refused:?}"
                );
                tokio::task::yield_now().await;
            }
        })
    };
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    stranger.await.unwrap();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), tasks, "every task claimed");
    assert_eq!(distinct.len(), tasks, "no task claimed twice");
}

async fn a_review_is_never_done_by_the_worker_whose_work_it_reviews(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let item = store
        .create_item(new_item(&floor, "help"), &operator())
        .await
        .unwrap()
        .value;
    let both = worker(store, &[("support", 3), ("qa", 3)], &[floor.client]).await;
    let reviewer = worker(store, &[("qa", 3)], &[floor.client]).await;
    let answer = store.claim_next_task(both).await.unwrap().unwrap();
    let item_after = store
        .submit_task(
            answer.task.id,
            both,
            key("resolved"),
            data(json!({"reply": "Fixed."})),
        )
        .await
        .unwrap();
    assert!(
        matches!(&item_after.state.position, Position::InStep { step, .. } if step.as_str() == "check")
    );
    assert!(
        store.claim_next_task(both).await.unwrap().is_none(),
        "the author may not take the review"
    );
    let review = store.claim_next_task(reviewer).await.unwrap().unwrap();
    assert_eq!(review.item.id(), item.id());
    let done = store
        .submit_task(review.task.id, reviewer, key("approve"), Map::new())
        .await
        .unwrap();
    assert!(
        matches!(&done.state.position, Position::Completed { resolution, .. } if resolution.as_str() == "resolved")
    );

    // The engine also refuses the author at submission, whatever the routing did.
    let second = store
        .create_item(new_item(&floor, "again"), &operator())
        .await
        .unwrap()
        .value;
    let answer = store.claim_next_task(both).await.unwrap().unwrap();
    assert_eq!(answer.item.id(), second.id());
    store
        .submit_task(
            answer.task.id,
            both,
            key("resolved"),
            data(json!({"reply": "Done."})),
        )
        .await
        .unwrap();
    let err = store
        .apply_event(
            second.id(),
            None,
            Event::TaskSubmitted {
                step: key("check"),
                visit: store.item(second.id()).await.unwrap().state.visits,
                worker: both,
                outcome: key("approve"),
                data: Map::new(),
            },
            &Actor::Worker(both),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Rejected(Rejection::FourEyes)),
        "{err:?}"
    );
}

async fn a_released_task_keeps_its_place_in_line(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let first = store
        .create_item(new_item(&floor, "first"), &operator())
        .await
        .unwrap()
        .value;
    h.advance(SignedDuration::from_secs(30));
    store
        .create_item(new_item(&floor, "second"), &operator())
        .await
        .unwrap();
    let agent = worker(store, &[("support", 3)], &[floor.client]).await;
    let claimed = store.claim_next_task(agent).await.unwrap().unwrap();
    assert_eq!(claimed.item.id(), first.id());
    let other = worker(store, &[("support", 3)], &[floor.client]).await;
    let err = store
        .release_task(claimed.task.id, other)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "only the holder releases"
    );
    store.release_task(claimed.task.id, agent).await.unwrap();
    let again = store.claim_next_task(other).await.unwrap().unwrap();
    assert_eq!(
        again.task.id, claimed.task.id,
        "back at the head of the line"
    );
    let actions: Vec<String> = store
        .item_history(first.id())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.ends_with(&[
        "task.claimed".into(),
        "task.released".into(),
        "task.claimed".into()
    ]));
}

async fn a_wait_step_times_out_on_the_injected_clock_and_a_reply_resumes_work(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let agent = worker(store, &[("support", 3)], &[floor.client]).await;
    let quiet = store
        .create_item(new_item(&floor, "quiet"), &operator())
        .await
        .unwrap()
        .value;
    let task = store.claim_next_task(agent).await.unwrap().unwrap();
    let waiting = store
        .submit_task(
            task.task.id,
            agent,
            key("replied"),
            data(json!({"reply": "Try a restart?"})),
        )
        .await
        .unwrap();
    assert!(matches!(waiting.state.position, Position::Waiting { .. }));
    assert_eq!(waiting.state.data["reply"], json!("Try a restart?"));

    let chatty = store
        .create_item(new_item(&floor, "chatty"), &operator())
        .await
        .unwrap()
        .value;
    let task = store.claim_next_task(agent).await.unwrap().unwrap();
    store
        .submit_task(
            task.task.id,
            agent,
            key("replied"),
            data(json!({"reply": "Which model?"})),
        )
        .await
        .unwrap();
    let resumed = store
        .apply_event(
            chatty.id(),
            None,
            Event::External {
                name: key("requester_reply"),
            },
            &operator(),
        )
        .await
        .unwrap();
    assert!(
        matches!(&resumed.state.position, Position::InStep { step, .. } if step.as_str() == "answer")
    );

    h.advance(SignedDuration::from_hours(47));
    assert_eq!(store.fire_due_timers().await.unwrap(), 0, "not yet");
    h.advance(SignedDuration::from_hours(1));
    assert_eq!(
        store.fire_due_timers().await.unwrap(),
        1,
        "only the quiet item's timer"
    );
    let closed = store.item(quiet.id()).await.unwrap();
    assert!(
        matches!(&closed.state.position, Position::Completed { resolution, .. } if resolution.as_str() == "closed_without_reply")
    );
    assert_eq!(
        store.fire_due_timers().await.unwrap(),
        0,
        "a timer fires once"
    );
    let chatty = store.item(chatty.id()).await.unwrap();
    assert!(
        matches!(chatty.state.position, Position::InStep { .. }),
        "its stale timer was dropped"
    );
}

async fn items_in_flight_finish_on_the_version_they_started_on(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let v1_item = store
        .create_item(new_item(&floor, "old"), &operator())
        .await
        .unwrap()
        .value;
    // Version 2 drops the review: a resolved answer ends the item at once.
    let v2 = SUPPORT_V1
        .replace("version = 1", "version = 2")
        .replace("resolved = \"check\"", "resolved = \"resolved\"")
        .replace("skills = [\"support\", \"qa\"]", "skills = [\"support\"]");
    let v2 = remove_step(&v2, "check");
    let v2_engagement = engage(store, &v2, floor.client, "Support v2", Default::default()).await;
    let v2_item = store
        .create_item(
            NewItem {
                engagement_id: v2_engagement.id,
                ..new_item(&floor, "new")
            },
            &operator(),
        )
        .await
        .unwrap()
        .value;
    assert_eq!((v1_item.service_version, v2_item.service_version), (1, 2));

    let agent = worker(store, &[("support", 3)], &[floor.client]).await;
    let mut resolutions = BTreeMap::new();
    while let Some(claimed) = store.claim_next_task(agent).await.unwrap() {
        let item = store
            .submit_task(
                claimed.task.id,
                agent,
                key("resolved"),
                data(json!({"reply": "ok"})),
            )
            .await
            .unwrap();
        resolutions.insert(item.service_version, item.state.position.status());
    }
    assert_eq!(resolutions[&1], "active", "v1 waits for its review");
    assert_eq!(resolutions[&2], "completed", "v2 has no review");
}

fn remove_step(source: &str, step: &str) -> String {
    source
        .split("[[steps]]")
        .filter(|block| !block.contains(&format!("id = \"{step}\"")))
        .collect::<Vec<_>>()
        .join("[[steps]]")
}

async fn cancelling_withdraws_open_tasks_and_a_finished_item_cannot_change(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let item = store
        .create_item(new_item(&floor, "cancel me"), &operator())
        .await
        .unwrap()
        .value;
    let cancelled = store
        .apply_event(
            item.id(),
            Some(1),
            Event::Cancel {
                reason: "duplicate".into(),
            },
            &operator(),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.state.position.status(), "cancelled");
    let tasks = store.item_tasks(item.id()).await.unwrap();
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Cancelled));
    let agent = worker(store, &[("support", 3)], &[floor.client]).await;
    assert!(store.claim_next_task(agent).await.unwrap().is_none());
    let err = store
        .apply_event(
            item.id(),
            None,
            Event::Cancel {
                reason: "again".into(),
            },
            &operator(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected(Rejection::Finished)));
    let err = store
        .update_item_data(
            item.id(),
            cancelled.version,
            data(json!({"subject": "x"})),
            &operator(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected(Rejection::Finished)));
}

async fn items_list_filters_by_client_and_pages_with_a_cursor(h: &Harness) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    for n in 0..5 {
        store
            .create_item(new_item(&acme, &format!("acme {n}")), &operator())
            .await
            .unwrap();
    }
    store
        .create_item(new_item(&globex, "globex"), &operator())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .items(&ItemFilter {
                client_id: Some(acme.client),
                after,
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|i| i.id());
        seen.extend(page);
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|i| i.client_id == acme.client));
    let subjects: Vec<&Json> = seen.iter().map(|i| &i.state.data["subject"]).collect();
    assert_eq!(subjects[0], &json!("acme 4"), "newest first");
}

/// SQLite is single-node: a second store on the same file (in this process or another)
/// is refused with a message that says what to do.
#[tokio::test]
async fn sqlite_refuses_a_second_store_on_the_same_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delego.db");
    let clock = Arc::new(delego_core::clock::SystemClock);
    let _first = delego_store::SqliteStore::open(&path, clock.clone())
        .await
        .unwrap();
    let Err(StoreError::Locked(message)) =
        delego_store::SqliteStore::open(&path, clock.clone()).await
    else {
        panic!("a second store opened the same SQLite file");
    };
    assert!(message.contains("in use by process"), "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");
    drop(_first);
    delego_store::SqliteStore::open(&path, clock)
        .await
        .expect("free again once closed");
}

const CRASH_CHILD_ENV: &str = "DELEGO_CRASH_CHILD_DATABASE";

/// An acknowledged write survives a crash: a child process creates items and reports each
/// one after `create_item` returns; it is killed with SIGKILL mid-stream, and every item it
/// reported must be in the database when it is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_item_when_the_process_is_killed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delego.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writes_items_until_killed",
            "--nocapture",
        ])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("acknowledged ") {
            acknowledged.push(id.parse::<delego_core::id::WorkItemId>().unwrap());
            if acknowledged.len() == 150 {
                child.kill().unwrap(); // SIGKILL: no destructors, no clean shutdown
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acknowledged.len(), 150, "the child stopped early");

    let store = delego_store::SqliteStore::open(&path, Arc::new(delego_core::clock::SystemClock))
        .await
        .expect("the lock died with the process");
    for id in acknowledged {
        let item = store.item(id).await.expect("an acknowledged item was lost");
        assert_eq!(
            store.item_tasks(item.id()).await.unwrap().len(),
            1,
            "its task too"
        );
    }
}

/// Not a test on its own: the child process of the crash test above. Without the
/// environment variable it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writes_items_until_killed() {
    use std::io::Write;

    let Ok(path) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    let store =
        delego_store::SqliteStore::open(path.as_ref(), Arc::new(delego_core::clock::SystemClock))
            .await
            .unwrap();
    let floor = floor(&store, "Acme").await;
    let mut stdout = std::io::stdout().lock();
    for n in 0.. {
        let item = store
            .create_item(new_item(&floor, &format!("item {n}")), &operator())
            .await
            .unwrap();
        writeln!(stdout, "acknowledged {}", item.value.id()).unwrap();
        stdout.flush().unwrap();
    }
}

// ---- Directory: users, sessions, API tokens, requesters, attachments, secrets, listings.

fn email(address: &str) -> delego_core::values::EmailAddress {
    delego_core::values::EmailAddress::parse(address).unwrap()
}

fn new_user(
    address: &str,
    role: delego_core::identity::Role,
    client_id: Option<ClientId>,
    worker_id: Option<WorkerId>,
) -> NewUser {
    NewUser {
        email: email(address),
        name: Name::parse("Eva Nováková").unwrap(),
        role,
        client_id,
        worker_id,
        password_hash: None,
    }
}

fn manager(address: &str) -> NewUser {
    new_user(address, delego_core::identity::Role::Manager, None, None)
}

/// Stands in for the SHA-256 of a session or token secret.
fn secret_hash(seed: u8) -> Vec<u8> {
    vec![seed; 32]
}

async fn users_are_unique_by_email_whatever_its_case(h: &Harness) {
    let store = h.store.as_ref();
    let mut first = manager("Eva.Novak@Example.com");
    first.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    let eva = store.create_user(first, &operator()).await.unwrap();
    assert_eq!(eva.email.as_str(), "Eva.Novak@example.com", "kept as given");
    assert_eq!(eva.created_at, h.clock_now());

    let err = store
        .create_user(manager("eva.novak@EXAMPLE.com"), &operator())
        .await
        .unwrap_err();
    let StoreError::Conflict(message) = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("e-mail"), "{message}");

    let (found, hash) = store
        .user_by_email(&email("EVA.NOVAK@example.com"))
        .await
        .unwrap();
    assert_eq!(found, eva);
    assert_eq!(
        hash.as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    );
    store
        .set_password_hash(eva.id, "$argon2id$new", &operator())
        .await
        .unwrap();
    let (_, hash) = store.user_by_email(&eva.email).await.unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(store.user(eva.id).await.unwrap(), eva);
    assert_eq!(store.users(None).await.unwrap(), [eva]);

    let missing = delego_core::id::UserId::new();
    assert!(matches!(
        store.user(missing).await,
        Err(StoreError::NotFound("user"))
    ));
    assert!(matches!(
        store.user_by_email(&email("nobody@example.com")).await,
        Err(StoreError::NotFound("user"))
    ));
    assert!(matches!(
        store
            .set_password_hash(missing, "$argon2id$x", &operator())
            .await,
        Err(StoreError::NotFound("user"))
    ));
}

async fn a_client_user_needs_a_client_and_an_agent_needs_a_worker_profile(h: &Harness) {
    use delego_core::identity::Role;

    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let profile = worker(store, &[("support", 3)], &[floor.client]).await;
    let refused = [
        new_user("a@example.com", Role::ClientUser, None, None),
        new_user(
            "b@example.com",
            Role::ClientUser,
            Some(floor.client),
            Some(profile),
        ),
        new_user("c@example.com", Role::Agent, None, None),
        new_user("d@example.com", Role::Manager, Some(floor.client), None),
    ];
    for user in refused {
        let err = store.create_user(user, &operator()).await.unwrap_err();
        let StoreError::Invalid(errors) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "role");
    }
    let err = store
        .create_user(
            new_user(
                "e@example.com",
                Role::ClientUser,
                Some(ClientId::new()),
                None,
            ),
            &operator(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("client")), "{err:?}");
    let err = store
        .create_user(
            new_user("f@example.com", Role::Agent, None, Some(WorkerId::new())),
            &operator(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("worker")), "{err:?}");
    assert!(
        store.users(None).await.unwrap().is_empty(),
        "nothing is stored for a refused user"
    );

    let client_user = store
        .create_user(
            new_user("g@example.com", Role::ClientUser, Some(floor.client), None),
            &operator(),
        )
        .await
        .unwrap();
    assert_eq!(client_user.client_id, Some(floor.client));
    let agent = store
        .create_user(
            new_user("h@example.com", Role::Agent, None, Some(profile)),
            &operator(),
        )
        .await
        .unwrap();
    assert_eq!(agent.worker_id, Some(profile));
    assert_eq!(store.user(agent.id).await.unwrap().role, Role::Agent);
}

async fn sessions_find_their_user_until_they_expire(h: &Harness) {
    let store = h.store.as_ref();
    let eva = store
        .create_user(manager("eva@example.com"), &operator())
        .await
        .unwrap();
    let expires_at = h.clock_now() + SignedDuration::from_hours(1);
    store
        .create_session(eva.id, &secret_hash(1), expires_at)
        .await
        .unwrap();
    assert_eq!(
        store
            .session_user(&secret_hash(1), h.clock_now())
            .await
            .unwrap(),
        Some(eva.clone())
    );
    h.advance(SignedDuration::from_mins(59));
    assert_eq!(
        store
            .session_user(&secret_hash(1), h.clock_now())
            .await
            .unwrap(),
        Some(eva)
    );
    h.advance(SignedDuration::from_mins(1));
    assert_eq!(
        store
            .session_user(&secret_hash(1), h.clock_now())
            .await
            .unwrap(),
        None,
        "expired at its time"
    );
    let err = store
        .create_session(delego_core::id::UserId::new(), &secret_hash(2), expires_at)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
}

async fn deleted_and_expired_sessions_find_no_user(h: &Harness) {
    let store = h.store.as_ref();
    let eva = store
        .create_user(manager("eva@example.com"), &operator())
        .await
        .unwrap();
    let start = h.clock_now();
    store
        .create_session(
            eva.id,
            &secret_hash(1),
            start + SignedDuration::from_hours(1),
        )
        .await
        .unwrap();
    store
        .create_session(
            eva.id,
            &secret_hash(2),
            start + SignedDuration::from_hours(24),
        )
        .await
        .unwrap();
    store
        .create_session(
            eva.id,
            &secret_hash(3),
            start + SignedDuration::from_hours(24),
        )
        .await
        .unwrap();

    store.delete_session(&secret_hash(2)).await.unwrap();
    assert_eq!(
        store.session_user(&secret_hash(2), start).await.unwrap(),
        None,
        "signed out"
    );
    store.delete_session(&secret_hash(2)).await.unwrap();

    h.advance(SignedDuration::from_hours(2));
    assert_eq!(
        store.delete_expired_sessions(h.clock_now()).await.unwrap(),
        1
    );
    // Gone from the table, not only filtered: even a past `now` finds nothing.
    assert_eq!(
        store.session_user(&secret_hash(1), start).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .session_user(&secret_hash(3), h.clock_now())
            .await
            .unwrap(),
        Some(eva)
    );
    assert_eq!(
        store
            .session_user(&secret_hash(9), h.clock_now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.delete_expired_sessions(h.clock_now()).await.unwrap(),
        0
    );
}

async fn api_tokens_resolve_to_their_user_record_last_use_and_revoked_ones_resolve_to_nothing(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let eva = store
        .create_user(manager("eva@example.com"), &operator())
        .await
        .unwrap();
    let name = Name::parse("CI").unwrap();
    let token = store
        .create_api_token(
            eva.id,
            name.clone(),
            &secret_hash(7),
            "dlg_abcd",
            &Actor::User(eva.id),
        )
        .await
        .unwrap();
    assert_eq!(
        (token.user_id, &token.name, token.prefix.as_str()),
        (eva.id, &name, "dlg_abcd")
    );
    assert_eq!((token.last_used_at, token.revoked_at), (None, None));
    assert_eq!(
        store.api_tokens(eva.id).await.unwrap(),
        std::slice::from_ref(&token)
    );

    h.advance(SignedDuration::from_mins(5));
    let used_at = h.clock_now();
    let (used, user) = store
        .api_token_user(&secret_hash(7), used_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, eva);
    assert_eq!(used.id, token.id);
    assert_eq!(used.last_used_at, Some(used_at));
    assert_eq!(
        store.api_tokens(eva.id).await.unwrap()[0].last_used_at,
        Some(used_at)
    );
    assert!(
        store
            .api_token_user(&secret_hash(8), used_at)
            .await
            .unwrap()
            .is_none()
    );

    h.advance(SignedDuration::from_mins(5));
    let revoked = store
        .revoke_api_token(eva.id, token.id, &Actor::User(eva.id))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(h.clock_now()));
    assert!(
        store
            .api_token_user(&secret_hash(7), h.clock_now())
            .await
            .unwrap()
            .is_none()
    );
    h.advance(SignedDuration::from_mins(5));
    let again = store
        .revoke_api_token(eva.id, token.id, &Actor::User(eva.id))
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "revoking twice keeps the first time"
    );
    assert_eq!(store.api_tokens(eva.id).await.unwrap(), [revoked]);

    let err = store
        .create_api_token(
            delego_core::id::UserId::new(),
            name,
            &secret_hash(9),
            "dlg_x",
            &operator(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
}

async fn one_user_cannot_revoke_another_users_token(h: &Harness) {
    let store = h.store.as_ref();
    let eva = store
        .create_user(manager("eva@example.com"), &operator())
        .await
        .unwrap();
    let ivan = store
        .create_user(manager("ivan@example.com"), &operator())
        .await
        .unwrap();
    let token = store
        .create_api_token(
            eva.id,
            Name::parse("CI").unwrap(),
            &secret_hash(7),
            "dlg_abcd",
            &operator(),
        )
        .await
        .unwrap();
    let err = store
        .revoke_api_token(ivan.id, token.id, &Actor::User(ivan.id))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .revoke_api_token(
            eva.id,
            delego_core::id::ApiTokenId::new(),
            &Actor::User(eva.id),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let (still, owner) = store
        .api_token_user(&secret_hash(7), h.clock_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((still.revoked_at, owner.id), (None, eva.id));
    assert!(store.api_tokens(ivan.id).await.unwrap().is_empty());
}

async fn requester_for_email_is_one_requester_per_address_and_client_whatever_its_case(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let pat = store
        .requester_for_email(
            acme.client,
            &email("Pat.Smith@Example.com"),
            Some(Name::parse("Pat").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(pat.client_id, acme.client);
    assert_eq!(pat.email, Some(email("Pat.Smith@example.com")));
    assert_eq!(pat.name, Some(Name::parse("Pat").unwrap()));
    let again = store
        .requester_for_email(acme.client, &email("PAT.SMITH@example.COM"), None)
        .await
        .unwrap();
    assert_eq!(again, pat, "the first sight's address and name are kept");
    let elsewhere = store
        .requester_for_email(globex.client, &email("pat.smith@example.com"), None)
        .await
        .unwrap();
    assert_ne!(elsewhere.id, pat.id, "requesters never cross clients");
    assert_eq!(elsewhere.client_id, globex.client);
    assert_eq!(store.requester(pat.id).await.unwrap(), pat);
    assert!(matches!(
        store.requester(delego_core::id::RequesterId::new()).await,
        Err(StoreError::NotFound("requester"))
    ));
    let err = store
        .requester_for_email(ClientId::new(), &email("pat@example.com"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("client")), "{err:?}");
}

async fn concurrent_requester_for_email_calls_make_one_requester(h: &Harness) {
    let store = h.store.clone();
    let floor = floor(store.as_ref(), "Acme").await;
    let mut callers = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        let address = if n % 2 == 0 {
            "racer@example.com"
        } else {
            "RACER@example.com"
        };
        callers.push(tokio::spawn(async move {
            store
                .requester_for_email(floor.client, &email(address), None)
                .await
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    for caller in callers {
        ids.insert(caller.await.unwrap().id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

async fn secrets_are_32_bytes_and_stable_across_calls_and_racing_callers(h: &Harness) {
    let store = h.store.clone();
    let signing = store.secret("requester-links").await.unwrap();
    assert_eq!(signing.len(), 32);
    assert_eq!(store.secret("requester-links").await.unwrap(), signing);
    let other = store.secret("webhooks").await.unwrap();
    assert_eq!(other.len(), 32);
    assert_ne!(other, signing, "each name has its own random secret");

    let mut callers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        callers.push(tokio::spawn(
            async move { store.secret("raced").await.unwrap() },
        ));
    }
    let mut values = HashSet::new();
    for caller in callers {
        values.insert(caller.await.unwrap());
    }
    assert_eq!(values.len(), 1, "racing first uses agree on one value");
}

async fn engagements_workers_users_and_services_are_listed_filtered_and_ordered_as_documented(
    h: &Harness,
) {
    use delego_core::identity::Role;

    let store = h.store.as_ref();
    let published_v1 = h.clock_now();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    h.advance(SignedDuration::from_mins(1));
    let published_v2 = h.clock_now();
    store
        .publish_service(&SUPPORT_V1.replace("version = 1", "version = 2"))
        .await
        .unwrap();
    let billing = SUPPORT_V1
        .replace("key = \"test-support\"", "key = \"billing\"")
        .replace("name = \"Test support\"", "name = \"Billing\"");
    store.publish_service(&billing).await.unwrap();
    let services: Vec<ServiceVersion> = store.services().await.unwrap();
    let listed: Vec<(&str, u32, &str)> = services
        .iter()
        .map(|s| (s.key.as_str(), s.version, s.name.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("billing", 1, "Billing"),
            ("test-support", 1, "Test support"),
            ("test-support", 2, "Test support")
        ]
    );
    assert_eq!(services[1].published_at, published_v1);
    assert_eq!(services[2].published_at, published_v2);

    let claims = engage(store, &billing, acme.client, "Claims", Default::default()).await;
    let names = |list: &[delego_core::model::Engagement]| {
        list.iter()
            .map(|e| (e.name.as_str().to_owned(), e.client_id))
            .collect::<Vec<_>>()
    };
    let all = store.engagements(None).await.unwrap();
    let (first_support, second_support) = if acme.engagement < globex.engagement {
        (acme.client, globex.client)
    } else {
        (globex.client, acme.client)
    };
    assert_eq!(
        names(&all),
        [
            ("Claims".to_owned(), acme.client),
            ("Support".to_owned(), first_support),
            ("Support".to_owned(), second_support),
        ]
    );
    let of_acme = store.engagements(Some(acme.client)).await.unwrap();
    assert_eq!(
        of_acme.iter().map(|e| e.id).collect::<Vec<_>>(),
        [claims.id, acme.engagement]
    );
    assert_eq!(of_acme[0], claims);

    for name in ["Zuzana", "Adam", "Marek"] {
        let profile = Worker {
            id: WorkerId::new(),
            name: Name::parse(name).unwrap(),
            skills: BTreeMap::from([(key("support"), SkillLevel::new(2).unwrap())]),
            languages: BTreeSet::from([Language::parse("en").unwrap()]),
            clearances: BTreeSet::from([acme.client]),
            capacity: BTreeMap::from([(delego_core::routing::Channel::BackOffice, 3)]),
            presence: Presence::Offline,
            certifications: Default::default(),
            exclusions: Default::default(),
            idle_since: None,
            wrap_up_secs: 0,
            team: None,
        };
        store.create_worker(&profile, &operator()).await.unwrap();
    }
    let workers = store.workers().await.unwrap();
    let worker_names: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(worker_names, ["Adam", "Marek", "Zuzana"]);
    assert_eq!(workers[0], store.worker(workers[0].id).await.unwrap());

    for (address, client) in [
        ("zoe@acme.example", Some(acme.client)),
        ("Bob@acme.example", Some(acme.client)),
        ("amy@globex.example", Some(globex.client)),
        ("carl@provider.example", None),
    ] {
        let role = if client.is_some() {
            Role::ClientUser
        } else {
            Role::Manager
        };
        store
            .create_user(new_user(address, role, client, None), &operator())
            .await
            .unwrap();
    }
    let emails = |users: Vec<delego_core::identity::User>| {
        users
            .into_iter()
            .map(|u| u.email.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        emails(store.users(None).await.unwrap()),
        [
            "amy@globex.example",
            "Bob@acme.example",
            "carl@provider.example",
            "zoe@acme.example"
        ],
        "ordered by e-mail whatever its case"
    );
    assert_eq!(
        emails(store.users(Some(acme.client)).await.unwrap()),
        ["Bob@acme.example", "zoe@acme.example"]
    );
}

async fn attachments_round_trip_and_are_audited_on_their_item_within_its_client(h: &Harness) {
    use delego_core::id::AttachmentId;
    use delego_core::model::Attachment;

    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let item = store
        .create_item(new_item(&acme, "with a file"), &operator())
        .await
        .unwrap()
        .value;
    let foreign = store
        .create_item(new_item(&globex, "theirs"), &operator())
        .await
        .unwrap()
        .value;
    let attachment = Attachment {
        id: AttachmentId::new(),
        client_id: acme.client,
        item_id: Some(item.id()),
        filename: "invoice 2026-03.pdf".into(),
        content_type: "application/pdf".into(),
        size: 5_000_000_000,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        uploaded_by: Actor::Operator("conformance".into()),
        created_at: h.clock_now(),
    };
    store.create_attachment(&attachment).await.unwrap();
    assert_eq!(store.attachment(attachment.id).await.unwrap(), attachment);
    let last = store.item_history(item.id()).await.unwrap().pop().unwrap();
    assert_eq!(last.action, "attachment.added");
    assert_eq!(last.actor, attachment.uploaded_by);
    assert_eq!(last.detail["attachment"], json!(attachment.id));

    let loose = Attachment {
        id: AttachmentId::new(),
        item_id: None,
        ..attachment.clone()
    };
    store.create_attachment(&loose).await.unwrap();
    assert_eq!(store.attachment(loose.id).await.unwrap(), loose);

    let err = store.create_attachment(&attachment).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let crossing = Attachment {
        id: AttachmentId::new(),
        item_id: Some(foreign.id()),
        ..attachment.clone()
    };
    let err = store.create_attachment(&crossing).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("work item")), "{err:?}");
    assert!(matches!(
        store.attachment(crossing.id).await,
        Err(StoreError::NotFound("attachment"))
    ));
    let orphan = Attachment {
        id: AttachmentId::new(),
        client_id: ClientId::new(),
        item_id: None,
        ..attachment
    };
    let err = store.create_attachment(&orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("client")), "{err:?}");
}

async fn an_items_attachments_are_listed_oldest_first_without_those_of_other_items(h: &Harness) {
    use delego_core::id::AttachmentId;
    use delego_core::model::Attachment;

    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let mut items = Vec::new();
    for subject in ["with files", "other"] {
        items.push(
            store
                .create_item(new_item(&acme, subject), &operator())
                .await
                .unwrap()
                .value,
        );
    }
    let (item, other) = (&items[0], &items[1]);
    let attachment = |item_id, filename: &str| Attachment {
        id: AttachmentId::new(),
        client_id: acme.client,
        item_id,
        filename: filename.into(),
        content_type: "text/plain".into(),
        size: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        uploaded_by: operator(),
        created_at: h.clock_now(),
    };
    assert!(
        store
            .attachments_of_item(item.id())
            .await
            .unwrap()
            .is_empty()
    );
    let first = attachment(Some(item.id()), "first.txt");
    store.create_attachment(&first).await.unwrap();
    store
        .create_attachment(&attachment(Some(other.id()), "elsewhere.txt"))
        .await
        .unwrap();
    store
        .create_attachment(&attachment(None, "loose.txt"))
        .await
        .unwrap();
    h.advance(SignedDuration::from_secs(1));
    let second = attachment(Some(item.id()), "second.txt");
    store.create_attachment(&second).await.unwrap();

    assert_eq!(
        store.attachments_of_item(item.id()).await.unwrap(),
        [first, second]
    );
    let unknown = delego_core::id::WorkItemId::new();
    assert!(store.attachments_of_item(unknown).await.unwrap().is_empty());
}

async fn a_lapsed_lease_puts_the_task_back_in_its_place_and_a_renewed_one_holds(h: &Harness) {
    let store = h.store.as_ref();
    store.set_task_lease(SignedDuration::from_mins(2));
    let floor = floor(store, "Acme").await;
    let first = store
        .create_item(new_item(&floor, "first"), &operator())
        .await
        .unwrap()
        .value;
    h.advance(SignedDuration::from_secs(10));
    store
        .create_item(new_item(&floor, "second"), &operator())
        .await
        .unwrap();
    let careless = worker(store, &[("support", 3)], &[floor.client]).await;
    let diligent = worker(store, &[("support", 3)], &[floor.client]).await;
    let lapsing = store.claim_next_task(careless).await.unwrap().unwrap();
    assert_eq!(lapsing.item.id(), first.id());
    assert_eq!(
        lapsing.task.lease_until,
        Some(h.clock_now() + SignedDuration::from_mins(2))
    );
    let kept = store.claim_next_task(diligent).await.unwrap().unwrap();

    h.advance(SignedDuration::from_secs(90));
    let renewed = store.renew_lease(kept.task.id, diligent).await.unwrap();
    assert_eq!(
        renewed.lease_until,
        Some(h.clock_now() + SignedDuration::from_mins(2))
    );
    let err = store.renew_lease(kept.task.id, careless).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "only the holder renews"
    );
    assert_eq!(store.expire_leases().await.unwrap(), 0);

    h.advance(SignedDuration::from_secs(31));
    assert_eq!(
        store.expire_leases().await.unwrap(),
        1,
        "only the unrenewed lease lapses"
    );
    let back = store.task(lapsing.task.id).await.unwrap();
    assert_eq!(back.status, TaskStatus::Open);
    assert_eq!(
        back.serve_by, lapsing.task.serve_by,
        "it keeps its place in line"
    );
    let again = store.claim_next_task(diligent).await.unwrap().unwrap();
    assert_eq!(again.task.id, lapsing.task.id);
    let err = store
        .submit_task(
            lapsing.task.id,
            careless,
            key("resolved"),
            data(json!({"reply": "late"})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "a lapsed holder cannot submit"
    );
    let history = store.item_history(first.id()).await.unwrap();
    assert!(history.iter().any(|e| e.action == "task.lease_expired"));
}

async fn a_node_shutting_down_hands_tasks_back_kept_for_their_holders(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    store
        .create_item(new_item(&floor, "mine"), &operator())
        .await
        .unwrap();
    let holder = worker(store, &[("support", 3)], &[floor.client]).await;
    let other = worker(store, &[("support", 3)], &[floor.client]).await;
    let held = store.claim_next_task(holder).await.unwrap().unwrap();
    assert_eq!(
        store
            .hand_back_held_tasks(SignedDuration::from_mins(10))
            .await
            .unwrap(),
        1
    );
    assert!(
        store.claim_next_task(other).await.unwrap().is_none(),
        "kept for its holder"
    );
    let again = store.claim_next_task(holder).await.unwrap().unwrap();
    assert_eq!(again.task.id, held.task.id);
}

async fn waiting_workers_are_woken_when_a_task_opens(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let mut wake_ups = store.wake_ups();
    wake_ups.borrow_and_update();
    store
        .create_item(new_item(&floor, "wake up"), &operator())
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), wake_ups.changed())
        .await
        .expect("a new task wakes waiting workers")
        .unwrap();
    if let Some(other_node) = h.another_node().await {
        let mut elsewhere = other_node.wake_ups();
        // Let the new node's listener connect (it wakes once when it does).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), elsewhere.changed()).await;
        elsewhere.borrow_and_update();
        store
            .create_item(new_item(&floor, "across nodes"), &operator())
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), elsewhere.changed())
            .await
            .expect("another node hears of the task through LISTEN/NOTIFY")
            .unwrap();
    }
}

#[derive(Clone, Debug)]
enum QueueOp {
    Create { urgent: bool },
    Claim { worker: usize },
    Submit { worker: usize, resolve: bool },
    Release { worker: usize },
    Cancel { item: usize },
    Reply { item: usize },
    Later { minutes: i64 },
    ExpireLeases,
    FireTimers,
    Compact,
}

fn queue_ops() -> impl proptest::strategy::Strategy<Value = Vec<QueueOp>> {
    use proptest::prelude::*;
    let op = prop_oneof![
        4 => any::<bool>().prop_map(|urgent| QueueOp::Create { urgent }),
        4 => (0usize..3).prop_map(|worker| QueueOp::Claim { worker }),
        3 => (0usize..3, any::<bool>()).prop_map(|(worker, resolve)| QueueOp::Submit { worker, resolve }),
        1 => (0usize..3).prop_map(|worker| QueueOp::Release { worker }),
        1 => (0usize..20).prop_map(|item| QueueOp::Cancel { item }),
        1 => (0usize..20).prop_map(|item| QueueOp::Reply { item }),
        2 => (1i64..400).prop_map(|minutes| QueueOp::Later { minutes }),
        1 => Just(QueueOp::ExpireLeases),
        1 => Just(QueueOp::FireTimers),
        1 => Just(QueueOp::Compact),
    ];
    proptest::collection::vec(op, 1..60)
}

/// Random sequences of everything that changes tasks; after every step the counters
/// equal a recount of the tasks.
async fn queue_counters_always_equal_a_full_recount(h: &Harness) {
    let store = h.store.clone();
    store.set_task_lease(SignedDuration::from_mins(30));
    let floor = Arc::new(floor(store.as_ref(), "Acme").await);
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(
            worker(
                store.as_ref(),
                &[("support", 3), ("qa", 3)],
                &[floor.client],
            )
            .await,
        );
    }
    let handle = tokio::runtime::Handle::current();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 12,
        failure_persistence: None,
        ..Default::default()
    });
    let result = runner.run(&queue_ops(), |ops| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let mut items = Vec::new();
                for op in &ops {
                    apply_queue_op(h, &floor, &workers, &mut items, op).await;
                    let wrong = store.verify_queue_counts().await.unwrap();
                    proptest::prop_assert!(wrong.is_empty(), "after {op:?}: {wrong:?}");
                }
                Ok(())
            })
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

async fn apply_queue_op(
    h: &Harness,
    floor: &Floor,
    workers: &[WorkerId],
    items: &mut Vec<delego_core::id::WorkItemId>,
    op: &QueueOp,
) {
    let store = h.store.as_ref();
    let held = |worker: WorkerId| async move {
        let mut held = Vec::new();
        for item in store
            .items(&ItemFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
        {
            for task in store.item_tasks(item.id()).await.unwrap() {
                if matches!(task.status, TaskStatus::Claimed { worker: w, .. } if w == worker) {
                    held.push(task);
                }
            }
        }
        held
    };
    match *op {
        QueueOp::Create { urgent } => {
            let subject = if urgent { "URGENT now" } else { "whenever" };
            items.push(
                store
                    .create_item(new_item(floor, subject), &operator())
                    .await
                    .unwrap()
                    .value
                    .id(),
            );
        }
        QueueOp::Claim { worker } => {
            store.claim_next_task(workers[worker]).await.unwrap();
        }
        QueueOp::Submit { worker, resolve } => {
            if let Some(task) = held(workers[worker]).await.first() {
                let (outcome, data) = match (task.step.as_str(), resolve) {
                    ("check", true) => ("approve", Map::new()),
                    ("check", false) => ("reject", Map::new()),
                    (_, true) => ("resolved", data(json!({"reply": "done"}))),
                    (_, false) => ("replied", data(json!({"reply": "more?"}))),
                };
                // Four eyes may refuse a reviewer; that changes nothing.
                let _ = store
                    .submit_task(task.id, workers[worker], key(outcome), data)
                    .await;
            }
        }
        QueueOp::Release { worker } => {
            if let Some(task) = held(workers[worker]).await.first() {
                store.release_task(task.id, workers[worker]).await.unwrap();
            }
        }
        QueueOp::Cancel { item } => {
            if let Some(id) = items.get(item) {
                let _ = store
                    .apply_event(
                        *id,
                        None,
                        Event::Cancel {
                            reason: "test".into(),
                        },
                        &operator(),
                    )
                    .await;
            }
        }
        QueueOp::Reply { item } => {
            if let Some(id) = items.get(item) {
                let _ = store
                    .apply_event(
                        *id,
                        None,
                        Event::External {
                            name: key("requester_reply"),
                        },
                        &operator(),
                    )
                    .await;
            }
        }
        QueueOp::Later { minutes } => h.advance(SignedDuration::from_mins(minutes)),
        QueueOp::ExpireLeases => {
            store.expire_leases().await.unwrap();
        }
        QueueOp::FireTimers => {
            store.fire_due_timers().await.unwrap();
        }
        QueueOp::Compact => {
            store.compact_queue_counts().await.unwrap();
        }
    }
}

async fn queues_at_a_glance_show_backlog_oldest_age_and_sla_risk(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let first_queued = h.clock_now();
    for n in 0..3 {
        store
            .create_item(new_item(&floor, &format!("t{n}")), &operator())
            .await
            .unwrap();
        h.advance(SignedDuration::from_mins(1));
    }
    let agent = worker(store, &[("support", 3)], &[floor.client]).await;
    store.claim_next_task(agent).await.unwrap().unwrap();
    // The test service's steps are due 4 hours after they open.
    h.advance(SignedDuration::from_mins(200));
    let queues = store.queues(SignedDuration::from_hours(1)).await.unwrap();
    assert_eq!(queues.len(), 1);
    let answer = &queues[0];
    assert_eq!(
        (answer.step.as_str(), answer.open, answer.held),
        ("answer", 2, 1)
    );
    assert_eq!(
        answer.oldest_queued_at,
        Some(first_queued + SignedDuration::from_mins(1)),
        "the claimed first one is not waiting"
    );
    assert_eq!((answer.breached, answer.at_risk), (0, 3));
    h.advance(SignedDuration::from_mins(45));
    let queues = store.queues(SignedDuration::from_hours(1)).await.unwrap();
    assert_eq!((queues[0].breached, queues[0].at_risk), (3, 0));
}

/// The support service with its answer step pushed: offers that wait 20 seconds.
fn push_support() -> String {
    SUPPORT_V1
        .replace("key = \"test-support\"", "key = \"push-support\"")
        .replace(
            "resolved = \"check\"\n",
            "resolved = \"check\"\n[steps.routing]\noffer_timeout = \"20s\"\n",
        )
}

async fn push_offers_go_to_the_best_worker_then_the_next_and_missed_ones_lead_to_a_break(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let pushed = engage(
        store,
        &push_support(),
        floor.client,
        "Pushed",
        Default::default(),
    )
    .await;
    let idle_longest = worker(store, &[("support", 3)], &[floor.client]).await;
    store
        .set_presence(idle_longest, Presence::Available, &operator())
        .await
        .unwrap();
    h.advance(SignedDuration::from_mins(5));
    let next = worker(store, &[("support", 3)], &[floor.client]).await;
    store
        .set_presence(next, Presence::Available, &operator())
        .await
        .unwrap();
    let item = store
        .create_item(
            NewItem {
                engagement_id: pushed.id,
                ..new_item(&floor, "pushed")
            },
            &operator(),
        )
        .await
        .unwrap()
        .value;

    assert_eq!(store.dispatch_offers().await.unwrap(), 1);
    let offers = store.pending_offers(idle_longest).await.unwrap();
    assert_eq!(
        offers.len(),
        1,
        "the longest idle worker is offered it first"
    );
    assert!(store.pending_offers(next).await.unwrap().is_empty());
    assert!(
        store.claim_next_task(next).await.unwrap().is_none(),
        "an offered task waits for its worker"
    );
    assert_eq!(
        store.dispatch_offers().await.unwrap(),
        0,
        "one offer at a time"
    );

    store
        .answer_offer(offers[0].id, idle_longest, false)
        .await
        .unwrap();
    assert_eq!(store.dispatch_offers().await.unwrap(), 1);
    let offers = store.pending_offers(next).await.unwrap();
    assert_eq!(offers.len(), 1, "rejected: the next worker is offered it");
    let claimed = store
        .answer_offer(offers[0].id, next, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.item.id(), item.id());
    assert!(matches!(claimed.task.status, TaskStatus::Claimed { worker, .. } if worker == next));
    let err = store
        .answer_offer(offers[0].id, next, true)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(_)),
        "an answered offer is gone"
    );

    // Three offers let lapse in a row put the worker on a break.
    let absent = idle_longest;
    for n in 0..3 {
        store
            .create_item(
                NewItem {
                    engagement_id: pushed.id,
                    ..new_item(&floor, &format!("again {n}"))
                },
                &operator(),
            )
            .await
            .unwrap();
        store.dispatch_offers().await.unwrap();
        assert_eq!(
            store.pending_offers(absent).await.unwrap().len(),
            1,
            "offer {n}"
        );
        h.advance(SignedDuration::from_secs(21));
        store.dispatch_offers().await.unwrap();
    }
    let presence = store.worker(absent).await.unwrap().presence;
    assert!(
        matches!(presence, Presence::Break { ref reason } if reason.contains("missed 3 offers")),
        "{presence:?}"
    );
}

/// Monday to Friday 09:00–17:00 UTC; the harness clock starts Monday 2026-03-02 08:00.
fn office_settings() -> delego_core::model::EngagementSettings {
    let calendar: delego_core::calendar::CalendarSpec = serde_json::from_value(json!({
        "zone": "UTC",
        "hours": {
            "mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
            "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]
        }
    }))
    .unwrap();
    delego_core::model::EngagementSettings {
        calendar: Some(calendar.try_into().unwrap()),
        sla: delego_core::sla::SlaOverrides {
            first_response: Some(SignedDuration::from_hours(2)),
            next_response: Some(SignedDuration::from_hours(1)),
            resolution: Some(SignedDuration::from_hours(8)),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Acme's floor with a second engagement of the test service that runs on `settings`.
async fn floor_with(store: &dyn Store, settings: delego_core::model::EngagementSettings) -> Floor {
    let base = floor(store, "Acme").await;
    let engagement = engage(
        store,
        SUPPORT_V1,
        base.client,
        "Support in office hours",
        settings,
    )
    .await;
    Floor {
        client: base.client,
        engagement: engagement.id,
    }
}

async fn sla_clocks_count_business_hours_pause_while_waiting_and_stop_on_answers(h: &Harness) {
    use delego_core::sla::{SlaKind, SlaState};
    let store = h.store.as_ref();
    let floor = floor_with(store, office_settings()).await;
    let agent = worker(store, &[("support", 3)], &[floor.client]).await;
    let item = store
        .create_item(new_item(&floor, "printer"), &operator())
        .await
        .unwrap()
        .value;
    let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap();
    // Created at 08:00, before opening: the step's 4 h would run 09:00–13:00, but the
    // 2 h first response is due at 11:00, and the task is due no later.
    let tasks = store.item_tasks(item.id()).await.unwrap();
    assert_eq!(tasks[0].due_at, Some(at("2026-03-02T11:00:00Z")));
    let clock_of = |all: &[delego_core::sla::SlaStatus], kind| {
        all.iter().find(|s| s.kind == kind).cloned().unwrap()
    };
    let now = store.sla_status(&item).await.unwrap();
    let first = clock_of(&now, SlaKind::FirstResponse);
    assert_eq!(first.elapsed, SignedDuration::ZERO);
    assert_eq!(first.due_at, Some(at("2026-03-02T11:00:00Z")));

    h.advance(SignedDuration::from_hours(2)); // 10:00
    let claimed = store.claim_next_task(agent).await.unwrap().unwrap();
    let answer = |author: Actor, event: Option<&str>| delego_store::NewMessage {
        item_id: item.id(),
        author,
        visibility: delego_core::model::Visibility::Public,
        body: "On it.".into(),
        attachments: Vec::new(),
        event: event.map(key),
        quoted: None,
    };
    let (_, answered) = store
        .add_message(answer(Actor::Worker(agent), None))
        .await
        .unwrap();
    let first = clock_of(
        &store.sla_status(&answered).await.unwrap(),
        SlaKind::FirstResponse,
    );
    assert_eq!(first.state, SlaState::Met);
    assert_eq!(first.elapsed, SignedDuration::from_hours(1));
    let waiting = store
        .submit_task(
            claimed.task.id,
            agent,
            key("replied"),
            data(json!({"reply": "Is it plugged in?"})),
        )
        .await
        .unwrap();

    // Five hours waiting on the requester count nothing.
    h.advance(SignedDuration::from_hours(5)); // 15:00
    let paused = clock_of(
        &store.sla_status(&waiting).await.unwrap(),
        SlaKind::Resolution,
    );
    assert_eq!(paused.state, SlaState::Paused);
    assert_eq!(paused.elapsed, SignedDuration::from_hours(1));

    // The requester answers: work resumes and the next response is due within the hour.
    let requester = store
        .requester_for_email(floor.client, &email("ann@example.com"), None)
        .await
        .unwrap();
    let (_, resumed) = store
        .add_message(answer(
            Actor::Requester(requester.id),
            Some("requester_reply"),
        ))
        .await
        .unwrap();
    assert!(matches!(resumed.state.position, Position::InStep { .. }));
    h.advance(SignedDuration::from_hours(1)); // 16:00
    let resumed = store.item(item.id()).await.unwrap();
    let all = store.sla_status(&resumed).await.unwrap();
    let next = clock_of(&all, SlaKind::NextResponse);
    assert_eq!(next.elapsed, SignedDuration::from_hours(1));
    assert!(next.breached, "an hour without an answer");
    let resolution = clock_of(&all, SlaKind::Resolution);
    assert_eq!(resolution.elapsed, SignedDuration::from_hours(2));
    assert_eq!(resolution.state, SlaState::Running);
    // 6 business hours left from Monday 16:00: Tuesday 14:00.
    assert_eq!(resolution.due_at, Some(at("2026-03-03T14:00:00Z")));
}

async fn sla_escalations_notify_team_leads_once_then_raise_priority_at_the_breach(h: &Harness) {
    use delego_core::identity::Role;
    let store = h.store.as_ref();
    let floor = floor_with(store, office_settings()).await;
    let own_floor = worker(store, &[("support", 5)], &[floor.client]).await;
    let lead = store
        .create_user(
            new_user("lead@example.com", Role::TeamLead, None, Some(own_floor)),
            &operator(),
        )
        .await
        .unwrap();
    let elsewhere = store
        .create_client(Name::parse("Elsewhere").unwrap(), &operator())
        .await
        .unwrap();
    let other_floor = worker(store, &[("support", 5)], &[elsewhere.id]).await;
    let other_lead = store
        .create_user(
            new_user(
                "other.lead@example.com",
                Role::TeamLead,
                None,
                Some(other_floor),
            ),
            &operator(),
        )
        .await
        .unwrap();
    let boss = store
        .create_user(manager("boss@example.com"), &operator())
        .await
        .unwrap();
    let item = store
        .create_item(new_item(&floor, "printer"), &operator())
        .await
        .unwrap()
        .value;
    // Monday 08:00, closed: nothing is at risk yet, and a second sweep finds nothing to do.
    assert_eq!(store.escalate_sla().await.unwrap(), 0);
    assert_eq!(store.escalate_sla().await.unwrap(), 0);

    // 10:30: 90 minutes of the 2 h first response are gone (75 %).
    h.advance(SignedDuration::from_mins(150));
    assert_eq!(store.escalate_sla().await.unwrap(), 1);
    assert_eq!(
        store.escalate_sla().await.unwrap(),
        0,
        "each escalation is made once"
    );
    let inbox = store.notifications(lead.id, true, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].kind, "sla.warning");
    assert_eq!(inbox[0].item_id, Some(item.id()));
    assert!(
        store
            .notifications(boss.id, false, 10)
            .await
            .unwrap()
            .is_empty(),
        "managers are told only where there is no team lead"
    );
    assert!(
        store
            .notifications(other_lead.id, false, 10)
            .await
            .unwrap()
            .is_empty(),
        "a team lead not cleared for the client hears nothing of its items"
    );
    let unchanged = store.item(item.id()).await.unwrap();
    assert_eq!(
        unchanged.state.priority,
        Priority::Normal,
        "a warning only tells"
    );

    // 11:00: breached. The lead is told again and the item and its task move up.
    h.advance(SignedDuration::from_mins(30));
    assert_eq!(store.escalate_sla().await.unwrap(), 1);
    let breached = store.item(item.id()).await.unwrap();
    assert_eq!(breached.state.priority, Priority::High);
    let tasks = store.item_tasks(item.id()).await.unwrap();
    assert_eq!(tasks[0].priority, Priority::High);
    let inbox = store.notifications(lead.id, false, 10).await.unwrap();
    assert_eq!(
        inbox.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>(),
        ["sla.breached", "sla.warning"],
        "newest first"
    );
    let history = store.item_history(item.id()).await.unwrap();
    assert!(history.iter().any(|e| e.action == "item.reprioritised"));
    assert_eq!(
        history
            .iter()
            .filter(|e| e.action == "sla.escalated")
            .count(),
        2
    );

    // Reading: once for its owner, never for anyone else.
    let read = store.read_notification(lead.id, inbox[1].id).await.unwrap();
    assert!(read.read_at.is_some());
    assert_eq!(
        store.notifications(lead.id, true, 10).await.unwrap().len(),
        1
    );
    assert!(matches!(
        store.read_notification(boss.id, inbox[0].id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn metric_facts_hold_the_windows_items_tasks_and_presence_and_refuse_long_windows(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let other = floor(store, "Other").await;
    let agent = worker(store, &[("support", 3)], &[acme.client]).await;
    let steady = worker(store, &[("support", 3)], &[acme.client]).await;
    let from = h.clock_now();
    h.advance(SignedDuration::from_mins(1));
    let actor = operator();
    let create = |floor, subject| store.create_item(new_item(floor, subject), &actor);
    create(&acme, "kept").await.unwrap();
    let dropped = create(&acme, "dropped").await.unwrap().value;
    create(&other, "theirs").await.unwrap();
    let lunch = Presence::Break {
        reason: "lunch".into(),
    };
    store
        .set_presence(agent, lunch.clone(), &operator())
        .await
        .unwrap();
    h.advance(SignedDuration::from_mins(1));
    store
        .set_presence(agent, Presence::Available, &operator())
        .await
        .unwrap();
    let claimed = store.claim_next_task(agent).await.unwrap().unwrap();
    h.advance(SignedDuration::from_mins(2));
    cancel(store, dropped.id(), "duplicate").await;
    let cancelled_at = h.clock_now();
    let to = from + SignedDuration::from_mins(30);

    let facts = store
        .metric_facts(from, to, Some(acme.client))
        .await
        .unwrap();
    assert_eq!(facts.items.len(), 2);
    assert!(facts.items.iter().all(|i| i.client_id == acme.client));
    assert!(facts.items.iter().any(|i| i.ended
        == Some(delego_core::metrics::ItemEnd::Cancelled { at: cancelled_at })));
    assert_eq!(facts.tasks.len(), 2);
    let held = facts.tasks.iter().find(|t| t.claimed_at.is_some()).unwrap();
    assert_eq!(
        (held.worker_id, held.ended_at),
        (Some(agent), None),
        "{claimed:?}"
    );
    let given_up = facts.tasks.iter().find(|t| t.claimed_at.is_none()).unwrap();
    assert_eq!(
        (given_up.ended_at, given_up.done),
        (Some(cancelled_at), false)
    );
    assert!(facts.workers.is_empty(), "presence is no one client's");

    let everything = store.metric_facts(from, to, None).await.unwrap();
    assert_eq!(everything.items.len(), 3);
    let presence = |id| {
        everything
            .workers
            .iter()
            .find(|w| w.worker_id == id)
            .unwrap()
    };
    // The agent changed presence in the window: its presence before is unknown.
    assert_eq!(presence(agent).at_start, Presence::Offline);
    let changes: Vec<_> = presence(agent).changes.iter().map(|c| &c.1).collect();
    assert_eq!(changes, [&lunch, &Presence::Available]);
    // Never changed: today's presence held all along.
    assert_eq!(presence(steady).at_start, Presence::Available);
    assert!(presence(steady).changes.is_empty());
    // A later window starts where this one left off.
    let later = store
        .metric_facts(to, to + SignedDuration::from_mins(30), None)
        .await
        .unwrap();
    assert_eq!(
        later
            .workers
            .iter()
            .find(|w| w.worker_id == agent)
            .unwrap()
            .at_start,
        Presence::Available
    );

    for (from, to) in [
        (from, from + SignedDuration::from_hours(32 * 24)),
        (to, from),
    ] {
        let err = store.metric_facts(from, to, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
}

async fn a_workers_team_is_kept_and_feeds_the_metric_facts(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor(store, "Acme").await;
    let red = worker(store, &[("support", 3)], &[floor.client]).await;
    let mut loner = store.worker(red).await.unwrap();
    assert_eq!(loner.team, None);
    loner.id = WorkerId::new();
    loner.team = Some(key("night-shift"));
    store.create_worker(&loner, &operator()).await.unwrap();
    assert_eq!(
        store.worker(loner.id).await.unwrap().team,
        Some(key("night-shift"))
    );
    let now = h.clock_now();
    let facts = store
        .metric_facts(now - SignedDuration::from_hours(1), now, None)
        .await
        .unwrap();
    assert_eq!(facts.teams.get(&loner.id), Some(&key("night-shift")));
    assert!(!facts.teams.contains_key(&red));
}

async fn a_breach_set_to_reassign_puts_the_task_back_for_someone_else(h: &Harness) {
    use delego_core::sla::EscalationAction;
    let store = h.store.as_ref();
    let mut settings = office_settings();
    settings.sla.on_warning = Some(Vec::new());
    settings.sla.on_breach = Some(vec![EscalationAction::Reassign]);
    let floor = floor_with(store, settings).await;
    let slow = worker(store, &[("support", 3)], &[floor.client]).await;
    let item = store
        .create_item(new_item(&floor, "printer"), &operator())
        .await
        .unwrap()
        .value;
    // A long lease: the task stays held however long this takes.
    store.set_task_lease(SignedDuration::from_hours(24));
    h.advance(SignedDuration::from_hours(2)); // 10:00, an hour into the 2 h first response
    let held = store.claim_next_task(slow).await.unwrap().unwrap();
    h.advance(SignedDuration::from_hours(1)); // 11:00: breached, still held
    assert_eq!(store.escalate_sla().await.unwrap(), 1);
    let task = store.task(held.task.id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Open, "back in line");
    assert_eq!(task.excluded_worker, Some(slow));
    assert!(
        store.claim_next_task(slow).await.unwrap().is_none(),
        "not straight back to the holder"
    );
    let other = worker(store, &[("support", 3)], &[floor.client]).await;
    let taken = store.claim_next_task(other).await.unwrap().unwrap();
    assert_eq!(taken.task.id, held.task.id);
    let history = store.item_history(item.id()).await.unwrap();
    assert!(history.iter().any(|e| e.action == "task.reassigned"));
}

/// A worker like [`worker`]'s, in `team`.
async fn team_worker(store: &dyn Store, client: ClientId, team: &str) -> WorkerId {
    let id = worker(store, &[("support", 3)], &[client]).await;
    let mut member = store.worker(id).await.unwrap();
    member.id = WorkerId::new();
    member.team = Some(key(team));
    store.create_worker(&member, &operator()).await.unwrap();
    member.id
}

async fn an_escalation_goes_to_the_lead_of_the_team_holding_the_work(h: &Harness) {
    use delego_core::identity::Role;
    let store = h.store.as_ref();
    let floor = floor_with(store, office_settings()).await;
    let day_lead_worker = team_worker(store, floor.client, "day").await;
    let night_lead_worker = team_worker(store, floor.client, "night").await;
    let lead =
        |address: &'static str, worker| new_user(address, Role::TeamLead, None, Some(worker));
    let day_lead = store
        .create_user(lead("day@example.com", day_lead_worker), &operator())
        .await
        .unwrap();
    let night_lead = store
        .create_user(lead("night@example.com", night_lead_worker), &operator())
        .await
        .unwrap();
    // Leads take no tasks here: they are on a break.
    for worker in [day_lead_worker, night_lead_worker] {
        store
            .set_presence(
                worker,
                Presence::Break {
                    reason: "leading".into(),
                },
                &operator(),
            )
            .await
            .unwrap();
    }
    let agent = team_worker(store, floor.client, "night").await;
    store.set_task_lease(SignedDuration::from_hours(24));
    store
        .create_item(new_item(&floor, "printer"), &operator())
        .await
        .unwrap();
    h.advance(SignedDuration::from_hours(2)); // 10:00
    store.claim_next_task(agent).await.unwrap().unwrap();
    h.advance(SignedDuration::from_hours(1)); // 11:00: breached, held by the night team
    assert_eq!(store.escalate_sla().await.unwrap(), 1);
    assert_eq!(
        store
            .notifications(night_lead.id, false, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .notifications(day_lead.id, false, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_shorter_target_takes_effect_on_items_already_open(h: &Harness) {
    let store = h.store.as_ref();
    let floor = floor_with(store, office_settings()).await;
    let item = store
        .create_item(new_item(&floor, "printer"), &operator())
        .await
        .unwrap()
        .value;
    h.advance(SignedDuration::from_mins(90)); // 09:30: half an hour into the 2 h first response
    assert_eq!(store.escalate_sla().await.unwrap(), 0);
    let mut stricter = office_settings();
    stricter.sla.first_response = Some(SignedDuration::from_mins(30));
    store
        .set_engagement_settings(floor.engagement, stricter, &operator())
        .await
        .unwrap();
    assert_eq!(
        store.escalate_sla().await.unwrap(),
        1,
        "breached under the new target"
    );
    let escalated = store.item(item.id()).await.unwrap();
    assert_eq!(escalated.state.priority, Priority::High);
}

/// The built-in customer support service: its answer step's `reply` is the thread message.
const CUSTOMER_SUPPORT: &str = include_str!("../../../catalog/customer-support.toml");

async fn a_submitted_answer_joins_the_thread_as_a_reply_or_a_note_and_held_tasks_show_the_hand(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let floor = floor_on(store, CUSTOMER_SUPPORT, "Acme", "Support").await;
    let raise = async |subject: &str| create(store, ticket(&floor, subject, json!({}))).await;
    let item = raise("Late parcel").await;
    deliver_outbox(store).await;
    let agent = email_agent(store, "customer_support", 2, floor.client).await;
    let bystander = worker(store, &[("customer_support", 2)], &[floor.client]).await;

    let claimed = store.claim_next_task(agent).await.unwrap().unwrap();
    let held: Vec<_> = store.held_tasks(agent).await.unwrap();
    assert_eq!(
        held.iter().map(|t| t.id).collect::<Vec<_>>(),
        [claimed.task.id]
    );
    assert!(store.held_tasks(bystander).await.unwrap().is_empty());
    assert_eq!(
        store.tasks_in_hand().await.unwrap(),
        BTreeMap::from([(agent, 1)])
    );
    // A later ticket waits behind the held one: the queue lists the earlier deadline first.
    h.advance(SignedDuration::from_mins(1));
    let later = raise("Later").await;
    let queue: Vec<_> = store
        .queue_tasks(floor.engagement, &key("answer"))
        .await
        .unwrap()
        .into_iter()
        .map(|task| task.item_id)
        .collect();
    assert_eq!(queue, [item.id(), later.id()]);
    cancel(store, later.id(), "not part of this case").await;
    deliver_outbox(store).await;

    let reply = |text: &str| data(json!({ "reply": text }));
    store
        .submit_task(claimed.task.id, agent, key("noted"), reply("VIP, be quick"))
        .await
        .unwrap();
    assert!(store.held_tasks(agent).await.unwrap().is_empty());
    assert!(store.messages(item.id(), false).await.unwrap().is_empty());
    let notes = store.messages(item.id(), true).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "VIP, be quick");
    assert_eq!(
        notes[0].visibility,
        delego_core::model::Visibility::Internal
    );
    assert_eq!(notes[0].author, Actor::Worker(agent));
    assert!(
        store.take_outgoing(10).await.unwrap().is_empty(),
        "a note is not mailed"
    );

    h.advance(SignedDuration::from_mins(5));
    let again = store.claim_next_task(agent).await.unwrap().unwrap();
    let answered = store
        .submit_task(
            again.task.id,
            agent,
            key("replied"),
            reply("It ships today."),
        )
        .await
        .unwrap();
    let public = store.messages(item.id(), false).await.unwrap();
    assert_eq!(
        public.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["It ships today."]
    );
    assert_eq!(
        answered.state.sla.first_response_at,
        Some(public[0].created_at)
    );
    let outgoing = store.take_outgoing(10).await.unwrap();
    assert_eq!(outgoing.len(), 1);
    assert_eq!(outgoing[0].message["kind"], "reply");
    assert_eq!(outgoing[0].message["message"], json!(public[0].id));

    // Taken by a node that died before delivering it: taken again once the lease ends,
    // and never again once delivered.
    assert!(store.take_outgoing(10).await.unwrap().is_empty(), "leased");
    h.advance(delego_store::OUTBOX_LEASE);
    let again = store.take_outgoing(10).await.unwrap();
    assert_eq!(
        again.iter().map(|o| o.id).collect::<Vec<_>>(),
        [outgoing[0].id]
    );
    store.outgoing_delivered(again[0].id).await.unwrap();
    h.advance(delego_store::OUTBOX_LEASE);
    assert!(
        store.take_outgoing(10).await.unwrap().is_empty(),
        "delivered"
    );
}

async fn a_merge_moves_the_thread_and_files_to_the_survivor_and_ends_the_duplicate_in_one_go(
    h: &Harness,
) {
    use delego_core::id::AttachmentId;
    use delego_core::model::{Attachment, Visibility};

    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let raise = async |floor: &Floor, subject: &str| create(store, new_item(floor, subject)).await;
    let survivor = raise(&acme, "Printer on fire").await;
    h.advance(SignedDuration::from_mins(1));
    let duplicate = raise(&acme, "Printer still on fire").await;
    let foreign = raise(&globex, "Theirs").await;
    let message = |visibility, body: &str| delego_store::NewMessage {
        item_id: duplicate.id(),
        author: Actor::Operator("Ann at the front desk".into()),
        visibility,
        body: body.into(),
        attachments: Vec::new(),
        event: None,
        quoted: None,
    };
    let (public, _) = store
        .add_message(message(Visibility::Public, "Smoke is coming out."))
        .await
        .unwrap();
    h.advance(SignedDuration::from_mins(1));
    let (note, _) = store
        .add_message(message(
            Visibility::Internal,
            "Same printer as the other one.",
        ))
        .await
        .unwrap();
    let photo = Attachment {
        id: AttachmentId::new(),
        client_id: acme.client,
        item_id: Some(duplicate.id()),
        filename: "smoke.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        uploaded_by: operator(),
        created_at: h.clock_now(),
    };
    store.create_attachment(&photo).await.unwrap();
    deliver_outbox(store).await;
    h.advance(SignedDuration::from_mins(1));

    let lead = Actor::Operator("lead".into());
    let merged = store
        .merge_items(duplicate.id(), survivor.id(), &lead)
        .await
        .unwrap();
    assert_eq!(
        merged.duplicate.state.position,
        Position::Cancelled {
            reason: "merged".into(),
            at: h.clock_now(),
            merged_into: Some(survivor.id()),
        }
    );
    assert_eq!(
        store.item(duplicate.id()).await.unwrap(),
        merged.duplicate,
        "stored as answered"
    );
    assert!(
        store
            .item_tasks(duplicate.id())
            .await
            .unwrap()
            .iter()
            .all(|task| task.status == TaskStatus::Cancelled),
        "its task is withdrawn"
    );

    // The thread moved whole, authors and times kept, each marked with its origin, and
    // the survivor has a note naming the duplicate.
    assert!(
        store
            .messages(duplicate.id(), true)
            .await
            .unwrap()
            .is_empty()
    );
    let thread = store.messages(survivor.id(), true).await.unwrap();
    assert_eq!(thread.len(), 3, "{thread:#?}");
    for (moved, original) in thread.iter().zip([&public, &note]) {
        assert_eq!(
            (&moved.id, &moved.author, moved.created_at, moved.visibility),
            (
                &original.id,
                &original.author,
                original.created_at,
                original.visibility
            )
        );
        assert_eq!(
            (moved.item_id, moved.merged_from),
            (survivor.id(), Some(duplicate.id()))
        );
    }
    let added = &thread[2];
    assert_eq!(
        (added.visibility, &added.author, added.merged_from),
        (Visibility::Internal, &lead, None)
    );
    assert!(
        added.body.contains(&duplicate.id().reference()),
        "{}",
        added.body
    );
    let public_thread = store.messages(survivor.id(), false).await.unwrap();
    assert_eq!(public_thread.len(), 1, "notes stay internal after the move");

    let files = store.attachments_of_item(survivor.id()).await.unwrap();
    assert_eq!(
        files,
        [Attachment {
            item_id: Some(survivor.id()),
            ..photo
        }]
    );
    assert!(
        store
            .attachments_of_item(duplicate.id())
            .await
            .unwrap()
            .is_empty()
    );

    let last_event = async |id| store.item_history(id).await.unwrap().pop().unwrap();
    let last = last_event(duplicate.id()).await;
    assert_eq!((last.action.as_str(), &last.actor), ("item.merged", &lead));
    assert_eq!(last.detail["into"], json!(survivor.id()));
    let last = last_event(survivor.id()).await;
    assert_eq!(last.action, "item.merged_in");
    assert_eq!(
        (
            &last.detail["from"],
            &last.detail["messages"],
            &last.detail["attachments"]
        ),
        (&json!(duplicate.id()), &json!(2), &json!(1))
    );
    let outgoing = store.take_outgoing(10).await.unwrap();
    assert_eq!(
        outgoing
            .iter()
            .map(|o| (o.item_id, o.message.clone()))
            .collect::<Vec<_>>(),
        [(
            duplicate.id(),
            json!({"kind": "merged", "into": survivor.id()})
        )],
        "the duplicate's requester is told, and nothing else goes out"
    );

    // Refused, changing nothing: the same item, another client's, a finished one, an
    // unknown one.
    let invalid = |result: Result<delego_store::Merged, StoreError>, code: &str| match result {
        Err(StoreError::Invalid(errors)) => {
            assert_eq!(
                (errors[0].field.as_str(), errors[0].code.as_str()),
                ("into", code)
            )
        }
        other => panic!("{other:?}"),
    };
    invalid(
        store.merge_items(survivor.id(), survivor.id(), &lead).await,
        "same_item",
    );
    invalid(
        store.merge_items(foreign.id(), survivor.id(), &lead).await,
        "other_client",
    );
    for (from, into) in [
        (duplicate.id(), survivor.id()),
        (survivor.id(), duplicate.id()),
    ] {
        let err = store.merge_items(from, into, &lead).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Rejected(Rejection::Finished)),
            "{err:?}"
        );
    }
    let unknown = delego_core::id::WorkItemId::new();
    let err = store
        .merge_items(unknown, survivor.id(), &lead)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.item(foreign.id()).await.unwrap(), foreign);
    assert_eq!(store.messages(survivor.id(), true).await.unwrap().len(), 3);
}

/// A service whose items finish as they arrive, so that they can be rated at once.
const INSTANT: &str = r#"
[service]
key = "instant"
version = 1
name = "Instant"
kind = "bpo"
start = "done"

[[steps]]
id = "done"
kind = "end"
"#;

async fn metric_facts_hold_the_ratings_given_in_the_window(h: &Harness) {
    let store = h.store.as_ref();
    let mut floors = Vec::new();
    for name in ["Acme", "Globex"] {
        floors.push(floor_on(store, INSTANT, name, "Instant").await);
    }
    let from = h.clock_now();
    let rate = async |floor: &Floor, rating: u8| {
        let new = NewItem {
            data: Map::new(),
            ..new_item(floor, "")
        };
        let item = create(store, new).await;
        store.record_csat(item.id(), rating, None).await.unwrap();
    };
    rate(&floors[0], 5).await;
    let first_at = h.clock_now();
    h.advance(SignedDuration::from_mins(20));
    rate(&floors[0], 2).await;
    rate(&floors[1], 4).await;
    let to = h.clock_now() + SignedDuration::from_mins(1);
    h.advance(SignedDuration::from_mins(5));
    rate(&floors[0], 1).await; // after the window

    let facts = store
        .metric_facts(from, to, Some(floors[0].client))
        .await
        .unwrap();
    let ratings: Vec<_> = facts
        .csat
        .iter()
        .map(|c| (c.client_id, c.engagement_id, c.rating))
        .collect();
    assert_eq!(
        ratings,
        [
            (floors[0].client, floors[0].engagement, 5),
            (floors[0].client, floors[0].engagement, 2),
        ]
    );
    assert_eq!(facts.csat[0].at, first_at);
    let everyone = store.metric_facts(from, to, None).await.unwrap();
    assert_eq!(everyone.csat.len(), 3);
}

/// The built-in technical support service: three tiers, escalation by time, and a
/// knowledge-base article on every resolution.
const TECHNICAL_SUPPORT: &str = include_str!("../../../catalog/technical-support.toml");

/// An engagement of `client` on technical support, in office hours (see
/// [`office_settings`]).
async fn technical_support(store: &dyn Store, client: ClientId, name: &str) -> Floor {
    let engagement = engage(store, TECHNICAL_SUPPORT, client, name, office_settings()).await;
    Floor {
        client,
        engagement: engagement.id,
    }
}

/// A technical support agent at `level`, cleared for `client`, taking e-mail tickets.
async fn tech_agent(store: &dyn Store, level: u8, client: ClientId) -> WorkerId {
    email_agent(store, "technical_support", level, client).await
}

fn tech_ticket(floor: &Floor, subject: &str) -> NewItem {
    ticket(floor, subject, json!({"category": "bug"}))
}

async fn an_untouched_task_escalates_on_the_calendar_and_its_holder_loses_it(h: &Harness) {
    let store = h.store.as_ref();
    let client = client(store, "Acme").await;
    let engagement = technical_support(store, client, "Helpdesk").await;
    let junior = tech_agent(store, 1, client).await;
    let senior = tech_agent(store, 3, client).await;
    // Monday 08:00, before opening: two business hours run 09:00–11:00.
    let item = create(store, tech_ticket(&engagement, "VPN drops")).await;
    assert_eq!(item.state.position.step(), Some(&key("l1")));
    let held = store
        .claim_next_task(junior)
        .await
        .unwrap()
        .expect("the L1 task");

    h.advance(SignedDuration::from_mins(179)); // 10:59
    assert_eq!(store.fire_due_timers().await.unwrap(), 0, "not yet");
    h.advance(SignedDuration::from_mins(1)); // 11:00
    assert_eq!(store.fire_due_timers().await.unwrap(), 1);

    let escalated = store.item(item.id()).await.unwrap();
    assert_eq!(escalated.state.position.step(), Some(&key("l2")));
    assert!(
        store.held_tasks(junior).await.unwrap().is_empty(),
        "the holder lost it"
    );
    assert!(matches!(
        store.task(held.task.id).await.unwrap().status,
        TaskStatus::Cancelled
    ));
    assert!(matches!(
        store
            .submit_task(held.task.id, junior, key("resolved"), Map::new())
            .await,
        Err(StoreError::Conflict(_))
    ));
    let history = store.item_history(item.id()).await.unwrap();
    let escalation = history
        .iter()
        .find(|event| event.action == "step.escalated")
        .expect("the move is audited");
    assert_eq!(escalation.actor, Actor::System);
    assert_eq!(
        (&escalation.detail["step"], &escalation.detail["to"]),
        (&json!("l1"), &json!("l2"))
    );
    assert!(
        store.claim_next_task(junior).await.unwrap().is_none(),
        "L2 asks level 3"
    );
    let taken = store
        .claim_next_task(senior)
        .await
        .unwrap()
        .expect("the L2 task");
    assert_eq!(taken.task.step, key("l2"));
    assert_eq!(taken.task.min_level.get(), 3);
    assert!(store.verify_queue_counts().await.unwrap().is_empty());

    // A task submitted in time never escalates: its timer finds the item moved on, and
    // the step entered again has a clock of its own.
    let second = create(store, tech_ticket(&engagement, "Printer")).await;
    let task = store.claim_next_task(junior).await.unwrap().unwrap();
    h.advance(SignedDuration::from_hours(1)); // 12:00
    store
        .submit_task(
            task.task.id,
            junior,
            key("noted"),
            data(json!({"reply": "Asked for logs."})),
        )
        .await
        .unwrap();
    h.advance(SignedDuration::from_hours(1)); // 13:00
    assert_eq!(
        store.fire_due_timers().await.unwrap(),
        0,
        "the first entry's timer is stale"
    );
    let step_of = async || {
        store
            .item(second.id())
            .await
            .unwrap()
            .state
            .position
            .step()
            .cloned()
    };
    assert_eq!(step_of().await, Some(key("l1")));
    h.advance(SignedDuration::from_hours(1)); // 14:00
    assert_eq!(store.fire_due_timers().await.unwrap(), 1);
    assert_eq!(step_of().await, Some(key("l2")));
}

async fn articles_are_kept_per_engagement_searched_updated_and_named_by_a_resolution(h: &Harness) {
    use delego_core::knowledge::ArticleDraft;
    let store = h.store.as_ref();
    let client = client(store, "Acme").await;
    let helpdesk = technical_support(store, client, "Helpdesk").await;
    let other = technical_support(store, client, "Field service").await;
    let draft = |title: &str, body: &str, tags: &[&str]| {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        ArticleDraft::parse("", title, body, &tags).unwrap()
    };
    let vpn = store
        .create_article(
            helpdesk.engagement,
            draft(
                "VPN drops every hour",
                "Renew the DHCP lease.",
                &["network"],
            ),
            &operator(),
        )
        .await
        .unwrap();
    h.advance(SignedDuration::from_mins(1));
    store
        .create_article(
            helpdesk.engagement,
            draft(
                "Tlačiareň je offline",
                "Zapnite ju: 100% istota.",
                &["printer"],
            ),
            &operator(),
        )
        .await
        .unwrap();
    store
        .create_article(
            other.engagement,
            draft("VPN elsewhere", "Not ours.", &[]),
            &operator(),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_article(
                delego_core::id::EngagementId::new(),
                draft("x", "y", &[]),
                &operator()
            )
            .await,
        Err(StoreError::NotFound("engagement"))
    ));
    let titles = async |query: &str| {
        store
            .articles(helpdesk.engagement, query, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.title)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        titles("").await,
        ["Tlačiareň je offline", "VPN drops every hour"],
        "newest first"
    );
    assert_eq!(
        titles("vpn").await,
        ["VPN drops every hour"],
        "never another engagement's"
    );
    assert_eq!(
        titles("NETWORK dhcp").await,
        ["VPN drops every hour"],
        "tags and body"
    );
    assert_eq!(
        titles("vpn printer").await,
        Vec::<String>::new(),
        "every word must match"
    );
    assert_eq!(
        titles("TLAČIAREŇ").await,
        ["Tlačiareň je offline"],
        "any case, any letter"
    );
    assert_eq!(
        titles("0%").await,
        ["Tlačiareň je offline"],
        "% is a character"
    );
    assert_eq!(titles("_").await, Vec::<String>::new(), "_ is a character");
    assert_eq!(store.article(vpn.id).await.unwrap(), vpn);

    assert!(matches!(
        store
            .update_article(vpn.id, draft("Stale", "b", &[]), Some(7), &operator())
            .await,
        Err(StoreError::Conflict(_))
    ));
    let updated = store
        .update_article(
            vpn.id,
            draft(
                "VPN drops hourly",
                "Renew the lease; update the client.",
                &["network", "vpn"],
            ),
            Some(1),
            &Actor::System,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated.version,
            updated.created_by.clone(),
            updated.updated_by.clone()
        ),
        (2, operator(), Actor::System)
    );
    assert_eq!(titles("hourly").await, ["VPN drops hourly"]);
    assert_eq!(store.article(vpn.id).await.unwrap(), updated);

    // Resolving names an article of this engagement: an existing one, or one written now.
    let agent = tech_agent(store, 1, client).await;
    create(store, tech_ticket(&helpdesk, "VPN")).await;
    let task = store.claim_next_task(agent).await.unwrap().unwrap().task;
    let resolve = |article: Json| data(json!({"reply": "Fixed.", "article": article}));
    let codes = |result: Result<delego_core::model::WorkItem, StoreError>| match result {
        Err(StoreError::Invalid(errors)) => errors
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let written = draft("VPN and the new client", "Install version 5.", &["vpn"]);
    let submit = async |outcome: &str, answer: Map<String, Json>| {
        store
            .submit_task(task.id, agent, key(outcome), answer)
            .await
    };
    let submit_writing = async |outcome: &str, answer: Map<String, Json>| {
        store
            .submit_task_with_article(task.id, agent, key(outcome), answer, written.clone())
            .await
    };
    assert_eq!(
        codes(submit("resolved", resolve(Json::Null)).await),
        [("article".to_owned(), "required".to_owned())]
    );
    let elsewhere = store.articles(other.engagement, "", 10).await.unwrap()[0].id;
    assert_eq!(
        codes(submit("resolved", resolve(json!(elsewhere))).await),
        [("article".to_owned(), "unknown".to_owned())]
    );
    assert_eq!(
        codes(submit_writing("resolved", resolve(json!(vpn.id))).await),
        [("new_article".to_owned(), "not_allowed".to_owned())]
    );
    // Refused by the engine: the new article goes with the refused submission.
    assert_eq!(
        codes(submit_writing("replied", Map::new()).await),
        [("reply".to_owned(), "required".to_owned())]
    );
    assert_eq!(
        store
            .articles(helpdesk.engagement, "", 50)
            .await
            .unwrap()
            .len(),
        2
    );

    let resolved = submit_writing("resolved", resolve(Json::Null))
        .await
        .unwrap();
    assert!(resolved.state.position.is_terminal());
    let named: delego_core::id::ArticleId = resolved.state.data["article"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let new = store.article(named).await.unwrap();
    assert_eq!(
        (
            new.engagement_id,
            new.title.as_str(),
            new.created_by.clone()
        ),
        (
            helpdesk.engagement,
            "VPN and the new client",
            Actor::Worker(agent)
        )
    );
    let history = store.item_history(resolved.id()).await.unwrap();
    assert!(history.iter().any(|e| e.action == "article.created"));
    assert_eq!(titles("version 5").await, ["VPN and the new client"]);
}

const IT_HELPDESK: &str = include_str!("../../../catalog/it-helpdesk.toml");

/// A client on the IT help desk, and an agent cleared for it who answers by e-mail.
async fn help_desk(store: &dyn Store, client_name: &str) -> (Floor, WorkerId) {
    let floor = floor_on(store, IT_HELPDESK, client_name, "Service desk").await;
    let agent = email_agent(store, "it_support", 2, floor.client).await;
    (floor, agent)
}

/// An incident of medium impact and urgency on the network, with `extra` fields.
fn incident(floor: &Floor, subject: &str, extra: Json) -> NewItem {
    let mut item = ticket(
        floor,
        subject,
        json!({"type": "incident", "category": "network", "impact": "medium", "urgency": "medium"}),
    );
    item.data.extend(data(extra));
    item
}

fn entry(key: &str, data: Json) -> NewEntry {
    NewEntry {
        key: key.into(),
        data: data.as_object().cloned().unwrap(),
    }
}

/// Writes `entries` to the assets register of `client`, or the provider's with `None`.
async fn put_assets(
    store: &dyn Backend,
    client: Option<ClientId>,
    entries: Vec<NewEntry>,
) -> Result<Vec<delego_core::model::RegisterEntry>, StoreError> {
    store
        .upsert_register_entries(&key("assets"), client, entries, &operator())
        .await
}

async fn register_entries_are_upserted_read_paged_and_deleted_per_scope_matching_keys_without_case(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let assets = key("assets");
    let acme = floor(store, "Acme").await.client;
    let globex = floor(store, "Globex").await.client;
    let written = put_assets(
        store,
        Some(acme),
        vec![
            entry(" LAP-0042 ", json!({"model": "X1", "owner": "eva"})),
            entry("srv-db-1", json!({"model": "R740"})),
            entry("lap-0042", json!({"model": "X1 Carbon", "owner": "eva"})),
            entry("PRN-7", json!({})),
        ],
    )
    .await
    .unwrap();
    // A key given twice is written once, with its last data, under its last spelling.
    let keys: Vec<&str> = written.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["lap-0042", "srv-db-1", "PRN-7"]);
    put_assets(store, None, vec![entry("VPN", json!({"kind": "service"}))])
        .await
        .unwrap();

    let found = store
        .register_entry(&assets, Some(acme), "  LAP-0042")
        .await
        .unwrap();
    assert_eq!(
        (found.client_id, found.data["model"].clone()),
        (Some(acme), json!("X1 Carbon"))
    );
    assert!(matches!(
        store
            .register_entry(&assets, Some(globex), "lap-0042")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.register_entry(&assets, None, "lap-0042").await,
        Err(StoreError::NotFound(_))
    ));
    // Lookups for items: the client's own entries, then the provider's; never another client's.
    let lookup = |client, key: &'static str| store.lookup_register_entry(&assets, client, key);
    assert_eq!(
        lookup(acme, "Srv-DB-1").await.unwrap().unwrap().key,
        "srv-db-1"
    );
    assert_eq!(
        lookup(globex, "vpn").await.unwrap().unwrap().client_id,
        None
    );
    assert_eq!(lookup(globex, "LAP-0042").await.unwrap(), None);
    put_assets(store, Some(acme), vec![entry("vpn", json!({"own": true}))])
        .await
        .unwrap();
    assert_eq!(
        lookup(acme, "VPN").await.unwrap().unwrap().data["own"],
        true
    );

    // Pages in key order with a cursor; each scope apart.
    let page = store
        .register_entries(&assets, Some(acme), None, 2)
        .await
        .unwrap();
    let page_keys: Vec<&str> = page.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(page_keys, ["lap-0042", "PRN-7"]);
    let rest = store
        .register_entries(&assets, Some(acme), Some(&page[1].key), 2)
        .await
        .unwrap();
    let rest_keys: Vec<&str> = rest.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(rest_keys, ["srv-db-1", "vpn"]);
    assert!(
        store
            .register_entries(&assets, Some(globex), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let provider = store
        .register_entries(&assets, None, None, 10)
        .await
        .unwrap();
    assert_eq!(provider.len(), 1);
    assert!(
        store
            .register_entries(&key("policies"), Some(acme), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    store
        .delete_register_entry(&assets, Some(acme), "prn-7", &operator())
        .await
        .unwrap();
    assert!(matches!(
        store
            .delete_register_entry(&assets, Some(acme), "PRN-7", &operator())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .delete_register_entry(&assets, Some(globex), "srv-db-1", &operator())
            .await,
        Err(StoreError::NotFound(_))
    ));

    let refused = put_assets(
        store,
        Some(acme),
        vec![entry("ok", json!({})), entry("  ", json!({}))],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Invalid(errors) if errors[0].field == "entries[1].key"),
        "{refused:?}"
    );
    assert!(
        matches!(
            store.register_entry(&assets, Some(acme), "ok").await,
            Err(StoreError::NotFound(_))
        ),
        "nothing of a refused batch is written"
    );
    assert!(matches!(
        put_assets(store, Some(ClientId::new()), vec![entry("x", json!({}))]).await,
        Err(StoreError::NotFound("client"))
    ));
}

async fn register_fields_and_the_priority_matrix_apply_on_create_and_update(h: &Harness) {
    let store = h.store.as_ref();
    let (desk, _) = help_desk(store, "Acme").await;
    let other = floor(store, "Globex").await.client;
    put_assets(
        store,
        Some(desk.client),
        vec![entry("LAP-0042", json!({"model": "X1"}))],
    )
    .await
    .unwrap();
    put_assets(store, Some(other), vec![entry("SRV-9", json!({}))])
        .await
        .unwrap();

    // An unknown asset, or another client's, is refused beside the form's own problems.
    let refused = store
        .create_item(incident(&desk, "", json!({"asset": "SRV-9"})), &operator())
        .await
        .unwrap_err();
    let StoreError::Invalid(errors) = refused else {
        panic!("{refused:?}")
    };
    let codes: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [("subject", "required"), ("asset", "not_in_register")]
    );
    assert_eq!(
        errors[1].message,
        "no affected asset `SRV-9` in the client's assets register"
    );

    let item = create(
        store,
        incident(
            &desk,
            "Laptop dead",
            json!({"asset": "lap-0042", "impact": "high"}),
        ),
    )
    .await;
    assert_eq!(item.state.data["asset"], "lap-0042", "kept as given");
    assert_eq!(
        item.state.priority,
        Priority::High,
        "impact high × urgency medium"
    );

    let update = async |version, changes: Json| {
        store
            .update_item_data(item.id(), version, data(changes), &operator())
            .await
    };
    let refused = update(item.version, json!({"asset": "LAP-0043"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Invalid(e) if e[0].code == "not_in_register"),
        "{refused:?}"
    );
    // A changed urgency ranks the item anew, and its waiting task moves up with it.
    let updated = update(item.version, json!({"urgency": "high"}))
        .await
        .unwrap();
    assert_eq!(updated.state.priority, Priority::Urgent);
    assert_eq!(updated.version, item.version + 1);
    let tasks = store.item_tasks(item.id()).await.unwrap();
    assert_eq!(tasks[0].priority, Priority::Urgent);
    let history = store.item_history(item.id()).await.unwrap();
    let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions[actions.len() - 2..],
        ["item.updated", "item.reprioritised"]
    );
    assert_eq!(
        history.last().unwrap().detail["reason"],
        "impact high × urgency high"
    );
    // Other fields leave the priority alone.
    let raised = store
        .apply_event(
            item.id(),
            None,
            Event::Reprioritise {
                priority: Priority::Low,
                reason: "by hand".into(),
            },
            &operator(),
        )
        .await
        .unwrap();
    let renamed = update(raised.version, json!({"subject": "Laptop still dead"}))
        .await
        .unwrap();
    assert_eq!(renamed.state.priority, Priority::Low);

    // An engagement's own matrix.
    let own: delego_core::definition::MatrixCells = serde_json::from_value(json!({
        "high": {"high": "urgent", "medium": "urgent", "low": "urgent"},
        "medium": {"high": "urgent", "medium": "urgent", "low": "urgent"},
        "low": {"high": "urgent", "medium": "urgent", "low": "low"},
    }))
    .unwrap();
    let settings = delego_core::model::EngagementSettings {
        priority_matrix: Some(own.clone()),
        ..Default::default()
    };
    store
        .set_engagement_settings(desk.engagement, settings, &operator())
        .await
        .unwrap();
    let tuned = create(store, incident(&desk, "Printer", json!({}))).await;
    assert_eq!(tuned.state.priority, Priority::Urgent);
    let mut gap = own;
    gap.remove("low");
    let refused = store
        .set_engagement_settings(
            desk.engagement,
            delego_core::model::EngagementSettings {
                priority_matrix: Some(gap),
                ..Default::default()
            },
            &operator(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Invalid(e) if e[0].field == "settings.priority_matrix"),
        "{refused:?}"
    );
}

async fn linked_children_follow_their_parents_resolution_in_the_same_transaction(h: &Harness) {
    let store = h.store.as_ref();
    let (desk, agent) = help_desk(store, "Acme").await;
    let (elsewhere, _) = help_desk(store, "Globex").await;
    let raise = async |floor: &Floor, subject: &str| {
        create(store, incident(floor, subject, json!({}))).await
    };
    let major = raise(&desk, "Site network down").await;
    let first = raise(&desk, "No network on floor 2").await;
    let second = raise(&desk, "Cannot reach the file share").await;
    let settled = raise(&desk, "Printer offline").await;
    let foreign = raise(&elsewhere, "Their outage").await;

    let link = async |id, parent| store.set_parent(id, parent, &operator()).await;
    let refuse = async |id, parent| link(id, Some(parent)).await.unwrap_err();
    assert!(
        matches!(refuse(first.id(), first.id()).await, StoreError::Invalid(e) if e[0].field == "parent")
    );
    assert!(matches!(
        refuse(first.id(), foreign.id()).await,
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        refuse(first.id(), WorkItemId::new()).await,
        StoreError::NotFound(_)
    ));

    let links = link(first.id(), Some(major.id())).await.unwrap();
    assert_eq!(links.parent, Some(major.id()));
    assert_eq!(
        store.item(first.id()).await.unwrap().version,
        first.version + 1
    );
    link(second.id(), Some(major.id())).await.unwrap();
    link(settled.id(), Some(major.id())).await.unwrap();
    // One level deep: a child takes no children, a parent follows no one.
    assert!(matches!(
        refuse(settled.id(), first.id()).await,
        StoreError::Invalid(_)
    ));
    assert!(matches!(
        refuse(major.id(), settled.id()).await,
        StoreError::Invalid(_)
    ));
    let children = store.item_links(major.id()).await.unwrap().children;
    assert_eq!(
        children.iter().map(|c| c.id).collect::<Vec<_>>(),
        [first.id(), second.id(), settled.id()]
    );
    // Unlinking (twice is fine) and linking again.
    link(second.id(), None).await.unwrap();
    assert_eq!(link(second.id(), None).await.unwrap().parent, None);
    link(second.id(), Some(major.id())).await.unwrap();
    let actions: Vec<String> = store
        .item_history(second.id())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.contains("link"))
        .collect();
    assert_eq!(actions, ["item.linked", "item.unlinked", "item.linked"]);
    let parent_side = store.item_history(major.id()).await.unwrap();
    assert_eq!(
        parent_side
            .iter()
            .filter(|e| e.action == "item.child_linked")
            .count(),
        4
    );

    // A child finished on its own keeps its own end.
    cancel(store, settled.id(), "duplicate").await;
    deliver_outbox(store).await;

    // The agent resolves the major incident: its open children follow at once.
    let mut resolved = None;
    while let Some(claimed) = store.claim_next_task(agent).await.unwrap() {
        if claimed.item.id() == major.id() {
            let answer =
                data(json!({"reply": "The core switch is replaced.", "resolution_code": "fixed"}));
            resolved = Some(
                store
                    .submit_task(claimed.task.id, agent, key("resolved"), answer)
                    .await
                    .unwrap(),
            );
            break;
        }
    }
    let resolved = resolved.expect("the major incident's task");
    assert!(
        matches!(&resolved.state.position, Position::Completed { resolution, .. } if resolution.as_str() == "resolved")
    );
    for child in [&first, &second] {
        let after = store.item(child.id()).await.unwrap();
        assert!(
            matches!(&after.state.position, Position::Completed { step, resolution, .. }
                if step.as_str() == "resolved" && resolution.as_str() == "resolved"),
            "{:?}",
            after.state.position
        );
        let tasks = store.item_tasks(child.id()).await.unwrap();
        assert!(
            tasks.iter().all(|t| t.status == TaskStatus::Cancelled),
            "{tasks:?}"
        );
        let thread = store.messages(child.id(), false).await.unwrap();
        let told = thread.last().unwrap();
        assert_eq!(told.author, Actor::Worker(agent));
        assert_eq!(
            told.body,
            format!(
                "Resolved together with the major incident {}.\n\nThe core switch is replaced.",
                major.id().reference()
            )
        );
        let completed = store.item_history(child.id()).await.unwrap();
        let record = completed
            .iter()
            .find(|e| e.action == "item.completed")
            .unwrap();
        assert_eq!(record.detail["parent"], json!(major.id()));
        assert_eq!(record.actor, Actor::Worker(agent));
    }
    assert_eq!(
        store
            .item(settled.id())
            .await
            .unwrap()
            .state
            .position
            .status(),
        "cancelled"
    );
    // Each requester is told: the replies wait in the outbox beside the parent's.
    let replies = store
        .take_outgoing(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.message["kind"] == "reply")
        .map(|o| o.item_id)
        .collect::<HashSet<_>>();
    assert_eq!(
        replies,
        HashSet::from([major.id(), first.id(), second.id()])
    );
    // A finished parent takes no more children.
    let late = raise(&desk, "Late report").await;
    assert!(matches!(
        refuse(late.id(), major.id()).await,
        StoreError::Conflict(_)
    ));
    assert!(matches!(
        link(first.id(), None).await,
        Err(StoreError::Rejected(Rejection::Finished))
    ));
}

/// An inbound message `id` to `floor`'s engagement from `from`, which became `disposition`
/// on `item`.
fn inbound(
    floor: &Floor,
    id: &str,
    item: Option<WorkItemId>,
    from: &str,
    disposition: Disposition,
) -> InboundMail {
    InboundMail {
        engagement_id: floor.engagement,
        message_id: id.into(),
        item_id: item,
        from_address: from.into(),
        disposition,
        no_auto_reply: false,
    }
}

const TELEMARKETING: &str = include_str!("../../../catalog/telemarketing.toml");

/// A contact of a telemarketing campaign, in Bratislava's time zone.
fn contact(floor: &Floor, name: &str, phone: &str) -> NewItem {
    NewItem {
        engagement_id: floor.engagement,
        data: data(json!({"contact_name": name, "phone": phone, "time_zone": "Europe/Bratislava"})),
        priority: Priority::Normal,
        requester_id: None,
        idempotency_key: None,
    }
}

async fn a_call_is_taken_only_in_calling_hours_and_one_taken_before_the_close_stays_its_workers(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let campaign = floor_on(store, TELEMARKETING, "Acme", "Winter campaign").await;
    let mut agent = profile(&[("telemarketing", 2)], &[campaign.client]);
    agent
        .capacity
        .insert(delego_core::routing::Channel::Voice, 1);
    let agent = hire(store, agent).await;
    let first = create(store, contact(&campaign, "Ann Novak", "+421905000001"))
        .await
        .id();
    let second = create(store, contact(&campaign, "Bea Horak", "+421905000002"))
        .await
        .id();
    // Monday 08:00 UTC is 09:00 in Bratislava: the calls are put in line.
    store.fire_due_timers().await.unwrap();
    let at = |item| async move {
        store
            .item(item)
            .await
            .unwrap()
            .state
            .position
            .step()
            .map(ToString::to_string)
    };
    assert_eq!(at(first).await.as_deref(), Some("call"));
    assert_eq!(at(second).await.as_deref(), Some("call"));

    // 19:59:30 there: the agent takes one call; at 20:00 nobody may take the other.
    h.advance(SignedDuration::from_secs(11 * 3600 - 30));
    let taken = store
        .claim_next_task(agent)
        .await
        .unwrap()
        .expect("a call in hours");
    h.advance(SignedDuration::from_secs(30));
    let other = if taken.item.id() == first {
        second
    } else {
        first
    };
    // The node restarts mid-call: the call goes back in line, kept for its agent.
    store
        .hand_back_held_tasks(SignedDuration::from_mins(10))
        .await
        .unwrap();
    assert_eq!(
        store.close_after_hours().await.unwrap(),
        1,
        "only the untaken call"
    );
    assert_eq!(at(other).await.as_deref(), Some("calling_window"));
    assert_eq!(at(taken.item.id()).await.as_deref(), Some("call"));
    let history = store.item_history(other).await.unwrap();
    assert!(
        history
            .iter()
            .any(|event| event.action == "task.after_hours")
    );
    // Its agent takes it back and finishes it after the close.
    let again = store
        .claim_next_task(agent)
        .await
        .unwrap()
        .expect("the agent's own call");
    assert_eq!(again.task.id, taken.task.id);
    store
        .submit_task(again.task.id, agent, key("no_answer"), Map::new())
        .await
        .unwrap();
    assert_eq!(at(taken.item.id()).await.as_deref(), Some("retry_later"));
    assert!(store.claim_next_task(agent).await.unwrap().is_none());

    // The next morning both are called again.
    h.advance(SignedDuration::from_hours(13));
    store.fire_due_timers().await.unwrap();
    let mut called = Vec::new();
    while let Some(call) = store.claim_next_task(agent).await.unwrap() {
        called.push(call.item.id());
        store
            .submit_task(call.task.id, agent, key("not_interested"), Map::new())
            .await
            .unwrap();
    }
    called.sort();
    let mut both = vec![first, second];
    both.sort();
    assert_eq!(called, both);
}

/// Takes everything in the outbox and says it is delivered, as a node's runtime does.
async fn deliver_outbox(store: &dyn Backend) {
    for outgoing in store.take_outgoing(1000).await.unwrap() {
        store.outgoing_delivered(outgoing.id).await.unwrap();
    }
}

const CLAIM_STALE_AFTER: SignedDuration = SignedDuration::from_mins(5);

/// Claims message `id` for `floor`'s engagement, from Ann.
async fn claim(store: &dyn Backend, floor: &Floor, id: &str) -> bool {
    store
        .claim_inbound(floor.engagement, id, "Ann@Example.com", CLAIM_STALE_AFTER)
        .await
        .unwrap()
}

/// A reply to `item`'s requester whose `Message-ID` is `id`.
fn outbound(item: WorkItemId, id: &str) -> NewOutboundMail {
    NewOutboundMail {
        item_id: item,
        message_id: id.into(),
        to_address: "ann@example.com".into(),
        to_name: Some("Ann Smith".into()),
        subject: "Re: Printer on fire".into(),
        text: "Is it plugged in?\n-- \nThe help desk".into(),
        in_reply_to: Some("in-1@example.com".into()),
        references: vec!["in-0@example.com".into(), "in-1@example.com".into()],
        automatic: false,
        attachments: Vec::new(),
    }
}

/// The actions of `item`'s audit records that are about its mail.
async fn mail_audits(store: &dyn Backend, item: WorkItemId) -> Vec<delego_core::model::AuditEvent> {
    store
        .item_history(item)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.action.starts_with("mail."))
        .collect()
}

async fn an_inbound_message_is_kept_once_per_engagement_and_counted_per_sender_since_an_instant(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let item = create(store, new_item(&acme, "Printer on fire")).await;
    let theirs = create(store, new_item(&globex, "Theirs")).await;
    let start = h.clock_now();

    // One node claims a message before taking it in; anyone else is told no meanwhile.
    assert!(claim(store, &acme, "m1@example.com").await);
    assert!(!claim(store, &acme, "m1@example.com").await);
    let first = inbound(
        &acme,
        "m1@example.com",
        Some(item.id()),
        "ann@example.com",
        Disposition::Opened,
    );
    assert!(store.record_inbound(first.clone()).await.unwrap());
    assert!(!claim(store, &acme, "m1@example.com").await);
    // Delivered again, even worded otherwise: kept once, nothing changes.
    assert!(!store.record_inbound(first.clone()).await.unwrap());
    let again = InboundMail {
        disposition: Disposition::Replied,
        ..first
    };
    assert!(!store.record_inbound(again).await.unwrap());
    let audits = mail_audits(store, item.id()).await;
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0].action, "mail.received");
    assert_eq!(audits[0].client_id, Some(acme.client));
    assert_eq!(audits[0].detail["message_id"], json!("m1@example.com"));
    assert_eq!(audits[0].detail["disposition"], json!("opened"));

    // Another engagement has ids of its own.
    assert!(claim(store, &globex, "m1@example.com").await);
    let elsewhere = inbound(
        &globex,
        "m1@example.com",
        Some(theirs.id()),
        "ann@example.com",
        Disposition::Opened,
    );
    assert!(store.record_inbound(elsewhere).await.unwrap());
    // An item is only ever the mail of its own engagement.
    let misplaced = inbound(
        &acme,
        "m9@example.com",
        Some(theirs.id()),
        "ann@example.com",
        Disposition::Replied,
    );
    assert!(matches!(
        store.record_inbound(misplaced).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(claim(store, &acme, "m9@example.com").await);

    // A claim its node never recorded (the node died midway) is taken over once stale.
    assert!(!claim(store, &acme, "m9@example.com").await);
    h.advance(CLAIM_STALE_AFTER);
    assert!(claim(store, &acme, "m9@example.com").await);
    let recorded = inbound(
        &acme,
        "m9@example.com",
        None,
        "ann@example.com",
        Disposition::KeptAside,
    );
    assert!(store.record_inbound(recorded).await.unwrap());
    h.advance(CLAIM_STALE_AFTER);
    assert!(
        !claim(store, &acme, "m9@example.com").await,
        "a recorded message stays taken"
    );

    // The sender's rate limit: that sender, that engagement, at or after the instant.
    h.advance(SignedDuration::from_mins(10));
    let later = h.clock_now();
    let reply = inbound(
        &acme,
        "m2@example.com",
        Some(item.id()),
        "ann@example.com",
        Disposition::Replied,
    );
    assert!(store.record_inbound(reply).await.unwrap());
    let other = inbound(
        &acme,
        "m3@example.com",
        Some(item.id()),
        "bob@example.com",
        Disposition::Replied,
    );
    assert!(store.record_inbound(other).await.unwrap());
    let bounce = inbound(
        &acme,
        "m4@example.com",
        None,
        "mailer-daemon@example.com",
        Disposition::Bounce,
    );
    assert!(store.record_inbound(bounce).await.unwrap());
    let count =
        |engagement, from: &'static str, since| store.inbound_from_since(engagement, from, since);
    // Her first message, the one kept aside and her reply.
    assert_eq!(
        count(acme.engagement, "ann@example.com", start)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        count(acme.engagement, "ann@example.com", later)
            .await
            .unwrap(),
        1
    );
    let after = later + SignedDuration::from_micros(1);
    assert_eq!(
        count(acme.engagement, "ann@example.com", after)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        count(acme.engagement, "bob@example.com", start)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(globex.engagement, "ann@example.com", start)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        count(globex.engagement, "bob@example.com", start)
            .await
            .unwrap(),
        0
    );
}

async fn a_reply_finds_its_item_by_the_first_id_that_names_one_and_never_in_another_engagement(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let first = create(store, new_item(&acme, "Printer on fire")).await.id();
    let second = create(store, new_item(&acme, "Scanner jammed")).await.id();
    let theirs = create(store, new_item(&globex, "Theirs")).await.id();
    let came_in =
        |floor, id, item| inbound(floor, id, item, "ann@example.com", Disposition::Opened);
    store
        .record_inbound(came_in(&acme, "in-1", Some(first)))
        .await
        .unwrap();
    store.queue_mail(outbound(second, "out-2")).await.unwrap();
    // A bounce of mail no item sent names no item.
    store
        .record_inbound(came_in(&acme, "bounce-1", None))
        .await
        .unwrap();
    store
        .record_inbound(came_in(&globex, "in-g", Some(theirs)))
        .await
        .unwrap();
    store.queue_mail(outbound(theirs, "out-g")).await.unwrap();

    let ids = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>();
    let find = async |floor: &Floor, list: &[&str]| {
        store
            .thread_item(floor.engagement, &ids(list))
            .await
            .unwrap()
    };
    assert_eq!(
        find(&acme, &["in-1"]).await,
        Some(first),
        "by an inbound id"
    );
    assert_eq!(
        find(&acme, &["out-2"]).await,
        Some(second),
        "by an outbound mail's id"
    );
    assert_eq!(find(&acme, &["unknown", "in-1"]).await, Some(first));
    assert_eq!(
        find(&acme, &["out-2", "in-1"]).await,
        Some(second),
        "the first that names one wins"
    );
    assert_eq!(
        find(&acme, &["in-1", "out-2"]).await,
        Some(first),
        "the first that names one wins"
    );
    assert_eq!(find(&acme, &["bounce-1", "in-1"]).await, Some(first));
    assert_eq!(find(&acme, &["bounce-1"]).await, None);
    assert_eq!(find(&acme, &[]).await, None);
    // Another engagement's ids never match, inbound or outbound.
    assert_eq!(find(&acme, &["in-g", "out-g"]).await, None);
    assert_eq!(find(&globex, &["in-1", "out-2"]).await, None);
    assert_eq!(find(&globex, &["in-1", "out-g"]).await, Some(theirs));
}

async fn an_item_is_found_by_its_reference_only_in_its_own_engagement(h: &Harness) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    let item = create(store, new_item(&acme, "Printer on fire")).await.id();
    create(store, new_item(&acme, "Scanner jammed")).await;
    let reference = item.reference();
    let found = |floor: &Floor, reference: String| {
        let engagement = floor.engagement;
        async move {
            store
                .item_by_reference(engagement, &reference)
                .await
                .unwrap()
        }
    };
    assert_eq!(found(&acme, reference.clone()).await, Some(item));
    assert_eq!(found(&acme, reference.to_lowercase()).await, Some(item));
    assert_eq!(found(&globex, reference.clone()).await, None);
    assert_eq!(
        found(&acme, reference[1..].to_owned()).await,
        None,
        "7 digits"
    );
    assert_eq!(found(&acme, "ZZZZZZZZ".into()).await, None);
    assert_eq!(found(&acme, "%%%%%%%%".into()).await, None);
}

async fn an_items_message_ids_are_oldest_first_and_leave_out_automatic_mail(h: &Harness) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let item = create(store, new_item(&acme, "Printer on fire")).await.id();
    let other = create(store, new_item(&acme, "Scanner jammed")).await.id();
    let came_in =
        |id, item, disposition| inbound(&acme, id, Some(item), "ann@example.com", disposition);
    assert!(store.item_message_ids(item).await.unwrap().is_empty());
    store
        .record_inbound(came_in("in-1", item, Disposition::Opened))
        .await
        .unwrap();
    // The acknowledgement goes out at the very instant the message came in.
    store.queue_mail(outbound(item, "ack-1")).await.unwrap();
    h.advance(SignedDuration::from_mins(5));
    store
        .record_inbound(came_in("other-1", other, Disposition::Opened))
        .await
        .unwrap();
    store
        .queue_mail(outbound(other, "other-out"))
        .await
        .unwrap();
    store.queue_mail(outbound(item, "out-1")).await.unwrap();
    h.advance(SignedDuration::from_mins(5));
    store
        .record_inbound(came_in("in-2", item, Disposition::Replied))
        .await
        .unwrap();
    h.advance(SignedDuration::from_mins(1));
    store
        .record_inbound(came_in("ooo-2", item, Disposition::Automatic))
        .await
        .unwrap();
    // Automatic replies are refused while the latest person's message asks for none.
    assert!(!store.refuses_auto_replies(item).await.unwrap());
    h.advance(SignedDuration::from_mins(1));
    let quiet = InboundMail {
        no_auto_reply: true,
        ..came_in("in-3", item, Disposition::Replied)
    };
    store.record_inbound(quiet).await.unwrap();
    assert!(store.refuses_auto_replies(item).await.unwrap());
    h.advance(SignedDuration::from_mins(1));
    store
        .record_inbound(came_in("ooo-3", item, Disposition::Automatic))
        .await
        .unwrap();
    assert!(
        store.refuses_auto_replies(item).await.unwrap(),
        "an automatic reply is not a person's"
    );
    assert!(!store.refuses_auto_replies(other).await.unwrap());
    // An out-of-office reply is noted on the item but threads nothing: the next reply
    // answers what a person wrote.
    assert_eq!(
        store.item_message_ids(item).await.unwrap(),
        ["in-1", "ack-1", "out-1", "in-2", "in-3"]
    );
    assert_eq!(
        store.item_message_ids(other).await.unwrap(),
        ["other-1", "other-out"]
    );
}

async fn queued_mail_is_taken_once_per_lease_retried_failed_sent_and_bounced_with_audits(
    h: &Harness,
) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let item = create(store, new_item(&acme, "Printer on fire")).await.id();
    let other = create(store, new_item(&acme, "Scanner jammed")).await.id();
    let lease = SignedDuration::from_mins(5);
    let start = h.clock_now();

    let file = delego_core::id::AttachmentId::new();
    let queued = store
        .queue_mail(NewOutboundMail {
            attachments: vec![file],
            ..outbound(item, "out-1@delego")
        })
        .await
        .unwrap();
    assert_eq!(
        store.item_mail(item).await.unwrap()[0].attachments,
        [file],
        "the files it carries"
    );
    assert_eq!(queued.client_id, acme.client, "the item's client");
    assert_eq!(
        queued.engagement_id, acme.engagement,
        "the item's engagement"
    );
    assert_eq!(queued.item_id, item);
    assert_eq!(queued.status, MailStatus::Queued);
    assert_eq!(queued.attempts, 0);
    assert_eq!(queued.next_attempt_at, Some(start), "first tried now");
    assert_eq!(
        (
            queued.created_at,
            queued.sent_at,
            queued.last_error.as_deref()
        ),
        (start, None, None)
    );
    let read = store.outbound_mail("out-1@delego").await.unwrap();
    assert_eq!(read.as_ref(), Some(&queued), "every field round-trips");
    assert_eq!(store.outbound_mail("unknown@delego").await.unwrap(), None);
    let unknown = store
        .queue_mail(outbound(WorkItemId::new(), "out-x@delego"))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    let twin = store.queue_mail(outbound(other, "out-1@delego")).await;
    assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");

    // Taken once; another take while the lease runs gets nothing.
    let taken = store.take_due_mail(10, lease).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, queued.id);
    assert_eq!(taken[0].attempts, 1);
    assert_eq!(taken[0].next_attempt_at, Some(start + lease));
    assert!(store.take_due_mail(10, lease).await.unwrap().is_empty());
    h.advance(SignedDuration::from_mins(4));
    assert!(store.take_due_mail(10, lease).await.unwrap().is_empty());
    // The node died mid-send: when the lease ends, the mail is tried again.
    h.advance(SignedDuration::from_mins(1));
    let taken = store.take_due_mail(10, lease).await.unwrap();
    assert_eq!(
        taken.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        [(queued.id, 2)]
    );

    // A failure with a retry time puts it back in the queue for then.
    let retry_at = h.clock_now() + SignedDuration::from_mins(10);
    store
        .mail_failed(queued.id, "421 4.7.0 try again later", Some(retry_at))
        .await
        .unwrap();
    let waiting = store.outbound_mail("out-1@delego").await.unwrap().unwrap();
    assert_eq!(waiting.status, MailStatus::Queued);
    assert_eq!(waiting.next_attempt_at, Some(retry_at));
    assert_eq!(
        waiting.last_error.as_deref(),
        Some("421 4.7.0 try again later")
    );
    assert!(
        mail_audits(store, item).await.is_empty(),
        "a retry is not a failure"
    );
    h.advance(SignedDuration::from_mins(9));
    assert!(store.take_due_mail(10, lease).await.unwrap().is_empty());
    h.advance(SignedDuration::from_mins(1));
    let taken = store.take_due_mail(10, lease).await.unwrap();
    assert_eq!(
        taken.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        [(queued.id, 3)]
    );

    // Without one it has failed for good, audited on its item.
    store
        .mail_failed(queued.id, "550 5.1.1 no such user", None)
        .await
        .unwrap();
    let failed = store.outbound_mail("out-1@delego").await.unwrap().unwrap();
    assert_eq!(failed.status, MailStatus::Failed);
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(failed.last_error.as_deref(), Some("550 5.1.1 no such user"));
    let audits = mail_audits(store, item).await;
    assert_eq!(
        audits.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["mail.failed"]
    );
    assert_eq!(audits[0].client_id, Some(acme.client));
    assert_eq!(audits[0].detail["error"], json!("550 5.1.1 no such user"));
    h.advance(SignedDuration::from_hours(1));
    assert!(
        store.take_due_mail(10, lease).await.unwrap().is_empty(),
        "failed mail stays failed"
    );

    // Another is sent, then bounces.
    h.advance(SignedDuration::from_mins(1));
    let automatic = NewOutboundMail {
        automatic: true,
        to_name: None,
        in_reply_to: None,
        references: Vec::new(),
        ..outbound(item, "out-2@delego")
    };
    let second = store.queue_mail(automatic).await.unwrap();
    assert!(second.automatic);
    assert_eq!(store.take_due_mail(10, lease).await.unwrap().len(), 1);
    h.advance(SignedDuration::from_secs(3));
    store.mail_sent(second.id).await.unwrap();
    let sent = store.outbound_mail("out-2@delego").await.unwrap().unwrap();
    assert_eq!(sent.status, MailStatus::Sent);
    assert_eq!(sent.sent_at, Some(h.clock_now()));
    assert_eq!((sent.attempts, sent.next_attempt_at), (1, None));
    assert!(
        (
            sent.automatic,
            sent.to_name.is_none(),
            sent.references.is_empty()
        ) == (true, true, true)
    );
    h.advance(SignedDuration::from_hours(1));
    assert!(
        store.take_due_mail(10, lease).await.unwrap().is_empty(),
        "sent mail is not sent again"
    );
    store
        .mail_bounced(second.id, "550 5.1.1 <ann@example.com>: mailbox unknown")
        .await
        .unwrap();
    let bounced = store.outbound_mail("out-2@delego").await.unwrap().unwrap();
    assert_eq!(bounced.status, MailStatus::Bounced);
    assert_eq!(
        bounced.last_error.as_deref(),
        Some("550 5.1.1 <ann@example.com>: mailbox unknown")
    );
    let audits = mail_audits(store, item).await;
    assert_eq!(
        audits.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["mail.failed", "mail.bounced"]
    );
    assert_eq!(audits[1].client_id, Some(acme.client));
    assert_eq!(
        audits[1].detail["detail"],
        json!("550 5.1.1 <ann@example.com>: mailbox unknown")
    );

    // The item's mail, oldest first, without another item's.
    store
        .queue_mail(outbound(other, "out-3@delego"))
        .await
        .unwrap();
    let mail = store.item_mail(item).await.unwrap();
    assert_eq!(
        mail.iter().map(|m| m.id).collect::<Vec<_>>(),
        [queued.id, second.id]
    );
    assert_eq!(mail[1], bounced);
    assert_eq!(store.item_mail(other).await.unwrap().len(), 1);
    // Unknown mail is reported, not ignored.
    for outcome in [
        store.mail_sent(uuid::Uuid::now_v7()).await,
        store.mail_failed(uuid::Uuid::now_v7(), "x", None).await,
        store.mail_bounced(uuid::Uuid::now_v7(), "x").await,
    ] {
        assert!(
            matches!(outcome, Err(StoreError::NotFound(_))),
            "{outcome:?}"
        );
    }
}

async fn nodes_taking_due_mail_at_once_never_take_the_same_mail(h: &Harness) {
    let store = h.store.clone();
    let acme = floor(store.as_ref(), "Acme").await;
    let item = create(store.as_ref(), new_item(&acme, "Printer on fire"))
        .await
        .id();
    let mut queued = HashSet::new();
    for n in 0..24 {
        queued.insert(
            store
                .queue_mail(outbound(item, &format!("out-{n}@delego")))
                .await
                .unwrap()
                .id,
        );
    }
    // On PostgreSQL a second node shares the database; SQLite has one node.
    let other = h.another_node().await.unwrap_or_else(|| store.clone());
    let mut takers = Vec::new();
    for node in [store.clone(), other.clone(), store.clone(), other] {
        takers.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            loop {
                let batch = node
                    .take_due_mail(3, SignedDuration::from_mins(5))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return taken;
                }
                taken.extend(batch.into_iter().map(|mail| (mail.id, mail.attempts)));
            }
        }));
    }
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.unwrap());
    }
    assert_eq!(taken.len(), queued.len(), "each mail taken exactly once");
    assert_eq!(
        taken.iter().map(|(id, _)| *id).collect::<HashSet<_>>(),
        queued
    );
    assert!(taken.iter().all(|(_, attempts)| *attempts == 1));
}

async fn messages_kept_aside_keep_their_bytes_and_are_listed_per_client_newest_first(h: &Harness) {
    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let globex = floor(store, "Globex").await;
    // Not UTF-8: a message in a legacy charset, cut mid-sequence.
    let raw: Vec<u8> =
        b"From: Ann <ann@example.com>\r\nSubject: =?x?\r\n\r\n\xff\xfe\x00caf\xe9\x80".to_vec();
    let aside = |floor: Option<&Floor>, reason: &str, raw: &[u8]| NewKeptAside {
        engagement_id: floor.map(|f| f.engagement),
        client_id: floor.map(|f| f.client),
        source: "maildir".into(),
        reason: reason.into(),
        from_address: Some("ann@example.com".into()),
        subject: Some("Printer".into()),
        raw: raw.to_vec(),
    };
    let theirs = store
        .keep_aside(aside(Some(&acme), "unknown sender", &raw))
        .await
        .unwrap();
    assert_eq!(theirs.size, raw.len() as u64);
    assert_eq!(theirs.received_at, h.clock_now());
    assert_eq!(
        (theirs.engagement_id, theirs.client_id),
        (Some(acme.engagement), Some(acme.client))
    );
    h.advance(SignedDuration::from_mins(1));
    let globexs = store
        .keep_aside(aside(Some(&globex), "over the sender's rate limit", b"x"))
        .await
        .unwrap();
    h.advance(SignedDuration::from_mins(1));
    let unplaced = NewKeptAside {
        from_address: None,
        subject: None,
        source: "api".into(),
        ..aside(None, "unreadable", b"\x00\x01")
    };
    let nobodys = store.keep_aside(unplaced).await.unwrap();
    assert_eq!((nobodys.engagement_id, nobodys.client_id), (None, None));
    h.advance(SignedDuration::from_mins(1));
    // A message of an engagement is its client's even when the caller left the client out.
    let unnamed = NewKeptAside {
        client_id: None,
        ..aside(Some(&acme), "automatic, nothing to note it on", b"y")
    };
    let later = store.keep_aside(unnamed).await.unwrap();
    assert_eq!(later.client_id, Some(acme.client));

    let listed = async |client, limit| {
        store
            .kept_aside(client, limit)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(Some(acme.client), 10).await, [later.id, theirs.id]);
    assert_eq!(listed(Some(globex.client), 10).await, [globexs.id]);
    assert_eq!(
        listed(None, 10).await,
        [later.id, nobodys.id, globexs.id, theirs.id]
    );
    assert_eq!(listed(None, 2).await, [later.id, nobodys.id]);
    assert_eq!(
        store.kept_aside(Some(acme.client), 10).await.unwrap()[1],
        theirs
    );

    let (kept, bytes) = store.kept_aside_message(theirs.id).await.unwrap();
    assert_eq!(kept, theirs);
    assert_eq!(bytes, raw, "the exact bytes");
    assert_eq!(
        store.kept_aside_message(nobodys.id).await.unwrap().1,
        b"\x00\x01"
    );
    let unknown = store.kept_aside_message(uuid::Uuid::now_v7()).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

async fn a_messages_quoted_history_is_kept_with_it(h: &Harness) {
    use delego_core::model::Visibility;

    let store = h.store.as_ref();
    let acme = floor(store, "Acme").await;
    let item = create(store, new_item(&acme, "Printer on fire")).await.id();
    let message = |body: &str, quoted: Option<&str>| delego_store::NewMessage {
        item_id: item,
        author: operator(),
        visibility: Visibility::Public,
        body: body.into(),
        attachments: Vec::new(),
        event: None,
        quoted: quoted.map(Into::into),
    };
    let history = "On Monday, the help desk wrote:\n> Is it plugged in?";
    let (added, _) = store
        .add_message(message("Yes, it is.", Some(history)))
        .await
        .unwrap();
    assert_eq!(added.quoted.as_deref(), Some(history));
    h.advance(SignedDuration::from_mins(1));
    let (plain, _) = store
        .add_message(message("Still smoking.", None))
        .await
        .unwrap();
    assert_eq!(plain.quoted, None);
    let thread = store.messages(item, true).await.unwrap();
    assert_eq!(thread, [added, plain]);
}
