//! Validation of item data against a form: every problem is reported, with the field it
//! concerns, and accepted values come back normalised (trimmed text, E.164 phones, exact
//! decimals as strings).
//!
//! `null` or a blank string stands for "unset": accepted (and kept as `null`, so that an
//! update can clear a field) for an optional field, refused as `required` for a required
//! one, in both [`Completeness`] modes.

use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::model::{FieldType, Form, Rules};
use crate::values::{Currency, EmailAddress, PhoneNumber};

/// One problem with one submitted value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name, with a path into lists and money (`tags[2]`, `amount.currency`).
    pub field: String,
    /// A stable machine code: `required`, `unknown_field`, `wrong_type`, `too_small`, …
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Whether every required field must be present (a new item, a submitted step) or only
/// the fields given are checked (an update of some fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    Whole,
    Partial,
}

/// Checks `input` against `form` and returns the normalised values of the fields given.
pub fn validate_form(
    form: &Form,
    input: &Map<String, Json>,
    completeness: Completeness,
) -> Result<Map<String, Json>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut output = Map::new();
    for name in input.keys() {
        if form.field(name).is_none() {
            errors.push(FieldError::new(
                name,
                "unknown_field",
                format!("`{name}` is not a field of this form"),
            ));
        }
    }
    for field in &form.fields {
        let name = field.name.as_str();
        match input.get(name) {
            None => {
                if field.required && completeness == Completeness::Whole {
                    errors.push(required(name));
                }
            }
            Some(value) if is_unset(value) => {
                if field.required {
                    errors.push(required(name));
                } else {
                    output.insert(name.to_owned(), Json::Null);
                }
            }
            Some(value) => {
                if let Some(value) = check(&field.kind, &field.rules, value, name, &mut errors) {
                    output.insert(name.to_owned(), value);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(output)
    } else {
        Err(errors)
    }
}

/// Checks a step's form as submitted with `outcome`: the whole form as [`validate_form`]
/// does, and every field whose `required_on` names the outcome is set. Every problem of
/// both kinds is reported.
pub fn validate_submission(
    form: &Form,
    outcome: &str,
    input: &Map<String, Json>,
) -> Result<Map<String, Json>, Vec<FieldError>> {
    let missing: Vec<FieldError> = form
        .fields
        .iter()
        .filter(|field| !field.required && field.required_on.iter().any(|o| o.as_str() == outcome))
        .filter(|field| input.get(field.name.as_str()).is_none_or(is_unset))
        .map(|field| {
            FieldError::new(
                field.name.as_str(),
                "required",
                format!("is required when the outcome is `{outcome}`"),
            )
        })
        .collect();
    match validate_form(form, input, Completeness::Whole) {
        Ok(values) if missing.is_empty() => Ok(values),
        Ok(_) => Err(missing),
        Err(mut errors) => {
            errors.extend(missing);
            Err(errors)
        }
    }
}

/// Parses an exact decimal from its text: plain (`12.50`) or scientific (`1.5e3`, the form
/// JSON numbers may take). Refuses what a `Decimal` cannot hold exactly.
pub(super) fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

fn is_unset(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(text) => text.trim().is_empty(),
        _ => false,
    }
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, "required", "is required")
}

fn describe(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn wrong_type(path: &str, expected: &str, value: &Json) -> FieldError {
    FieldError::new(
        path,
        "wrong_type",
        format!("expected {expected}, found {}", describe(value)),
    )
}

/// Validates one value of type `kind` and returns its normalised form; `None` once an
/// error has been pushed.
fn check(
    kind: &FieldType,
    rules: &Rules,
    value: &Json,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Json> {
    let before = errors.len();
    let normalised = match kind {
        FieldType::List(item) => check_list(item, rules, value, path, errors),
        FieldType::Text | FieldType::LongText => {
            let text = string(value, path, "text", errors)?;
            check_text(rules, text, path, errors);
            Some(Json::String(text.to_owned()))
        }
        FieldType::Integer => check_integer(rules, value, path, errors),
        FieldType::Decimal => {
            let amount = decimal(value, path, errors)?;
            check_bounds(rules, amount, path, errors);
            Some(Json::String(amount.to_string()))
        }
        FieldType::Money => check_money(rules, value, path, errors),
        FieldType::Date => {
            let text = string(value, path, "a date (YYYY-MM-DD)", errors)?;
            // jiff also reads a date out of a longer date-time; a date field wants a date.
            match Date::from_str(text) {
                Ok(date) if text.len() == 10 => Some(Json::String(date.to_string())),
                Ok(_) => invalid(
                    path,
                    format!("`{text}` is not a date in the form YYYY-MM-DD"),
                    errors,
                ),
                Err(error) => invalid(
                    path,
                    format!("`{text}` is not a valid date: {error}"),
                    errors,
                ),
            }
        }
        FieldType::DateTime => {
            let text = string(value, path, "a date-time (RFC 3339)", errors)?;
            match Timestamp::from_str(text) {
                Ok(instant) => Some(Json::String(instant.to_string())),
                Err(error) => invalid(
                    path,
                    format!("`{text}` is not an RFC 3339 date-time with an offset: {error}"),
                    errors,
                ),
            }
        }
        FieldType::Enum => {
            let text = string(value, path, "one of the listed values", errors)?;
            if rules.values.iter().any(|allowed| allowed == text) {
                Some(Json::String(text.to_owned()))
            } else {
                errors.push(FieldError::new(
                    path,
                    "not_allowed",
                    format!("`{text}` is not one of: {}", rules.values.join(", ")),
                ));
                None
            }
        }
        FieldType::Boolean => match value {
            Json::Bool(_) => Some(value.clone()),
            _ => {
                errors.push(wrong_type(path, "true or false", value));
                None
            }
        },
        FieldType::Email => {
            let text = string(value, path, "an e-mail address", errors)?;
            match EmailAddress::parse(text) {
                Ok(email) => Some(Json::String(email.into())),
                Err(error) => invalid(path, error.0, errors),
            }
        }
        FieldType::Phone => {
            let text = string(value, path, "a phone number", errors)?;
            match PhoneNumber::parse(text) {
                Ok(phone) => Some(Json::String(phone.into())),
                Err(error) => invalid(path, error.0, errors),
            }
        }
        FieldType::Attachment => uuid_value(value, path, "an attachment id", errors),
        FieldType::Article => uuid_value(value, path, "an article id", errors),
    };
    // A rule violation keeps the value parseable but still refuses it.
    normalised.filter(|_| errors.len() == before)
}

/// The id of something stored beside the item, lower-case and hyphenated; whether it
/// exists is for the store to say.
fn uuid_value(value: &Json, path: &str, what: &str, errors: &mut Vec<FieldError>) -> Option<Json> {
    let text = string(value, path, what, errors)?;
    match uuid::Uuid::parse_str(text) {
        Ok(id) => Some(Json::String(id.to_string())),
        Err(_) => invalid(path, format!("`{text}` is not {what} (a UUID)"), errors),
    }
}

fn invalid(path: &str, message: String, errors: &mut Vec<FieldError>) -> Option<Json> {
    errors.push(FieldError::new(path, "invalid", message));
    None
}

/// The trimmed text of a JSON string.
fn string<'v>(
    value: &'v Json,
    path: &str,
    expected: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'v str> {
    match value {
        Json::String(text) => Some(text.trim()),
        _ => {
            errors.push(wrong_type(path, expected, value));
            None
        }
    }
}

fn check_text(rules: &Rules, text: &str, path: &str, errors: &mut Vec<FieldError>) {
    let length = text.chars().count();
    if let Some(min) = rules.min_length
        && length < min as usize
    {
        errors.push(FieldError::new(
            path,
            "too_short",
            format!("must be at least {min} characters long (is {length})"),
        ));
    }
    if let Some(max) = rules.max_length
        && length > max as usize
    {
        errors.push(FieldError::new(
            path,
            "too_long",
            format!("must be at most {max} characters long (is {length})"),
        ));
    }
    // The loader anchors patterns, so a match is a match of the whole text.
    if let Some(pattern) = &rules.pattern
        && !pattern.is_match(text)
    {
        errors.push(FieldError::new(
            path,
            "pattern",
            "does not have the required format",
        ));
    }
}

fn check_integer(
    rules: &Rules,
    value: &Json,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Json> {
    let Json::Number(number) = value else {
        errors.push(wrong_type(path, "a whole number", value));
        return None;
    };
    match number.as_i64() {
        Some(integer) => {
            check_bounds(rules, Decimal::from(integer), path, errors);
            Some(Json::from(integer))
        }
        None if number.is_u64() => {
            errors.push(FieldError::new(path, "too_large", "is too large a number"));
            None
        }
        None => {
            errors.push(wrong_type(path, "a whole number", value));
            None
        }
    }
}

/// An exact decimal from a JSON string or number; a number is read from its text, never
/// through floating-point arithmetic.
fn decimal(value: &Json, path: &str, errors: &mut Vec<FieldError>) -> Option<Decimal> {
    let text = match value {
        Json::String(text) => text.trim().to_owned(),
        Json::Number(number) => number.to_string(),
        _ => {
            errors.push(wrong_type(path, "a decimal number", value));
            return None;
        }
    };
    let parsed = parse_decimal(&text);
    if parsed.is_none() {
        errors.push(FieldError::new(
            path,
            "invalid",
            format!("`{text}` is not a decimal number that can be held exactly"),
        ));
    }
    parsed
}

fn check_bounds(rules: &Rules, amount: Decimal, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(min) = rules.min
        && amount < min
    {
        errors.push(FieldError::new(
            path,
            "too_small",
            format!("must be at least {min}"),
        ));
    }
    if let Some(max) = rules.max
        && amount > max
    {
        errors.push(FieldError::new(
            path,
            "too_large",
            format!("must be at most {max}"),
        ));
    }
}

fn check_money(
    rules: &Rules,
    value: &Json,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Json> {
    let Json::Object(money) = value else {
        errors.push(wrong_type(
            path,
            "an object with `amount` and `currency`",
            value,
        ));
        return None;
    };
    for key in money.keys() {
        if key != "amount" && key != "currency" {
            errors.push(FieldError::new(
                &format!("{path}.{key}"),
                "unknown_field",
                "money has only `amount` and `currency`",
            ));
        }
    }
    let amount_path = format!("{path}.amount");
    let amount = match money.get("amount") {
        None | Some(Json::Null) => {
            errors.push(required(&amount_path));
            None
        }
        Some(amount) => decimal(amount, &amount_path, errors),
    };
    if let Some(amount) = amount {
        check_bounds(rules, amount, &amount_path, errors);
    }
    let currency_path = format!("{path}.currency");
    let currency = match money.get("currency") {
        None | Some(Json::Null) => {
            errors.push(required(&currency_path));
            None
        }
        Some(currency) => {
            let code = string(currency, &currency_path, "a currency code", errors)?;
            match Currency::parse(&code.to_ascii_uppercase()) {
                Ok(currency) => Some(currency),
                Err(error) => {
                    errors.push(FieldError::new(&currency_path, "invalid", error.0));
                    None
                }
            }
        }
    };
    if let Some(currency) = &currency
        && !rules.currencies.is_empty()
        && !rules.currencies.iter().any(|c| c == currency.as_str())
    {
        errors.push(FieldError::new(
            &currency_path,
            "not_allowed",
            format!(
                "`{currency}` is not accepted; use one of: {}",
                rules.currencies.join(", ")
            ),
        ));
    }
    let (amount, currency) = (amount?, currency?);
    let mut normalised = Map::new();
    normalised.insert("amount".into(), Json::String(amount.to_string()));
    normalised.insert("currency".into(), Json::String(currency.into()));
    Some(Json::Object(normalised))
}

fn check_list(
    item: &FieldType,
    rules: &Rules,
    value: &Json,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Json> {
    let Json::Array(elements) = value else {
        errors.push(wrong_type(path, "a list", value));
        return None;
    };
    let count = elements.len();
    if let Some(min) = rules.min_items
        && count < min as usize
    {
        errors.push(FieldError::new(
            path,
            "too_few_items",
            format!("must have at least {min} items (has {count})"),
        ));
    }
    if let Some(max) = rules.max_items
        && count > max as usize
    {
        errors.push(FieldError::new(
            path,
            "too_many_items",
            format!("must have at most {max} items (has {count})"),
        ));
    }
    // Every element is checked, so that all bad elements are reported at once.
    let normalised: Vec<Option<Json>> = elements
        .iter()
        .enumerate()
        .map(|(index, element)| check(item, rules, element, &format!("{path}[{index}]"), errors))
        .collect();
    normalised
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(Json::Array)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::definition::load::anchored_pattern;
    use crate::definition::model::Field;
    use crate::values::Key;

    fn field(name: &str, kind: FieldType, required: bool, rules: Rules) -> Field {
        Field {
            name: Key::parse(name).unwrap(),
            label: name.into(),
            help: None,
            kind,
            required,
            required_on: Default::default(),
            rules,
        }
    }

    fn form(fields: Vec<Field>) -> Form {
        Form { fields }
    }

    fn input(value: Json) -> Map<String, Json> {
        value.as_object().unwrap().clone()
    }

    fn codes(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect()
    }

    fn one(kind: FieldType, rules: Rules, value: Json) -> Result<Json, Vec<FieldError>> {
        let form = form(vec![field("x", kind, true, rules)]);
        validate_form(&form, &input(json!({ "x": value })), Completeness::Whole)
            .map(|mut out| out.remove("x").unwrap())
    }

    fn support_form() -> Form {
        form(vec![
            field(
                "subject",
                FieldType::Text,
                true,
                Rules {
                    min_length: Some(3),
                    max_length: Some(10),
                    ..Rules::default()
                },
            ),
            field("requester_email", FieldType::Email, true, Rules::default()),
            field(
                "channel",
                FieldType::Enum,
                false,
                Rules {
                    values: vec!["email".into(), "web".into()],
                    ..Rules::default()
                },
            ),
            field(
                "seats",
                FieldType::Integer,
                false,
                Rules {
                    min: Some(Decimal::ONE),
                    max: Some(Decimal::from(50)),
                    ..Rules::default()
                },
            ),
            field(
                "tags",
                FieldType::List(Box::new(FieldType::Text)),
                false,
                Rules {
                    max_items: Some(2),
                    max_length: Some(10),
                    ..Rules::default()
                },
            ),
            field("urgent", FieldType::Boolean, false, Rules::default()),
        ])
    }

    #[test]
    fn reports_every_problem_of_a_submission_at_once() {
        let errors = validate_form(
            &support_form(),
            &input(json!({
                "subject": "Hi",
                "channel": "fax",
                "seats": 51,
                "tags": ["ok", "a very long tag", 7],
                "urgent": "yes",
                "colour": "red",
            })),
            Completeness::Whole,
        )
        .unwrap_err();
        assert_eq!(
            codes(&errors),
            [
                ("colour", "unknown_field"),
                ("subject", "too_short"),
                ("requester_email", "required"),
                ("channel", "not_allowed"),
                ("seats", "too_large"),
                ("tags", "too_many_items"),
                ("tags[1]", "too_long"),
                ("tags[2]", "wrong_type"),
                ("urgent", "wrong_type"),
            ]
        );
    }

    #[test]
    fn normalises_accepted_values() {
        let out = validate_form(
            &support_form(),
            &input(json!({
                "subject": "  Refund  ",
                "requester_email": "Jana@Example.SK",
                "seats": 3,
                "tags": [" a ", "b"],
                "urgent": false,
            })),
            Completeness::Whole,
        )
        .unwrap();
        assert_eq!(
            Json::Object(out),
            json!({
                "subject": "Refund",
                "requester_email": "Jana@example.sk",
                "seats": 3,
                "tags": ["a", "b"],
                "urgent": false,
            })
        );
    }

    #[test]
    fn partial_updates_check_only_the_fields_given() {
        let out = validate_form(
            &support_form(),
            &input(json!({ "seats": 4 })),
            Completeness::Partial,
        )
        .unwrap();
        assert_eq!(Json::Object(out), json!({ "seats": 4 }));
    }

    #[test]
    fn null_or_blank_unsets_an_optional_field_but_not_a_required_one() {
        let out = validate_form(
            &support_form(),
            &input(json!({ "channel": null, "seats": "  " })),
            Completeness::Partial,
        )
        .unwrap();
        assert_eq!(Json::Object(out), json!({ "channel": null, "seats": null }));

        let errors = validate_form(
            &support_form(),
            &input(json!({ "subject": null, "requester_email": " " })),
            Completeness::Partial,
        )
        .unwrap_err();
        assert_eq!(
            codes(&errors),
            [("subject", "required"), ("requester_email", "required")]
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let rules = Rules {
            max_length: Some(4),
            ..Rules::default()
        };
        assert_eq!(
            one(FieldType::Text, rules.clone(), json!("žťčá")),
            Ok(json!("žťčá"))
        );
        let errors = one(FieldType::Text, rules, json!("žťčáš")).unwrap_err();
        assert_eq!(codes(&errors), [("x", "too_long")]);
    }

    #[test]
    fn patterns_must_match_the_whole_trimmed_text() {
        let rules = Rules {
            pattern: Some(anchored_pattern("[A-Z]{2}[0-9]+").unwrap()),
            ..Rules::default()
        };
        assert_eq!(
            one(FieldType::Text, rules.clone(), json!(" SK123 ")),
            Ok(json!("SK123"))
        );
        let errors = one(FieldType::Text, rules, json!("xSK123")).unwrap_err();
        assert_eq!(codes(&errors), [("x", "pattern")]);
    }

    #[test]
    fn integers_refuse_fractions_strings_and_out_of_range_numbers() {
        for (value, code) in [
            (json!(1.5), "wrong_type"),
            (json!("3"), "wrong_type"),
            (json!(u64::MAX), "too_large"),
        ] {
            let errors = one(FieldType::Integer, Rules::default(), value).unwrap_err();
            assert_eq!(codes(&errors), [("x", code)]);
        }
        assert_eq!(
            one(FieldType::Integer, Rules::default(), json!(-7)),
            Ok(json!(-7))
        );
    }

    #[test]
    fn decimals_are_exact_strings_from_strings_or_numbers() {
        let rules = Rules {
            min: Some(Decimal::ZERO),
            ..Rules::default()
        };
        assert_eq!(
            one(FieldType::Decimal, rules.clone(), json!("12.50")),
            Ok(json!("12.50"))
        );
        assert_eq!(
            one(FieldType::Decimal, rules.clone(), json!(0.1)),
            Ok(json!("0.1"))
        );
        assert_eq!(
            one(FieldType::Decimal, rules.clone(), json!(1.5e3)),
            Ok(json!("1500.0"))
        );
        let errors = one(FieldType::Decimal, rules.clone(), json!("-0.01")).unwrap_err();
        assert_eq!(codes(&errors), [("x", "too_small")]);
        let errors = one(FieldType::Decimal, rules, json!("12,5")).unwrap_err();
        assert_eq!(codes(&errors), [("x", "invalid")]);
    }

    #[test]
    fn money_has_an_exact_amount_and_an_accepted_currency() {
        let rules = Rules {
            max: Some(Decimal::from(1000)),
            currencies: vec!["EUR".into(), "CZK".into()],
            ..Rules::default()
        };
        assert_eq!(
            one(
                FieldType::Money,
                rules.clone(),
                json!({ "amount": 99.9, "currency": "eur" })
            ),
            Ok(json!({ "amount": "99.9", "currency": "EUR" }))
        );
        let errors = one(
            FieldType::Money,
            rules.clone(),
            json!({ "amount": "1000.01", "currency": "USD", "note": 1 }),
        )
        .unwrap_err();
        assert_eq!(
            codes(&errors),
            [
                ("x.note", "unknown_field"),
                ("x.amount", "too_large"),
                ("x.currency", "not_allowed"),
            ]
        );
        let errors = one(FieldType::Money, rules, json!({ "currency": "EURO" })).unwrap_err();
        assert_eq!(
            codes(&errors),
            [("x.amount", "required"), ("x.currency", "invalid")]
        );
    }

    #[test]
    fn dates_and_date_times_are_strict_and_date_times_become_utc() {
        assert_eq!(
            one(FieldType::Date, Rules::default(), json!("2024-02-29")),
            Ok(json!("2024-02-29"))
        );
        for bad in ["2023-02-29", "2024-02-29T10:00:00", "29.2.2024"] {
            let errors = one(FieldType::Date, Rules::default(), json!(bad)).unwrap_err();
            assert_eq!(codes(&errors), [("x", "invalid")], "{bad}");
        }
        assert_eq!(
            one(
                FieldType::DateTime,
                Rules::default(),
                json!("2024-03-31T02:30:00+02:00")
            ),
            Ok(json!("2024-03-31T00:30:00Z"))
        );
        let errors = one(
            FieldType::DateTime,
            Rules::default(),
            json!("2024-03-31T02:30:00"),
        )
        .unwrap_err();
        assert_eq!(codes(&errors), [("x", "invalid")]);
    }

    #[test]
    fn emails_phones_and_attachments_are_parsed_and_normalised() {
        assert_eq!(
            one(
                FieldType::Phone,
                Rules::default(),
                json!("+421 (2) 1234-5678")
            ),
            Ok(json!("+421212345678"))
        );
        assert_eq!(
            one(
                FieldType::Attachment,
                Rules::default(),
                json!("0190A3C4-7B2E-7C00-8000-000000000001")
            ),
            Ok(json!("0190a3c4-7b2e-7c00-8000-000000000001"))
        );
        for kind in [
            FieldType::Email,
            FieldType::Phone,
            FieldType::Attachment,
            FieldType::Article,
        ] {
            let errors = one(kind, Rules::default(), json!("nope")).unwrap_err();
            assert_eq!(codes(&errors), [("x", "invalid")]);
        }
    }

    #[test]
    fn a_field_required_on_an_outcome_is_required_with_that_outcome_only() {
        let mut article = field("article", FieldType::Article, false, Rules::default());
        article.required_on = [Key::parse("resolved").unwrap()].into();
        let form = form(vec![
            article,
            field("note", FieldType::Text, true, Rules::default()),
        ]);
        let errors = validate_submission(
            &form,
            "resolved",
            &input(json!({"note": "n", "article": " "})),
        )
        .unwrap_err();
        assert_eq!(codes(&errors), [("article", "required")]);
        assert!(errors[0].message.contains("`resolved`"), "{errors:?}");
        // Other problems are reported beside it.
        let errors = validate_submission(&form, "resolved", &Map::new()).unwrap_err();
        assert_eq!(
            codes(&errors),
            [("note", "required"), ("article", "required")]
        );
        assert_eq!(
            validate_submission(&form, "escalate", &input(json!({"note": "n"}))),
            Ok(input(json!({"note": "n"})))
        );
        let id = "0190a3c4-7b2e-7c00-8000-000000000001";
        assert_eq!(
            validate_submission(
                &form,
                "resolved",
                &input(json!({"note": "n", "article": id}))
            ),
            Ok(input(json!({"note": "n", "article": id})))
        );
    }

    #[test]
    fn list_rules_count_items_and_element_rules_apply_to_each_element() {
        let rules = Rules {
            min_items: Some(1),
            values: vec!["a".into(), "b".into()],
            ..Rules::default()
        };
        let kind = FieldType::List(Box::new(FieldType::Enum));
        assert_eq!(
            one(kind.clone(), rules.clone(), json!(["a", "b", "a"])),
            Ok(json!(["a", "b", "a"]))
        );
        let errors = one(kind.clone(), rules.clone(), json!([])).unwrap_err();
        assert_eq!(codes(&errors), [("x", "too_few_items")]);
        let errors = one(kind.clone(), rules.clone(), json!(["a", "c", null])).unwrap_err();
        assert_eq!(
            codes(&errors),
            [("x[1]", "not_allowed"), ("x[2]", "wrong_type")]
        );
        let errors = one(kind, rules, json!("a")).unwrap_err();
        assert_eq!(codes(&errors), [("x", "wrong_type")]);
    }

    fn any_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_map(Json::from),
            ".{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    fn every_kind() -> Vec<FieldType> {
        vec![
            FieldType::Text,
            FieldType::LongText,
            FieldType::Integer,
            FieldType::Decimal,
            FieldType::Money,
            FieldType::Date,
            FieldType::DateTime,
            FieldType::Enum,
            FieldType::Boolean,
            FieldType::Email,
            FieldType::Phone,
            FieldType::List(Box::new(FieldType::Money)),
            FieldType::Attachment,
            FieldType::Article,
        ]
    }

    proptest! {
        #[test]
        fn decimals_round_trip_exactly(mantissa in any::<i64>(), scale in 0u32..=18) {
            let amount = Decimal::new(mantissa, scale);
            let text = amount.to_string();
            prop_assert_eq!(
                one(FieldType::Decimal, Rules::default(), json!(text.clone())),
                Ok(json!(text))
            );
        }

        #[test]
        fn a_validated_value_validates_again_to_itself(value in any_json(), kind in 0usize..13) {
            let kind = every_kind().swap_remove(kind);
            let rules = Rules { values: vec!["a".into()], ..Rules::default() };
            if let Ok(once) = one(kind.clone(), rules.clone(), value) {
                prop_assert_eq!(one(kind, rules, once.clone()), Ok(once));
            }
        }
    }
}
