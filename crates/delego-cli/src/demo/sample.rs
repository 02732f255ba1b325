//! Plausible demo values for any service: intake data from its form and a simulated
//! agent's answer to a step, chosen by type and field name and varied by a counter, so
//! that every catalog service gets a living floor without demo code of its own.

use delego_core::definition::{Field, FieldType, Form, Step, StepKind};
use delego_core::values::Key;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json, json};

/// Outcomes a simulated agent picks most of the time, best first; the others (an
/// escalation, a rejection, a note) come up now and then.
const USUAL_OUTCOMES: &[&str] = &[
    "resolved",
    "replied",
    "fulfilled",
    "done",
    "approve",
    "completed",
];

/// Values for the form's fields; attachments and fields only a pattern could satisfy
/// are left out (`subjects` are the service's typical subjects).
pub fn intake(form: &Form, n: u64, subjects: &[&str], now: Timestamp) -> Map<String, Json> {
    let subject = subjects
        .get(n as usize % subjects.len().max(1))
        .copied()
        .unwrap_or("Request");
    form.fields
        .iter()
        .filter_map(|field| Some((field.name.to_string(), value(field, n, subject, now)?)))
        .collect()
}

/// The outcome and form values a simulated agent submits at `step`, or `None` for a step
/// nobody works on.
pub fn answer(step: &Step, n: u64, now: Timestamp) -> Option<(Key, Map<String, Json>)> {
    let (work, outcomes): (_, Vec<&str>) = match &step.kind {
        StepKind::Human { work, on } => (work, on.iter().map(|t| t.outcome.as_str()).collect()),
        StepKind::Review { work, .. } => (work, vec!["approve", "reject"]),
        _ => return None,
    };
    let usual = USUAL_OUTCOMES
        .iter()
        .find(|usual| outcomes.contains(usual))
        .copied()
        .unwrap_or(outcomes[0]);
    // One answer in five takes another way, so that escalations and notes happen too.
    let outcome = if n.is_multiple_of(5) && outcomes.len() > 1 {
        outcomes[(n as usize / 5) % outcomes.len()]
    } else {
        usual
    };
    let data = intake(
        &work.form,
        n,
        &["Thank you for your patience: here is what we found."],
        now,
    );
    Some((Key::parse(outcome).ok()?, data))
}

/// A fixed-offset IANA zone (`Etc/GMT-2` is UTC+2) whose local time is between 12:00 and
/// 13:00 at `now`.
fn midday_zone(now: Timestamp) -> String {
    let hour = now.as_second().rem_euclid(86_400) / 3_600;
    match 12 - hour {
        0 => "Etc/GMT".to_owned(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

fn value(field: &Field, n: u64, subject: &str, now: Timestamp) -> Option<Json> {
    let name = field.name.as_str();
    let rules = &field.rules;
    let pick = |values: &[String]| values.get(n as usize % values.len().max(1)).cloned();
    // The whole part of a bound (bounds are exact decimals).
    let whole = |bound: Option<String>| bound?.split('.').next()?.parse::<i64>().ok();
    let count = |from: i64| {
        let low = whole(rules.min.map(|min| min.to_string())).unwrap_or(from);
        let high = whole(rules.max.map(|max| max.to_string())).unwrap_or(low + 4);
        low + (n as i64 % (high - low + 1).max(1))
    };
    let text = match &field.kind {
        FieldType::List(item) => {
            return match item.as_ref() {
                FieldType::Enum => Some(json!([pick(&rules.values)?])),
                _ => None,
            };
        }
        FieldType::Enum => pick(&rules.values)?,
        FieldType::Boolean => return Some(Json::Bool(n.is_multiple_of(3))),
        FieldType::Integer => return Some(json!(count(1))),
        FieldType::Decimal => format!("{}.50", count(10)),
        FieldType::Money => {
            let currency = rules.currencies.first().map_or("EUR", String::as_str);
            let amount = 150 + (n * 379) % 9_000;
            return Some(json!({"amount": format!("{amount}.00"), "currency": currency}));
        }
        FieldType::Date => {
            let day = now - SignedDuration::from_hours(24 * (n as i64 % 30 + 1));
            day.to_string()[..10].to_owned()
        }
        FieldType::DateTime => (now - SignedDuration::from_hours(n as i64 % 48 + 1)).to_string(),
        FieldType::Email => format!("customer{}@example.com", n % 50),
        FieldType::Phone => format!("+4219{:08}", 10_000_000 + n % 80_000_000),
        FieldType::LongText => format!("{subject}. Details for request {}.", 10_000 + n),
        FieldType::Text => match name {
            "subject" | "title" | "summary" => subject.to_owned(),
            "language" => ["en", "en", "sk", "de"][n as usize % 4].to_owned(),
            // A zone where it is about midday now, so that contacts are within calling hours.
            "time_zone" => midday_zone(now),
            _ if name.ends_with("name") => format!("Customer {}", n % 50),
            _ if name.contains("number") || name.contains("reference") => {
                format!("REF-{}", 10_000 + n)
            }
            // A value only a pattern would accept is better left out than refused.
            _ if rules.pattern.is_some() => return None,
            // So is one that must name an entry of a register the demo has not filled.
            _ if rules.register.is_some() => return None,
            _ => format!("{} {}", field.label, n % 100),
        },
        // Attachments, and kinds whose values name things the demo has not made.
        _ => return None,
    };
    let text = match rules.max_length {
        Some(most) => text.chars().take(most as usize).collect(),
        None => text,
    };
    Some(Json::String(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use delego_core::definition::{Completeness, load_definition, validate_form};

    #[test]
    fn intake_values_of_every_built_in_service_pass_its_form_validation() {
        let now: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        for (_, source) in crate::catalog::BUILT_IN {
            let definition = load_definition(source).unwrap();
            for n in 0..40 {
                let data = intake(&definition.intake, n, &["Printer on fire"], now);
                if let Err(errors) = validate_form(&definition.intake, &data, Completeness::Whole) {
                    panic!("{} item {n}: {errors:?}", definition.key);
                }
            }
        }
    }

    #[test]
    fn simulated_answers_name_an_outcome_of_the_step_and_vary() {
        let now: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        let support = crate::catalog::BUILT_IN
            .iter()
            .find(|(file, _)| *file == "customer-support.toml")
            .unwrap();
        let definition = load_definition(support.1).unwrap();
        let answer_step = definition.step(&Key::parse("answer").unwrap()).unwrap();
        let outcomes: std::collections::BTreeSet<String> = (0..20)
            .map(|n| answer(answer_step, n, now).unwrap().0.to_string())
            .collect();
        assert!(outcomes.contains("resolved"));
        assert!(outcomes.len() > 1, "{outcomes:?}");
        for outcome in &outcomes {
            assert!(answer_step.successors().iter().any(|(o, _)| o == outcome));
        }
        let end = definition.step(&Key::parse("resolved").unwrap()).unwrap();
        assert!(answer(end, 1, now).is_none());
    }
}
