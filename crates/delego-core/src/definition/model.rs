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
    /// Facts about an item the service reads from outside its data: entries of the
    /// client's registers and counts of related items, refreshed before every decision.
    pub lookups: Vec<Lookup>,
    /// The notices requesters are sent, in the file's order.
    pub templates: Vec<MessageTemplate>,
    /// Sets the item's priority from its impact and urgency, if the service has one.
    pub priority_matrix: Option<PriorityMatrix>,
    /// Shares of outcomes the metrics report for the service (a campaign's contact rate).
    pub rates: Vec<Rate>,
}

/// A fact a decision expression reads under `name`.
#[derive(Clone, Debug, Serialize)]
pub struct Lookup {
    pub name: Key,
    pub kind: LookupKind,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LookupKind {
    /// The data of the client's (else the provider's) entry of `register` whose key is
    /// the value of intake field `key`; `null` when there is none.
    Register { register: Key, key: Key },
    /// How many other items of the engagement, created within `within` before this one,
    /// have the same value of intake field `field`.
    CountItems {
        field: Key,
        #[serde(with = "duration")]
        within: SignedDuration,
    },
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

/// A notice to the requester (`[[templates]]`), sent by a `notify_requester` step, by a
/// `request_csat` step ([`CSAT_REQUEST`]) and when the item is merged ([`MERGED`]).
#[derive(Clone, Debug, Serialize)]
pub struct MessageTemplate {
    pub key: Key,
    /// A heading line above the body, as an e-mail's subject line.
    pub subject: Option<String>,
    pub body: String,
}

/// The template a `request_csat` step sends; without one, [`DEFAULT_CSAT_REQUEST`].
pub const CSAT_REQUEST: &str = "csat_request";
/// The text of the satisfaction request of a service without a `csat_request` template.
pub const DEFAULT_CSAT_REQUEST: &str = "How did we do? Please rate our answer: {csat_link}";
/// The reason a duplicate merged into another item is cancelled with, and the template
/// its requester is sent, if the service has one.
pub const MERGED: &str = "merged";

/// The placeholders of a template besides the intake fields: the item's reference, the
/// requester's signed links to answer and to rate it, and the reference of the item it was
/// merged into.
pub const REFERENCE: &str = "reference";
pub const REPLY_LINK: &str = "reply_link";
pub const CSAT_LINK: &str = "csat_link";
pub const MERGED_INTO: &str = "merged_into";
pub const TEMPLATE_VALUES: [&str; 4] = [REFERENCE, REPLY_LINK, CSAT_LINK, MERGED_INTO];

/// `text` with its `{name}` placeholders filled: the value `values` names, else the item's
/// value of the field `name`. A value the item lacks leaves an empty space rather than a
/// placeholder the requester would see; any other brace is plain text.
pub fn fill(
    text: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    values: &[(&str, &str)],
) -> String {
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, name, after)) = next_placeholder(rest) {
        filled.push_str(before);
        let named = values.iter().find(|(key, _)| *key == name);
        match (named, data.get(name)) {
            (Some((_, value)), _) => filled.push_str(value),
            (None, Some(serde_json::Value::String(value))) => filled.push_str(value),
            (None, Some(serde_json::Value::Null) | None) => {}
            (None, Some(other)) => filled.push_str(&other.to_string()),
        }
        rest = after;
    }
    filled.push_str(rest);
    filled
}

/// The names of a text's placeholders, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some((_, name, after)) = next_placeholder(rest) {
        names.push(name);
        rest = after;
    }
    names
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

    pub fn template(&self, key: &str) -> Option<&MessageTemplate> {
        self.templates
            .iter()
            .find(|template| template.key.as_str() == key)
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
        if let Some(cells) = &settings.priority_matrix {
            tuned.priority_matrix = Some(self.matrix_with(cells)?);
        }
        Ok(tuned)
    }

    /// The service's priority matrix with an engagement's own cells: they name only values
    /// of the impact and urgency fields, and every pair of them.
    pub fn matrix_with(&self, cells: &MatrixCells) -> Result<PriorityMatrix, String> {
        let matrix = self
            .priority_matrix
            .as_ref()
            .ok_or("the service has no priority matrix")?;
        let values = |field: &Key| {
            self.intake
                .field(field.as_str())
                .map_or(&[][..], |field| field.rules.values.as_slice())
        };
        let (impacts, urgencies) = (values(&matrix.impact_field), values(&matrix.urgency_field));
        for (impact, row) in cells {
            if !impacts.contains(impact) {
                return Err(format!("`{impact}` is not a value of the impact field"));
            }
            if let Some(urgency) = row.keys().find(|urgency| !urgencies.contains(urgency)) {
                return Err(format!("`{urgency}` is not a value of the urgency field"));
            }
        }
        if let Some((impact, urgency)) = missing_cells(impacts, urgencies, cells).first() {
            return Err(format!(
                "the matrix has no cell for impact `{impact}` and urgency `{urgency}`"
            ));
        }
        Ok(PriorityMatrix {
            cells: cells.clone(),
            ..matrix.clone()
        })
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

/// Impact value → urgency value → priority: the cells of a priority matrix.
pub type MatrixCells =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Priority>>;

/// An item's priority from two enum intake fields, as IT service desks set it: how much is
/// affected (impact) by how soon it matters (urgency).
#[derive(Clone, Debug, Serialize)]
pub struct PriorityMatrix {
    pub impact_field: Key,
    pub urgency_field: Key,
    pub cells: MatrixCells,
}

impl PriorityMatrix {
    /// The cell of the data's impact and urgency; `None` while either is unset.
    pub fn priority(&self, data: &serde_json::Map<String, serde_json::Value>) -> Option<Priority> {
        let value = |field: &Key| data.get(field.as_str())?.as_str();
        let row = self.cells.get(value(&self.impact_field)?)?;
        row.get(value(&self.urgency_field)?).copied()
    }
}

/// The pairs of impact and urgency values `cells` has no priority for, in value order.
pub fn missing_cells<'v>(
    impacts: &'v [String],
    urgencies: &'v [String],
    cells: &MatrixCells,
) -> Vec<(&'v str, &'v str)> {
    impacts
        .iter()
        .flat_map(|impact| urgencies.iter().map(move |urgency| (impact, urgency)))
        .filter(|(impact, urgency)| {
            cells
                .get(*impact)
                .is_none_or(|row| !row.contains_key(*urgency))
        })
        .map(|(impact, urgency)| (impact.as_str(), urgency.as_str()))
        .collect()
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Form {
    pub fields: Vec<Field>,
}

impl Form {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name.as_str() == name)
    }

    /// The form's field of type `article`, if it has exactly one: where a knowledge-base
    /// article picked or written beside the form is named.
    pub fn article_field(&self) -> Option<&Field> {
        let mut articles = self
            .fields
            .iter()
            .filter(|field| field.kind == FieldType::Article);
        match (articles.next(), articles.next()) {
            (Some(field), None) => Some(field),
            _ => None,
        }
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
    /// Outcomes of the step that need this field although it is not `required`: a
    /// resolution must name its article, an escalation must say why.
    pub required_on: std::collections::BTreeSet<Key>,
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
    /// The id of an article in the knowledge base of the item's engagement.
    Article,
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
            FieldType::Article => "article".into(),
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
    /// For text: the register (the client's reference data, an asset register say) whose
    /// entry the value must name. The store checks it, since only it knows the client.
    pub register: Option<Key>,
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
/// The decision variable holding how many times the item has entered each step, e.g.
/// `entries.call >= 5`; a field or lookup of that name takes its place.
pub const ENTRIES: &str = "entries";
pub const OTHERWISE: &str = "otherwise";

/// A share of work the service's metrics report, such as a campaign's contact rate
/// (calls that reached the contact of all calls made) or its conversion: tasks done with
/// one of the outcomes `count` names ÷ tasks done with one of those `of` names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub key: Key,
    pub title: String,
    pub help: Option<String>,
    pub count: Vec<OutcomeRef>,
    pub of: Vec<OutcomeRef>,
}

/// Outcomes of a step: one (`"call.interested"`) or all of them (`"call.*"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutcomeRef {
    pub step: Key,
    /// `None` for every outcome of the step.
    pub outcome: Option<Key>,
}

impl OutcomeRef {
    /// Whether a task done at `step` with `outcome` counts.
    pub fn matches(&self, step: &str, outcome: &str) -> bool {
        self.step.as_str() == step
            && self
                .outcome
                .as_ref()
                .is_none_or(|own| own.as_str() == outcome)
    }
}

/// A rate measured over some outcome counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Measured {
    pub count: u64,
    pub of: u64,
    /// `count ÷ of`; `None` when nothing was done that it is a share of.
    pub value: Option<f64>,
}

impl Rate {
    /// The rate over counts keyed `"step.outcome"`, as the metrics keep them.
    pub fn measure(&self, outcomes: &std::collections::BTreeMap<String, u64>) -> Measured {
        let sum = |refs: &[OutcomeRef]| -> u64 {
            outcomes
                .iter()
                .filter(|(key, _)| {
                    key.split_once('.').is_some_and(|(step, outcome)| {
                        refs.iter().any(|r| r.matches(step, outcome))
                    })
                })
                .map(|(_, count)| count)
                .sum()
        };
        let (count, of) = (sum(&self.count), sum(&self.of));
        Measured {
            count,
            of,
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            value: (of > 0).then(|| count as f64 / of as f64),
        }
    }
}

/// Opening hours kept in the time zone an item's field names (a contact's calling hours),
/// rather than on the engagement's calendar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalHours {
    /// A text field holding an IANA time zone name; the engagement calendar's zone is used
    /// when the item has none or an unknown one.
    pub zone_field: Key,
    /// The hours per weekday, validated.
    pub hours: crate::calendar::WeekSpec,
}

impl LocalHours {
    /// The first instant at or after `from` within the hours in `zone`, else in the
    /// `fallback` zone; `None` when they never open.
    pub fn next_open(
        &self,
        zone: Option<&str>,
        fallback: &str,
        from: jiff::Timestamp,
    ) -> Option<jiff::Timestamp> {
        self.calendar(zone, fallback)?.next_open(from)
    }

    /// The first stretch of the hours at or after `from`, as [`next_open`](Self::next_open)
    /// finds it, with the instant they close.
    pub fn window(
        &self,
        zone: Option<&str>,
        fallback: &str,
        from: jiff::Timestamp,
    ) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        self.calendar(zone, fallback)?.open_window(from)
    }

    fn calendar(
        &self,
        zone: Option<&str>,
        fallback: &str,
    ) -> Option<crate::calendar::BusinessCalendar> {
        let calendar = |zone: &str| {
            crate::calendar::BusinessCalendar::try_from(crate::calendar::CalendarSpec {
                zone: zone.to_owned(),
                hours: self.hours.clone(),
                holidays: Vec::new(),
                exceptions: Default::default(),
            })
            .ok()
        };
        zone.and_then(calendar).or_else(|| calendar(fallback))
    }
}

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
    /// Where the item goes when the step's task is not submitted in time (human steps).
    pub escalation: Option<Escalation>,
    /// The hours within which the step's task may be taken (human steps).
    pub hours: Option<TaskHours>,
}

/// A human step whose task may only be taken within hours in the item's own zone (a call
/// within the contact's calling hours): outside them no worker is offered it or may claim
/// it, and a task still untaken when they close is withdrawn and the item goes to
/// `after`. A task taken before the close may be finished.
#[derive(Clone, Debug, Serialize)]
pub struct TaskHours {
    #[serde(flatten)]
    pub hours: LocalHours,
    pub after: Key,
}

/// A human step's escalation by elapsed time: unless its task is submitted within
/// `after` (business time on the engagement's calendar), the task is withdrawn and the
/// item moves on to the human step `to`.
#[derive(Clone, Debug, Serialize)]
pub struct Escalation {
    #[serde(with = "duration")]
    pub after: SignedDuration,
    pub to: Key,
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
        /// A `date_time` field whose value ends the wait (outcome `timeout`); when it is
        /// unset the `timer`, if any, applies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_field: Option<Key>,
        /// Hours the wait may only end within, in the zone an item's field names: the end
        /// (the timer's, the field's, or else the entry) moves to their next opening.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_open: Option<LocalHours>,
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
    /// Adds the item's value of intake field `key_field` to the client's register
    /// `register` (a number to a do-not-call list), with data naming the item.
    AddToRegister { register: Key, key_field: Key },
}

impl Action {
    pub const NAMES: [&str; 4] = [
        "set_priority",
        "notify_requester",
        "request_csat",
        "add_to_register",
    ];
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
