//! A discrete-event simulator of a contact floor: a manager's scenario (arrival streams,
//! handle times, patience, worker groups with skills and shifts) is played out contact by
//! contact, and every routing decision is taken by `delego_core::routing` — the same
//! eligibility rules, serve-by order, fair share and worker ranking as the store's claims.
//!
//! Time is simulated: events are processed in (time, sequence) order and the routing rules
//! receive the simulated instant as `now`, so a run is a pure function of its plan and
//! seed. Each arrival stream draws its arrival times, handle times and patience from a
//! generator of its own, so two staffing plans run with the same seed meet the very same
//! callers (common random numbers), and their difference is the plan's, not chance's.
//!
//! ```
//! let scenario = delego_sim::Scenario::from_toml(delego_sim::EXAMPLE)?;
//! let plan = delego_sim::Plan::new(&scenario)?;
//! let report = plan.run(&delego_sim::Options { seed: 7, ..Default::default() });
//! assert_eq!(report.intervals.len(), 24);
//! # Ok::<(), delego_sim::ScenarioError>(())
//! ```

mod draw;
mod report;
mod scenario;
mod sim;

pub use report::{Assignment, Figures, Report, Row, Tally};
pub use scenario::{
    Distribution, Plan, Scenario, ScenarioError, Shift, Stream, StreamRouting, WorkerGroup,
};

/// A built-in scenario to start from: a support line's day, in TOML.
pub const EXAMPLE: &str = include_str!("../scenarios/example.toml");

/// How to run a plan.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The same seed gives the same report.
    pub seed: u64,
    /// Keep every hand-over in [`Report::assignments`] (for checks; costs memory).
    pub record_assignments: bool,
}
