//! SLA clocks: first response, next response and resolution, counted in business time on
//! the engagement's calendar and paused while the item waits on the client.
//!
//! An item carries its [`SlaClocks`] (what happened when); the targets come from the
//! service definition, tuned per engagement. [`status`] turns both into what a team lead
//! reads: target, elapsed, remaining, and whether it is breached — computed on demand, so
//! a changed calendar or target applies to every open item at once.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::calendar::BusinessCalendar;

/// What an item's SLA clocks need to know, kept in the item's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClocks {
    /// When the item arrived; `None` for items created before SLAs were tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Finished spells of waiting on the client, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    /// Since when it waits on the client, if it does now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<Timestamp>,
    /// The requester's message still awaiting an answer: the next-response clock runs
    /// from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_response_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Escalations already made, by [`Escalation::key`], so that each is made once.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub escalated: std::collections::BTreeSet<String>,
}

/// A closed spell `[from, to)` during which the clocks stood still.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl SlaClocks {
    pub fn started(at: Timestamp) -> Self {
        Self {
            started_at: Some(at),
            ..Self::default()
        }
    }

    /// The item began waiting on the client (a second call while paused changes nothing).
    pub fn pause(&mut self, at: Timestamp) {
        self.paused_since.get_or_insert(at);
    }

    /// The item stopped waiting on the client.
    pub fn resume(&mut self, at: Timestamp) {
        if let Some(from) = self.paused_since.take()
            && from < at
        {
            self.pauses.push(Pause { from, to: at });
        }
    }

    /// The item is finished: every clock stops.
    pub fn resolve(&mut self, at: Timestamp) {
        self.resume(at);
        self.resolved_at.get_or_insert(at);
        self.awaiting_response_since = None;
    }

    /// A public answer from the provider's side reached the requester.
    pub fn responded(&mut self, at: Timestamp) {
        self.first_response_at.get_or_insert(at);
        self.awaiting_response_since = None;
    }

    /// The requester wrote: after a first response, the next-response clock starts (an
    /// earlier unanswered message keeps it running from then).
    pub fn requester_wrote(&mut self, at: Timestamp) {
        if self.first_response_at.is_some() && self.resolved_at.is_none() {
            self.awaiting_response_since.get_or_insert(at);
        }
    }

    /// Business time on `calendar` in `[from, until)`, less the pauses.
    fn counted(
        &self,
        calendar: &BusinessCalendar,
        from: Timestamp,
        until: Timestamp,
    ) -> SignedDuration {
        if until <= from {
            return SignedDuration::ZERO;
        }
        let open_pause = self.paused_since.map(|from| Pause { from, to: until });
        let paused: SignedDuration = self
            .pauses
            .iter()
            .chain(open_pause.iter())
            .map(|pause| {
                let (start, end) = (pause.from.max(from), pause.to.min(until));
                if start < end {
                    calendar.between(start, end)
                } else {
                    SignedDuration::ZERO
                }
            })
            .fold(SignedDuration::ZERO, |sum, d| sum.saturating_add(d));
        calendar.between(from, until).saturating_sub(paused)
    }
}

/// The targets an item's clocks run against; unset ones are not tracked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<SignedDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_response: Option<SignedDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<SignedDuration>,
    /// A clock past this share of its target is at risk (`warning`).
    #[serde(default = "default_warn_at_percent")]
    pub warn_at_percent: u8,
    /// What happens when a clock reaches its warning share…
    #[serde(default = "default_on_warning")]
    pub on_warning: Vec<EscalationAction>,
    /// …and when it breaches.
    #[serde(default = "default_on_breach")]
    pub on_breach: Vec<EscalationAction>,
}

fn default_warn_at_percent() -> u8 {
    75
}

pub fn default_on_warning() -> Vec<EscalationAction> {
    vec![EscalationAction::NotifyTeamLead]
}

pub fn default_on_breach() -> Vec<EscalationAction> {
    vec![
        EscalationAction::NotifyTeamLead,
        EscalationAction::RaisePriority,
    ]
}

impl Default for SlaTargets {
    fn default() -> Self {
        Self {
            first_response: None,
            next_response: None,
            resolution: None,
            warn_at_percent: default_warn_at_percent(),
            on_warning: default_on_warning(),
            on_breach: default_on_breach(),
        }
    }
}

/// What an escalation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    /// A notification in the inbox of every team lead (managers if there is none).
    NotifyTeamLead,
    /// The item's priority one step up, and its open tasks move up the line with it.
    RaisePriority,
    /// A task someone holds goes back in line for anyone else qualified.
    Reassign,
}

/// One escalation due now: a clock reached its warning share or breached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub kind: SlaKind,
    /// [`SlaState::Warning`] or [`SlaState::Breached`].
    pub level: SlaState,
    pub actions: Vec<EscalationAction>,
    /// Tells this escalation from every other of the item, including those of an earlier
    /// run of the next-response clock.
    pub key: String,
}

/// The escalations `statuses` call for that have not been made yet. A clock found already
/// breached skips its warning.
pub fn due_escalations(
    clocks: &SlaClocks,
    targets: &SlaTargets,
    statuses: &[SlaStatus],
) -> Vec<Escalation> {
    statuses
        .iter()
        .filter(|clock| clock.running)
        .filter_map(|clock| {
            let (level, actions) = match clock.state {
                SlaState::Warning => (SlaState::Warning, &targets.on_warning),
                SlaState::Breached => (SlaState::Breached, &targets.on_breach),
                _ => return None,
            };
            let since = match clock.kind {
                SlaKind::NextResponse => clocks.awaiting_response_since,
                _ => clocks.started_at,
            }?;
            let key = format!(
                "{}@{}:{}",
                kind_name(clock.kind),
                since.as_second(),
                if level == SlaState::Warning {
                    "warning"
                } else {
                    "breached"
                }
            );
            (!clocks.escalated.contains(&key)).then(|| Escalation {
                kind: clock.kind,
                level,
                actions: actions.clone(),
                key,
            })
        })
        .collect()
}

fn kind_name(kind: SlaKind) -> &'static str {
    match kind {
        SlaKind::FirstResponse => "first_response",
        SlaKind::NextResponse => "next_response",
        SlaKind::Resolution => "resolution",
    }
}

/// When the item's clocks next cross a warning share or a target, if nothing changes
/// (`None` when no running clock will: all stopped, paused, or already breached).
pub fn next_check(
    statuses: &[SlaStatus],
    targets: &SlaTargets,
    calendar: &BusinessCalendar,
    now: Timestamp,
) -> Option<Timestamp> {
    let share = f64::from(targets.warn_at_percent.min(100)) / 100.0;
    statuses
        .iter()
        .filter(|clock| clock.running && clock.state != SlaState::Paused && !clock.breached)
        .filter_map(|clock| {
            let warn_after =
                SignedDuration::try_from_secs_f64(clock.target.as_secs_f64() * share).ok()?;
            let crossing = if clock.elapsed < warn_after {
                warn_after.saturating_sub(clock.elapsed)
            } else {
                clock.remaining
            };
            calendar.add(now, crossing).ok()
        })
        .min()
}

/// An engagement's own SLA targets, each replacing the service's default where set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<SignedDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_response: Option<SignedDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<SignedDuration>,
    /// The due time of a human or review step that sets no `due` of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<SignedDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_warning: Option<Vec<EscalationAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_breach: Option<Vec<EscalationAction>>,
}

impl SlaOverrides {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    FirstResponse,
    NextResponse,
    Resolution,
}

/// Where a clock stands, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Stopped within the target.
    Met,
    /// Running, the item waits on the client.
    Paused,
    Running,
    /// Running and past the warning share of its target.
    Warning,
    /// Past the target, running or stopped.
    Breached,
}

/// One clock as a team lead reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaStatus {
    pub kind: SlaKind,
    pub state: SlaState,
    pub target: SignedDuration,
    /// Business time counted so far (until the clock stopped, if it did).
    pub elapsed: SignedDuration,
    /// Target minus elapsed: negative once breached.
    pub remaining: SignedDuration,
    pub breached: bool,
    /// Still counting (not stopped by an answer or the item's end); a paused clock runs.
    pub running: bool,
    /// When a running clock will breach if nothing changes; `None` when stopped or
    /// paused (a paused clock has no deadline until it runs again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
}

/// The earliest instant a running clock of the item breaches (`now` if one already has):
/// a task opened for the item is due no later, so SLA risk raises its urgency in line.
pub fn earliest_breach(
    clocks: &SlaClocks,
    targets: &SlaTargets,
    calendar: &BusinessCalendar,
    now: Timestamp,
) -> Option<Timestamp> {
    status(clocks, targets, calendar, now)
        .iter()
        .filter(|clock| clock.running && clock.state != SlaState::Paused)
        .filter_map(|clock| {
            if clock.breached {
                Some(now)
            } else {
                clock.due_at
            }
        })
        .min()
}

/// The item's clocks against its targets at `now`, in the order first response, next
/// response, resolution; clocks without a target, or not started, are left out.
pub fn status(
    clocks: &SlaClocks,
    targets: &SlaTargets,
    calendar: &BusinessCalendar,
    now: Timestamp,
) -> Vec<SlaStatus> {
    let Some(started) = clocks.started_at else {
        return Vec::new();
    };
    let mut all = Vec::new();
    let mut push = |kind, target: Option<SignedDuration>, from: Option<Timestamp>, stop| {
        if let (Some(target), Some(from)) = (target, from) {
            all.push(one_clock(
                clocks, targets, calendar, now, kind, target, from, stop,
            ));
        }
    };
    push(
        SlaKind::FirstResponse,
        targets.first_response,
        Some(started),
        clocks.first_response_at.or(clocks.resolved_at),
    );
    push(
        SlaKind::NextResponse,
        targets.next_response,
        clocks.awaiting_response_since,
        None,
    );
    push(
        SlaKind::Resolution,
        targets.resolution,
        Some(started),
        clocks.resolved_at,
    );
    all
}

#[allow(clippy::too_many_arguments)]
fn one_clock(
    clocks: &SlaClocks,
    targets: &SlaTargets,
    calendar: &BusinessCalendar,
    now: Timestamp,
    kind: SlaKind,
    target: SignedDuration,
    from: Timestamp,
    stopped_at: Option<Timestamp>,
) -> SlaStatus {
    let until = stopped_at.unwrap_or(now);
    let elapsed = clocks.counted(calendar, from, until);
    let remaining = target.saturating_sub(elapsed);
    let breached = remaining.is_negative() || (remaining.is_zero() && stopped_at.is_none());
    let running = stopped_at.is_none();
    let paused = running && clocks.paused_since.is_some();
    let warn_after = target.as_secs_f64() * f64::from(targets.warn_at_percent.min(100)) / 100.0;
    let state = match () {
        _ if breached => SlaState::Breached,
        _ if !running => SlaState::Met,
        _ if paused => SlaState::Paused,
        _ if elapsed.as_secs_f64() >= warn_after => SlaState::Warning,
        _ => SlaState::Running,
    };
    let due_at = (running && !paused && !breached)
        .then(|| calendar.add(now, remaining).ok())
        .flatten();
    SlaStatus {
        kind,
        state,
        target,
        elapsed,
        remaining,
        breached,
        running,
        due_at,
    }
}

#[cfg(test)]
#[path = "sla_tests.rs"]
mod tests;
