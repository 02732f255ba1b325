//! Decision expressions: the Common Expression Language (CEL), a small, side-effect free,
//! always-terminating language. An expression sees each item field as a variable of the
//! same name (absent fields are `null`) plus `priority` (`"low"` … `"urgent"`).
//!
//! Decimals and money amounts are compared as floating-point numbers inside expressions;
//! the stored values stay exact.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use cel::{Context, Program, Value};
use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::model::{Field, FieldType};

/// A compiled decision expression with its source text.
#[derive(Clone)]
pub struct Expression {
    source: String,
    program: Arc<Program>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    /// Refused before parsing: too long or too deeply nested for the parser to handle.
    #[error("{0}")]
    TooComplex(String),
    #[error("does not parse: {0}")]
    Syntax(String),
    #[error("could not be evaluated: {0}")]
    Evaluation(String),
    #[error("gave {0}, not true or false")]
    NotBoolean(String),
}

impl Expression {
    /// Compiles an expression. Every caller gets the complexity bounds, so no input can
    /// overflow the parser's stack.
    pub fn compile(source: &str) -> Result<Self, ExpressionError> {
        if let Some(reason) = too_complex(source) {
            return Err(ExpressionError::TooComplex(reason));
        }
        let program =
            Program::compile(source).map_err(|e| ExpressionError::Syntax(e.to_string()))?;
        Ok(Self {
            source: source.to_owned(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the expression reads from outside, which the loader checks against
    /// the fields. Unlike CEL's own references, names bound by macros such as `t` in
    /// `tags.exists(t, t == 'vip')` are left out.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_free(self.program.expression(), &mut Vec::new(), &mut found);
        found
    }

    /// Evaluates against an item's data. `fields` are all fields the service declares, so
    /// that an unset optional field reads as `null` rather than an unknown variable.
    pub fn evaluate<'f>(
        &self,
        fields: impl IntoIterator<Item = &'f Field>,
        data: &Map<String, Json>,
        facts: &Map<String, Json>,
        priority: &str,
    ) -> Result<bool, ExpressionError> {
        let mut context = Context::default();
        for field in fields {
            let value = data.get(field.name.as_str()).unwrap_or(&Json::Null);
            context.add_variable_from_value(field.name.as_str(), to_cel(&field.kind, value));
        }
        for (name, value) in facts {
            context.add_variable_from_value(name.as_str(), json_to_cel(value));
        }
        // A fresh context declares no functions of ours yet, so this cannot clash.
        let _ = context.add_function("days_between", days_between);
        context.add_variable_from_value("priority", Value::from(priority.to_owned()));
        match self.program.execute(&context) {
            Ok(Value::Bool(answer)) => Ok(answer),
            Ok(other) => Err(ExpressionError::NotBoolean(format!("{other:?}"))),
            Err(error) => Err(ExpressionError::Evaluation(error.to_string())),
        }
    }
}

/// Converts a validated field value to CEL, turning exact decimals into numbers so that
/// expressions can compare them.
fn to_cel(kind: &FieldType, value: &Json) -> Value {
    let number = |s: Option<&Json>| {
        s.and_then(Json::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(Value::Null, Value::Float)
    };
    match (kind, value) {
        (FieldType::Decimal, Json::String(_)) => number(Some(value)),
        (FieldType::Money, Json::Object(money)) => {
            let currency = money.get("currency").map_or(Value::Null, json_to_cel);
            Value::from(HashMap::from([
                ("amount", number(money.get("amount"))),
                ("currency", currency),
            ]))
        }
        _ => json_to_cel(value),
    }
}

/// `days_between(from, to)`: whole days from one date (`YYYY-MM-DD`, or the date part of
/// an RFC 3339 instant) to another, negative when `to` is earlier. CEL's own time
/// functions are not built in, and rules such as "a loss soon after the policy began" need
/// this one.
fn days_between(from: Arc<String>, to: Arc<String>) -> Result<i64, cel::ExecutionError> {
    let date = |text: &str| {
        text.get(..10)
            .and_then(|day| day.parse::<jiff::civil::Date>().ok())
            .ok_or_else(|| {
                cel::ExecutionError::function_error(
                    "days_between",
                    format!("`{text}` is not a date"),
                )
            })
    };
    let (from, to) = (date(&from)?, date(&to)?);
    Ok(i64::from((to - from).get_days()))
}

fn json_to_cel(value: &Json) -> Value {
    cel::to_value(value).unwrap_or(Value::Null)
}

/// Decision expressions beyond these bounds are refused before CEL sees them: its parser
/// recurses deeply and overflows a thread's stack on about 15 nested brackets.
const EXPRESSION_MAX_CHARS: usize = 500;
const EXPRESSION_MAX_NESTING: usize = 8;
const EXPRESSION_MAX_CONDITIONALS: usize = 16;

/// CEL type names, which read as identifiers but are no variables.
const CEL_TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// Why an expression is refused before compiling, if it is: the CEL parser's recursion
/// is bounded here. Brackets and `?` inside string literals count too, to stay safe.
fn too_complex(source: &str) -> Option<String> {
    if source.chars().count() > EXPRESSION_MAX_CHARS {
        return Some(format!("is longer than {EXPRESSION_MAX_CHARS} characters"));
    }
    let (mut depth, mut deepest, mut conditionals) = (0usize, 0usize, 0usize);
    for c in source.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '?' => conditionals += 1,
            _ => {}
        }
    }
    if deepest > EXPRESSION_MAX_NESTING {
        return Some(format!(
            "nests brackets more than {EXPRESSION_MAX_NESTING} deep"
        ));
    }
    if conditionals > EXPRESSION_MAX_CONDITIONALS {
        return Some(format!(
            "has more than {EXPRESSION_MAX_CONDITIONALS} conditionals (`?`)"
        ));
    }
    None
}

fn collect_free<'e>(
    expr: &'e cel::IdedExpr,
    bound: &mut Vec<&'e str>,
    found: &mut BTreeSet<String>,
) {
    use cel::common::ast::{EntryExpr, Expr};
    let entries = |entries: &'e [cel::common::ast::IdedEntryExpr]| {
        entries.iter().flat_map(|entry| match &entry.expr {
            EntryExpr::StructField(field) => vec![&field.value],
            EntryExpr::MapEntry(map_entry) => vec![&map_entry.key, &map_entry.value],
        })
    };
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => {
            if !name.starts_with('@')
                && !bound.contains(&name.as_str())
                && !CEL_TYPE_NAMES.contains(&name.as_str())
            {
                found.insert(name.clone());
            }
        }
        Expr::Call(call) => {
            for inner in call.target.iter().map(AsRef::as_ref).chain(&call.args) {
                collect_free(inner, bound, found);
            }
        }
        Expr::Select(select) => collect_free(&select.operand, bound, found),
        Expr::List(list) => {
            for element in &list.elements {
                collect_free(element, bound, found);
            }
        }
        Expr::Map(map) => {
            for inner in entries(&map.entries) {
                collect_free(inner, bound, found);
            }
        }
        Expr::Struct(structure) => {
            for inner in entries(&structure.entries) {
                collect_free(inner, bound, found);
            }
        }
        Expr::Comprehension(comprehension) => {
            collect_free(&comprehension.iter_range, bound, found);
            collect_free(&comprehension.accu_init, bound, found);
            let outer = bound.len();
            bound.push(&comprehension.iter_var);
            bound.extend(comprehension.iter_var2.as_deref());
            bound.push(&comprehension.accu_var);
            for inner in [
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ] {
                collect_free(inner, bound, found);
            }
            bound.truncate(outer);
        }
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl Serialize for Expression {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::model::Rules;
    use crate::values::Key;

    fn field(name: &str, kind: FieldType) -> Field {
        Field {
            name: Key::parse(name).unwrap(),
            label: name.into(),
            help: None,
            kind,
            required: false,
            required_on: Default::default(),
            rules: Rules::default(),
        }
    }

    fn data(json: serde_json::Value) -> Map<String, Json> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn compares_money_amounts_and_text() {
        let fields = [
            field("amount", FieldType::Money),
            field("kind", FieldType::Text),
        ];
        let expr = Expression::compile("amount.amount > 1000.0 && kind == 'water'").unwrap();
        let item = data(serde_json::json!({
            "amount": {"amount": "1500.25", "currency": "EUR"}, "kind": "water"
        }));
        assert_eq!(
            expr.evaluate(&fields, &item, &Map::new(), "normal"),
            Ok(true)
        );
        let small = data(serde_json::json!({
            "amount": {"amount": "99.99", "currency": "EUR"}, "kind": "water"
        }));
        assert_eq!(
            expr.evaluate(&fields, &small, &Map::new(), "normal"),
            Ok(false)
        );
    }

    #[test]
    fn facts_read_like_fields_and_dates_are_counted_in_days() {
        let fields = [field("loss_date", FieldType::Date)];
        let item = data(serde_json::json!({"loss_date": "2026-03-10"}));
        let facts = data(serde_json::json!({
            "policy": {"start": "2026-02-20", "covered": "water fire"},
            "prior_claims": 2,
        }));
        let soon = Expression::compile(
            "policy != null && days_between(policy.start, loss_date) < 30 && prior_claims >= 2",
        )
        .unwrap();
        assert_eq!(soon.evaluate(&fields, &item, &facts, "normal"), Ok(true));
        let covered = Expression::compile("policy.covered.contains('fire')").unwrap();
        assert_eq!(covered.evaluate(&fields, &item, &facts, "normal"), Ok(true));
        // Across a leap day and backwards.
        let leap = Expression::compile("days_between('2028-02-28', '2028-03-01') == 2 && days_between(loss_date, '2026-03-01') == -9").unwrap();
        assert_eq!(leap.evaluate(&fields, &item, &facts, "normal"), Ok(true));
        let broken = Expression::compile("days_between('soon', loss_date) > 1").unwrap();
        assert!(matches!(
            broken.evaluate(&fields, &item, &facts, "normal"),
            Err(ExpressionError::Evaluation(_))
        ));
        // Without its lookup the variable is unknown: the branch fails, it is never true.
        assert!(
            soon.evaluate(&fields, &item, &Map::new(), "normal")
                .is_err()
        );
    }

    #[test]
    fn unset_optional_fields_read_as_null() {
        let fields = [field("channel", FieldType::Text)];
        let expr = Expression::compile("channel == null").unwrap();
        assert_eq!(
            expr.evaluate(&fields, &Map::new(), &Map::new(), "normal"),
            Ok(true)
        );
    }

    #[test]
    fn reports_variables_and_syntax_errors() {
        let expr = Expression::compile("priority == 'urgent' || size(subject) > 3").unwrap();
        let variables: Vec<String> = expr.variables().into_iter().collect();
        assert_eq!(variables, ["priority", "subject"]);
        let with_macro = Expression::compile("tags.exists(t, t == 'vip')").unwrap();
        assert_eq!(with_macro.variables(), BTreeSet::from(["tags".to_owned()]));
        assert!(matches!(
            Expression::compile("amount >"),
            Err(ExpressionError::Syntax(_))
        ));
    }

    #[test]
    fn the_most_complex_expression_allowed_compiles_on_a_test_thread_stack() {
        let conditionals = vec!["a ? f([{'k': b}])"; EXPRESSION_MAX_CONDITIONALS].join(" : ");
        let source = format!("((((({conditionals} : c)))))");
        assert!(Expression::compile(&source).is_ok(), "{source}");
        let deeper = format!("{}true{}", "(".repeat(9), ")".repeat(9));
        assert!(matches!(
            Expression::compile(&deeper),
            Err(ExpressionError::TooComplex(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn no_input_overflows_the_parser(source in "[-()\\[\\]{}?:!&|abc0-9.,' =<>+]{0,160}") {
            let _ = Expression::compile(&source);
        }
    }

    #[test]
    fn a_non_boolean_result_is_an_error() {
        let expr = Expression::compile("1 + 2").unwrap();
        assert!(matches!(
            expr.evaluate(&[], &Map::new(), &Map::new(), "normal"),
            Err(ExpressionError::NotBoolean(_))
        ));
    }
}
