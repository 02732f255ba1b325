//! Decision expressions: the Common Expression Language (CEL), a small, side-effect free,
//! always-terminating language. An expression sees each item field as a variable of the
//! same name (absent fields are `null`) plus `priority` (`"low"` … `"urgent"`).
//!
//! Decimals and money amounts are compared as floating-point numbers inside expressions;
//! the stored values stay exact.

use std::collections::HashMap;
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
    #[error("does not parse: {0}")]
    Syntax(String),
    #[error("could not be evaluated: {0}")]
    Evaluation(String),
    #[error("gave {0}, not true or false")]
    NotBoolean(String),
}

impl Expression {
    pub fn compile(source: &str) -> Result<Self, ExpressionError> {
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

    /// The variable names the expression reads: the loader checks each against the fields.
    pub fn variables(&self) -> Vec<String> {
        self.program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Evaluates against an item's data. `fields` are all fields the service declares, so
    /// that an unset optional field reads as `null` rather than an unknown variable.
    pub fn evaluate<'f>(
        &self,
        fields: impl IntoIterator<Item = &'f Field>,
        data: &Map<String, Json>,
        priority: &str,
    ) -> Result<bool, ExpressionError> {
        let mut context = Context::default();
        for field in fields {
            let value = data.get(field.name.as_str()).unwrap_or(&Json::Null);
            context.add_variable_from_value(field.name.as_str(), to_cel(&field.kind, value));
        }
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

fn json_to_cel(value: &Json) -> Value {
    cel::to_value(value).unwrap_or(Value::Null)
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
        assert_eq!(expr.evaluate(&fields, &item, "normal"), Ok(true));
        let small = data(serde_json::json!({
            "amount": {"amount": "99.99", "currency": "EUR"}, "kind": "water"
        }));
        assert_eq!(expr.evaluate(&fields, &small, "normal"), Ok(false));
    }

    #[test]
    fn unset_optional_fields_read_as_null() {
        let fields = [field("channel", FieldType::Text)];
        let expr = Expression::compile("channel == null").unwrap();
        assert_eq!(expr.evaluate(&fields, &Map::new(), "normal"), Ok(true));
    }

    #[test]
    fn reports_variables_and_syntax_errors() {
        let expr = Expression::compile("priority == 'urgent' || size(subject) > 3").unwrap();
        let mut variables = expr.variables();
        variables.sort();
        assert_eq!(variables, ["priority", "subject"]);
        assert!(matches!(
            Expression::compile("amount >"),
            Err(ExpressionError::Syntax(_))
        ));
    }

    #[test]
    fn a_non_boolean_result_is_an_error() {
        let expr = Expression::compile("1 + 2").unwrap();
        assert!(matches!(
            expr.evaluate(&[], &Map::new(), "normal"),
            Err(ExpressionError::NotBoolean(_))
        ));
    }
}
