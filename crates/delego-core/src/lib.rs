//! Delego's domain: the nouns of an outsourcing floor, service definitions, the process
//! engine and the routing rules.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of SQL or HTTP. Every
//! function here is deterministic given its inputs and a [`clock::Clock`], so that the
//! store, the server and the simulator share one set of rules.

pub mod calendar;
pub mod clock;
pub mod definition;
pub mod engine;
pub mod forecast;
pub mod hashing;
pub mod id;
pub mod identity;
pub mod knowledge;
pub mod metrics;
pub mod model;
pub mod routing;
pub mod sla;
pub mod staffing;
pub mod values;
