//! HTML forms generated from a service definition's forms (the intake form, a step's
//! form), and the way back: posted text turned into the JSON values the engine validates,
//! and the engine's field errors shown beside their fields.
//!
//! Browsers post every value as text. Text is kept as typed, so that a form shown again
//! after an error shows what the user wrote; numbers are sent as JSON numbers where they
//! parse and as text otherwise, so that the definition's validation names the mistake.

use delego_core::definition::{Field, FieldError, FieldType, Form};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::i18n::Tr;
use serde_json::{Map, Value as Json};

/// One field as a template renders it.
pub struct FieldView {
    pub name: String,
    pub label: String,
    pub help: Option<String>,
    pub required: bool,
    pub input: Input,
    /// What the field holds now (typed by the user, or the item's value).
    pub value: String,
    /// The currency of a money field.
    pub currency: String,
    /// An enum's allowed values, and the currencies a money field accepts.
    pub options: Vec<String>,
    pub max_length: Option<u32>,
    pub error: Option<String>,
}

impl FieldView {
    pub fn id(&self) -> String {
        format!("field-{}", self.name)
    }

    /// The ids of the field's help and error texts, for `aria-describedby`.
    pub fn described_by(&self) -> String {
        let id = self.id();
        match self.help {
            Some(_) => format!("{id}-help {id}-error"),
            None => format!("{id}-error"),
        }
    }
}

/// The HTML control for a field type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Text,
    TextArea,
    Email,
    Phone,
    Integer,
    Decimal,
    Money,
    Date,
    DateTime,
    Select,
    Checkbox,
    /// One value per line: lists of anything but attachments.
    Lines,
    /// File uploads; only in forms posted as `multipart/form-data`.
    Files,
}

impl Input {
    fn of(kind: &FieldType) -> Self {
        match kind {
            FieldType::Text => Input::Text,
            FieldType::LongText => Input::TextArea,
            FieldType::Email => Input::Email,
            FieldType::Phone => Input::Phone,
            FieldType::Integer => Input::Integer,
            FieldType::Decimal => Input::Decimal,
            FieldType::Money => Input::Money,
            FieldType::Date => Input::Date,
            FieldType::DateTime => Input::DateTime,
            FieldType::Enum => Input::Select,
            FieldType::Boolean => Input::Checkbox,
            FieldType::Attachment => Input::Files,
            // An article's id, picked from the knowledge base beside the form.
            FieldType::Article => Input::Text,
            FieldType::List(item) if **item == FieldType::Attachment => Input::Files,
            FieldType::List(_) => Input::Lines,
        }
    }

    /// Names for templates, which compare strings more readably than enum paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Input::Text => "text",
            Input::TextArea => "textarea",
            Input::Email => "email",
            Input::Phone => "phone",
            Input::Integer => "integer",
            Input::Decimal => "decimal",
            Input::Money => "money",
            Input::Date => "date",
            Input::DateTime => "datetime",
            Input::Select => "select",
            Input::Checkbox => "checkbox",
            Input::Lines => "lines",
            Input::Files => "files",
        }
    }
}

/// What a browser posted: every name with its values, in order.
#[derive(Default)]
pub struct Posted(pub Vec<(String, String)>);

impl Posted {
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The form's fields with the values posted, or else the `current` values, and `errors`
/// beside the fields they concern. `files` says whether the form can upload files;
/// without it, attachment fields are left out.
pub fn views(
    form: &Form,
    posted: Option<&Posted>,
    current: &Map<String, Json>,
    errors: &[FieldError],
    tr: &Tr,
    files: bool,
) -> Vec<FieldView> {
    form.fields
        .iter()
        .filter(|field| files || Input::of(&field.kind) != Input::Files)
        .map(|field| view(field, posted, current, errors, tr))
        .collect()
}

fn view(
    field: &Field,
    posted: Option<&Posted>,
    current: &Map<String, Json>,
    errors: &[FieldError],
    tr: &Tr,
) -> FieldView {
    let name = field.name.as_str();
    let input = Input::of(&field.kind);
    let (value, currency) = match posted {
        Some(posted) => (
            posted.first(name).unwrap_or_default().to_owned(),
            posted
                .first(&format!("{name}.currency"))
                .unwrap_or_default()
                .to_owned(),
        ),
        None => shown(input, current.get(name), tr.zone()),
    };
    let options = match input {
        Input::Money => field.rules.currencies.clone(),
        _ => field.rules.values.clone(),
    };
    let error = field_error(errors, |path| base_name(path) == name);
    FieldView {
        name: name.to_owned(),
        label: field.label.clone(),
        help: field.help.clone(),
        required: field.required,
        input,
        value,
        currency,
        options,
        max_length: field.rules.max_length,
        error,
    }
}

/// The problems of the fields `matches` picks, in one line.
pub fn field_error(errors: &[FieldError], matches: impl Fn(&str) -> bool) -> Option<String> {
    errors
        .iter()
        .filter(|error| matches(&error.field))
        .map(|error| error.message.clone())
        .reduce(|all, more| format!("{all}; {more}"))
}

/// `amount.currency` and `tags[2]` are errors of `amount` and `tags`.
fn base_name(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

/// A stored value as its control shows it.
fn shown(input: Input, value: Option<&Json>, time_zone: &TimeZone) -> (String, String) {
    let text = |value: &Json| match value {
        Json::String(text) => text.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    };
    match (input, value) {
        (_, None | Some(Json::Null)) => (String::new(), String::new()),
        (Input::Money, Some(money)) => (text(&money["amount"]), text(&money["currency"])),
        (Input::DateTime, Some(Json::String(instant))) => {
            let local = instant
                .parse::<jiff::Timestamp>()
                .map(|at| {
                    at.to_zoned_datetime(time_zone.clone())
                        .datetime()
                        .strftime("%Y-%m-%dT%H:%M")
                        .to_string()
                })
                .unwrap_or_else(|_| instant.clone());
            (local, String::new())
        }
        (Input::Lines, Some(Json::Array(values))) => (
            values.iter().map(text).collect::<Vec<_>>().join("\n"),
            String::new(),
        ),
        (Input::Checkbox, Some(value)) => (
            if value == &Json::Bool(true) {
                "true"
            } else {
                ""
            }
            .to_owned(),
            String::new(),
        ),
        (_, Some(value)) => (text(value), String::new()),
    }
}

/// The JSON values of the form's fields in `posted`. Blank fields are left out, so that
/// required ones are reported as missing; a date-time is read on the user's wall clock.
/// Attachment fields are filled in by the caller once the files are stored.
pub fn values(form: &Form, posted: &Posted, time_zone: &TimeZone) -> Map<String, Json> {
    let mut data = Map::new();
    for field in &form.fields {
        let name = field.name.as_str();
        let raw = posted.first(name).unwrap_or_default().trim();
        let value = match Input::of(&field.kind) {
            Input::Files => continue,
            Input::Checkbox => Json::Bool(raw == "true"),
            Input::Money => {
                let currency = posted
                    .first(&format!("{name}.currency"))
                    .unwrap_or_default()
                    .trim();
                if raw.is_empty() && currency.is_empty() {
                    continue;
                }
                serde_json::json!({ "amount": decimal_text(raw), "currency": currency })
            }
            _ if raw.is_empty() => continue,
            Input::Integer => raw
                .parse::<i64>()
                .map(Json::from)
                .unwrap_or_else(|_| Json::String(raw.to_owned())),
            Input::Decimal => Json::String(decimal_text(raw)),
            Input::DateTime => Json::String(instant_text(raw, time_zone)),
            Input::Lines => Json::Array(
                raw.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(|line| Json::String(line.to_owned()))
                    .collect(),
            ),
            _ => Json::String(raw.to_owned()),
        };
        data.insert(name.to_owned(), value);
    }
    data
}

/// People type decimals with a comma where their language does: `12,50` is `12.50`.
fn decimal_text(raw: &str) -> String {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains(',') && !compact.contains('.') {
        compact.replace(',', ".")
    } else {
        compact
    }
}

/// A `datetime-local` control's value (`2026-11-27T14:30`) on the user's wall clock as an
/// RFC 3339 instant; anything else is passed on for the validation to name.
fn instant_text(raw: &str, time_zone: &TimeZone) -> String {
    raw.parse::<DateTime>()
        .ok()
        .and_then(|local| local.to_zoned_datetime(time_zone.clone()).ok())
        .map(|zoned| zoned.timestamp().to_string())
        .unwrap_or_else(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use delego_core::definition::load_definition;

    const SERVICE: &str = r#"
[service]
key = "forms"
version = 1
name = "Forms"
kind = "bpo"
description = "A form of every kind."
skills = ["s"]
start = "work"

[[intake]]
name = "subject"
label = "Subject"
type = "text"
required = true

[[intake]]
name = "count"
label = "Count"
type = "integer"

[[intake]]
name = "claimed"
label = "Claimed"
type = "money"

[[intake]]
name = "seen_at"
label = "Seen at"
type = "date_time"

[[intake]]
name = "urgent"
label = "Urgent"
type = "boolean"

[[intake]]
name = "tags"
label = "Tags"
type = "list"
item = "text"

[[intake]]
name = "files"
label = "Files"
type = "list"
item = "attachment"

[[steps]]
id = "work"
kind = "human"
title = "Work"
skill = "s"
handle_time = "5m"
outcomes = ["done"]
[steps.on]
done = "end"

[[steps]]
id = "end"
kind = "end"
title = "End"
"#;

    fn posted(pairs: &[(&str, &str)]) -> Posted {
        Posted(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn posted_text_becomes_the_values_the_definition_validates() {
        let service = load_definition(SERVICE).unwrap();
        let zone = TimeZone::get("Europe/Bratislava").unwrap();
        let data = values(
            &service.intake,
            &posted(&[
                ("subject", "  Broken screen "),
                ("count", "3"),
                ("claimed", "1 250,50"),
                ("claimed.currency", "EUR"),
                ("seen_at", "2026-07-01T14:30"),
                ("urgent", "true"),
                ("tags", "glass\n\n screen \n"),
            ]),
            &zone,
        );
        assert_eq!(
            Json::Object(data),
            serde_json::json!({
                "subject": "Broken screen",
                "count": 3,
                "claimed": {"amount": "1250.50", "currency": "EUR"},
                "seen_at": "2026-07-01T12:30:00Z",
                "urgent": true,
                "tags": ["glass", "screen"],
            })
        );
    }

    #[test]
    fn blanks_are_left_out_and_unparseable_numbers_reach_the_validation() {
        let service = load_definition(SERVICE).unwrap();
        let data = values(
            &service.intake,
            &posted(&[("subject", "  "), ("count", "three")]),
            &TimeZone::UTC,
        );
        assert_eq!(
            Json::Object(data.clone()),
            serde_json::json!({"count": "three", "urgent": false})
        );
        let errors = delego_core::definition::validate_form(
            &service.intake,
            &data,
            delego_core::definition::Completeness::Whole,
        )
        .unwrap_err();
        let tr = crate::i18n::I18n::load()
            .unwrap()
            .for_user(Some("sk"), None, None);
        let fields = views(&service.intake, None, &data, &errors, &tr, true);
        let error_of = |name: &str| {
            fields
                .iter()
                .find(|field| field.name == name)
                .and_then(|field| field.error.clone())
        };
        assert!(error_of("subject").is_some());
        assert!(error_of("count").is_some());
        assert_eq!(error_of("tags"), None);
    }

    #[test]
    fn stored_values_show_in_their_controls_and_attachments_only_where_files_can_go() {
        let service = load_definition(SERVICE).unwrap();
        let current = serde_json::json!({
            "claimed": {"amount": "10.00", "currency": "USD"},
            "seen_at": "2026-07-01T12:30:00Z",
            "tags": ["a", "b"],
        });
        let current = current.as_object().unwrap();
        let tr =
            crate::i18n::I18n::load()
                .unwrap()
                .for_user(Some("en"), None, Some("America/New_York"));
        let fields = views(&service.intake, None, current, &[], &tr, false);
        assert!(fields.iter().all(|field| field.input != Input::Files));
        let field = |name: &str| fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(
            (
                field("claimed").value.as_str(),
                field("claimed").currency.as_str()
            ),
            ("10.00", "USD")
        );
        assert_eq!(field("seen_at").value, "2026-07-01T08:30");
        assert_eq!(field("tags").value, "a\nb");
        let with_files = views(&service.intake, None, current, &[], &tr, true);
        assert_eq!(with_files.last().unwrap().input, Input::Files);
    }
}
