//! What a run reports: counts per interval, the figures derived from them, a total row.
//!
//! Contacts count in the interval they arrived in, whenever they were answered. Time
//! (busy, staffed) counts in the interval it was spent in.

use std::ops::Range;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// Counts and times of one interval (or of several, added up).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    pub offered: u64,
    pub answered: u64,
    /// Answered after waiting at most the service-level target.
    pub answered_in_target: u64,
    pub abandoned: u64,
    /// Still waiting when the run ended: no one on shift could take them.
    pub unanswered: u64,
    /// The waits of the answered contacts, added up.
    pub wait_secs: f64,
    /// Time workers spent on contacts, wrap-up included.
    pub busy_secs: f64,
    /// Time workers were logged in: on shift, or finishing a contact after their shift.
    pub staffed_secs: f64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.answered_in_target += other.answered_in_target;
        self.abandoned += other.abandoned;
        self.unanswered += other.unanswered;
        self.wait_secs += other.wait_secs;
        self.busy_secs += other.busy_secs;
        self.staffed_secs += other.staffed_secs;
    }
}

/// The usual contact-centre figures; `None` where the denominator is zero.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// Answered within the target ÷ offered. Abandoned and unanswered contacts count as
    /// missed, so this is the share of all arrivals answered in time.
    pub service_level: Option<f64>,
    /// Average speed of answer: the mean wait of answered contacts.
    pub asa_secs: Option<f64>,
    /// Abandoned ÷ offered.
    pub abandonment_rate: Option<f64>,
    /// Busy time ÷ staffed time.
    pub occupancy: Option<f64>,
    /// Workers logged in, on average over the span.
    pub agents: f64,
}

impl Figures {
    fn of(tally: &Tally, span: SignedDuration) -> Self {
        let ratio = |part: f64, whole: f64| (whole > 0.0).then(|| part / whole);
        Self {
            service_level: ratio(tally.answered_in_target as f64, tally.offered as f64),
            asa_secs: ratio(tally.wait_secs, tally.answered as f64),
            abandonment_rate: ratio(tally.abandoned as f64, tally.offered as f64),
            occupancy: ratio(tally.busy_secs, tally.staffed_secs),
            agents: ratio(tally.staffed_secs, span.as_secs_f64()).unwrap_or(0.0),
        }
    }
}

/// One line of the report: an interval, or several added up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(flatten)]
    pub tally: Tally,
    #[serde(flatten)]
    pub figures: Figures,
}

impl Row {
    pub(crate) fn new(start: Timestamp, end: Timestamp, tally: Tally) -> Self {
        let figures = Figures::of(&tally, end.duration_since(start));
        Self {
            start,
            end,
            tally,
            figures,
        }
    }
}

/// One contact handed to one worker.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assignment {
    /// The contact's number, in order of arrival from 0.
    pub contact: u64,
    /// Indexes into the scenario's `streams` and `workers` (groups).
    pub stream: usize,
    pub group: usize,
    /// The worker's number within the whole floor, from 0.
    pub worker: usize,
    /// Offsets from the scenario's start.
    pub arrived: SignedDuration,
    pub answered: SignedDuration,
}

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub seed: u64,
    pub service_level_target_secs: f64,
    pub intervals: Vec<Row>,
    pub total: Row,
    /// Events processed: arrivals, abandonments, relaxations, completions, shift changes.
    pub events: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<Assignment>,
}

impl Report {
    /// The intervals in `range` added up, e.g. to leave out a warm-up; `None` when the
    /// range holds no interval.
    pub fn over(&self, range: Range<usize>) -> Option<Row> {
        let rows = self.intervals.get(range)?;
        let (first, last) = (rows.first()?, rows.last()?);
        let mut tally = Tally::default();
        for row in rows {
            tally.add(&row.tally);
        }
        Some(Row::new(first.start, last.end, tally))
    }
}
