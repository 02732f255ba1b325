//! The TOML loader: reads a service definition and reports every problem it finds, each
//! with its line, column and path, rather than stopping at the first.
//!
//! The tables are walked by hand over `toml`'s spanned document so that every key and
//! value keeps its place in the file; the format is documented in
//! `docs/service-definitions.md`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::str::FromStr;

use jiff::{SignedDuration, SpanRelativeTo};
use rust_decimal::Decimal;
use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::expr::Expression;
use super::form::parse_decimal;
use super::model::{
    AGENT_NAME, APPROVE, Action, Branch, CannedReply, Escalation, Field, FieldType, Form,
    MessagePolicy, OutcomeRef, REJECT, Rate, Rules, ServiceDefinition, ServiceKind, SlaDefaults,
    Step, StepKind, TIMEOUT, TaskHours, Transition, Work,
};
use super::model::{ENTRIES, LocalHours};
use super::model::{
    Lookup as ServiceLookup, LookupKind, MatrixCells, PriorityMatrix, missing_cells,
};
use super::model::{MessageTemplate, TEMPLATE_VALUES, placeholders};
use crate::calendar::{BusinessCalendar, CalendarSpec, WEEKDAY_KEYS, WeekSpec};
use crate::routing::{Channel, Relaxation, RoutingPolicy, WorkerOrder};
use crate::values::{Currency, Key, Name, Priority, SkillLevel};

/// One problem in a definition file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line and column of the offending key or value; 0 when it concerns the file.
    pub line: usize,
    pub column: usize,
    /// Where in the definition, e.g. `steps[2] (answer).on.replied`.
    pub path: String,
    pub message: String,
}

/// Reads a service definition from TOML; on failure, every problem found, in file order.
pub fn load_definition(source: &str) -> Result<ServiceDefinition, Vec<Problem>> {
    load(source, true)
}

/// Reads a definition published earlier, under the rules of its day: a `notify_requester`
/// step may name a template the service lacks, as the services written before
/// `[[templates]]` existed do. (The runtime sends their notices from the newest version of
/// the service that has the template.)
pub fn reload_definition(source: &str) -> Result<ServiceDefinition, Vec<Problem>> {
    load(source, false)
}

fn load(source: &str, require_templates: bool) -> Result<ServiceDefinition, Vec<Problem>> {
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    let mut loader = Loader::new(source);
    loader.require_templates = require_templates;
    for error in &syntax_errors {
        loader.syntax_error(error.span(), error.message());
    }
    let definition = loader.document(document.get_ref());
    let mut problems = loader.problems;
    match definition {
        Some(definition) if problems.is_empty() => Ok(definition),
        _ => {
            if problems.is_empty() {
                // Every failed part reports a problem; this only guards against a gap.
                problems.push(Problem {
                    line: 0,
                    column: 0,
                    path: String::new(),
                    message: "the definition could not be loaded".into(),
                });
            }
            problems.sort_by_key(|problem| (problem.line, problem.column));
            Err(problems)
        }
    }
}

/// Compiles a field's `pattern` so that it must match the whole text.
pub(super) fn anchored_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    // Checked alone first: `a)|(b` is invalid, but would turn valid once wrapped.
    regex::Regex::new(pattern)?;
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// Parses a positive duration as written in definitions and settings: `30m`, `4h`,
/// `1h 30m`, `2d`, `1w` or ISO 8601 (`PT4H`). A day is 24 hours.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let duration = parse_any_duration(text)?;
    if duration <= SignedDuration::ZERO {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Ok(duration)
}

/// As [`parse_duration`], but zero (`0s`, `0m`) is accepted too: for a routing setting
/// that zero turns off.
fn parse_duration_or_zero(text: &str) -> Result<SignedDuration, String> {
    let duration = parse_any_duration(text)?;
    if duration < SignedDuration::ZERO {
        return Err(format!(
            "`{text}` must be zero (`0s`, to turn it off) or a positive duration"
        ));
    }
    Ok(duration)
}

fn parse_any_duration(text: &str) -> Result<SignedDuration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `30m`, `4h`, `1h 30m` or `2d`"))?;
    span.to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("`{text}` uses months or years; use weeks, days, hours or minutes"))
}

const TOP_KEYS: &[&str] = &[
    "service",
    "sla",
    "intake",
    "steps",
    "replies",
    "templates",
    "priority_matrix",
    "lookups",
    "rates",
];
const RATE_KEYS: &[&str] = &["key", "title", "help", "count", "of"];
const LOOKUP_KEYS: &[&str] = &["name", "register", "key", "count_items", "within"];
const MATRIX_KEYS: &[&str] = &["impact_field", "urgency_field", "cells"];
const REPLY_KEYS: &[&str] = &["key", "title", "field", "body"];
const TEMPLATE_KEYS: &[&str] = &["key", "subject", "body"];
const SERVICE_KEYS: &[&str] = &[
    "key",
    "version",
    "name",
    "kind",
    "description",
    "skills",
    "start",
    "language_field",
    "requester_field",
];
const SLA_KEYS: &[&str] = &[
    "first_response",
    "next_response",
    "resolution",
    "step",
    "warn_at_percent",
];
const FIELD_KEYS: &[&str] = &[
    "name",
    "label",
    "type",
    "item",
    "required",
    "required_on",
    "help",
    "min",
    "max",
    "min_length",
    "max_length",
    "pattern",
    "values",
    "min_items",
    "max_items",
    "currencies",
    "register",
];
const FIELD_TYPES: &[&str] = &[
    "text",
    "long_text",
    "integer",
    "decimal",
    "money",
    "date",
    "date_time",
    "enum",
    "boolean",
    "email",
    "phone",
    "list",
    "attachment",
    "article",
];
const BRANCH_KEYS: &[&str] = &["when", "to"];
const ROUTING_KEYS: &[&str] = &[
    "channel",
    "aging",
    "urgency_lead",
    "relax",
    "worker_order",
    "preferred_window",
    "offer_timeout",
];
const RELAX_KEYS: &[&str] = &["after", "min_level", "any_language"];
const WORKER_ORDERS: [(&str, WorkerOrder); 3] = [
    ("longest_idle", WorkerOrder::LongestIdle),
    ("best_skill", WorkerOrder::BestSkill),
    ("least_loaded", WorkerOrder::LeastLoaded),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KindName {
    Human,
    Review,
    Automatic,
    Wait,
    Decision,
    End,
}

impl KindName {
    const ALL: [KindName; 6] = [
        KindName::Human,
        KindName::Review,
        KindName::Automatic,
        KindName::Wait,
        KindName::Decision,
        KindName::End,
    ];

    fn name(self) -> &'static str {
        match self {
            KindName::Human => "human",
            KindName::Review => "review",
            KindName::Automatic => "automatic",
            KindName::Wait => "wait",
            KindName::Decision => "decision",
            KindName::End => "end",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            KindName::Human => &[
                "id",
                "kind",
                "title",
                "skill",
                "min_level",
                "handle_time",
                "due",
                "form",
                "certifications",
                "routing",
                "outcomes",
                "on",
                "message_field",
                "public_on",
                "escalate_after",
                "escalate_to",
                "open_hours",
                "after_hours",
            ],
            KindName::Review => &[
                "id",
                "kind",
                "title",
                "skill",
                "min_level",
                "handle_time",
                "due",
                "form",
                "certifications",
                "routing",
                "reviews",
                "sample_percent",
                "on_approve",
                "reject_to",
            ],
            KindName::Automatic => &[
                "id",
                "kind",
                "title",
                "action",
                "priority",
                "template",
                "register",
                "key_field",
                "next",
            ],
            KindName::Wait => &[
                "id",
                "kind",
                "title",
                "timer",
                "until_field",
                "until_open",
                "events",
                "on",
            ],
            KindName::Decision => &["id", "kind", "title", "branches", "otherwise"],
            KindName::End => &["id", "kind", "title", "resolution"],
        }
    }

    /// Mirrors [`Step::halts`] for a step that could not be built.
    fn halts(self) -> bool {
        !matches!(self, KindName::Automatic | KindName::Decision)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}

/// A value with where it was written.
#[derive(Clone, Debug)]
struct At<T> {
    value: T,
    span: Range<usize>,
    path: String,
}

/// The result of looking up a key: `None` once a problem has been reported, `Some(None)`
/// for an optional key that is absent.
type Lookup<T> = Option<Option<At<T>>>;

type Value<'i> = Spanned<DeValue<'i>>;

/// A table being read, with where to report a key it lacks.
#[derive(Clone)]
struct Section<'a, 'i> {
    table: &'a DeTable<'i>,
    /// The table's header or inline braces; `None` for the document itself.
    span: Option<Range<usize>>,
    path: String,
}

impl<'a, 'i> Section<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.entry(key).map(|(_, value)| value)
    }

    fn entry(&self, key: &str) -> Option<(Range<usize>, &'a Value<'i>)> {
        self.table
            .iter()
            .find(|(name, _)| name.get_ref() == key)
            .map(|(name, value)| (name.span(), value))
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// What the service header says, each part `None` when it had a problem.
struct Header<'a> {
    key: Option<Key>,
    version: Option<u32>,
    name: Option<Name>,
    kind: Option<ServiceKind>,
    description: Option<String>,
    skills: Option<Vec<At<Key>>>,
    start: Option<At<&'a str>>,
    language_field: Lookup<&'a str>,
    requester_field: Lookup<&'a str>,
}

/// One `[[steps]]` entry as read, with what the graph checks need even when the step
/// itself could not be built.
struct Draft<'a> {
    path: String,
    span: Option<Range<usize>>,
    id: Option<At<&'a str>>,
    kind: Option<KindName>,
    /// Every step this one may lead to.
    targets: Vec<At<&'a str>>,
    reviews: Option<At<&'a str>>,
    skill: Option<At<Key>>,
    conditions: Vec<At<Expression>>,
    /// Each `any_language = true` of the step's relaxations: it needs a `language_field`.
    any_language: Vec<At<()>>,
    /// The step a human step escalates to by elapsed time: it must be another human step.
    escalate_to: Option<At<&'a str>>,
    /// The outcomes its form's fields are `required_on`: they must be the step's own.
    required_on: Vec<At<Key>>,
    /// The template a `notify_requester` step sends: the service must have it.
    template: Option<At<Key>>,
    /// The field a wait step's end is read from: it must be a `date_time` field.
    until_field: Option<At<Key>>,
    /// The field naming the zone of a wait step's `until_open`: a `text` or `enum` field.
    zone_field: Option<At<Key>>,
    /// The intake field an `add_to_register` step writes the value of.
    key_field: Option<At<Key>>,
    step: Option<Step>,
}

impl Draft<'_> {
    fn halts(&self) -> bool {
        match (&self.step, self.kind) {
            (Some(step), _) => step.halts(),
            (None, Some(kind)) => kind.halts(),
            // Of an unknown kind nothing can be said; assuming it halts avoids noise.
            (None, None) => true,
        }
    }
}

/// Every field declared by any form of the service, so that one name keeps one type.
#[derive(Default)]
struct Fields {
    declared: HashMap<String, (FieldType, String)>,
    intake: Vec<(String, FieldType)>,
    /// The `required_on` outcomes of the form read last, for its step to check.
    required_on: Vec<At<Key>>,
}

struct Loader<'s> {
    source: &'s str,
    line_starts: Vec<usize>,
    /// Where the TOML parser already complained: the placeholder values it recovered with
    /// would only add noise.
    syntax_offsets: HashSet<usize>,
    problems: Vec<Problem>,
    /// Whether a `notify_requester` must name one of the service's templates.
    require_templates: bool,
}

impl<'s> Loader<'s> {
    fn new(source: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        Self {
            source,
            line_starts,
            syntax_offsets: HashSet::new(),
            problems: Vec::new(),
            require_templates: true,
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .source
            .get(start..offset)
            .map_or(offset.saturating_sub(start), |text| text.chars().count());
        (line, column + 1)
    }

    fn syntax_error(&mut self, span: Option<Range<usize>>, message: &str) {
        let (line, column) = span.as_ref().map_or((0, 0), |s| self.position(s.start));
        if let Some(span) = span {
            self.syntax_offsets.insert(span.start);
        }
        self.problems.push(Problem {
            line,
            column,
            path: String::new(),
            message: format!("TOML syntax: {message}"),
        });
    }

    fn report(&mut self, span: Option<Range<usize>>, path: &str, message: impl Into<String>) {
        let (line, column) = match &span {
            Some(span) if self.syntax_offsets.contains(&span.start) => return,
            Some(span) => self.position(span.start),
            None => (0, 0),
        };
        self.problems.push(Problem {
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, value: &Value<'_>, path: &str, expected: &str) {
        let found = match value.get_ref() {
            DeValue::String(_) => "a string",
            DeValue::Integer(_) => "an integer",
            DeValue::Float(_) => "a float",
            DeValue::Boolean(_) => "a boolean",
            DeValue::Datetime(_) => "a date-time",
            DeValue::Array(_) => "an array",
            DeValue::Table(_) => "a table",
        };
        self.report(
            Some(value.span()),
            path,
            format!("expected {expected}, found {found}"),
        );
    }

    /// Reports each key of `section` that is not in `allowed`; `misplaced` may explain a
    /// key that belongs elsewhere.
    fn unknown_keys(
        &mut self,
        section: &Section<'_, '_>,
        allowed: &[&str],
        misplaced: &dyn Fn(&str) -> Option<String>,
    ) {
        for (name, _) in section.table.iter() {
            let key: &str = name.get_ref();
            if allowed.contains(&key) {
                continue;
            }
            let message =
                misplaced(key).unwrap_or_else(|| match suggest(key, allowed.iter().copied()) {
                    Some(close) => format!("unknown key `{key}`; did you mean `{close}`?"),
                    None => format!(
                        "unknown key `{key}`; expected one of: {}",
                        allowed.join(", ")
                    ),
                });
            self.report(Some(name.span()), &section.path_of(key), message);
        }
    }

    fn lookup<'a, 'i>(
        &mut self,
        section: &Section<'a, 'i>,
        key: &str,
        need: Need,
    ) -> Option<Option<&'a Value<'i>>> {
        match section.get(key) {
            Some(value) => Some(Some(value)),
            None if need == Need::Required => {
                self.report(
                    section.span.clone(),
                    &section.path_of(key),
                    format!("missing required key `{key}`"),
                );
                None
            }
            None => Some(None),
        }
    }

    fn string<'a>(&mut self, section: &Section<'a, '_>, key: &str, need: Need) -> Lookup<&'a str> {
        let Some(value) = self.lookup(section, key, need)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        match value.get_ref() {
            DeValue::String(text) => Some(Some(At {
                value: text.as_ref(),
                span: value.span(),
                path,
            })),
            _ => {
                self.wrong_type(value, &path, "a string");
                None
            }
        }
    }

    fn integer(&mut self, section: &Section<'_, '_>, key: &str, need: Need) -> Lookup<i64> {
        let Some(value) = self.lookup(section, key, need)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        match value.get_ref() {
            DeValue::Integer(integer) => {
                match i64::from_str_radix(integer.as_str(), integer.radix()) {
                    Ok(number) => Some(Some(At {
                        value: number,
                        span: value.span(),
                        path,
                    })),
                    Err(_) => {
                        self.report(Some(value.span()), &path, "the number is too large");
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(value, &path, "an integer");
                None
            }
        }
    }

    /// A non-negative integer such as a length or a count.
    fn count(&mut self, section: &Section<'_, '_>, key: &str) -> Lookup<u32> {
        let Some(number) = self.integer(section, key, Need::Optional)? else {
            return Some(None);
        };
        match u32::try_from(number.value) {
            Ok(count) => Some(Some(At {
                value: count,
                span: number.span,
                path: number.path,
            })),
            Err(_) => {
                self.report(
                    Some(number.span),
                    &number.path,
                    "must be 0 or a positive whole number",
                );
                None
            }
        }
    }

    fn boolean(&mut self, section: &Section<'_, '_>, key: &str) -> Option<bool> {
        let value = self.lookup(section, key, Need::Optional)?;
        match value.map(Spanned::get_ref) {
            None => Some(false),
            Some(DeValue::Boolean(flag)) => Some(*flag),
            Some(_) => {
                if let Some(value) = value {
                    self.wrong_type(value, &section.path_of(key), "true or false");
                }
                None
            }
        }
    }

    /// An optional boolean with where it was written.
    fn flag(&mut self, section: &Section<'_, '_>, key: &str) -> Lookup<bool> {
        let Some(value) = self.lookup(section, key, Need::Optional)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(Some(At {
                value: *flag,
                span: value.span(),
                path,
            })),
            _ => {
                self.wrong_type(value, &path, "true or false");
                None
            }
        }
    }

    /// An optional string naming one of `options`; `what` names the kind of thing in the
    /// message, e.g. "a channel".
    fn choice<T: Copy>(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        options: &[(&str, T)],
        what: &str,
    ) -> Lookup<T> {
        let Some(text) = self.string(section, key, Need::Optional)? else {
            return Some(None);
        };
        match options.iter().find(|(name, _)| *name == text.value) {
            Some((_, value)) => Some(Some(At {
                value: *value,
                span: text.span,
                path: text.path,
            })),
            None => {
                let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
                let message = format!(
                    "`{}` is not {what}{}",
                    text.value,
                    hint(text.value, names.iter().copied())
                        .unwrap_or_else(|| format!("; use one of: {}", names.join(", ")))
                );
                self.report(Some(text.span), &text.path, message);
                None
            }
        }
    }

    /// An optional skill level, 1 to 5.
    fn level(&mut self, section: &Section<'_, '_>, key: &str) -> Lookup<SkillLevel> {
        let Some(level) = self.integer(section, key, Need::Optional)? else {
            return Some(None);
        };
        match u8::try_from(level.value)
            .ok()
            .and_then(|value| SkillLevel::new(value).ok())
        {
            Some(value) => Some(Some(At {
                value,
                span: level.span,
                path: level.path,
            })),
            None => {
                self.report(
                    Some(level.span),
                    &level.path,
                    format!("`{key}` must be 1 to 5"),
                );
                None
            }
        }
    }

    fn key(&mut self, section: &Section<'_, '_>, key: &str, need: Need) -> Lookup<Key> {
        let Some(text) = self.string(section, key, need)? else {
            return Some(None);
        };
        match Key::parse(text.value) {
            Ok(parsed) => Some(Some(At {
                value: parsed,
                span: text.span,
                path: text.path,
            })),
            Err(error) => {
                self.report(Some(text.span), &text.path, error.0);
                None
            }
        }
    }

    fn duration(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        need: Need,
    ) -> Lookup<SignedDuration> {
        self.duration_with(section, key, need, parse_duration)
    }

    fn duration_with(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        need: Need,
        parse: fn(&str) -> Result<SignedDuration, String>,
    ) -> Lookup<SignedDuration> {
        let Some(text) = self.string(section, key, need)? else {
            return Some(None);
        };
        match parse(text.value) {
            Ok(duration) => Some(Some(At {
                value: duration,
                span: text.span,
                path: text.path,
            })),
            Err(message) => {
                self.report(Some(text.span), &text.path, message);
                None
            }
        }
    }

    /// A decimal bound: a TOML integer, float or string, read exactly from its text.
    fn decimal(&mut self, section: &Section<'_, '_>, key: &str) -> Lookup<Decimal> {
        let Some(value) = self.lookup(section, key, Need::Optional)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        let parsed = match value.get_ref() {
            DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
                .ok()
                .map(Decimal::from),
            DeValue::Float(float) => parse_decimal(float.as_str()),
            DeValue::String(text) => parse_decimal(text.trim()),
            _ => {
                self.wrong_type(value, &path, "a number or a decimal string");
                return None;
            }
        };
        match parsed {
            Some(amount) => Some(Some(At {
                value: amount,
                span: value.span(),
                path,
            })),
            None => {
                self.report(
                    Some(value.span()),
                    &path,
                    "not a decimal number that can be held exactly",
                );
                None
            }
        }
    }

    /// An array of strings.
    fn strings<'a>(
        &mut self,
        section: &Section<'a, '_>,
        key: &str,
        need: Need,
    ) -> Lookup<Vec<At<&'a str>>> {
        let Some(value) = self.lookup(section, key, need)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        let DeValue::Array(elements) = value.get_ref() else {
            self.wrong_type(value, &path, "an array of strings");
            return None;
        };
        // The good elements are kept, so that checks relying on them still run; the
        // problems reported make sure nothing half-read is ever returned.
        let mut texts = Vec::new();
        for (index, element) in elements.iter().enumerate() {
            let element_path = format!("{path}[{index}]");
            match element.get_ref() {
                DeValue::String(text) => texts.push(At {
                    value: text.as_ref(),
                    span: element.span(),
                    path: element_path,
                }),
                _ => self.wrong_type(element, &element_path, "a string"),
            }
        }
        Some(Some(At {
            value: texts,
            span: value.span(),
            path,
        }))
    }

    /// An array of keys, each valid and listed once; as with [`Self::strings`], the
    /// invalid ones are reported and left out.
    fn keys(&mut self, section: &Section<'_, '_>, key: &str, need: Need) -> Lookup<Vec<At<Key>>> {
        let Some(texts) = self.strings(section, key, need)? else {
            return Some(None);
        };
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for text in texts.value {
            match Key::parse(text.value) {
                Ok(parsed) if seen.insert(text.value) => keys.push(At {
                    value: parsed,
                    span: text.span,
                    path: text.path,
                }),
                Ok(_) => self.report(
                    Some(text.span),
                    &text.path,
                    format!("`{}` is listed twice", text.value),
                ),
                Err(error) => self.report(Some(text.span), &text.path, error.0),
            }
        }
        Some(Some(At {
            value: keys,
            span: texts.span,
            path: texts.path,
        }))
    }

    fn table<'a, 'i>(
        &mut self,
        section: &Section<'a, 'i>,
        key: &str,
        need: Need,
    ) -> Option<Option<Section<'a, 'i>>> {
        let Some(value) = self.lookup(section, key, need)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        match value.get_ref() {
            DeValue::Table(table) => Some(Some(Section {
                table,
                span: Some(value.span()),
                path,
            })),
            _ => {
                self.wrong_type(value, &path, "a table");
                None
            }
        }
    }

    /// An array of tables: `[[key]]` headers or an inline `key = [ { … } ]`.
    fn tables<'a, 'i>(
        &mut self,
        section: &Section<'a, 'i>,
        key: &str,
        need: Need,
    ) -> Option<Option<Vec<Section<'a, 'i>>>> {
        let Some(value) = self.lookup(section, key, need)? else {
            return Some(None);
        };
        let path = section.path_of(key);
        let DeValue::Array(elements) = value.get_ref() else {
            self.wrong_type(value, &path, "an array of tables");
            return None;
        };
        let mut sections = Vec::new();
        for (index, element) in elements.iter().enumerate() {
            let element_path = format!("{path}[{index}]");
            match element.get_ref() {
                DeValue::Table(table) => sections.push(Section {
                    table,
                    span: Some(element.span()),
                    path: element_path,
                }),
                _ => self.wrong_type(element, &element_path, "a table"),
            }
        }
        Some(Some(sections))
    }

    /// A string naming a step; recorded for the graph checks, which report an unknown one.
    fn target<'a>(
        &mut self,
        section: &Section<'a, '_>,
        key: &str,
        draft: &mut Draft<'a>,
    ) -> Option<Key> {
        let target = self.string(section, key, Need::Required).flatten()?;
        let parsed = Key::parse(target.value).ok();
        draft.targets.push(target);
        parsed
    }

    fn document(&mut self, root: &DeTable<'_>) -> Option<ServiceDefinition> {
        let root = Section {
            table: root,
            span: None,
            path: String::new(),
        };
        self.unknown_keys(&root, TOP_KEYS, &|_| None);
        let header = self
            .table(&root, "service", Need::Required)
            .flatten()
            .map(|section| self.header(&section));
        let sla = match self.table(&root, "sla", Need::Optional) {
            Some(Some(section)) => self.sla(&section),
            Some(None) => Some(SlaDefaults::default()),
            None => None,
        };
        let mut fields = Fields::default();
        let intake = self.form(&root, "intake", &mut fields, true);
        let drafts = self.steps(&root, &mut fields);
        let canned_replies = self.replies(&root, &fields);
        let templates = self.templates(&root, &fields, &drafts);
        // After the templates: a lookup is no field a notice can show.
        let lookups = self.lookups(&root, &mut fields);
        let priority_matrix = self.priority_matrix(&root, &fields, intake.as_ref());
        let rates = self.rates(&root, &drafts);

        let start = header.as_ref().and_then(|header| header.start.clone());
        self.check_graph(start.as_ref(), &drafts);
        if let Some(header) = &header {
            self.check_skills(header, &drafts);
        }
        self.check_conditions(&drafts, &fields);
        self.check_until_fields(&drafts, &fields);
        let language_field = match header.as_ref().map(|header| &header.language_field) {
            Some(Some(Some(field))) => self.intake_field(
                field,
                &fields,
                "language",
                &[FieldType::Text, FieldType::Enum],
            ),
            Some(Some(None)) => Some(None),
            _ => None,
        };
        let requester_field = match header.as_ref().map(|header| &header.requester_field) {
            Some(Some(Some(field))) => {
                self.intake_field(field, &fields, "requester", &[FieldType::Email])
            }
            Some(Some(None)) => Some(None),
            _ => None,
        };

        if let Some(Some(None)) = header.as_ref().map(|header| &header.language_field) {
            for flag in drafts.iter().flat_map(|draft| &draft.any_language) {
                self.report(
                    Some(flag.span.clone()),
                    &flag.path,
                    "`any_language` has nothing to relax: the service has no `language_field`, so no language is required",
                );
            }
        }

        let header = header?;
        let steps = drafts
            .into_iter()
            .map(|draft| draft.step)
            .collect::<Option<Vec<_>>>()?;
        Some(ServiceDefinition {
            key: header.key?,
            version: header.version?,
            name: header.name?,
            kind: header.kind?,
            description: header.description?,
            skills: header
                .skills?
                .into_iter()
                .map(|skill| skill.value)
                .collect(),
            sla: sla?,
            calendar: Default::default(),
            language_field: language_field?,
            requester_field: requester_field?,
            intake: intake?,
            start: Key::parse(header.start?.value).ok()?,
            steps,
            canned_replies: canned_replies?,
            lookups: lookups?,
            templates: templates?,
            priority_matrix: priority_matrix?,
            rates: rates?,
        })
    }

    /// `[[rates]]`: shares of outcomes for the metrics, each key once, each `count` and
    /// `of` a non-empty list of `"step.outcome"` or `"step.*"` naming a human or review
    /// step's own outcomes.
    fn rates(&mut self, root: &Section<'_, '_>, drafts: &[Draft<'_>]) -> Option<Vec<Rate>> {
        let Some(sections) = self.tables(root, "rates", Need::Optional)? else {
            return Some(Vec::new());
        };
        let mut rates = Vec::new();
        let mut seen = HashSet::new();
        let mut complete = true;
        for section in sections {
            self.unknown_keys(&section, RATE_KEYS, &|_| None);
            let key = self.key(&section, "key", Need::Required).flatten();
            let title = self.string(&section, "title", Need::Required).flatten();
            let help = self.string(&section, "help", Need::Optional);
            let count = self.outcome_refs(&section, "count", drafts);
            let of = self.outcome_refs(&section, "of", drafts);
            if let Some(key) = &key
                && !seen.insert(key.value.clone())
            {
                self.report(
                    Some(key.span.clone()),
                    &key.path,
                    format!("another rate is also called `{}`", key.value),
                );
            }
            let (Some(key), Some(title), Some(help), Some(count), Some(of)) =
                (key, title, help, count, of)
            else {
                complete = false;
                continue;
            };
            // A share of more than the whole would read as over 100 %.
            let uncovered = count.iter().find(|counted| {
                !of.iter().any(|whole| {
                    whole.step == counted.step
                        && (whole.outcome.is_none() || whole.outcome == counted.outcome)
                })
            });
            if let Some(uncovered) = uncovered {
                let named = match &uncovered.outcome {
                    Some(outcome) => format!("{}.{outcome}", uncovered.step),
                    None => format!("{}.*", uncovered.step),
                };
                self.report(
                    section.span.clone(),
                    &section.path_of("count"),
                    format!("`{named}` is counted but is not among the outcomes in `of`"),
                );
                complete = false;
                continue;
            }
            rates.push(Rate {
                key: key.value,
                title: title.value.to_owned(),
                help: help.map(|help| help.value.to_owned()),
                count,
                of,
            });
        }
        complete.then_some(rates)
    }

    fn outcome_refs(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        drafts: &[Draft<'_>],
    ) -> Option<Vec<OutcomeRef>> {
        let listed = self.strings(section, key, Need::Required).flatten()?;
        if listed.value.is_empty() {
            self.report(
                Some(listed.span),
                &listed.path,
                "name at least one outcome, as `\"step.outcome\"` or `\"step.*\"`",
            );
            return None;
        }
        let mut refs = Vec::new();
        let mut complete = true;
        for reference in &listed.value {
            match self.outcome_ref(reference, drafts) {
                Some(r) => refs.push(r),
                None => complete = false,
            }
        }
        complete.then_some(refs)
    }

    fn outcome_ref(&mut self, reference: &At<&str>, drafts: &[Draft<'_>]) -> Option<OutcomeRef> {
        let fail = |this: &mut Self, message: String| {
            this.report(Some(reference.span.clone()), &reference.path, message);
            None
        };
        let Some((step, outcome)) = reference.value.split_once('.') else {
            return fail(
                self,
                format!(
                    "`{}` is not `\"step.outcome\"` or `\"step.*\"`",
                    reference.value
                ),
            );
        };
        let draft = drafts
            .iter()
            .find(|draft| draft.id.as_ref().is_some_and(|id| id.value == step));
        let Some(draft) = draft else {
            return fail(self, format!("there is no step `{step}`"));
        };
        if !matches!(draft.kind, Some(KindName::Human | KindName::Review)) {
            return fail(
                self,
                format!("`{step}` is no human or review step, so it records no outcomes"),
            );
        }
        let step_key = Key::parse(step).ok()?;
        if outcome == "*" {
            return Some(OutcomeRef {
                step: step_key,
                outcome: None,
            });
        }
        // A step that could not be built had its problems reported already.
        let built = draft.step.as_ref()?;
        if !built.successors().iter().any(|(name, _)| *name == outcome) {
            let names: Vec<&str> = built.successors().iter().map(|(name, _)| *name).collect();
            return fail(
                self,
                format!(
                    "`{step}` has no outcome `{outcome}`; its outcomes are {}",
                    names.join(", ")
                ),
            );
        }
        Some(OutcomeRef {
            step: step_key,
            outcome: Some(Key::parse(outcome).ok()?),
        })
    }

    /// `[[templates]]`: the notices requesters are sent, each key once, with only intake
    /// fields and [`TEMPLATE_VALUES`] as placeholders; every `notify_requester` step must
    /// name one of them.
    fn templates(
        &mut self,
        root: &Section<'_, '_>,
        fields: &Fields,
        drafts: &[Draft<'_>],
    ) -> Option<Vec<MessageTemplate>> {
        let sections = self.tables(root, "templates", Need::Optional)?;
        let mut templates = Vec::new();
        let mut complete = true;
        for section in sections.unwrap_or_default() {
            self.unknown_keys(&section, TEMPLATE_KEYS, &|_| None);
            let key = self.key(&section, "key", Need::Required).flatten();
            let subject = self.string(&section, "subject", Need::Optional);
            let body = self.string(&section, "body", Need::Required).flatten();
            if let Some(key) = &key
                && templates
                    .iter()
                    .any(|t: &MessageTemplate| t.key == key.value)
            {
                self.report(
                    Some(key.span.clone()),
                    &key.path,
                    format!("another template is also called `{}`", key.value),
                );
            }
            for text in subject.iter().flatten().chain(&body) {
                for name in placeholders(text.value) {
                    // Any field of the service: a decision letter shows what a step decided.
                    let known =
                        TEMPLATE_VALUES.contains(&name) || fields.declared.contains_key(name);
                    if !known {
                        let values: Vec<String> = TEMPLATE_VALUES
                            .iter()
                            .map(|v| format!("`{{{v}}}`"))
                            .collect();
                        self.report(
                            Some(text.span.clone()),
                            &text.path,
                            format!(
                                "`{{{name}}}` is neither a field of the service nor one of {}",
                                values.join(", ")
                            ),
                        );
                    }
                }
            }
            let (Some(key), Some(subject), Some(body)) = (key, subject, body) else {
                complete = false;
                continue;
            };
            templates.push(MessageTemplate {
                key: key.value,
                subject: subject.map(|subject| subject.value.to_owned()),
                body: body.value.to_owned(),
            });
        }
        if self.require_templates {
            for named in drafts.iter().filter_map(|draft| draft.template.as_ref()) {
                if templates.iter().all(|t| t.key != named.value) {
                    let message = format!(
                        "there is no template `{}`{}",
                        named.value,
                        hint(
                            named.value.as_str(),
                            templates.iter().map(|t| t.key.as_str())
                        )
                        .unwrap_or_else(|| "; add it as a `[[templates]]` entry".into())
                    );
                    self.report(Some(named.span.clone()), &named.path, message);
                }
            }
        }
        complete.then_some(templates)
    }

    /// `[[replies]]`: each fills a text field of some step's form (`reply` unless it says
    /// otherwise) and names only intake fields and `agent_name` as placeholders.
    /// `[[lookups]]`: facts a decision reads from outside the item. Each names a register
    /// entry keyed by an intake field, or counts related items by an intake field; its
    /// name becomes a variable of decision expressions.
    fn lookups(
        &mut self,
        root: &Section<'_, '_>,
        fields: &mut Fields,
    ) -> Option<Vec<ServiceLookup>> {
        let Some(sections) = self.tables(root, "lookups", Need::Optional)? else {
            return Some(Vec::new());
        };
        let mut lookups = Vec::new();
        let mut complete = true;
        for section in sections {
            self.unknown_keys(&section, LOOKUP_KEYS, &|_| None);
            let name = self.key(&section, "name", Need::Required).flatten();
            let register = self.key(&section, "register", Need::Optional).flatten();
            let counted = self.key(&section, "count_items", Need::Optional).flatten();
            let kind = match (register, counted) {
                (Some(register), None) => self
                    .key(&section, "key", Need::Required)
                    .flatten()
                    .and_then(|key| self.intake_key(&key, fields))
                    .map(|key| LookupKind::Register {
                        register: register.value,
                        key,
                    }),
                (None, Some(field)) => {
                    let within = self.duration(&section, "within", Need::Required).flatten();
                    let field = self.intake_key(&field, fields);
                    field
                        .zip(within)
                        .map(|(field, within)| LookupKind::CountItems {
                            field,
                            within: within.value,
                        })
                }
                _ => {
                    self.report(
                        section.span.clone(),
                        &section.path,
                        "a lookup has either `register` (with `key`) or `count_items` (with `within`)",
                    );
                    None
                }
            };
            if let Some(name) = &name {
                let taken = name.value.as_str() == "priority"
                    || fields.declared.contains_key(name.value.as_str());
                if taken {
                    self.report(
                        Some(name.span.clone()),
                        &name.path,
                        format!("`{}` is already a field or `priority`; a lookup needs a name of its own", name.value),
                    );
                } else {
                    // Decisions may read it like a field.
                    fields
                        .declared
                        .insert(name.value.to_string(), (FieldType::Text, name.path.clone()));
                }
            }
            match (name, kind) {
                (Some(name), Some(kind)) => lookups.push(ServiceLookup {
                    name: name.value,
                    kind,
                }),
                _ => complete = false,
            }
        }
        complete.then_some(lookups)
    }

    /// `field` names an intake field.
    fn intake_key(&mut self, field: &At<Key>, fields: &Fields) -> Option<Key> {
        if fields
            .intake
            .iter()
            .any(|(name, _)| name == field.value.as_str())
        {
            Some(field.value.clone())
        } else {
            self.report(
                Some(field.span.clone()),
                &field.path,
                format!("`{}` is not an intake field", field.value),
            );
            None
        }
    }

    fn replies(&mut self, root: &Section<'_, '_>, fields: &Fields) -> Option<Vec<CannedReply>> {
        let Some(sections) = self.tables(root, "replies", Need::Optional)? else {
            return Some(Vec::new());
        };
        let mut replies = Vec::new();
        let mut seen = HashSet::new();
        let mut complete = true;
        for section in sections {
            self.unknown_keys(&section, REPLY_KEYS, &|_| None);
            let key = self.key(&section, "key", Need::Required).flatten();
            let title = self.string(&section, "title", Need::Required).flatten();
            let body = self.string(&section, "body", Need::Required).flatten();
            let field = match self.key(&section, "field", Need::Optional) {
                Some(Some(field)) => Some(field),
                Some(None) => Some(At {
                    value: Key::parse("reply").ok()?,
                    span: section.span.clone().unwrap_or_default(),
                    path: section.path_of("field"),
                }),
                None => None,
            };
            if let Some(key) = &key
                && !seen.insert(key.value.clone())
            {
                self.report(
                    Some(key.span.clone()),
                    &key.path,
                    format!("another reply is also called `{}`", key.value),
                );
            }
            if let Some(field) = &field {
                let texty = matches!(
                    fields.declared.get(field.value.as_str()),
                    Some((FieldType::Text | FieldType::LongText, _))
                );
                let in_intake = fields
                    .intake
                    .iter()
                    .any(|(name, _)| name == field.value.as_str());
                if !texty || in_intake {
                    self.report(
                        Some(field.span.clone()),
                        &field.path,
                        format!(
                            "`{}` is not a text field of a step's form, so a reply cannot fill it",
                            field.value
                        ),
                    );
                }
            }
            let (Some(key), Some(title), Some(body), Some(field)) = (key, title, body, field)
            else {
                complete = false;
                continue;
            };
            let reply = CannedReply {
                key: key.value,
                title: title.value.to_owned(),
                field: field.value,
                body: body.value.to_owned(),
            };
            for name in placeholders(&reply.body) {
                let known =
                    name == AGENT_NAME || fields.intake.iter().any(|(intake, _)| intake == name);
                if !known {
                    self.report(
                        Some(body.span.clone()),
                        &body.path,
                        format!("`{{{name}}}` is neither an intake field nor `{{{AGENT_NAME}}}`"),
                    );
                }
            }
            replies.push(reply);
        }
        complete.then_some(replies)
    }

    /// `[priority_matrix]`: two enum intake fields, and in `cells` a priority for every
    /// pair of their values: `cells.<impact> = { <urgency> = "<priority>", … }`.
    fn priority_matrix(
        &mut self,
        root: &Section<'_, '_>,
        fields: &Fields,
        intake: Option<&Form>,
    ) -> Option<Option<PriorityMatrix>> {
        let Some(section) = self.table(root, "priority_matrix", Need::Optional)? else {
            return Some(None);
        };
        let before = self.problems.len();
        self.unknown_keys(&section, MATRIX_KEYS, &|_| None);
        let values = |loader: &mut Self, key: &str, role: &str| {
            let field = loader.string(&section, key, Need::Required).flatten()?;
            let name = loader
                .intake_field(&field, fields, role, &[FieldType::Enum])
                .flatten()?;
            // Without the intake (it had problems of its own) the values are unknown.
            let values = intake?.field(name.as_str())?.rules.values.clone();
            Some((field, name, values))
        };
        let impact = values(self, "impact_field", "impact");
        let urgency = values(self, "urgency_field", "urgency");
        if let (Some((_, impact, _)), Some((field, urgency, _))) = (&impact, &urgency)
            && impact == urgency
        {
            self.report(
                Some(field.span.clone()),
                &field.path,
                "impact and urgency must be two different fields",
            );
        }
        let cells_section = self.table(&section, "cells", Need::Required).flatten()?;
        let mut cells = MatrixCells::new();
        for (impact_name, row) in cells_section.table.iter() {
            let impact_value: &str = impact_name.get_ref();
            let path = cells_section.path_of(impact_value);
            if let Some((field, _, known)) = &impact {
                self.known_value(impact_value, impact_name.span(), &path, field.value, known);
            }
            let DeValue::Table(row_table) = row.get_ref() else {
                self.wrong_type(row, &path, "a table of urgency = priority");
                continue;
            };
            let row_section = Section {
                table: row_table,
                span: Some(row.span()),
                path,
            };
            let mut row_cells = std::collections::BTreeMap::new();
            for (urgency_name, _) in row_table.iter() {
                let urgency_value: &str = urgency_name.get_ref();
                let path = row_section.path_of(urgency_value);
                if let Some((field, _, known)) = &urgency {
                    self.known_value(
                        urgency_value,
                        urgency_name.span(),
                        &path,
                        field.value,
                        known,
                    );
                }
                let Some(priority) = self
                    .string(&row_section, urgency_value, Need::Required)
                    .flatten()
                else {
                    continue;
                };
                match Priority::from_str(priority.value) {
                    Ok(value) => {
                        row_cells.insert(urgency_value.to_owned(), value);
                    }
                    Err(error) => self.report(Some(priority.span), &priority.path, error.0),
                }
            }
            cells.insert(impact_value.to_owned(), row_cells);
        }
        let ((_, impact_field, impacts), (_, urgency_field, urgencies)) = (impact?, urgency?);
        for (impact, urgency) in missing_cells(&impacts, &urgencies, &cells) {
            self.report(
                cells_section.span.clone(),
                &cells_section.path,
                format!("no priority for impact `{impact}` and urgency `{urgency}`"),
            );
        }
        (self.problems.len() == before).then_some(Some(PriorityMatrix {
            impact_field,
            urgency_field,
            cells,
        }))
    }

    /// Reports `value` (a key of the priority matrix) unless the enum field `field` has it.
    fn known_value(
        &mut self,
        value: &str,
        span: Range<usize>,
        path: &str,
        field: &str,
        known: &[String],
    ) {
        if !known.iter().any(|known| known == value) {
            let message = format!(
                "`{value}` is not a value of `{field}`{}",
                hint(value, known.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("; its values: {}", known.join(", ")))
            );
            self.report(Some(span), path, message);
        }
    }

    fn header<'a>(&mut self, section: &Section<'a, '_>) -> Header<'a> {
        self.unknown_keys(section, SERVICE_KEYS, &|_| None);
        let key = self
            .key(section, "key", Need::Required)
            .flatten()
            .map(|key| key.value);
        let version = self
            .integer(section, "version", Need::Required)
            .flatten()
            .and_then(|version| match u32::try_from(version.value) {
                Ok(number) if number >= 1 => Some(number),
                _ => {
                    self.report(
                        Some(version.span),
                        &version.path,
                        "`version` must be 1 or more",
                    );
                    None
                }
            });
        let name = self
            .string(section, "name", Need::Required)
            .flatten()
            .and_then(|name| {
                Name::parse(name.value)
                    .map_err(|error| self.report(Some(name.span), &name.path, error.0))
                    .ok()
            });
        let kind = self
            .string(section, "kind", Need::Required)
            .flatten()
            .and_then(|kind| match kind.value {
                "bpo" => Some(ServiceKind::Bpo),
                "kpo" => Some(ServiceKind::Kpo),
                other => {
                    self.report(
                        Some(kind.span),
                        &kind.path,
                        format!("`{other}` is not a service kind; use `bpo` or `kpo`"),
                    );
                    None
                }
            });
        let description = self
            .string(section, "description", Need::Optional)
            .map(|text| text.map_or_else(String::new, |text| text.value.trim().to_owned()));
        let skills = self
            .keys(section, "skills", Need::Optional)
            .map(|skills| skills.map_or_else(Vec::new, |skills| skills.value));
        let start = self.string(section, "start", Need::Required).flatten();
        let language_field = self.string(section, "language_field", Need::Optional);
        let requester_field = self.string(section, "requester_field", Need::Optional);
        Header {
            key,
            version,
            name,
            kind,
            description,
            skills,
            start,
            language_field,
            requester_field,
        }
    }

    fn sla(&mut self, section: &Section<'_, '_>) -> Option<SlaDefaults> {
        self.unknown_keys(section, SLA_KEYS, &|_| None);
        let mut read = |key| {
            self.duration(section, key, Need::Optional)
                .map(|d| d.map(|d| d.value))
        };
        let first_response = read("first_response");
        let next_response = read("next_response");
        let resolution = read("resolution");
        let step = read("step");
        let warn_at_percent = self
            .integer(section, "warn_at_percent", Need::Optional)
            .and_then(|percent| match percent {
                None => Some(SlaDefaults::default().warn_at_percent),
                Some(percent) => u8::try_from(percent.value)
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .or_else(|| {
                        self.report(
                            Some(percent.span),
                            &percent.path,
                            "`warn_at_percent` must be 1 to 100",
                        );
                        None
                    }),
            });
        Some(SlaDefaults {
            first_response: first_response?,
            next_response: next_response?,
            resolution: resolution?,
            step: step?,
            warn_at_percent: warn_at_percent?,
            ..SlaDefaults::default()
        })
    }

    fn form(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        fields: &mut Fields,
        intake: bool,
    ) -> Option<Form> {
        let elements = self
            .tables(section, key, Need::Optional)?
            .unwrap_or_default();
        let mut in_this_form = HashMap::new();
        let mut form = Some(Vec::new());
        for element in elements {
            let field = self.field(element, fields, &mut in_this_form, intake);
            match (&mut form, field) {
                (Some(form), Some(field)) => form.push(field),
                _ => form = None,
            }
        }
        Some(Form { fields: form? })
    }

    fn field(
        &mut self,
        mut section: Section<'_, '_>,
        fields: &mut Fields,
        in_this_form: &mut HashMap<String, String>,
        intake: bool,
    ) -> Option<Field> {
        self.unknown_keys(&section, FIELD_KEYS, &|_| None);
        let mut name = self.key(&section, "name", Need::Required).flatten();
        if let Some(name) = &mut name {
            section.path = format!("{} ({})", section.path, name.value);
            name.path = section.path_of("name");
        }
        let label = self
            .string(&section, "label", Need::Optional)
            .and_then(|label| match label {
                None => Some(None),
                Some(label) => match Name::parse(label.value) {
                    Ok(text) => Some(Some(String::from(text))),
                    Err(error) => {
                        self.report(Some(label.span), &label.path, error.0);
                        None
                    }
                },
            });
        let help = self.string(&section, "help", Need::Optional).map(|help| {
            help.map(|help| help.value.trim().to_owned())
                .filter(|help| !help.is_empty())
        });
        let kind = self.field_type(&section);
        let required = self.boolean(&section, "required");
        let required_on = self.keys(&section, "required_on", Need::Optional);
        let rules = kind.as_ref().and_then(|kind| self.rules(&section, kind));
        if let Some(Some(on)) = &required_on {
            if intake {
                self.report(
                    Some(on.span.clone()),
                    &on.path,
                    "`required_on` names outcomes of a step; an intake field is `required` or not",
                );
            } else if required == Some(true) {
                self.report(
                    Some(on.span.clone()),
                    &on.path,
                    "the field is `required` with every outcome already; drop `required_on` or `required = true`",
                );
            }
            if !intake {
                fields.required_on.extend(on.value.iter().cloned());
            }
        }
        let is_article = |kind: &FieldType| match kind {
            FieldType::List(item) => **item == FieldType::Article,
            other => *other == FieldType::Article,
        };
        if intake && kind.as_ref().is_some_and(is_article) {
            self.report(
                section.get("type").map(Spanned::span),
                &section.path_of("type"),
                "an `article` field belongs in a step's form: staff choose knowledge-base articles, requesters do not",
            );
        }

        if let (Some(name), Some(kind)) = (&name, &kind) {
            let text = name.value.as_str();
            if text == "priority" {
                self.report(
                    Some(name.span.clone()),
                    &name.path,
                    "`priority` is reserved for the item's priority; choose another name",
                );
                return None;
            }
            if let Some(first) = in_this_form.get(text) {
                self.report(
                    Some(name.span.clone()),
                    &name.path,
                    format!("field `{text}` is already declared by {first}"),
                );
                return None;
            }
            in_this_form.insert(text.to_owned(), section.path.clone());
            match fields.declared.get(text) {
                Some((other, first)) if other != kind => {
                    let message = format!(
                        "field `{text}` is already declared as {} by {first}; a field has one type throughout the service",
                        other.name()
                    );
                    self.report(Some(name.span.clone()), &name.path, message);
                    return None;
                }
                Some(_) => {}
                None => {
                    fields
                        .declared
                        .insert(text.to_owned(), (kind.clone(), section.path.clone()));
                }
            }
            if intake {
                fields.intake.push((text.to_owned(), kind.clone()));
            }
        }

        let name = name?.value;
        Some(Field {
            label: label?.unwrap_or_else(|| name.to_string()),
            name,
            help: help?,
            kind: kind?,
            required: required?,
            required_on: required_on?
                .map(|on| on.value.into_iter().map(|key| key.value).collect())
                .unwrap_or_default(),
            rules: rules?,
        })
    }

    fn field_type(&mut self, section: &Section<'_, '_>) -> Option<FieldType> {
        let kind = self.string(section, "type", Need::Required).flatten()?;
        if kind.value == "list" {
            let item = self.string(section, "item", Need::Required).flatten()?;
            if item.value == "list" {
                self.report(
                    Some(item.span),
                    &item.path,
                    "a list's items cannot be lists",
                );
                return None;
            }
            let item = self.scalar_type(&item)?;
            return Some(FieldType::List(Box::new(item)));
        }
        if let Some((span, _)) = section.entry("item") {
            self.report(
                Some(span),
                &section.path_of("item"),
                "`item` only applies to a field of type `list`",
            );
        }
        self.scalar_type(&kind)
    }

    fn scalar_type(&mut self, kind: &At<&str>) -> Option<FieldType> {
        let parsed = match kind.value {
            "text" => FieldType::Text,
            "long_text" => FieldType::LongText,
            "integer" => FieldType::Integer,
            "decimal" => FieldType::Decimal,
            "money" => FieldType::Money,
            "date" => FieldType::Date,
            "date_time" => FieldType::DateTime,
            "enum" => FieldType::Enum,
            "boolean" => FieldType::Boolean,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "attachment" => FieldType::Attachment,
            "article" => FieldType::Article,
            other => {
                let message = format!(
                    "`{other}` is not a field type{}",
                    hint(other, FIELD_TYPES.iter().copied())
                        .unwrap_or_else(|| format!("; use one of: {}", FIELD_TYPES.join(", ")))
                );
                self.report(Some(kind.span.clone()), &kind.path, message);
                return None;
            }
        };
        Some(parsed)
    }

    fn rules(&mut self, section: &Section<'_, '_>, kind: &FieldType) -> Option<Rules> {
        let before = self.problems.len();
        let (element, is_list) = match kind {
            FieldType::List(item) => (item.as_ref(), true),
            other => (other, false),
        };
        let numeric = matches!(
            element,
            FieldType::Integer | FieldType::Decimal | FieldType::Money
        );
        let textual = matches!(element, FieldType::Text | FieldType::LongText);
        let is_enum = *element == FieldType::Enum;
        let is_money = *element == FieldType::Money;
        // A register entry is named by one line of text, never a list of them.
        let names_entry = *kind == FieldType::Text;
        for (rule, applies) in [
            ("min", numeric),
            ("max", numeric),
            ("min_length", textual),
            ("max_length", textual),
            ("pattern", textual),
            ("values", is_enum),
            ("min_items", is_list),
            ("max_items", is_list),
            ("currencies", is_money),
            ("register", names_entry),
        ] {
            if let (false, Some((span, _))) = (applies, section.entry(rule)) {
                self.report(
                    Some(span),
                    &section.path_of(rule),
                    format!("`{rule}` does not apply to {} field", article(&kind.name())),
                );
            }
        }

        let mut rules = Rules::default();
        if numeric {
            let min = self.decimal(section, "min").flatten();
            let max = self.decimal(section, "max").flatten();
            if let (Some(min), Some(max)) = (&min, &max)
                && min.value > max.value
            {
                self.report(Some(max.span.clone()), &max.path, "`max` is below `min`");
            }
            rules.min = min.map(|min| min.value);
            rules.max = max.map(|max| max.value);
        }
        if textual {
            let min = self.count(section, "min_length").flatten();
            let max = self.count(section, "max_length").flatten();
            self.check_order(&min, &max, "max_length", "min_length");
            rules.min_length = min.map(|min| min.value);
            rules.max_length = max.map(|max| max.value);
            if let Some(pattern) = self.string(section, "pattern", Need::Optional).flatten() {
                match anchored_pattern(pattern.value) {
                    Ok(regex) => rules.pattern = Some(regex),
                    Err(error) => self.report(
                        Some(pattern.span),
                        &pattern.path,
                        format!("not a valid regular expression: {error}"),
                    ),
                }
            }
        }
        if is_enum && let Some(values) = self.strings(section, "values", Need::Required).flatten() {
            if values.value.is_empty() {
                self.report(
                    Some(values.span),
                    &values.path,
                    "an enum needs at least one value",
                );
            }
            let mut seen = HashSet::new();
            for value in &values.value {
                if value.value.trim().is_empty() || value.value.trim() != value.value {
                    self.report(
                        Some(value.span.clone()),
                        &value.path,
                        "a value must not be empty or start or end with spaces",
                    );
                } else if !seen.insert(value.value) {
                    self.report(
                        Some(value.span.clone()),
                        &value.path,
                        format!("`{}` is listed twice", value.value),
                    );
                }
            }
            rules.values = values
                .value
                .iter()
                .map(|value| value.value.to_owned())
                .collect();
        }
        if is_list {
            let min = self.count(section, "min_items").flatten();
            let max = self.count(section, "max_items").flatten();
            self.check_order(&min, &max, "max_items", "min_items");
            rules.min_items = min.map(|min| min.value);
            rules.max_items = max.map(|max| max.value);
        }
        if is_money
            && let Some(codes) = self
                .strings(section, "currencies", Need::Optional)
                .flatten()
        {
            for code in codes.value {
                match Currency::parse(code.value) {
                    Ok(currency) if !rules.currencies.contains(&String::from(currency.clone())) => {
                        rules.currencies.push(currency.into());
                    }
                    Ok(_) => self.report(
                        Some(code.span),
                        &code.path,
                        format!("`{}` is listed twice", code.value),
                    ),
                    Err(error) => self.report(Some(code.span), &code.path, error.0),
                }
            }
        }
        if names_entry {
            rules.register = self
                .key(section, "register", Need::Optional)
                .flatten()
                .map(|register| register.value);
        }
        (self.problems.len() == before).then_some(rules)
    }

    fn check_order(
        &mut self,
        min: &Option<At<u32>>,
        max: &Option<At<u32>>,
        max_key: &str,
        min_key: &str,
    ) {
        if let (Some(min), Some(max)) = (min, max)
            && min.value > max.value
        {
            self.report(
                Some(max.span.clone()),
                &max.path,
                format!("`{max_key}` is below `{min_key}`"),
            );
        }
    }

    fn steps<'a>(&mut self, root: &Section<'a, '_>, fields: &mut Fields) -> Vec<Draft<'a>> {
        let Some(Some(sections)) = self.tables(root, "steps", Need::Required) else {
            return Vec::new();
        };
        if sections.is_empty() {
            self.report(
                root.get("steps").map(Spanned::span),
                "steps",
                "a service needs at least one step",
            );
        }
        sections
            .into_iter()
            .map(|section| self.step(section, fields))
            .collect()
    }

    fn step<'a>(&mut self, mut section: Section<'a, '_>, fields: &mut Fields) -> Draft<'a> {
        let id = self.string(&section, "id", Need::Required).flatten();
        let id_key = id.as_ref().and_then(|id| {
            Key::parse(id.value)
                .map_err(|error| self.report(Some(id.span.clone()), &id.path, error.0))
                .ok()
        });
        let mut id = id;
        if let Some(id) = &mut id {
            section.path = format!("{} ({})", section.path, id.value);
            id.path = section.path_of("id");
        }
        let kind = self
            .string(&section, "kind", Need::Required)
            .flatten()
            .and_then(|kind| {
                let found = KindName::ALL.into_iter().find(|k| k.name() == kind.value);
                if found.is_none() {
                    let names = KindName::ALL.map(KindName::name);
                    let message = format!(
                        "`{}` is not a step kind{}",
                        kind.value,
                        hint(kind.value, names)
                            .unwrap_or_else(|| format!("; use one of: {}", names.join(", ")))
                    );
                    self.report(Some(kind.span), &kind.path, message);
                }
                found
            });
        match kind {
            Some(kind) => {
                let misplaced = |key: &str| {
                    KindName::ALL
                        .iter()
                        .any(|other| other.keys().contains(&key))
                        .then(|| format!("`{key}` does not apply to {} step", article(kind.name())))
                };
                self.unknown_keys(&section, kind.keys(), &misplaced);
            }
            None => {
                let every: BTreeSet<&str> = KindName::ALL
                    .iter()
                    .flat_map(|k| k.keys().iter().copied())
                    .collect();
                self.unknown_keys(&section, &every.into_iter().collect::<Vec<_>>(), &|_| None);
            }
        }
        let title = self
            .string(&section, "title", Need::Optional)
            .and_then(|title| match title {
                None => id_key.as_ref().map(|id| id.to_string()),
                Some(title) => Name::parse(title.value)
                    .map(String::from)
                    .map_err(|error| self.report(Some(title.span), &title.path, error.0))
                    .ok(),
            });

        let mut draft = Draft {
            path: section.path.clone(),
            span: section.span.clone(),
            id,
            kind,
            targets: Vec::new(),
            reviews: None,
            skill: None,
            conditions: Vec::new(),
            any_language: Vec::new(),
            escalate_to: None,
            required_on: Vec::new(),
            template: None,
            until_field: None,
            zone_field: None,
            key_field: None,
            step: None,
        };
        let step_kind = match kind {
            Some(KindName::Human) => self.human(&section, &mut draft, fields),
            Some(KindName::Review) => self.review(&section, &mut draft, fields),
            Some(KindName::Automatic) => self.automatic(&section, &mut draft),
            Some(KindName::Wait) => self.wait(&section, &mut draft),
            Some(KindName::Decision) => self.decision(&section, &mut draft),
            Some(KindName::End) => self.end(&section, id_key.as_ref()),
            None => None,
        };
        if let (Some(id), Some(title), Some(kind)) = (id_key, title, step_kind) {
            draft.step = Some(Step { id, title, kind });
        }
        draft
    }

    fn work(
        &mut self,
        section: &Section<'_, '_>,
        draft: &mut Draft<'_>,
        fields: &mut Fields,
    ) -> Option<Work> {
        let skill = self.key(section, "skill", Need::Required).flatten();
        draft.skill = skill.clone();
        let min_level = self
            .level(section, "min_level")
            .map(|level| level.map_or(SkillLevel::MIN, |level| level.value));
        let handle_time = self
            .duration(section, "handle_time", Need::Required)
            .flatten();
        let due = self.duration(section, "due", Need::Optional);
        let form = self.form(section, "form", fields, false);
        draft.required_on = std::mem::take(&mut fields.required_on);
        let certifications = self
            .keys(section, "certifications", Need::Optional)
            .map(|keys| {
                keys.map_or_else(BTreeSet::new, |keys| {
                    keys.value.into_iter().map(|key| key.value).collect()
                })
            });
        let routing = match self.table(section, "routing", Need::Optional) {
            Some(Some(routing)) => self.routing(&routing, min_level, draft),
            Some(None) => Some(RoutingPolicy::default()),
            None => None,
        };
        Some(Work {
            skill: skill?.value,
            min_level: min_level?,
            handle_time: handle_time?.value,
            due: due?.map(|due| due.value),
            form: form?,
            certifications: certifications?,
            routing: routing?,
            message: None,
            escalation: None,
            hours: None,
        })
    }

    /// `open_hours` and `after_hours`, which come together: the hours a human step's task
    /// may be taken within, and where the item goes when they close on an untaken task.
    fn task_hours<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
    ) -> Option<Option<TaskHours>> {
        let hours = self.local_hours(section, draft, "open_hours");
        let after = self.string(section, "after_hours", Need::Optional);
        let (hours, after) = (hours?, after?);
        if let Some(after) = &after {
            draft.targets.push(after.clone());
        }
        match (hours, after) {
            (None, None) => Some(None),
            (Some(hours), None) => {
                self.report(
                    Some(hours.span),
                    &hours.path,
                    "`open_hours` needs `after_hours`, the step an untaken task's item goes to when the hours close",
                );
                None
            }
            (None, Some(after)) => {
                self.report(
                    Some(after.span),
                    &after.path,
                    "`after_hours` needs `open_hours`, the hours the task may be taken within",
                );
                None
            }
            (Some(hours), Some(after)) => Some(Some(TaskHours {
                hours: hours.value,
                after: Key::parse(after.value).ok()?,
            })),
        }
    }

    /// `escalate_after` and `escalate_to`, which come together: a human step's escalation
    /// by elapsed time. The graph checks report a target that is not another human step.
    fn escalation<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
    ) -> Option<Option<Escalation>> {
        let after = self.duration(section, "escalate_after", Need::Optional);
        let to = self.string(section, "escalate_to", Need::Optional);
        let (after, to) = (after?, to?);
        if let Some(to) = &to {
            // Recorded even when `escalate_after` is missing, so that the graph checks
            // do not also call its target unreachable.
            draft.targets.push(to.clone());
            draft.escalate_to = Some(to.clone());
        }
        match (after, to) {
            (None, None) => Some(None),
            (Some(after), None) => {
                self.report(
                    Some(after.span),
                    &after.path,
                    "`escalate_after` needs `escalate_to`, the step the item escalates to",
                );
                None
            }
            (None, Some(to)) => {
                self.report(
                    Some(to.span),
                    &to.path,
                    "`escalate_to` needs `escalate_after`, how long the task may wait before it escalates",
                );
                None
            }
            (Some(after), Some(to)) => Some(Some(Escalation {
                after: after.value,
                to: Key::parse(to.value).ok()?,
            })),
        }
    }

    /// Each outcome a form field is `required_on` is one of the step's `outcomes`.
    fn check_required_on(&mut self, required_on: &[At<Key>], outcomes: &[&str]) {
        for outcome in required_on {
            if !outcomes.contains(&outcome.value.as_str()) {
                let message = format!(
                    "`{}` is not an outcome of this step{}",
                    outcome.value,
                    hint(outcome.value.as_str(), outcomes.iter().copied())
                        .unwrap_or_else(|| format!("; its outcomes are: {}", outcomes.join(", ")))
                );
                self.report(Some(outcome.span.clone()), &outcome.path, message);
            }
        }
    }

    /// `message_field` and `public_on`: the form field that becomes a thread message, and
    /// the outcomes that make it a public reply rather than an internal note.
    fn message_policy(
        &mut self,
        section: &Section<'_, '_>,
        form: Option<&Form>,
        outcomes: Option<&[At<Key>]>,
    ) -> Option<Option<MessagePolicy>> {
        let field = self.key(section, "message_field", Need::Optional)?;
        let public_on = self.keys(section, "public_on", Need::Optional)?;
        let Some(field) = field else {
            if let Some(public_on) = public_on {
                self.report(
                    Some(public_on.span),
                    &public_on.path,
                    "`public_on` needs a `message_field` whose message it makes public",
                );
                return None;
            }
            return Some(None);
        };
        let mut good = true;
        if let Some(form) = form {
            let texty = form
                .field(field.value.as_str())
                .is_some_and(|f| matches!(f.kind, FieldType::Text | FieldType::LongText));
            if !texty {
                good = false;
                self.report(
                    Some(field.span.clone()),
                    &field.path,
                    format!("`{}` is not a text field of this step's form", field.value),
                );
            }
        }
        let public_on = public_on.map(|keys| keys.value).unwrap_or_default();
        if let Some(outcomes) = outcomes {
            for outcome in &public_on {
                if !outcomes.iter().any(|known| known.value == outcome.value) {
                    good = false;
                    self.report(
                        Some(outcome.span.clone()),
                        &outcome.path,
                        format!("`{}` is not an outcome of this step", outcome.value),
                    );
                }
            }
        }
        good.then(|| {
            Some(MessagePolicy {
                field: field.value,
                public_on: public_on.into_iter().map(|outcome| outcome.value).collect(),
            })
        })
    }

    /// A step's `routing` table; `min_level` is the step's, when it could be read.
    fn routing(
        &mut self,
        section: &Section<'_, '_>,
        min_level: Option<SkillLevel>,
        draft: &mut Draft<'_>,
    ) -> Option<RoutingPolicy> {
        let before = self.problems.len();
        self.unknown_keys(section, ROUTING_KEYS, &|_| None);
        let defaults = RoutingPolicy::default();
        let channels = Channel::ALL.map(|channel| (channel.as_str(), channel));
        let channel = self.choice(section, "channel", &channels, "a channel");
        let worker_order = self.choice(section, "worker_order", &WORKER_ORDERS, "a worker order");
        type Parse = fn(&str) -> Result<SignedDuration, String>;
        let mut duration = |key: &str, parse: Parse, default: SignedDuration| {
            self.duration_with(section, key, Need::Optional, parse)
                .map(|d| d.map_or(default, |d| d.value))
        };
        let aging = duration("aging", parse_duration, defaults.aging);
        let urgency_lead = duration("urgency_lead", parse_duration, defaults.urgency_lead);
        let preferred_window = duration(
            "preferred_window",
            parse_duration_or_zero,
            defaults.preferred_window,
        );
        let offer_timeout = self
            .duration_with(section, "offer_timeout", Need::Optional, parse_duration)
            .map(|d| d.map(|d| d.value));
        let relax = self.relaxations(section, min_level, draft);
        let policy = RoutingPolicy {
            offer_timeout: offer_timeout?,
            channel: channel?.map_or(defaults.channel, |c| c.value),
            aging: aging?,
            urgency_lead: urgency_lead?,
            relax: relax?,
            worker_order: worker_order?.map_or(defaults.worker_order, |o| o.value),
            preferred_window: preferred_window?,
        };
        (self.problems.len() == before).then_some(policy)
    }

    /// `routing.relax`: each entry after the one before, each asking less than the step
    /// and than the entries before it.
    fn relaxations(
        &mut self,
        section: &Section<'_, '_>,
        step_level: Option<SkillLevel>,
        draft: &mut Draft<'_>,
    ) -> Option<Vec<Relaxation>> {
        let before = self.problems.len();
        let entries = self
            .tables(section, "relax", Need::Optional)?
            .unwrap_or_default();
        let mut relax = Vec::new();
        // The latest `after` and the lowest level so far, so that every entry out of
        // order is reported, not only the first.
        let mut latest_after: Option<At<SignedDuration>> = None;
        let mut lowest_level: Option<(At<SkillLevel>, String)> = None;
        for entry in entries {
            self.unknown_keys(&entry, RELAX_KEYS, &|_| None);
            let after = self.duration(&entry, "after", Need::Required).flatten();
            let level = self.level(&entry, "min_level").flatten();
            let any_language = self.flag(&entry, "any_language");

            if let Some(after) = &after {
                if let Some(previous) = &latest_after
                    && after.value <= previous.value
                {
                    self.report(
                        Some(after.span.clone()),
                        &after.path,
                        format!(
                            "relaxations must come in increasing `after` order; this one is not after {} (`{:#}`)",
                            previous.path, previous.value
                        ),
                    );
                }
                if latest_after
                    .as_ref()
                    .is_none_or(|latest| after.value > latest.value)
                {
                    latest_after = Some(after.clone());
                }
            }
            if let Some(level) = &level {
                let step_level = step_level.filter(|step| level.value >= *step);
                if let Some(step) = step_level {
                    self.report(
                        Some(level.span.clone()),
                        &level.path,
                        format!(
                            "`min_level` {} must be below the step's `min_level` ({}): a relaxation can only ask less",
                            level.value.get(),
                            step.get()
                        ),
                    );
                } else if let Some((previous, path)) = &lowest_level
                    && level.value > previous.value
                {
                    self.report(
                        Some(level.span.clone()),
                        &level.path,
                        format!(
                            "`min_level` {} is above the {} of {path}: levels must not rise along `relax`",
                            level.value.get(),
                            previous.value.get()
                        ),
                    );
                }
                if lowest_level
                    .as_ref()
                    .is_none_or(|(lowest, _)| level.value < lowest.value)
                {
                    lowest_level = Some((level.clone(), entry.path.clone()));
                }
            }
            let any_language = any_language.map(|flag| flag.filter(|flag| flag.value));
            if let Some(Some(flag)) = &any_language {
                draft.any_language.push(At {
                    value: (),
                    span: flag.span.clone(),
                    path: flag.path.clone(),
                });
            }
            // A `min_level` or `any_language` that had a problem was reported already.
            if entry.get("min_level").is_none() && matches!(any_language, Some(None)) {
                self.report(
                    entry.span.clone(),
                    &entry.path,
                    "a relaxation must relax something: give `min_level`, `any_language = true`, or both",
                );
            }
            if let Some(after) = after {
                relax.push(Relaxation {
                    after: after.value,
                    min_level: level.map(|level| level.value),
                    any_language: matches!(any_language, Some(Some(_))),
                });
            }
        }
        (self.problems.len() == before).then_some(relax)
    }

    fn human<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
        fields: &mut Fields,
    ) -> Option<StepKind> {
        let work = self.work(section, draft, fields);
        let outcomes = self.keys(section, "outcomes", Need::Required).flatten();
        if let Some(outcomes) = &outcomes
            && outcomes.value.is_empty()
        {
            self.report(
                Some(outcomes.span.clone()),
                &outcomes.path,
                "a human step needs at least one outcome",
            );
        }
        let message = self.message_policy(
            section,
            work.as_ref().map(|work| &work.form),
            outcomes.as_ref().map(|outcomes| outcomes.value.as_slice()),
        );
        if let Some(outcomes) = &outcomes {
            let names: Vec<&str> = outcomes.value.iter().map(|o| o.value.as_str()).collect();
            let required_on = std::mem::take(&mut draft.required_on);
            self.check_required_on(&required_on, &names);
        }
        let escalation = self.escalation(section, draft);
        let hours = self.task_hours(section, draft);
        let on = self.transitions(section, draft, outcomes.map(|outcomes| outcomes.value));
        let mut work = work?;
        work.message = message?;
        work.escalation = escalation?;
        work.hours = hours?;
        Some(StepKind::Human { work, on: on? })
    }

    /// Reads `on`, which must give a step for each expected outcome and for nothing else.
    /// With `expected` unknown (it had problems) only the targets are read.
    fn transitions<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
        expected: Option<Vec<At<Key>>>,
    ) -> Option<Vec<Transition>> {
        let on = self.table(section, "on", Need::Required).flatten();
        let mut targets: HashMap<&str, Option<Key>> = HashMap::new();
        if let Some(on) = &on {
            for (outcome, _) in on.table.iter() {
                let name: &str = outcome.get_ref();
                let target = self.string(on, name, Need::Required).flatten();
                if let Some(expected) = &expected
                    && !expected.iter().any(|known| known.value.as_str() == name)
                {
                    let known = expected.iter().map(|known| known.value.as_str());
                    let message = format!(
                        "`{name}` is not an outcome of this step{}",
                        hint(name, known.clone()).unwrap_or_else(|| {
                            format!(
                                "; its outcomes are: {}",
                                known.collect::<Vec<_>>().join(", ")
                            )
                        })
                    );
                    self.report(Some(outcome.span()), &on.path_of(name), message);
                }
                if let Some(target) = target {
                    targets.insert(name, Key::parse(target.value).ok());
                    draft.targets.push(target);
                }
            }
        }
        on?;
        let expected = expected?;
        let mut transitions = Some(Vec::new());
        for outcome in expected {
            match targets.get(outcome.value.as_str()) {
                Some(target) => {
                    let transition = target.clone().map(|to| Transition {
                        outcome: outcome.value,
                        to,
                    });
                    match (&mut transitions, transition) {
                        (Some(list), Some(transition)) => list.push(transition),
                        _ => transitions = None,
                    }
                }
                None => {
                    self.report(
                        Some(outcome.span),
                        &outcome.path,
                        format!("outcome `{}` has no step in `on`", outcome.value),
                    );
                    transitions = None;
                }
            }
        }
        transitions
    }

    fn review<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
        fields: &mut Fields,
    ) -> Option<StepKind> {
        let work = self.work(section, draft, fields);
        let required_on = std::mem::take(&mut draft.required_on);
        self.check_required_on(&required_on, &[APPROVE, REJECT]);
        let reviews = self.string(section, "reviews", Need::Required).flatten();
        let reviews_key = reviews
            .as_ref()
            .and_then(|reviews| Key::parse(reviews.value).ok());
        draft.reviews = reviews;
        let sample_percent = self
            .integer(section, "sample_percent", Need::Optional)
            .and_then(|percent| match percent {
                None => Some(100),
                Some(percent) => u8::try_from(percent.value)
                    .ok()
                    .filter(|p| *p <= 100)
                    .or_else(|| {
                        self.report(
                            Some(percent.span),
                            &percent.path,
                            "`sample_percent` must be 0 to 100",
                        );
                        None
                    }),
            });
        let on_approve = self.target(section, "on_approve", draft);
        let reject_to = self.target(section, "reject_to", draft);
        Some(StepKind::Review {
            work: work?,
            reviews: reviews_key?,
            sample_percent: sample_percent?,
            on_approve: on_approve?,
            reject_to: reject_to?,
        })
    }

    fn automatic<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
    ) -> Option<StepKind> {
        let name = self.string(section, "action", Need::Required).flatten();
        let action_name = name.as_ref().map(|name| name.value);
        for (key, owner) in [
            ("priority", "set_priority"),
            ("template", "notify_requester"),
            ("register", "add_to_register"),
            ("key_field", "add_to_register"),
        ] {
            if let (Some(name), Some((span, _))) = (action_name, section.entry(key))
                && name != owner
            {
                self.report(
                    Some(span),
                    &section.path_of(key),
                    format!("`{key}` only applies to the action `{owner}`"),
                );
            }
        }
        let action = name.and_then(|name| match name.value {
            "set_priority" => {
                let priority = self.string(section, "priority", Need::Required).flatten()?;
                Priority::from_str(priority.value)
                    .map(|priority| Action::SetPriority { priority })
                    .map_err(|error| self.report(Some(priority.span), &priority.path, error.0))
                    .ok()
            }
            "notify_requester" => {
                let template = self.key(section, "template", Need::Required).flatten()?;
                draft.template = Some(template.clone());
                Some(Action::NotifyRequester {
                    template: template.value,
                })
            }
            "request_csat" => Some(Action::RequestCsat),
            "add_to_register" => {
                let register = self.key(section, "register", Need::Required).flatten();
                let key_field = self.key(section, "key_field", Need::Required).flatten();
                draft.key_field = key_field.clone();
                Some(Action::AddToRegister {
                    register: register?.value,
                    key_field: key_field?.value,
                })
            }
            other => {
                let message = format!(
                    "`{other}` is not an action{}",
                    hint(other, Action::NAMES)
                        .unwrap_or_else(|| format!("; use one of: {}", Action::NAMES.join(", ")))
                );
                self.report(Some(name.span), &name.path, message);
                None
            }
        });
        let next = self.target(section, "next", draft);
        Some(StepKind::Automatic {
            action: action?,
            next: next?,
        })
    }

    fn wait<'a>(&mut self, section: &Section<'a, '_>, draft: &mut Draft<'a>) -> Option<StepKind> {
        let timer = self.duration(section, "timer", Need::Optional);
        let until_field = self.key(section, "until_field", Need::Optional);
        let until_open = self.local_hours(section, draft, "until_open");
        let events = self.keys(section, "events", Need::Optional);
        let mut outcomes = events.clone().map(|events| {
            events
                .map_or_else(Vec::new, |events| events.value)
                .into_iter()
                .filter(|event| event.value.as_str() != TIMEOUT)
                .collect::<Vec<_>>()
        });
        if let Some(Some(events)) = &events {
            for event in &events.value {
                if event.value.as_str() == TIMEOUT {
                    self.report(
                        Some(event.span.clone()),
                        &event.path,
                        "`timeout` is the outcome of the timer; name the event otherwise",
                    );
                }
            }
        }
        let no_event = matches!(&events, Some(None))
            || matches!(&events, Some(Some(events)) if events.value.is_empty());
        if matches!(timer, Some(None))
            && matches!(until_field, Some(None))
            && matches!(until_open, Some(None))
            && no_event
        {
            self.report(
                section.span.clone(),
                &draft.path,
                "a wait step needs a `timer`, `until_field`, `until_open` or `events`",
            );
            outcomes = None;
        }
        let timed = match (&timer, &until_field, &until_open) {
            (Some(Some(timer)), _, _) => Some((timer.span.clone(), timer.path.clone())),
            (_, Some(Some(field)), _) => Some((field.span.clone(), field.path.clone())),
            (_, _, Some(Some(hours))) => Some((hours.span.clone(), hours.path.clone())),
            // Hours with a problem still give the step its `timeout`, so that `on` is not
            // reported too.
            _ => section
                .get("until_open")
                .map(|hours| (hours.span(), section.path_of("until_open"))),
        };
        if let (Some(outcomes), Some((span, path))) = (&mut outcomes, timed) {
            outcomes.push(At {
                value: Key::parse(TIMEOUT).ok()?,
                span,
                path,
            });
        }
        let on = self.transitions(section, draft, outcomes);
        let until_field = until_field?;
        draft.until_field = until_field.clone();
        Some(StepKind::Wait {
            timer: timer?.map(|timer| timer.value),
            until_field: until_field.map(|field| field.value),
            until_open: until_open?.map(|hours| hours.value),
            on: on?,
        })
    }

    /// Hours in an item's own zone, `{ zone_field, open = "HH:MM-HH:MM", days = [...] }`
    /// under `key` (a wait step's `until_open`, a human step's `open_hours`): `days` are
    /// weekday keys, every day when left out.
    fn local_hours(
        &mut self,
        section: &Section<'_, '_>,
        draft: &mut Draft<'_>,
        key: &str,
    ) -> Option<Option<At<LocalHours>>> {
        let Some(table) = self.table(section, key, Need::Optional)? else {
            return Some(None);
        };
        let before = self.problems.len();
        self.unknown_keys(&table, &["zone_field", "open", "days"], &|_| None);
        let zone_field = self.key(&table, "zone_field", Need::Required).flatten();
        let open = self.string(&table, "open", Need::Required).flatten();
        let days = self.strings(&table, "days", Need::Optional).flatten();
        let mut hours = WeekSpec::default();
        let chosen: Vec<&str> = match &days {
            None => WEEKDAY_KEYS.to_vec(),
            Some(days) => days.value.iter().map(|day| day.value).collect(),
        };
        for (index, day) in chosen.iter().enumerate() {
            let slot = match *day {
                "mon" => &mut hours.mon,
                "tue" => &mut hours.tue,
                "wed" => &mut hours.wed,
                "thu" => &mut hours.thu,
                "fri" => &mut hours.fri,
                "sat" => &mut hours.sat,
                "sun" => &mut hours.sun,
                other => {
                    if let Some(days) = &days {
                        let day = &days.value[index];
                        self.report(
                            Some(day.span.clone()),
                            &day.path,
                            format!("`{other}` is not a weekday: `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`"),
                        );
                    }
                    continue;
                }
            };
            if let Some(open) = &open
                && slot.is_empty()
            {
                slot.push(open.value.to_owned());
            }
        }
        if let Some(open) = &open {
            let spec = CalendarSpec {
                zone: "UTC".into(),
                hours: WeekSpec {
                    mon: vec![open.value.to_owned()],
                    ..WeekSpec::default()
                },
                holidays: Vec::new(),
                exceptions: Default::default(),
            };
            if BusinessCalendar::try_from(spec).is_err() {
                self.report(
                    Some(open.span.clone()),
                    &open.path,
                    format!(
                        "`{}` is not hours of the form `HH:MM-HH:MM` ending after they start",
                        open.value
                    ),
                );
            }
        }
        if let Some(days) = &days
            && days.value.is_empty()
        {
            self.report(
                Some(days.span.clone()),
                &days.path,
                "`days` names no weekday, so the hours would never open",
            );
        }
        draft.zone_field = zone_field.clone();
        if self.problems.len() != before {
            return None;
        }
        Some(Some(At {
            value: LocalHours {
                zone_field: zone_field?.value,
                hours,
            },
            span: table.span.clone().unwrap_or_default(),
            path: table.path.clone(),
        }))
    }

    fn decision<'a>(
        &mut self,
        section: &Section<'a, '_>,
        draft: &mut Draft<'a>,
    ) -> Option<StepKind> {
        let branches = self.tables(section, "branches", Need::Required).flatten();
        if let Some(branches) = &branches
            && branches.is_empty()
        {
            self.report(
                section.get("branches").map(Spanned::span),
                &section.path_of("branches"),
                "a decision needs at least one branch",
            );
        }
        let mut built = branches.as_ref().map(|_| Vec::new());
        for branch in branches.unwrap_or_default() {
            self.unknown_keys(&branch, BRANCH_KEYS, &|_| None);
            let when = self
                .string(&branch, "when", Need::Required)
                .flatten()
                .and_then(|when| {
                    let compiled =
                        Expression::compile(when.value).map_err(|error| error.to_string());
                    match compiled {
                        Ok(expression) => Some(At {
                            value: expression,
                            span: when.span,
                            path: when.path,
                        }),
                        Err(message) => {
                            self.report(
                                Some(when.span),
                                &when.path,
                                format!("the expression {message}"),
                            );
                            None
                        }
                    }
                });
            let to = self.target(&branch, "to", draft);
            if let Some(when) = &when {
                draft.conditions.push(when.clone());
            }
            match (&mut built, when, to) {
                (Some(list), Some(when), Some(to)) => list.push(Branch {
                    when: when.value,
                    to,
                }),
                _ => built = None,
            }
        }
        let otherwise = self.target(section, "otherwise", draft);
        Some(StepKind::Decision {
            branches: built?,
            otherwise: otherwise?,
        })
    }

    fn end(&mut self, section: &Section<'_, '_>, id: Option<&Key>) -> Option<StepKind> {
        let resolution = self.key(section, "resolution", Need::Optional)?;
        Some(StepKind::End {
            resolution: match resolution {
                Some(resolution) => resolution.value,
                None => id?.clone(),
            },
        })
    }

    /// Step ids are unique, every named step exists, every step is reachable from the
    /// start, an end is reachable, and no loop runs without a step that waits.
    fn check_graph(&mut self, start: Option<&At<&str>>, drafts: &[Draft<'_>]) {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (index, draft) in drafts.iter().enumerate() {
            let Some(id) = &draft.id else { continue };
            match ids.get(id.value) {
                Some(&first) => self.report(
                    Some(id.span.clone()),
                    &id.path,
                    format!(
                        "step id `{}` is already used by {}",
                        id.value, drafts[first].path
                    ),
                ),
                None => {
                    ids.insert(id.value, index);
                }
            }
        }
        let names: Vec<&str> = drafts
            .iter()
            .filter_map(|draft| draft.id.as_ref().map(|id| id.value))
            .collect();
        let resolve = |loader: &mut Self, target: &At<&str>| match ids.get(target.value) {
            Some(&index) => Some(index),
            None => {
                let message = format!(
                    "there is no step `{}`{}",
                    target.value,
                    hint(target.value, names.iter().copied()).unwrap_or_default()
                );
                loader.report(Some(target.span.clone()), &target.path, message);
                None
            }
        };
        let edges: Vec<Vec<usize>> = drafts
            .iter()
            .map(|draft| {
                draft
                    .targets
                    .iter()
                    .filter_map(|target| resolve(self, target))
                    .collect()
            })
            .collect();
        for draft in drafts {
            let Some(reviews) = &draft.reviews else {
                continue;
            };
            let Some(reviewed) = resolve(self, reviews) else {
                continue;
            };
            if let Some(kind) = drafts[reviewed].kind
                && kind != KindName::Human
            {
                self.report(
                    Some(reviews.span.clone()),
                    &reviews.path,
                    format!(
                        "`reviews` must name a human step; `{}` is {} step",
                        reviews.value,
                        article(kind.name())
                    ),
                );
            }
        }

        for draft in drafts {
            let Some(to) = &draft.escalate_to else {
                continue;
            };
            // An unknown target was reported with the other targets.
            let Some(&target) = ids.get(to.value) else {
                continue;
            };
            let message = match drafts[target].kind {
                _ if draft.id.as_ref().is_some_and(|id| id.value == to.value) => {
                    "a step cannot escalate to itself; name the step that takes the work over"
                        .to_owned()
                }
                Some(kind) if kind != KindName::Human => format!(
                    "`escalate_to` must name a human step, whose task someone takes over; `{}` is {} step",
                    to.value,
                    article(kind.name())
                ),
                _ => continue,
            };
            self.report(Some(to.span.clone()), &to.path, message);
        }

        let has_end = drafts.iter().any(|draft| draft.kind == Some(KindName::End));
        if !has_end && !drafts.is_empty() {
            self.report(None, "steps", "the service has no `end` step");
        }
        if let Some(start) = start
            && let Some(first) = resolve(self, start)
        {
            let mut reached = vec![false; drafts.len()];
            let mut queue = VecDeque::from([first]);
            reached[first] = true;
            while let Some(index) = queue.pop_front() {
                for &next in &edges[index] {
                    if !reached[next] {
                        reached[next] = true;
                        queue.push_back(next);
                    }
                }
            }
            for (index, draft) in drafts.iter().enumerate() {
                let Some(id) = &draft.id else { continue };
                if !reached[index] && ids.get(id.value) == Some(&index) {
                    self.report(
                        Some(id.span.clone()),
                        &id.path,
                        format!(
                            "step `{}` cannot be reached from the start step `{}`",
                            id.value, start.value
                        ),
                    );
                }
            }
            let end_reached = drafts
                .iter()
                .zip(&reached)
                .any(|(draft, reached)| *reached && draft.kind == Some(KindName::End));
            if has_end && !end_reached {
                self.report(
                    Some(start.span.clone()),
                    &start.path,
                    format!(
                        "no `end` step can be reached from the start step `{}`",
                        start.value
                    ),
                );
            }
        }

        let halts: Vec<bool> = drafts.iter().map(Draft::halts).collect();
        for cycle in endless_loops(&edges, &halts) {
            let ids: Vec<String> = cycle
                .iter()
                .map(|&index| drafts[index].id.as_ref().map_or("?", |id| id.value))
                .map(|id| format!("`{id}`"))
                .collect();
            let first = &drafts[cycle[0]];
            let message = if ids.len() == 1 {
                format!(
                    "step {} leads back to itself without a human, review or wait step in between, so an item would loop forever",
                    ids[0]
                )
            } else {
                format!(
                    "steps {} form a loop of automatic and decision steps only, so an item could loop forever; route the loop through a human, review or wait step",
                    ids.join(", ")
                )
            };
            match &first.id {
                Some(id) => self.report(Some(id.span.clone()), &id.path, message),
                None => self.report(first.span.clone(), &first.path, message),
            }
        }
    }

    fn check_skills(&mut self, header: &Header<'_>, drafts: &[Draft<'_>]) {
        let Some(skills) = &header.skills else { return };
        for draft in drafts {
            let Some(skill) = &draft.skill else { continue };
            if !skills.iter().any(|listed| listed.value == skill.value) {
                self.report(
                    Some(skill.span.clone()),
                    &skill.path,
                    format!("skill `{}` is not listed in `service.skills`", skill.value),
                );
            }
        }
    }

    /// Each wait step's `until_field` is a `date_time` field of the service, and the
    /// `zone_field` of its `until_open` (a human step's `open_hours`) a `text` or `enum` one.
    fn check_until_fields(&mut self, drafts: &[Draft<'_>], fields: &Fields) {
        // And an `add_to_register` step's `key_field` is an intake field with text.
        for field in drafts.iter().filter_map(|draft| draft.key_field.as_ref()) {
            let intake = fields
                .intake
                .iter()
                .find(|(name, _)| name == field.value.as_str());
            let message = match intake {
                Some((
                    _,
                    FieldType::Text | FieldType::Phone | FieldType::Email | FieldType::Enum,
                )) => {
                    continue;
                }
                Some((_, kind)) => format!(
                    "`{}` is of type `{}`; a register key is a `text`, `phone`, `email` or `enum` field",
                    field.value,
                    kind.name()
                ),
                None => format!("there is no intake field `{}`", field.value),
            };
            self.report(Some(field.span.clone()), &field.path, message);
        }
        for field in drafts.iter().filter_map(|draft| draft.zone_field.as_ref()) {
            self.field_of_kind(
                field,
                fields,
                |kind| matches!(kind, FieldType::Text | FieldType::Enum),
                "a time zone is held by a `text` or `enum` field",
            );
        }
        for field in drafts.iter().filter_map(|draft| draft.until_field.as_ref()) {
            self.field_of_kind(
                field,
                fields,
                |kind| *kind == FieldType::DateTime,
                "`until_field` needs a `date_time` field",
            );
        }
    }

    /// Reports `field` unless it names a field of the service whose type `fits`; `needs`
    /// says what would.
    fn field_of_kind(
        &mut self,
        field: &At<Key>,
        fields: &Fields,
        fits: impl Fn(&FieldType) -> bool,
        needs: &str,
    ) {
        let message = match fields.declared.get(field.value.as_str()) {
            Some((kind, _)) if fits(kind) => return,
            Some((kind, _)) => format!("`{}` is of type `{}`; {needs}", field.value, kind.name()),
            None => format!(
                "there is no field `{}`{}",
                field.value,
                hint(
                    field.value.as_str(),
                    fields.declared.keys().map(String::as_str)
                )
                .unwrap_or_default()
            ),
        };
        self.report(Some(field.span.clone()), &field.path, message);
    }

    /// Every variable a decision reads is a field of the service or `priority`.
    fn check_conditions(&mut self, drafts: &[Draft<'_>], fields: &Fields) {
        for condition in drafts.iter().flat_map(|draft| &draft.conditions) {
            for variable in condition.value.variables() {
                if variable == "priority"
                    || variable == ENTRIES
                    || fields.declared.contains_key(&variable)
                {
                    continue;
                }
                let message = format!(
                    "the expression reads `{variable}`, which is neither a field of this service nor `priority` or `entries`{}",
                    hint(
                        &variable,
                        fields
                            .declared
                            .keys()
                            .map(String::as_str)
                            .chain(["priority", ENTRIES])
                    )
                    .unwrap_or_default()
                );
                self.report(Some(condition.span.clone()), &condition.path, message);
            }
        }
    }

    /// An intake field named by `[service]` for a purpose, of one of the allowed types.
    fn intake_field(
        &mut self,
        field: &At<&str>,
        fields: &Fields,
        purpose: &str,
        allowed: &[FieldType],
    ) -> Option<Option<Key>> {
        match fields.intake.iter().find(|(name, _)| name == field.value) {
            Some((_, kind)) if allowed.contains(kind) => Key::parse(field.value).ok().map(Some),
            Some((_, other)) => {
                let names: Vec<String> = allowed.iter().map(FieldType::name).collect();
                let message = format!(
                    "the {purpose} field must be of type {}, not {}",
                    names.join(" or "),
                    other.name()
                );
                self.report(Some(field.span.clone()), &field.path, message);
                None
            }
            None => {
                let message = format!(
                    "`{}` is not an intake field{}",
                    field.value,
                    hint(
                        field.value,
                        fields.intake.iter().map(|(name, _)| name.as_str())
                    )
                    .unwrap_or_default()
                );
                self.report(Some(field.span.clone()), &field.path, message);
                None
            }
        }
    }
}

/// `word` with its indefinite article: "an integer", "a text".
fn article(word: &str) -> String {
    let an = word.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {word}", if an { "an" } else { "a" })
}

/// `; did you mean `x`?` when a candidate is a small edit away from `word`.
fn hint<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    suggest(word, candidates).map(|close| format!("; did you mean `{close}`?"))
}

fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = word.chars().count().div_ceil(3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| (1..=limit).contains(distance))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The loops made only of steps that do not halt (automatic and decision steps): the
/// strongly connected components of that subgraph with more than one step or a self-loop,
/// each sorted by file order.
fn endless_loops(edges: &[Vec<usize>], halts: &[bool]) -> Vec<Vec<usize>> {
    let moving = |node: usize| !halts.get(node).copied().unwrap_or(true);
    // Kosaraju, iteratively: a definition may be long, the stack is not.
    let mut order = Vec::new();
    let mut visited = vec![false; edges.len()];
    for root in (0..edges.len()).filter(|&node| moving(node)) {
        if visited[root] {
            continue;
        }
        visited[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&child) = edges[node].get(*next) {
                *next += 1;
                if moving(child) && !visited[child] {
                    visited[child] = true;
                    stack.push((child, 0));
                }
            } else {
                order.push(node);
                stack.pop();
            }
        }
    }
    let mut reverse = vec![Vec::new(); edges.len()];
    for (from, targets) in edges.iter().enumerate() {
        for &to in targets {
            if moving(from) && moving(to) {
                reverse[to].push(from);
            }
        }
    }
    let mut assigned = vec![false; edges.len()];
    let mut loops = Vec::new();
    for &root in order.iter().rev() {
        if assigned[root] {
            continue;
        }
        assigned[root] = true;
        let mut component = vec![root];
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            for &previous in &reverse[node] {
                if !assigned[previous] {
                    assigned[previous] = true;
                    component.push(previous);
                    stack.push(previous);
                }
            }
        }
        component.sort_unstable();
        if component.len() > 1 || edges[root].contains(&root) {
            loops.push(component);
        }
    }
    loops.sort();
    loops
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::model::{REFERENCE, REPLY_LINK, fill};
    use super::*;

    const CATALOG: &str = include_str!("../../../../catalog/customer-support.toml");

    const HEADER: &str = r#"
[service]
key = "test"
version = 1
name = "Test"
kind = "kpo"
skills = ["research"]
start = "first"
"#;

    fn problems(source: &str) -> Vec<Problem> {
        match load_definition(source) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    /// `line path: message` for each problem, for readable assertions.
    fn listed(source: &str) -> Vec<String> {
        problems(source)
            .into_iter()
            .map(|p| format!("{} {}: {}", p.line, p.path, p.message))
            .collect()
    }

    fn with_header(rest: &str) -> String {
        format!("{HEADER}{rest}")
    }

    /// Top-level keys must come before the first table.
    fn with_intake(intake: &str, rest: &str) -> String {
        format!("intake = [\n{intake}]\n{HEADER}{rest}")
    }

    fn first_syntax_problem(source: &str) -> Problem {
        problems(source)
            .into_iter()
            .find(|p| p.message.starts_with("TOML syntax"))
            .unwrap()
    }

    /// The 1-based line of the first occurrence of `needle`.
    fn line_of(source: &str, needle: &str) -> usize {
        let offset = source
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in the source"));
        source[..offset].lines().count() + usize::from(source[..offset].ends_with('\n'))
    }

    fn assert_reported(listed: &[String], expected: &str) {
        assert!(
            listed.iter().any(|line| line.contains(expected)),
            "`{expected}` not among:\n{}",
            listed.join("\n")
        );
    }

    #[test]
    fn loads_the_customer_support_catalog_service_without_problems() {
        let definition = load_definition(CATALOG).unwrap_or_else(|problems| {
            panic!("{problems:#?}");
        });
        assert_eq!(definition.key.as_str(), "customer-support");
        let templates: Vec<&str> = definition
            .templates
            .iter()
            .map(|template| template.key.as_str())
            .collect();
        assert_eq!(
            templates,
            ["acknowledgement", "auto_resolved", "csat_request", "merged"]
        );
        let titles: Vec<&str> = definition
            .canned_replies
            .iter()
            .map(|reply| reply.title.as_str())
            .collect();
        assert_eq!(
            titles,
            ["We are on it", "Ask for details", "Solved, closing"]
        );
        assert_eq!(definition.kind, ServiceKind::Bpo);
        assert_eq!(definition.start.as_str(), "acknowledge");
        assert_eq!(
            definition.language_field.as_ref().map(Key::as_str),
            Some("language")
        );
        assert_eq!(
            definition.sla.resolution,
            Some(SignedDuration::from_hours(72))
        );
        assert!(definition.intake.field("priority").is_none());
        assert!(
            definition
                .intake
                .field("requester_email")
                .is_some_and(|f| f.required)
        );

        let answer = definition.step(&Key::parse("answer").unwrap()).unwrap();
        let work = answer.work().unwrap();
        assert_eq!(work.skill.as_str(), "customer_support");
        assert_eq!(work.handle_time, SignedDuration::from_mins(6));
        assert_eq!(work.routing.channel, Channel::Email);
        assert_eq!(
            work.routing.relax,
            [Relaxation {
                after: SignedDuration::from_mins(30),
                min_level: None,
                any_language: true,
            }]
        );
        let mut successors: Vec<_> = answer
            .successors()
            .into_iter()
            .map(|(outcome, to)| format!("{outcome}->{to}"))
            .collect();
        successors.sort();
        assert_eq!(
            successors,
            [
                "noted->answer",
                "replied->await_reply",
                "resolved->request_csat"
            ]
        );
        let wait = definition
            .step(&Key::parse("await_reply").unwrap())
            .unwrap();
        let outcomes: Vec<_> = wait.successors().into_iter().map(|(o, _)| o).collect();
        assert_eq!(outcomes, ["requester_reply", TIMEOUT]);
    }

    #[test]
    fn loads_the_it_helpdesk_catalog_service_with_its_matrix_and_asset_register() {
        let source = include_str!("../../../../catalog/it-helpdesk.toml");
        let definition = load_definition(source).unwrap_or_else(|problems| panic!("{problems:#?}"));
        assert_eq!(definition.key.as_str(), "it-helpdesk");
        let asset = definition.intake.field("asset").unwrap();
        assert_eq!(
            asset.rules.register.as_ref().map(Key::as_str),
            Some("assets")
        );
        let matrix = definition.priority_matrix.as_ref().unwrap();
        let data = |impact: &str, urgency: &str| {
            serde_json::json!({"impact": impact, "urgency": urgency})
                .as_object()
                .cloned()
                .unwrap()
        };
        assert_eq!(
            matrix.priority(&data("high", "high")),
            Some(Priority::Urgent)
        );
        assert_eq!(matrix.priority(&data("low", "medium")), Some(Priority::Low));
        assert_eq!(matrix.priority(&serde_json::Map::new()), None);
    }

    #[test]
    fn a_priority_matrix_needs_two_enum_intake_fields_and_a_cell_for_every_pair() {
        let intake = r#"  { name = "impact", type = "enum", values = ["high", "low"] },
  { name = "urgency", type = "enum", values = ["high", "low"] },
  { name = "note", type = "text" },
"#;
        let steps = r#"
[[steps]]
id = "first"
kind = "end"
"#;
        let matrix = |body: &str| {
            listed(&with_intake(
                intake,
                &format!("{steps}\n[priority_matrix]\n{body}"),
            ))
        };
        assert_eq!(
            matrix(
                r#"impact_field = "impact"
urgency_field = "urgency"
cells = { high = { high = "urgent", low = "high" }, low = { high = "normal", low = "low" } }
"#
            ),
            Vec::<String>::new()
        );
        let listed = matrix(
            r#"impact_field = "note"
urgency_field = "urgnecy"
cells = { high = { high = "urgent", low = "soon" }, hihg = { high = "low" } }
"#,
        );
        for expected in [
            "priority_matrix.impact_field: the impact field must be of type enum, not text",
            "priority_matrix.urgency_field: `urgnecy` is not an intake field; did you mean `urgency`?",
            "priority_matrix.cells.high.low: priority must be low, normal, high or urgent, not `soon`",
        ] {
            assert_reported(&listed, expected);
        }
        assert_eq!(listed.len(), 3, "{listed:#?}");
        let listed = matrix(
            r#"impact_field = "impact"
urgency_field = "impact"
cells = { high = { high = "urgent", low = "high" }, hihg = { high = "low", sometimes = "low" } }
"#,
        );
        for expected in [
            "priority_matrix.urgency_field: impact and urgency must be two different fields",
            "priority_matrix.cells.hihg: `hihg` is not a value of `impact`; did you mean `high`?",
            "priority_matrix.cells.hihg.sometimes: `sometimes` is not a value of `impact`; its values: high, low",
            "priority_matrix.cells: no priority for impact `low` and urgency `high`",
            "priority_matrix.cells: no priority for impact `low` and urgency `low`",
        ] {
            assert_reported(&listed, expected);
        }
        assert_eq!(listed.len(), 5, "{listed:#?}");
        assert_reported(
            &matrix(""),
            "priority_matrix.impact_field: missing required key `impact_field`",
        );
    }

    #[test]
    fn a_register_rule_applies_to_a_text_field_and_names_a_register_by_key() {
        let listed = listed(&with_intake(
            r#"  { name = "asset", type = "text", register = "assets" },
  { name = "assets", type = "list", item = "text", register = "assets" },
  { name = "count", type = "integer", register = "assets" },
  { name = "policy", type = "text", register = "Policies" },
"#,
            r#"
[[steps]]
id = "first"
kind = "end"
"#,
        ));
        for expected in [
            "intake[1] (assets).register: `register` does not apply to a list of text field",
            "intake[2] (count).register: `register` does not apply to an integer field",
            "intake[3] (policy).register: `Policies` is not a valid key",
        ] {
            assert_reported(&listed, expected);
        }
        assert_eq!(listed.len(), 3, "{listed:#?}");
    }

    #[test]
    fn the_example_in_the_format_reference_loads_without_problems() {
        let reference = include_str!("../../../../docs/service-definitions.md");
        let section = &reference[reference.find("## A complete small example").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &section[start..];
        let example = &example[..example.find("```").unwrap()];
        let definition =
            load_definition(example).unwrap_or_else(|problems| panic!("{problems:#?}"));
        assert_eq!(definition.steps.len(), 6);
    }

    #[test]
    fn reports_every_problem_of_a_broken_definition_with_its_line() {
        let source = r#"[service]
key = "Customer Support"
version = 0
name = "Support"
kind = "bpo"
skills = ["customer_support"]
start = "answer"
language_field = "lang"

[sla]
first_response = "4 parsecs"

[[intake]]
name = "subject"
type = "text"
pattern = "([a-z"
min = 3

[[steps]]
id = "answer"
kind = "human"
skil = "customer_support"
handle_time = "6m"
outcomes = ["replied", "resolved"]
[steps.on]
replied = "route"
resolved = "finish"

[[steps]]
id = "route"
kind = "decision"
branches = [ { when = "amount > 10", to = "answer" } ]
otherwise = "answer"

[[steps]]
id = "orphan"
kind = "end"

[[steps]]
id = "finished"
kind = "end"
"#;
        let found: Vec<(usize, &str, String)> = problems(source)
            .iter()
            .map(|p| (p.line, p.path.as_str(), p.message.clone()))
            .map(|(line, path, message)| (line, path.to_owned(), message))
            .map(|(line, path, message)| (line, path.leak() as &str, message))
            .collect();
        let expected: &[(usize, &str, &str)] = &[
            (2, "service.key", "`Customer Support` is not a valid key"),
            (3, "service.version", "must be 1 or more"),
            (7, "service.start", "no `end` step can be reached"),
            (8, "service.language_field", "`lang` is not an intake field"),
            (11, "sla.first_response", "`4 parsecs` is not a duration"),
            (
                16,
                "intake[0] (subject).pattern",
                "not a valid regular expression",
            ),
            (
                17,
                "intake[0] (subject).min",
                "`min` does not apply to a text field",
            ),
            (
                19,
                "steps[0] (answer).skill",
                "missing required key `skill`",
            ),
            (22, "steps[0] (answer).skil", "did you mean `skill`?"),
            (
                27,
                "steps[0] (answer).on.resolved",
                "no step `finish`; did you mean `finished`?",
            ),
            (32, "steps[1] (route).branches[0].when", "reads `amount`"),
            (36, "steps[2] (orphan).id", "`orphan` cannot be reached"),
            (40, "steps[3] (finished).id", "`finished` cannot be reached"),
        ];
        for (line, path, message) in expected {
            assert!(
                found
                    .iter()
                    .any(|(l, p, m)| l == line && p == path && m.contains(message)),
                "missing {line} {path}: {message} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        let lines: Vec<usize> = found.iter().map(|(line, _, _)| *line).collect();
        assert!(lines.is_sorted(), "problems come in file order");
    }

    #[test]
    fn canned_replies_fill_a_step_text_field_and_name_only_known_placeholders() {
        let base = CATALOG.replace("[[replies]]", "[[unused_replies]]");
        let base = &base[..base.find("[[unused_replies]]").unwrap()];
        let rest = &CATALOG[CATALOG.find("[[templates]]").unwrap()..];
        let with = |replies: &str| format!("{base}{replies}\n{rest}");

        let good = with(
            "[[replies]]\nkey = \"hi\"\ntitle = \"Hi\"\nbody = \"Dear {requester_email}, {agent_name} here. {not a placeholder}\"",
        );
        let definition = load_definition(&good).unwrap();
        let reply = definition.canned_reply("hi").unwrap();
        assert_eq!(reply.field.as_str(), "reply");
        let data = serde_json::json!({"requester_email": "ann@example.com"});
        assert_eq!(
            fill(
                &reply.body,
                data.as_object().unwrap(),
                &[(AGENT_NAME, "Jana")]
            ),
            "Dear ann@example.com, Jana here. {not a placeholder}"
        );

        let listed = listed(&with(
            "[[replies]]\nkey = \"a\"\ntitle = \"A\"\nbody = \"{nickname}\"\n\
             [[replies]]\nkey = \"a\"\ntitle = \"B\"\nfield = \"subject\"\nbody = \"x\"\n\
             [[replies]]\nkey = \"c\"\nbody = \"x\"",
        ));
        assert_reported(
            &listed,
            "`{nickname}` is neither an intake field nor `{agent_name}`",
        );
        assert_reported(&listed, "another reply is also called `a`");
        assert_reported(&listed, "`subject` is not a text field of a step's form");
        assert_reported(&listed, "replies[2].title");
    }

    #[test]
    fn templates_fill_from_intake_fields_and_named_values() {
        let definition = load_definition(CATALOG).unwrap();
        let acknowledgement = definition.template("acknowledgement").unwrap();
        let data = serde_json::json!({"subject": "Broken seal", "requester_email": "a@b.example"});
        let values = [(REFERENCE, "0A1B2C3D"), (REPLY_LINK, "https://x.example/r")];
        assert_eq!(
            fill(
                acknowledgement.subject.as_deref().unwrap(),
                data.as_object().unwrap(),
                &values
            ),
            "We have received your request 0A1B2C3D"
        );
        assert_eq!(
            fill(&acknowledgement.body, data.as_object().unwrap(), &values),
            "We have received “Broken seal” and will answer soon. Your reference is 0A1B2C3D.\n\
             To add anything, reply here: https://x.example/r"
        );
        // A named value wins over an intake field of the same name; a missing one is blank.
        let data = serde_json::json!({"reference": "typed by the requester"});
        assert_eq!(
            fill(
                "{reference}/{subject}/",
                data.as_object().unwrap(),
                &[(REFERENCE, "0A1B2C3D")]
            ),
            "0A1B2C3D//"
        );
    }

    #[test]
    fn templates_have_unique_keys_known_placeholders_and_every_notice_has_one() {
        let misspelt = CATALOG.replace(
            "template = \"auto_resolved\"",
            "template = \"auto_resolve\"",
        );
        let found = listed(&misspelt);
        assert_reported(
            &found,
            "steps[3] (notify_auto_resolved).template: there is no template `auto_resolve`; did you mean `auto_resolved`?",
        );
        // A definition published before templates existed still loads from the store.
        assert!(reload_definition(&misspelt).is_ok());

        let templates = CATALOG.find("[[templates]]").unwrap();
        let broken = format!(
            "{}[[templates]]\nkey = \"note\"\nsubject = \"{{ticket_no}}\"\nbody = \"{{reference}} {{nickname}} {{not one}}\"\nfooter = \"x\"\n\
             [[templates]]\nkey = \"note\"\nbody = \"x\"\n\n{}",
            &CATALOG[..templates],
            &CATALOG[templates..]
        );
        let found = listed(&broken);
        let named = "is neither a field of the service nor one of `{reference}`, `{reply_link}`, `{csat_link}`, `{merged_into}`";
        assert_reported(
            &found,
            &format!("templates[0].subject: `{{ticket_no}}` {named}"),
        );
        assert_reported(
            &found,
            &format!("templates[0].body: `{{nickname}}` {named}"),
        );
        assert!(!found.iter().any(|p| p.contains("{not one}")), "{found:#?}");
        assert_reported(&found, "templates[0].footer: unknown key `footer`");
        assert_reported(
            &found,
            "templates[1].key: another template is also called `note`",
        );
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            reload_definition(&broken).is_err(),
            "placeholders are checked on reload too"
        );
    }

    #[test]
    fn a_message_field_is_a_text_field_of_the_form_and_public_on_names_outcomes() {
        let definition = load_definition(CATALOG).unwrap();
        let answer = definition.step(&Key::parse("answer").unwrap()).unwrap();
        let policy = answer.work().unwrap().message.as_ref().unwrap();
        assert_eq!(policy.field.as_str(), "reply");
        assert!(policy.public_on.contains(&Key::parse("replied").unwrap()));
        assert!(!policy.public_on.contains(&Key::parse("noted").unwrap()));

        let listed = listed(
            &CATALOG
                .replace("message_field = \"reply\"", "message_field = \"subject\"")
                .replace(
                    "public_on = [\"replied\", \"resolved\"]",
                    "public_on = [\"replied\", \"shouted\"]",
                ),
        );
        assert_reported(&listed, "`subject` is not a text field of this step's form");
        assert_reported(&listed, "`shouted` is not an outcome of this step");
        let without_field =
            super::tests::listed(&CATALOG.replace("message_field = \"reply\"\n", ""));
        assert_reported(&without_field, "`public_on` needs a `message_field`");
    }

    const TECHNICAL_SUPPORT: &str = include_str!("../../../../catalog/technical-support.toml");

    #[test]
    fn technical_support_escalates_between_tiers_and_resolves_with_an_article() {
        let definition =
            load_definition(TECHNICAL_SUPPORT).unwrap_or_else(|problems| panic!("{problems:#?}"));
        let work = |id: &str| {
            definition
                .step(&Key::parse(id).unwrap())
                .unwrap()
                .work()
                .unwrap()
        };
        let escalation = |id: &str| {
            work(id)
                .escalation
                .as_ref()
                .map(|e| (e.after, e.to.to_string()))
        };
        assert_eq!(
            escalation("l1"),
            Some((SignedDuration::from_hours(2), "l2".into()))
        );
        assert_eq!(
            escalation("l2"),
            Some((SignedDuration::from_hours(8), "l3".into()))
        );
        assert_eq!(escalation("l3"), None);
        let levels: Vec<u8> = ["l1", "l2", "l3"]
            .map(|id| work(id).min_level.get())
            .to_vec();
        assert_eq!(levels, [1, 3, 5]);
        let article = work("l1").form.field("article").unwrap();
        assert_eq!(article.kind, FieldType::Article);
        assert!(!article.required);
        assert!(
            article
                .required_on
                .contains(&Key::parse("resolved").unwrap())
        );
    }

    #[test]
    fn an_escalation_names_another_human_step_and_comes_with_its_time() {
        let listed =
            |from: &str, to: &str| super::tests::listed(&TECHNICAL_SUPPORT.replacen(from, to, 1));
        assert_reported(
            &listed("escalate_to = \"l2\"", "escalate_to = \"l22\""),
            "steps[3] (l1).escalate_to: there is no step `l22`; did you mean `l2`?",
        );
        assert_reported(
            &listed("escalate_to = \"l2\"", "escalate_to = \"await_l1\""),
            "`escalate_to` must name a human step, whose task someone takes over; `await_l1` is a wait step",
        );
        assert_reported(
            &listed("escalate_to = \"l2\"", "escalate_to = \"l1\""),
            "a step cannot escalate to itself",
        );
        assert_reported(
            &listed("escalate_to = \"l2\"\n", ""),
            "steps[3] (l1).escalate_after: `escalate_after` needs `escalate_to`",
        );
        assert_reported(
            &listed("escalate_after = \"2h\"\n", ""),
            "steps[3] (l1).escalate_to: `escalate_to` needs `escalate_after`",
        );
        assert_reported(
            &listed("escalate_after = \"2h\"", "escalate_after = \"soon\""),
            "steps[3] (l1).escalate_after: `soon` is not a duration",
        );
        assert_reported(
            &listed(
                "action = \"request_csat\"",
                "action = \"request_csat\"\nescalate_to = \"l2\"",
            ),
            "`escalate_to` does not apply to an automatic step",
        );
    }

    #[test]
    fn required_on_names_outcomes_of_the_step_and_articles_stay_out_of_intake() {
        let listed =
            |from: &str, to: &str| super::tests::listed(&TECHNICAL_SUPPORT.replacen(from, to, 1));
        assert_reported(
            &listed(
                "required_on = [\"resolved\"]",
                "required_on = [\"resolve\"]",
            ),
            "steps[3] (l1).form[1] (article).required_on[0]: `resolve` is not an outcome of this step; did you mean `resolved`?",
        );
        assert_reported(
            &listed(
                "type = \"article\", required_on",
                "type = \"article\", required = true, required_on",
            ),
            "the field is `required` with every outcome already",
        );
        let intake = listed(
            "name = \"product\"",
            "name = \"product\"\nrequired_on = [\"resolved\"]",
        );
        assert_reported(&intake, "an intake field is `required` or not");
        let in_intake = listed(
            "type = \"text\"\nmax_length = 200\n\n[[intake]]\nname = \"attachments\"",
            "type = \"article\"\n\n[[intake]]\nname = \"attachments\"",
        );
        assert_reported(
            &in_intake,
            "(product).type: an `article` field belongs in a step's form",
        );
    }

    #[test]
    fn columns_are_one_based_and_count_characters_not_bytes() {
        let source = with_header(
            "[[intake]]\nlabel = \"Čšťž\"; name = \"x\"\n[[steps]]\nid = \"first\"\nkind = \"end\"\n",
        );
        // Not TOML (`;`): the syntax error sits after four two-byte characters.
        let problem = first_syntax_problem(&source);
        assert_eq!(problem.line, HEADER.lines().count() + 2);
        assert_eq!(problem.column, "label = \"Čšťž\"".chars().count() + 1);

        let source = with_header(
            "[[intake]]\nname = \"x\"; label = \"Čšťž\"\n[[steps]]\nid = \"first\"\nkind = \"end\"\n",
        );
        let problem = first_syntax_problem(&source);
        assert_eq!(problem.column, 11);
    }

    #[test]
    fn syntax_errors_are_reported_and_the_rest_is_still_checked() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
id = "again"
kind = "end"
resolution = 

[[steps]]
id = "lost"
kind = "end"
"#,
        ));
        assert_reported(&listed, "12 : TOML syntax: duplicate key");
        assert_reported(&listed, "14 : TOML syntax: string values must be quoted");
        assert_reported(
            &listed,
            "17 steps[1] (lost).id: step `lost` cannot be reached",
        );
        assert_eq!(listed.len(), 3, "{listed:#?}");
    }

    #[test]
    fn a_file_without_service_or_steps_is_reported_at_file_level() {
        let found = problems("# nothing here\n");
        let paths: Vec<_> = found.iter().map(|p| (p.line, p.path.as_str())).collect();
        assert_eq!(paths, [(0, "service"), (0, "steps")]);
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean_hint_or_the_list_of_keys() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "end"
resolutoin = "done"
colour = "red"
reviews = "first"
"#,
        ));
        assert_reported(&listed, "`resolutoin`; did you mean `resolution`?");
        assert_reported(
            &listed,
            "`colour`; expected one of: id, kind, title, resolution",
        );
        assert_reported(&listed, "`reviews` does not apply to an end step");
    }

    #[test]
    fn durations_accept_days_and_combined_units_but_only_positive_ones() {
        let hours = |h| Ok(SignedDuration::from_hours(h));
        assert_eq!(parse_duration("4h"), hours(4));
        assert_eq!(parse_duration("2d"), hours(48));
        assert_eq!(parse_duration("1w"), hours(168));
        assert_eq!(parse_duration("1d 12h"), hours(36));
        assert_eq!(parse_duration("1h 30m"), Ok(SignedDuration::from_mins(90)));
        assert_eq!(parse_duration("30m"), Ok(SignedDuration::from_mins(30)));
        assert_eq!(parse_duration("PT4H"), hours(4));
        for bad in ["0s", "-4h", "4h ago", "1mo", "1y", "4", "four hours", ""] {
            assert!(parse_duration(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn rules_that_do_not_fit_the_field_type_are_refused() {
        let listed = listed(&with_intake(
            r#"  { name = "count", type = "integer", max_length = 3, min = 10, max = 5 },
  { name = "kind", type = "enum" },
  { name = "fee", type = "decimal", currencies = ["EUR"] },
  { name = "note", type = "text", min_items = 1, item = "text", min_length = 9, max_length = 2 },
  { name = "nested", type = "list", item = "list" },
  { name = "prices", type = "list", item = "money", currencies = ["EUR", "euro"], min = "0.5" },
  { name = "when", type = "daet" },
"#,
            r#"
[[steps]]
id = "first"
kind = "end"
"#,
        ));
        for expected in [
            "intake[0] (count).max_length: `max_length` does not apply to an integer field",
            "intake[0] (count).max: `max` is below `min`",
            "intake[1] (kind).values: missing required key `values`",
            "intake[2] (fee).currencies: `currencies` does not apply to a decimal field",
            "intake[3] (note).min_items: `min_items` does not apply to a text field",
            "intake[3] (note).item: `item` only applies to a field of type `list`",
            "intake[3] (note).max_length: `max_length` is below `min_length`",
            "intake[4] (nested).item: a list's items cannot be lists",
            "intake[5] (prices).currencies[1]: `euro` is not an ISO 4217 currency code",
            "intake[6] (when).type: `daet` is not a field type; did you mean `date`?",
        ] {
            assert_reported(&listed, expected);
        }
        assert_eq!(listed.len(), 10, "{listed:#?}");
    }

    #[test]
    fn patterns_are_anchored_to_the_whole_text() {
        let pattern = anchored_pattern("[a-z]+|[0-9]+").unwrap();
        assert!(pattern.is_match("abc") && pattern.is_match("123"));
        assert!(!pattern.is_match("abc123"));
        assert!(anchored_pattern("a)|(b").is_err());
    }

    #[test]
    fn a_field_name_has_one_type_throughout_the_service_and_priority_is_reserved() {
        let listed = listed(&with_intake(
            r#"  { name = "amount", type = "money" },
  { name = "priority", type = "text" },
  { name = "note", type = "text" },
"#,
            r#"

[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["done"]
on = { done = "end" }
form = [
  { name = "amount", type = "decimal" },
  { name = "note", type = "text" },
  { name = "note", type = "text" },
]

[[steps]]
id = "end"
kind = "end"
"#,
        ));
        assert_reported(&listed, "intake[1] (priority).name: `priority` is reserved");
        assert_reported(
            &listed,
            "steps[0] (first).form[0] (amount).name: field `amount` is already declared as money by intake[0] (amount)",
        );
        assert_reported(
            &listed,
            "steps[0] (first).form[2] (note).name: field `note` is already declared by steps[0] (first).form[1] (note)",
        );
        assert_eq!(listed.len(), 3, "{listed:#?}");
    }

    #[test]
    fn outcomes_and_transitions_must_match_one_to_one() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["answered", "escalated", "Bad"]
on = { answered = "wait", escalatd = "wait" }

[[steps]]
id = "wait"
kind = "wait"
timer = "1d"
events = ["reply", "timeout"]
on = { reply = "done" }

[[steps]]
id = "idle"
kind = "wait"
on = {}

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        for expected in [
            "15 steps[0] (first).outcomes[2]: `Bad` is not a valid key",
            "16 steps[0] (first).on.escalatd: `escalatd` is not an outcome of this step; did you mean `escalated`?",
            "15 steps[0] (first).outcomes[1]: outcome `escalated` has no step in `on`",
            "21 steps[1] (wait).timer: outcome `timeout` has no step in `on`",
            "22 steps[1] (wait).events[1]: `timeout` is the outcome of the timer",
            "25 steps[2] (idle): a wait step needs a `timer`, `until_field`, `until_open` or `events`",
            "26 steps[2] (idle).id: step `idle` cannot be reached",
        ] {
            assert_reported(&listed, expected);
        }
        assert_eq!(listed.len(), 7, "{listed:#?}");
    }

    #[test]
    fn a_wait_until_a_field_needs_a_date_time_field_and_decisions_may_read_entries() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["later"]
form = [ { name = "back_at", type = "date_time" }, { name = "note", type = "text" } ]
on = { later = "hold" }

[[steps]]
id = "hold"
kind = "wait"
until_field = "back_at"
on = { timeout = "again" }

[[steps]]
id = "again"
kind = "decision"
branches = [ { when = "entries.first >= 3", to = "done" } ]
otherwise = "hold_note"

[[steps]]
id = "hold_note"
kind = "wait"
until_field = "note"
on = { timeout = "hold_missing" }

[[steps]]
id = "hold_missing"
kind = "wait"
until_field = "bak_at"
on = { timeout = "first" }

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        assert_eq!(
            listed,
            [
                "34 steps[3] (hold_note).until_field: `note` is of type `text`; `until_field` needs a `date_time` field",
                "40 steps[4] (hold_missing).until_field: there is no field `bak_at`; did you mean `back_at`?",
            ],
            "{listed:#?}"
        );
    }

    #[test]
    fn until_open_needs_hours_weekdays_and_a_text_field_for_the_zone() {
        let listed = listed(&with_intake(
            r#"  { name = "zone", type = "text" },
  { name = "seats", type = "integer" },
"#,
            r#"
[[steps]]
id = "first"
kind = "wait"
until_open = { zone_field = "zone", open = "09:00-20:00", days = ["mon", "sat"] }
on = { timeout = "second" }

[[steps]]
id = "second"
kind = "wait"
until_open = { zone_field = "seats", open = "20:00-09:00", days = ["monday"], at = 1 }
on = { timeout = "done" }

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        assert_eq!(
            listed,
            [
                "23 steps[1] (second).until_open.zone_field: `seats` is of type `integer`; a time zone is held by a `text` or `enum` field",
                "23 steps[1] (second).until_open.open: `20:00-09:00` is not hours of the form `HH:MM-HH:MM` ending after they start",
                "23 steps[1] (second).until_open.days[0]: `monday` is not a weekday: `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`",
                "23 steps[1] (second).until_open.at: unknown key `at`; expected one of: zone_field, open, days",
            ],
            "{listed:#?}"
        );
        let definition = load_definition(include_str!("../../../../catalog/telemarketing.toml"))
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
        let Some(StepKind::Wait {
            until_open: Some(hours),
            ..
        }) = definition
            .step(&Key::parse("calling_window").unwrap())
            .map(|s| &s.kind)
        else {
            panic!("no calling hours")
        };
        assert_eq!(hours.zone_field.as_str(), "time_zone");
        // Every day, `days` being left out.
        assert_eq!(hours.hours.sun, ["09:00-20:00"]);
    }

    #[test]
    fn open_hours_come_with_after_hours_and_a_text_field_for_the_zone() {
        let listed = listed(&with_intake(
            r#"  { name = "zone", type = "text" },
  { name = "seats", type = "integer" },
"#,
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "4m"
outcomes = ["done"]
on = { done = "second" }
open_hours = { zone_field = "seats", open = "09:00-20:00" }
after_hours = "nowhere"

[[steps]]
id = "second"
kind = "human"
skill = "research"
handle_time = "4m"
outcomes = ["done"]
on = { done = "third" }
open_hours = { zone_field = "zone", open = "09:00-20:00" }

[[steps]]
id = "third"
kind = "human"
skill = "research"
handle_time = "4m"
outcomes = ["done"]
on = { done = "done" }
after_hours = "first"

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        assert_eq!(
            listed,
            [
                "21 steps[0] (first).open_hours.zone_field: `seats` is of type `integer`; a time zone is held by a `text` or `enum` field",
                "22 steps[0] (first).after_hours: there is no step `nowhere`",
                "31 steps[1] (second).open_hours: `open_hours` needs `after_hours`, the step an untaken task's item goes to when the hours close",
                "40 steps[2] (third).after_hours: `after_hours` needs `open_hours`, the hours the task may be taken within",
            ],
            "{listed:#?}"
        );
        let definition = load_definition(include_str!("../../../../catalog/telemarketing.toml"))
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
        let hours = definition
            .step(&Key::parse("call").unwrap())
            .and_then(Step::work)
            .and_then(|work| work.hours.as_ref())
            .expect("calling hours on the call");
        assert_eq!(hours.hours.zone_field.as_str(), "time_zone");
        assert_eq!(hours.after.as_str(), "calling_window");
    }

    #[test]
    fn rates_name_outcomes_of_human_steps() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "4m"
outcomes = ["reached", "missed"]
on = { reached = "done", missed = "done" }

[[steps]]
id = "done"
kind = "end"

[[rates]]
key = "contact_rate"
title = "Contact rate"
count = ["first.reached"]
of = ["first.*"]

[[rates]]
key = "contact_rate"
title = "Again"
count = ["first.answered", "done.*", "nowhere.x", "first"]
of = []

[[rates]]
key = "over"
title = "More than the whole"
count = ["first.reached"]
of = ["first.missed"]
"#,
        ));
        assert_eq!(
            listed,
            [
                "29 rates[1].key: another rate is also called `contact_rate`",
                "31 rates[1].count[0]: `first` has no outcome `answered`; its outcomes are reached, missed",
                "31 rates[1].count[1]: `done` is no human or review step, so it records no outcomes",
                "31 rates[1].count[2]: there is no step `nowhere`",
                "31 rates[1].count[3]: `first` is not `\"step.outcome\"` or `\"step.*\"`",
                "32 rates[1].of: name at least one outcome, as `\"step.outcome\"` or `\"step.*\"`",
                "34 rates[2].count: `first.reached` is counted but is not among the outcomes in `of`",
            ],
            "{listed:#?}"
        );
        let definition = load_definition(include_str!("../../../../catalog/telemarketing.toml"))
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
        let counts: std::collections::BTreeMap<String, u64> = [
            ("call.interested", 2),
            ("call.not_interested", 1),
            ("call.no_answer", 5),
            ("call.busy", 2),
            ("call.do_not_call", 1),
            ("call.callback", 3),
            ("check_dnc.x", 7),
        ]
        .into_iter()
        .map(|(key, n)| (key.to_owned(), n))
        .collect();
        let measured: Vec<(&str, u64, u64)> = definition
            .rates
            .iter()
            .map(|rate| {
                let measured = rate.measure(&counts);
                (rate.key.as_str(), measured.count, measured.of)
            })
            .collect();
        // A callback reached the contact but is no answer yet.
        assert_eq!(measured, [("contact_rate", 7, 14), ("conversion", 2, 4)]);
        let none = definition.rates[0].measure(&Default::default());
        assert_eq!((none.of, none.value), (0, None));
    }

    #[test]
    fn add_to_register_names_a_register_and_an_intake_field_with_text() {
        let listed = listed(&with_intake(
            r#"  { name = "phone", type = "phone" },
  { name = "seats", type = "integer" },
"#,
            r#"
[[steps]]
id = "first"
kind = "automatic"
action = "add_to_register"
register = "do_not_call"
key_field = "phone"
next = "second"

[[steps]]
id = "second"
kind = "automatic"
action = "add_to_register"
register = "do_not_call"
key_field = "seats"
next = "third"

[[steps]]
id = "third"
kind = "automatic"
action = "set_priority"
priority = "high"
register = "do_not_call"
next = "done"

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        assert_eq!(
            listed,
            [
                "27 steps[1] (second).key_field: `seats` is of type `integer`; a register key is a `text`, `phone`, `email` or `enum` field",
                "35 steps[2] (third).register: `register` only applies to the action `add_to_register`",
            ],
            "{listed:#?}"
        );
    }

    #[test]
    fn a_loop_of_only_automatic_and_decision_steps_is_reported_once_with_its_steps() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "automatic"
action = "set_priority"
priority = "high"
next = "route"

[[steps]]
id = "route"
kind = "decision"
branches = [ { when = "priority == 'urgent'", to = "first" } ]
otherwise = "spin"

[[steps]]
id = "spin"
kind = "decision"
branches = [ { when = "priority == 'low'", to = "done" } ]
otherwise = "spin"

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        assert_eq!(
            listed,
            [
                "11 steps[0] (first).id: steps `first`, `route` form a loop of automatic and decision steps only, so an item could loop forever; route the loop through a human, review or wait step",
                "24 steps[2] (spin).id: step `spin` leads back to itself without a human, review or wait step in between, so an item would loop forever",
            ]
        );
    }

    #[test]
    fn a_loop_through_a_human_or_wait_step_is_allowed() {
        let source = with_header(
            r#"
[[steps]]
id = "first"
kind = "automatic"
action = "request_csat"
next = "work"

[[steps]]
id = "work"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["again", "done"]
on = { again = "first", done = "done" }

[[steps]]
id = "done"
kind = "end"
"#,
        );
        assert_eq!(listed(&source), Vec::<String>::new());
    }

    #[test]
    fn a_service_without_an_end_step_is_reported_at_file_level() {
        let listed_without_end = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["again"]
on = { again = "first" }
"#,
        ));
        assert_eq!(
            listed_without_end,
            ["0 steps: the service has no `end` step"]
        );
    }

    #[test]
    fn reviews_name_a_human_step_with_listed_skills_and_a_sampling_rate() {
        let listed = listed(&with_header(
            r#"
[[steps]]
id = "first"
kind = "automatic"
action = "notify_requester"
priority = "high"
next = "check"

[[steps]]
id = "check"
kind = "review"
skill = "qa"
min_level = 6
handle_time = "10m"
reviews = "first"
sample_percent = 120
on_approve = "done"
reject_to = "frist"

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        for expected in [
            "10 steps[0] (first).template: missing required key `template`",
            "14 steps[0] (first).priority: `priority` only applies to the action `set_priority`",
            "20 steps[1] (check).skill: skill `qa` is not listed in `service.skills`",
            "21 steps[1] (check).min_level: `min_level` must be 1 to 5",
            "23 steps[1] (check).reviews: `reviews` must name a human step; `first` is an automatic step",
            "24 steps[1] (check).sample_percent: `sample_percent` must be 0 to 100",
            "26 steps[1] (check).reject_to: there is no step `frist`; did you mean `first`?",
        ] {
            assert_reported(&listed, expected);
        }
        assert_eq!(listed.len(), 7, "{listed:#?}");
    }

    #[test]
    fn decision_expressions_compile_and_read_only_fields_or_priority() {
        let listed = listed(&with_intake(
            r#"  { name = "tags", type = "list", item = "text" },
"#,
            r#"

[[steps]]
id = "first"
kind = "decision"
branches = [
  { when = "tags.exists(t, t == 'vip') && priority != 'low'", to = "done" },
  { when = "size(tag) > 2", to = "done" },
  { when = "tags >", to = "done" },
  { when = "((((((((((true))))))))))", to = "done" },
]
otherwise = "done"

[[steps]]
id = "done"
kind = "end"
"#,
        ));
        assert_eq!(listed.len(), 3, "{listed:#?}");
        assert_reported(
            &listed,
            "steps[0] (first).branches[1].when: the expression reads `tag`, which is neither a field of this service nor `priority` or `entries`; did you mean `tags`?",
        );
        assert_reported(
            &listed,
            "steps[0] (first).branches[2].when: the expression does not parse",
        );
        assert_reported(
            &listed,
            "branches[3].when: the expression nests brackets more than 8 deep",
        );
    }

    #[test]
    fn builds_the_model_with_its_defaults() {
        let definition = load_definition(&with_header(
            r#"
[[intake]]
name = "amount"
type = "money"
min = "0.01"
currencies = ["EUR"]

[[steps]]
id = "first"
kind = "decision"
branches = [
  { when = "amount.amount > 1000.0", to = "senior" },
  { when = "tags.all(t, t != 'vip')", to = "work" },
]
otherwise = "senior"

[[steps]]
id = "senior"
kind = "human"
title = "Senior analysis"
skill = "research"
min_level = 4
handle_time = "1h 30m"
outcomes = ["done"]
form = [ { name = "tags", type = "list", item = "text", max_items = 5 } ]
[steps.on]
done = "check"

[[steps]]
id = "work"
kind = "human"
skill = "research"
handle_time = "2d"
due = "3d"
outcomes = ["done"]
on = { done = "check" }

[[steps]]
id = "check"
kind = "review"
skill = "research"
handle_time = "15m"
reviews = "work"
on_approve = "finish"
reject_to = "work"

[[steps]]
id = "finish"
kind = "end"
"#,
        ))
        .unwrap_or_else(|problems| panic!("{problems:#?}"));
        let amount = definition.intake.field("amount").unwrap();
        assert_eq!(amount.label, "amount");
        assert!(!amount.required);
        assert_eq!(amount.rules.min, Some(Decimal::new(1, 2)));
        assert_eq!(amount.rules.currencies, ["EUR"]);
        let kinds: Vec<_> = definition
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.title.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("first", "first"),
                ("senior", "Senior analysis"),
                ("work", "work"),
                ("check", "check"),
                ("finish", "finish"),
            ]
        );
        let StepKind::Decision {
            branches,
            otherwise,
        } = &definition.steps[0].kind
        else {
            panic!("not a decision");
        };
        assert_eq!(branches.len(), 2);
        assert_eq!(branches[0].when.source(), "amount.amount > 1000.0");
        assert_eq!(otherwise.as_str(), "senior");
        let senior = definition.steps[1].work().unwrap();
        assert_eq!(senior.min_level.get(), 4);
        assert_eq!(senior.handle_time, SignedDuration::from_mins(90));
        assert_eq!(
            senior.form.fields[0].kind,
            FieldType::List(Box::new(FieldType::Text))
        );
        let work = definition.steps[2].work().unwrap();
        assert_eq!(work.min_level, SkillLevel::MIN);
        assert_eq!(work.due, Some(SignedDuration::from_hours(72)));
        let StepKind::Review {
            sample_percent,
            reviews,
            ..
        } = &definition.steps[3].kind
        else {
            panic!("not a review");
        };
        assert_eq!((*sample_percent, reviews.as_str()), (100, "work"));
        let StepKind::End { resolution } = &definition.steps[4].kind else {
            panic!("not an end");
        };
        assert_eq!(resolution.as_str(), "finish");
    }

    #[test]
    fn a_full_routing_table_builds_the_policy_and_certifications() {
        let source = with_intake(
            "  { name = \"language\", type = \"text\" },\n",
            r#"language_field = "language"

[[steps]]
id = "first"
kind = "human"
skill = "research"
min_level = 3
handle_time = "1h"
certifications = ["cfa", "licensed_adjuster"]
outcomes = ["done"]
on = { done = "check" }
[steps.routing]
channel = "voice"
aging = "15m"
urgency_lead = "1h"
worker_order = "best_skill"
preferred_window = "0s"
offer_timeout = "20s"
relax = [
  { after = "60s", min_level = 2 },
  { after = "5m", any_language = true },
  { after = "1h", min_level = 1, any_language = false },
]

[[steps]]
id = "check"
kind = "review"
skill = "research"
handle_time = "5m"
reviews = "first"
certifications = ["cfa"]
routing = { channel = "chat", worker_order = "least_loaded", preferred_window = "10m" }
on_approve = "done"
reject_to = "first"

[[steps]]
id = "done"
kind = "end"
"#,
        );
        let definition =
            load_definition(&source).unwrap_or_else(|problems| panic!("{problems:#?}"));
        let key = |k: &str| Key::parse(k).unwrap();
        let level = |l| Some(SkillLevel::new(l).unwrap());
        let work = definition.steps[0].work().unwrap();
        assert_eq!(
            work.certifications,
            BTreeSet::from([key("cfa"), key("licensed_adjuster")])
        );
        assert_eq!(
            work.routing,
            RoutingPolicy {
                channel: Channel::Voice,
                aging: SignedDuration::from_mins(15),
                urgency_lead: SignedDuration::from_hours(1),
                relax: vec![
                    Relaxation {
                        after: SignedDuration::from_secs(60),
                        min_level: level(2),
                        any_language: false,
                    },
                    Relaxation {
                        after: SignedDuration::from_mins(5),
                        min_level: None,
                        any_language: true,
                    },
                    Relaxation {
                        after: SignedDuration::from_hours(1),
                        min_level: level(1),
                        any_language: false,
                    },
                ],
                worker_order: WorkerOrder::BestSkill,
                preferred_window: SignedDuration::ZERO,
                offer_timeout: Some(SignedDuration::from_secs(20)),
            }
        );
        let review = definition.steps[1].work().unwrap();
        assert_eq!(review.certifications, BTreeSet::from([key("cfa")]));
        assert_eq!(
            review.routing,
            RoutingPolicy {
                channel: Channel::Chat,
                worker_order: WorkerOrder::LeastLoaded,
                preferred_window: SignedDuration::from_mins(10),
                ..RoutingPolicy::default()
            }
        );
    }

    #[test]
    fn routing_and_certifications_have_defaults_when_absent() {
        let definition = load_definition(&with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["done"]
on = { done = "check" }

[[steps]]
id = "check"
kind = "review"
skill = "research"
handle_time = "5m"
reviews = "first"
routing = {}
on_approve = "done"
reject_to = "first"

[[steps]]
id = "done"
kind = "end"
"#,
        ))
        .unwrap_or_else(|problems| panic!("{problems:#?}"));
        for step in &definition.steps[..2] {
            let work = step.work().unwrap();
            assert!(work.certifications.is_empty());
            assert_eq!(work.routing, RoutingPolicy::default());
        }
        let defaults = RoutingPolicy::default();
        assert_eq!(defaults.channel, Channel::BackOffice);
        assert_eq!(defaults.aging, SignedDuration::from_mins(10));
        assert_eq!(defaults.urgency_lead, SignedDuration::from_mins(30));
        assert_eq!(defaults.preferred_window, SignedDuration::from_mins(2));
        assert_eq!(defaults.worker_order, WorkerOrder::LongestIdle);
    }

    #[test]
    fn routing_values_are_checked_and_reported_at_their_line() {
        let source = with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
certifications = ["CFA", "cfa", "cfa"]
outcomes = ["done"]
on = { done = "check" }
[steps.routing]
channel = "emial"
aging = "0m"
urgency_lead = "soon"
preferred_window = "-1m"
worker_order = "fastest"
agin = "5m"
colour = "red"

[[steps]]
id = "check"
kind = "review"
skill = "research"
handle_time = "5m"
reviews = "first"
routing = { channel = "fax", worker_order = "best_skil" }
on_approve = "done"
reject_to = "first"

[[steps]]
id = "done"
kind = "end"
routing = { channel = "chat" }
"#,
        );
        let listed = listed(&source);
        let at = |needle: &str, rest: &str| format!("{} {rest}", line_of(&source, needle));
        for expected in [
            at(
                "\"CFA\"",
                "steps[0] (first).certifications[0]: `CFA` is not a valid key",
            ),
            at(
                "\"cfa\", \"cfa\"]",
                "steps[0] (first).certifications[2]: `cfa` is listed twice",
            ),
            at(
                "\"emial\"",
                "steps[0] (first).routing.channel: `emial` is not a channel; did you mean `email`?",
            ),
            at(
                "\"0m\"",
                "steps[0] (first).routing.aging: `0m` must be a positive duration",
            ),
            at(
                "\"soon\"",
                "steps[0] (first).routing.urgency_lead: `soon` is not a duration",
            ),
            at(
                "\"-1m\"",
                "steps[0] (first).routing.preferred_window: `-1m` must be zero (`0s`, to turn it off) or a positive duration",
            ),
            at(
                "\"fastest\"",
                "steps[0] (first).routing.worker_order: `fastest` is not a worker order; use one of: longest_idle, best_skill, least_loaded",
            ),
            at(
                "agin =",
                "steps[0] (first).routing.agin: unknown key `agin`; did you mean `aging`?",
            ),
            at(
                "colour",
                "steps[0] (first).routing.colour: unknown key `colour`; expected one of: channel, aging, urgency_lead, relax, worker_order, preferred_window",
            ),
            at(
                "\"fax\"",
                "steps[1] (check).routing.channel: `fax` is not a channel; use one of: voice, chat, email, back_office",
            ),
            at(
                "\"best_skil\"",
                "steps[1] (check).routing.worker_order: `best_skil` is not a worker order; did you mean `best_skill`?",
            ),
            at(
                "routing = { channel = \"chat\" }",
                "steps[2] (done).routing: `routing` does not apply to an end step",
            ),
        ] {
            assert_reported(&listed, &expected);
        }
        assert_eq!(listed.len(), 12, "{listed:#?}");
    }

    #[test]
    fn relaxations_come_in_order_and_only_ever_ask_less() {
        let source = with_intake(
            "  { name = \"language\", type = \"text\" },\n",
            r#"language_field = "language"

[[steps]]
id = "first"
kind = "human"
skill = "research"
min_level = 3
handle_time = "1h"
outcomes = ["done"]
on = { done = "answer" }
routing.relax = [
  { after = "5m", min_level = 2 },
  { after = "60s", any_language = true },
  { after = "4m", any_language = true },
  { after = "10m", min_level = 3 },
  { after = "20m", min_level = 1 },
  { after = "30m", min_level = 2 },
  { after = "40m", any_language = false },
  { min_level = 1 },
  { after = "50m", min_lvl = 1, min_level = 9 },
  { after = "0s", any_language = "yes" },
]

[[steps]]
id = "answer"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["done"]
on = { done = "done" }
[steps.routing]
relax = [ { after = "5m", min_level = 1 } ]

[[steps]]
id = "done"
kind = "end"
"#,
        );
        let listed = listed(&source);
        let at = |needle: &str, rest: &str| format!("{} {rest}", line_of(&source, needle));
        let relax = "steps[0] (first).routing.relax";
        for expected in [
            at(
                "\"60s\"",
                &format!(
                    "{relax}[1].after: relaxations must come in increasing `after` order; this one is not after {relax}[0].after (`5m`)"
                ),
            ),
            at(
                "\"4m\"",
                &format!(
                    "{relax}[2].after: relaxations must come in increasing `after` order; this one is not after {relax}[0].after (`5m`)"
                ),
            ),
            at(
                "min_level = 3 }",
                &format!(
                    "{relax}[3].min_level: `min_level` 3 must be below the step's `min_level` (3)"
                ),
            ),
            at(
                "\"30m\", min_level = 2",
                &format!(
                    "{relax}[5].min_level: `min_level` 2 is above the 1 of {relax}[4]: levels must not rise"
                ),
            ),
            at(
                "{ after = \"40m\"",
                &format!("{relax}[6]: a relaxation must relax something"),
            ),
            at(
                "{ min_level = 1 }",
                &format!("{relax}[7].after: missing required key `after`"),
            ),
            at(
                "min_lvl",
                &format!("{relax}[8].min_lvl: unknown key `min_lvl`; did you mean `min_level`?"),
            ),
            at(
                "min_level = 9",
                &format!("{relax}[8].min_level: `min_level` must be 1 to 5"),
            ),
            at(
                "\"0s\"",
                &format!("{relax}[9].after: `0s` must be a positive duration"),
            ),
            at(
                "\"yes\"",
                &format!("{relax}[9].any_language: expected true or false, found a string"),
            ),
            at(
                "[ { after = \"5m\", min_level = 1 } ]",
                "steps[1] (answer).routing.relax[0].min_level: `min_level` 1 must be below the step's `min_level` (1)",
            ),
        ] {
            assert_reported(&listed, &expected);
        }
        assert_eq!(listed.len(), 11, "{listed:#?}");
    }

    #[test]
    fn any_language_needs_a_language_field() {
        let source = with_header(
            r#"
[[steps]]
id = "first"
kind = "human"
skill = "research"
handle_time = "1h"
outcomes = ["done"]
on = { done = "done" }
[steps.routing]
relax = [
  { after = "5m", any_language = false, min_level = 1 },
  { after = "30m", any_language = true },
]

[[steps]]
id = "done"
kind = "end"
"#,
        );
        let listed = listed(&source);
        let line = line_of(&source, "any_language = true");
        assert!(
            listed.iter().any(|l| l.starts_with(&format!(
                "{line} steps[0] (first).routing.relax[1].any_language: `any_language` has nothing to relax: the service has no `language_field`"
            ))),
            "{listed:#?}"
        );
        // The level relaxation is refused too: the step asks for level 1 already.
        assert_eq!(listed.len(), 2, "{listed:#?}");
    }

    #[test]
    fn zero_is_accepted_only_where_it_turns_something_off() {
        for zero in ["0s", "0m", "PT0S"] {
            assert_eq!(parse_duration_or_zero(zero), Ok(SignedDuration::ZERO));
            assert!(parse_duration(zero).is_err());
        }
        assert_eq!(
            parse_duration_or_zero("90s"),
            Ok(SignedDuration::from_secs(90))
        );
        for bad in ["-1m", "1mo", "now", ""] {
            assert!(parse_duration_or_zero(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn endless_loops_finds_each_strongly_connected_group_of_moving_steps() {
        // 0 → 1 → 2 → 0 all moving; 3 ↔ 4 through a halting 4; 5 → 5.
        let edges = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![3], vec![5]];
        let halts = [false, false, false, false, true, false];
        assert_eq!(endless_loops(&edges, &halts), [vec![0, 1, 2], vec![5]]);
    }

    proptest! {
        #[test]
        fn never_panics_on_a_mangled_catalog_file(line in 0usize..140, text in ".{0,40}") {
            let mangled: Vec<&str> = CATALOG
                .lines()
                .enumerate()
                .map(|(index, original)| if index == line { text.as_str() } else { original })
                .collect();
            let source = mangled.join("\n");
            let lines = source.lines().count();
            if let Err(problems) = load_definition(&source) {
                prop_assert!(!problems.is_empty());
                prop_assert!(problems.iter().all(|p| p.line <= lines + 1));
            }
        }

        #[test]
        fn never_panics_on_arbitrary_text(source in "\\PC{0,200}") {
            let _ = load_definition(&source);
        }
    }
}
