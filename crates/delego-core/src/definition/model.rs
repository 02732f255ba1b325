//! The typed, validated shape of a service definition. Values of these types only come out
//! of [`super::load_definition`], so the engine may trust them: every transition names an
//! existing step, every expression compiled, every step is reachable.

use jiff::SignedDuration;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::expr::Expression;
use crate::values::{Key, Name, Priority, SkillLevel};

/// One version of one catalog service.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceDefinition {
    pub key: Key,
    pub version: u32,
    pub name: Name,
    pub kind: ServiceKind,
    pub description: String,
    /// Every skill the service's human steps need: staffing and clearance planning read it.
    pub skills: Vec<Key>,
    pub sla: SlaDefaults,
    /// The business hours SLA clocks and step deadlines count in: always open in the
    /// service itself; an engagement sets its own.
    pub calendar: crate::calendar::BusinessCalendar,
    /// An intake field holding the requester's language; its value is required of the
    /// worker who takes the item's tasks.
    pub language_field: Option<Key>,
    /// An intake e-mail field naming the requester: items are linked to the client's
    /// requester with that address, created on first sight.
    pub requester_field: Option<Key>,
    pub intake: Form,
    pub start: Key,
    /// In the order the file lists them.
    pub steps: Vec<Step>,
    /// Prepared answers agents start a reply from, in the file's order.
    pub canned_replies: Vec<CannedReply>,
}

/// A prepared answer: its `body` fills a step form's text `field`, with `{name}`
/// placeholders replaced by the item's intake values and `{agent_name}` by the agent's.
#[derive(Clone, Debug, Serialize)]
pub struct CannedReply {
    pub key: Key,
    pub title: String,
    pub field: Key,
    pub body: String,
}

/// The placeholder for the name of the agent replying.
pub const AGENT_NAME: &str = "agent_name";

impl CannedReply {
    /// The body with its placeholders filled; a value the item lacks leaves an empty
    /// space rather than a placeholder the requester would see.
    pub fn fill(&self, data: &serde_json::Map<String, serde_json::Value>, agent: &str) -> String {
        let mut text = String::with_capacity(self.body.len());
        let mut rest = self.body.as_str();
        while let Some((before, name, after)) = next_placeholder(rest) {
            text.push_str(before);
            match (name, data.get(name)) {
                (AGENT_NAME, _) => text.push_str(agent),
                (_, Some(serde_json::Value::String(value))) => text.push_str(value),
                (_, Some(serde_json::Value::Null) | None) => {}
                (_, Some(other)) => text.push_str(&other.to_string()),
            }
            rest = after;
        }
        text.push_str(rest);
        text
    }

    /// The names of the body's placeholders.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names = Vec::new();
        let mut rest = self.body.as_str();
        while let Some((_, name, after)) = next_placeholder(rest) {
            names.push(name);
            rest = after;
        }
        names
    }
}

/// `{name}` where name is a field key; any other brace is plain text.
fn next_placeholder(text: &str) -> Option<(&str, &str, &str)> {
    let mut from = 0;
    while let Some(open) = text[from..].find('{').map(|i| i + from) {
        let after = &text[open + 1..];
        if let Some(close) = after.find('}') {
            let name = &after[..close];
            if Key::parse(name).is_ok() {
                return Some((&text[..open], name, &after[close + 1..]));
            }
        }
        from = open + 1;
    }
    None
}

impl ServiceDefinition {
    pub fn step(&self, id: &Key) -> Option<&Step> {
        self.steps.iter().find(|step| &step.id == id)
    }

    pub fn canned_reply(&self, key: &str) -> Option<&CannedReply> {
        self.canned_replies
            .iter()
            .find(|reply| reply.key.as_str() == key)
    }

    /// This definition as an engagement runs it: its wait timers, calendar and SLA
    /// targets in place of the service's. Refuses a timer for a step that is not a wait
    /// step with a timer, naming it.
    pub fn tuned(
        &self,
        settings: &crate::model::EngagementSettings,
    ) -> Result<ServiceDefinition, String> {
        let mut tuned = self.with_wait_timers(&settings.wait_timers)?;
        if let Some(calendar) = &settings.calendar {
            tuned.calendar = calendar.clone();
        }
        let own = &settings.sla;
        let sla = &mut tuned.sla;
        sla.first_response = own.first_response.or(sla.first_response);
        sla.next_response = own.next_response.or(sla.next_response);
        sla.resolution = own.resolution.or(sla.resolution);
        sla.step = own.step.or(sla.step);
        sla.warn_at_percent = own.warn_at_percent.unwrap_or(sla.warn_at_percent);
        if let Some(actions) = &own.on_warning {
            sla.on_warning = actions.clone();
        }
        if let Some(actions) = &own.on_breach {
            sla.on_breach = actions.clone();
        }
        Ok(tuned)
    }

    /// This definition with an engagement's wait timers in place of its own. Refuses a
    /// step that is not a wait step with a timer, naming it.
    pub fn with_wait_timers(
        &self,
        timers: &std::collections::BTreeMap<Key, SignedDuration>,
    ) -> Result<ServiceDefinition, String> {
        let mut tuned = self.clone();
        for (step_id, duration) in timers {
            let step = tuned
                .steps
                .iter_mut()
                .find(|step| &step.id == step_id)
                .ok_or_else(|| format!("the service has no step `{step_id}`"))?;
            match &mut step.kind {
                StepKind::Wait {
                    timer: Some(timer), ..
                } if duration.is_positive() => *timer = *duration,
                StepKind::Wait { timer: Some(_), .. } => {
                    return Err(format!("the timer of `{step_id}` must be positive"));
                }
                _ => return Err(format!("`{step_id}` is not a wait step with a timer")),
            }
        }
        Ok(tuned)
    }

    /// The intake fields and every step form's fields: what an item's data may hold and
    /// what decision expressions may read.
    pub fn all_fields(&self) -> Vec<&Field> {
        let step_fields = self
            .steps
            .iter()
            .filter_map(Step::work)
            .flat_map(|work| work.form.fields.iter());
        self.intake.fields.iter().chain(step_fields).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Business process outsourcing: a fixed process at volume, sampled QA.
    Bpo,
    /// Knowledge process outsourcing: expert judgement, every deliverable reviewed.
    Kpo,
}

#[derive(Clone, Debug, Serialize)]
pub struct SlaDefaults {
    #[serde(with = "duration_option")]
    pub first_response: Option<SignedDuration>,
    /// From a requester's message to the provider's next public answer.
    #[serde(with = "duration_option")]
    pub next_response: Option<SignedDuration>,
    #[serde(with = "duration_option")]
    pub resolution: Option<SignedDuration>,
    /// Applied to a human or review step that sets no `due` of its own.
    #[serde(with = "duration_option")]
    pub step: Option<SignedDuration>,
    /// A clock past this share of its target is at risk.
    pub warn_at_percent: u8,
    pub on_warning: Vec<crate::sla::EscalationAction>,
    pub on_breach: Vec<crate::sla::EscalationAction>,
}

impl Default for SlaDefaults {
    fn default() -> Self {
        Self {
            first_response: None,
            next_response: None,
            resolution: None,
            step: None,
            warn_at_percent: crate::sla::SlaTargets::default().warn_at_percent,
            on_warning: crate::sla::default_on_warning(),
            on_breach: crate::sla::default_on_breach(),
        }
    }
}

impl SlaDefaults {
    /// The item-level targets these defaults set.
    pub fn targets(&self) -> crate::sla::SlaTargets {
        crate::sla::SlaTargets {
            first_response: self.first_response,
            next_response: self.next_response,
            resolution: self.resolution,
            warn_at_percent: self.warn_at_percent,
            on_warning: self.on_warning.clone(),
            on_breach: self.on_breach.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Form {
    pub fields: Vec<Field>,
}

impl Form {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name.as_str() == name)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub name: Key,
    pub label: String,
    pub help: Option<String>,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub required: bool,
    pub rules: Rules,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    /// `{ "amount": "12.50", "currency": "EUR" }`: exact decimal, ISO 4217 currency.
    Money,
    Date,
    DateTime,
    Enum,
    Boolean,
    Email,
    Phone,
    /// A list whose elements all have the given (non-list) type.
    List(Box<FieldType>),
    /// The id of an attachment stored with the item.
    Attachment,
}

impl FieldType {
    pub fn name(&self) -> String {
        match self {
            FieldType::Text => "text".into(),
            FieldType::LongText => "long_text".into(),
            FieldType::Integer => "integer".into(),
            FieldType::Decimal => "decimal".into(),
            FieldType::Money => "money".into(),
            FieldType::Date => "date".into(),
            FieldType::DateTime => "date_time".into(),
            FieldType::Enum => "enum".into(),
            FieldType::Boolean => "boolean".into(),
            FieldType::Email => "email".into(),
            FieldType::Phone => "phone".into(),
            FieldType::List(of) => format!("list of {}", of.name()),
            FieldType::Attachment => "attachment".into(),
        }
    }
}

/// Checks on a field's value. Which rules apply depends on the type; the loader refuses a
/// rule that cannot apply (a pattern on an integer, say).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Rules {
    /// Inclusive bounds for integer, decimal and money amounts.
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    /// Length in characters for text-like values.
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    /// A regular expression the whole text must match.
    #[serde(serialize_with = "serialize_pattern")]
    pub pattern: Option<regex::Regex>,
    /// The allowed values of an enum (or a list of enums).
    pub values: Vec<String>,
    pub min_items: Option<u32>,
    pub max_items: Option<u32>,
    /// For money: the only currencies accepted; empty accepts any.
    pub currencies: Vec<String>,
}

fn serialize_pattern<S: serde::Serializer>(
    pattern: &Option<regex::Regex>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_some(&pattern.as_ref().map(regex::Regex::as_str))
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub id: Key,
    pub title: String,
    pub kind: StepKind,
}

impl Step {
    /// The steps this step may lead to, with the outcome that leads there.
    pub fn successors(&self) -> Vec<(&str, &Key)> {
        match &self.kind {
            StepKind::Human { on, .. } => on.iter().map(|t| (t.outcome.as_str(), &t.to)).collect(),
            StepKind::Review {
                on_approve,
                reject_to,
                ..
            } => vec![(APPROVE, on_approve), (REJECT, reject_to)],
            StepKind::Automatic { next, .. } => vec![(DONE, next)],
            StepKind::Wait { on, .. } => on.iter().map(|t| (t.outcome.as_str(), &t.to)).collect(),
            StepKind::Decision {
                branches,
                otherwise,
            } => branches
                .iter()
                .map(|branch| (branch.when.source(), &branch.to))
                .chain([(OTHERWISE, otherwise)])
                .collect(),
            StepKind::End { .. } => Vec::new(),
        }
    }

    /// Whether an item in this step waits for a person or for time: a cycle through such a
    /// step cannot spin the engine.
    pub fn halts(&self) -> bool {
        matches!(
            self.kind,
            StepKind::Human { .. }
                | StepKind::Review { .. }
                | StepKind::Wait { .. }
                | StepKind::End { .. }
        )
    }

    /// The human work this step asks for, if any.
    pub fn work(&self) -> Option<&Work> {
        match &self.kind {
            StepKind::Human { work, .. } | StepKind::Review { work, .. } => Some(work),
            _ => None,
        }
    }
}

pub const APPROVE: &str = "approve";
pub const REJECT: &str = "reject";
pub const DONE: &str = "done";
pub const TIMEOUT: &str = "timeout";
pub const OTHERWISE: &str = "otherwise";

/// What a person must bring to a human or review step.
#[derive(Clone, Debug, Serialize)]
pub struct Work {
    pub skill: Key,
    pub min_level: SkillLevel,
    /// Expected handle time: staffing and SLA planning use it.
    #[serde(with = "duration")]
    pub handle_time: SignedDuration,
    /// How long the task may take before it is late, in business time on the calendar.
    #[serde(with = "duration_option")]
    pub due: Option<SignedDuration>,
    /// What the worker fills in; submitted values are merged into the item's data.
    pub form: Form,
    /// Qualifications the worker must hold, beyond the skill.
    pub certifications: std::collections::BTreeSet<Key>,
    /// How the step's tasks are queued and handed out.
    pub routing: crate::routing::RoutingPolicy,
    /// A text field of the form whose value becomes a message in the item's thread.
    pub message: Option<MessagePolicy>,
}

/// Which form field is the worker's message, and when it goes to the requester.
#[derive(Clone, Debug, Serialize)]
pub struct MessagePolicy {
    pub field: Key,
    /// Outcomes whose message is a public reply; with any other it is an internal note.
    pub public_on: std::collections::BTreeSet<Key>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    pub outcome: Key,
    pub to: Key,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// A person does the work and picks one of the outcomes.
    Human { work: Work, on: Vec<Transition> },
    /// Four eyes: a different person approves or rejects the work of `reviews`.
    Review {
        work: Work,
        reviews: Key,
        /// Share of items reviewed, 0–100; the rest pass as approved.
        sample_percent: u8,
        on_approve: Key,
        reject_to: Key,
    },
    /// A built-in action run by the engine or its runtime, then `next`.
    Automatic { action: Action, next: Key },
    /// Waits for a named external event or a timer, whichever comes first.
    Wait {
        #[serde(with = "duration_option")]
        timer: Option<SignedDuration>,
        /// Outcomes are the event names and, with a timer, `timeout`.
        on: Vec<Transition>,
    },
    /// Branches on the item's data: the first branch whose expression is true wins.
    Decision {
        branches: Vec<Branch>,
        otherwise: Key,
    },
    /// The item is finished with this resolution.
    End { resolution: Key },
}

#[derive(Clone, Debug, Serialize)]
pub struct Branch {
    pub when: Expression,
    pub to: Key,
}

/// The built-in actions an automatic step can run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Sets the item's priority.
    SetPriority { priority: Priority },
    /// Sends the requester a message from a named template (delivered by the outbox).
    NotifyRequester { template: Key },
    /// Asks the requester for a satisfaction rating through a signed link.
    RequestCsat,
}

impl Action {
    pub const NAMES: [&str; 3] = ["set_priority", "notify_requester", "request_csat"];
}

mod duration {
    use jiff::SignedDuration;

    pub fn serialize<S: serde::Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{d:#}"))
    }
}

mod duration_option {
    use jiff::SignedDuration;

    pub fn serialize<S: serde::Serializer>(
        d: &Option<SignedDuration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&format_args!("{d:#}")),
            None => s.serialize_none(),
        }
    }
}
