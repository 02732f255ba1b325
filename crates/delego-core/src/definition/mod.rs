//! Service definitions as data: the typed model, the TOML loader that reports every problem
//! with its location, item-data validation against a form, and decision expressions.
//!
//! The file format is documented in `docs/service-definitions.md`.

mod expr;
mod form;
mod load;
mod model;

pub use expr::{Expression, ExpressionError};
pub use form::{Completeness, FieldError, validate_form, validate_submission};
pub use load::{Problem, load_definition, parse_duration, reload_definition};
pub use model::*;
