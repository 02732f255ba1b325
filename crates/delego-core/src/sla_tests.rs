use super::*;
use crate::calendar::{BusinessCalendar, CalendarSpec};
use proptest::prelude::*;

fn at(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// Monday to Friday, 09:00–17:00 UTC.
fn office() -> BusinessCalendar {
    let spec: CalendarSpec = serde_json::from_value(serde_json::json!({
        "zone": "UTC",
        "hours": {
            "mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
            "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]
        }
    }))
    .expect("a calendar spec");
    BusinessCalendar::try_from(spec).expect("a valid calendar")
}

fn targets(first: i64, resolution: i64) -> SlaTargets {
    SlaTargets {
        first_response: Some(hours(first)),
        resolution: Some(hours(resolution)),
        next_response: Some(hours(2)),
        ..SlaTargets::default()
    }
}

fn clock(all: &[SlaStatus], kind: SlaKind) -> &SlaStatus {
    all.iter()
        .find(|s| s.kind == kind)
        .expect("the clock is reported")
}

#[test]
fn a_friday_afternoon_ticket_is_due_on_monday_in_business_hours() {
    // 2026-11-27 is a Friday.
    let clocks = SlaClocks::started(at("2026-11-27T16:00:00Z"));
    let now = at("2026-11-27T16:30:00Z");
    let all = status(&clocks, &targets(2, 8), &office(), now);
    let first = clock(&all, SlaKind::FirstResponse);
    assert_eq!(first.elapsed, minutes(30));
    assert_eq!(first.remaining, minutes(90));
    assert_eq!(first.state, SlaState::Running);
    assert_eq!(first.due_at, Some(at("2026-11-30T10:00:00Z")));
    // The weekend counts nothing: Monday 09:00 still shows one business hour elapsed.
    let monday = status(
        &clocks,
        &targets(2, 8),
        &office(),
        at("2026-11-30T09:00:00Z"),
    );
    assert_eq!(clock(&monday, SlaKind::FirstResponse).elapsed, hours(1));
    assert_eq!(
        clock(&monday, SlaKind::FirstResponse).state,
        SlaState::Running
    );
}

#[test]
fn a_clock_warns_past_its_share_and_breaches_at_its_target() {
    let clocks = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    let t = targets(2, 8);
    let warn = status(&clocks, &t, &office(), at("2026-11-30T10:30:00Z"));
    assert_eq!(
        clock(&warn, SlaKind::FirstResponse).state,
        SlaState::Warning
    );
    let due = status(&clocks, &t, &office(), at("2026-11-30T11:00:00Z"));
    let first = clock(&due, SlaKind::FirstResponse);
    assert!(first.breached, "at the target instant with no answer");
    assert_eq!(first.state, SlaState::Breached);
    let late = status(&clocks, &t, &office(), at("2026-11-30T12:00:00Z"));
    assert_eq!(clock(&late, SlaKind::FirstResponse).remaining, hours(-1));
}

#[test]
fn an_answer_stops_the_first_response_clock_within_or_past_its_target() {
    let mut clocks = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    clocks.responded(at("2026-11-30T10:00:00Z"));
    let later = at("2026-12-01T12:00:00Z");
    let first = status(&clocks, &targets(2, 40), &office(), later)
        .into_iter()
        .find(|s| s.kind == SlaKind::FirstResponse)
        .expect("first response");
    assert_eq!(first.state, SlaState::Met);
    assert_eq!(first.elapsed, hours(1));
    assert_eq!(first.due_at, None);

    let mut slow = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    slow.responded(at("2026-11-30T12:00:00Z"));
    let first = status(&slow, &targets(2, 40), &office(), later)
        .into_iter()
        .find(|s| s.kind == SlaKind::FirstResponse)
        .expect("first response");
    assert_eq!(first.state, SlaState::Breached);
}

#[test]
fn waiting_on_the_client_pauses_every_clock() {
    let mut clocks = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    clocks.responded(at("2026-11-30T10:00:00Z"));
    clocks.pause(at("2026-11-30T10:00:00Z"));
    let paused = status(
        &clocks,
        &targets(2, 8),
        &office(),
        at("2026-11-30T15:00:00Z"),
    );
    let resolution = clock(&paused, SlaKind::Resolution);
    assert_eq!(resolution.elapsed, hours(1));
    assert_eq!(resolution.state, SlaState::Paused);
    assert_eq!(resolution.due_at, None);
    clocks.resume(at("2026-11-30T15:00:00Z"));
    clocks.requester_wrote(at("2026-11-30T15:00:00Z"));
    let running = status(
        &clocks,
        &targets(2, 8),
        &office(),
        at("2026-11-30T16:00:00Z"),
    );
    assert_eq!(clock(&running, SlaKind::Resolution).elapsed, hours(2));
    assert_eq!(clock(&running, SlaKind::NextResponse).elapsed, hours(1));
    assert_eq!(
        clock(&running, SlaKind::Resolution).due_at,
        Some(at("2026-12-01T14:00:00Z"))
    );
}

#[test]
fn resolving_stops_the_clocks_and_untracked_targets_are_not_reported() {
    let mut clocks = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    clocks.resolve(at("2026-11-30T11:00:00Z"));
    let only_resolution = SlaTargets {
        resolution: Some(hours(8)),
        ..SlaTargets::default()
    };
    let all = status(
        &clocks,
        &only_resolution,
        &office(),
        at("2026-12-10T09:00:00Z"),
    );
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].kind, SlaKind::Resolution);
    assert_eq!(all[0].state, SlaState::Met);
    assert_eq!(all[0].elapsed, hours(2));
    assert!(
        status(
            &SlaClocks::default(),
            &targets(1, 2),
            &office(),
            at("2026-12-10T09:00:00Z")
        )
        .is_empty()
    );
}

#[test]
fn the_next_response_clock_runs_from_the_first_unanswered_message() {
    let mut clocks = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    clocks.requester_wrote(at("2026-11-30T09:30:00Z"));
    assert_eq!(
        clocks.awaiting_response_since, None,
        "no first response yet"
    );
    clocks.responded(at("2026-11-30T10:00:00Z"));
    clocks.requester_wrote(at("2026-11-30T11:00:00Z"));
    clocks.requester_wrote(at("2026-11-30T11:30:00Z"));
    assert_eq!(
        clocks.awaiting_response_since,
        Some(at("2026-11-30T11:00:00Z"))
    );
    clocks.responded(at("2026-11-30T12:00:00Z"));
    assert_eq!(clocks.awaiting_response_since, None);
    let all = status(
        &clocks,
        &targets(2, 8),
        &office(),
        at("2026-11-30T13:00:00Z"),
    );
    assert!(all.iter().all(|s| s.kind != SlaKind::NextResponse));
}

fn instant() -> impl Strategy<Value = Timestamp> {
    // Four weeks around a year end, by the minute.
    (0i64..28 * 24 * 60).prop_map(|m| at("2026-12-18T00:00:00Z") + minutes(m))
}

proptest! {
    /// Elapsed business time never decreases as time passes, pauses only take time away,
    /// and `remaining` always equals `target - elapsed`.
    #[test]
    fn elapsed_time_only_grows_and_pauses_only_subtract(
        start in instant(),
        steps in proptest::collection::vec((1i64..3000, any::<bool>()), 1..12),
    ) {
        let calendar = office();
        let t = targets(4, 16);
        let mut clocks = SlaClocks::started(start);
        let mut unpaused = clocks.clone();
        let mut now = start;
        let mut last = SignedDuration::ZERO;
        for (minutes_on, toggle) in steps {
            now += minutes(minutes_on);
            if toggle {
                if clocks.paused_since.is_some() { clocks.resume(now) } else { clocks.pause(now) }
            }
            unpaused.resume(now);
            let resolution = status(&clocks, &t, &calendar, now).into_iter()
                .find(|s| s.kind == SlaKind::Resolution).expect("resolution");
            let without_pauses = status(&unpaused, &t, &calendar, now).into_iter()
                .find(|s| s.kind == SlaKind::Resolution).expect("resolution");
            prop_assert!(resolution.elapsed >= last);
            prop_assert!(resolution.elapsed <= without_pauses.elapsed);
            prop_assert_eq!(without_pauses.elapsed, calendar.between(start, now));
            prop_assert_eq!(resolution.remaining, t.resolution.unwrap() - resolution.elapsed);
            last = resolution.elapsed;
        }
    }

    /// A running clock's projected deadline is exactly when it breaches if nothing changes.
    #[test]
    fn a_running_clock_breaches_exactly_at_its_due_instant(start in instant(), wait in 0i64..600) {
        let calendar = office();
        let t = targets(4, 16);
        let clocks = SlaClocks::started(start);
        let now = start + minutes(wait);
        let first = status(&clocks, &t, &calendar, now).into_iter()
            .find(|s| s.kind == SlaKind::FirstResponse).expect("first response");
        if let Some(due) = first.due_at {
            let before = status(&clocks, &t, &calendar, due - SignedDuration::from_secs(1));
            prop_assert!(!clock(&before, SlaKind::FirstResponse).breached);
            let at_due = status(&clocks, &t, &calendar, due);
            prop_assert!(clock(&at_due, SlaKind::FirstResponse).breached);
        } else {
            prop_assert!(first.breached);
        }
    }
}

#[test]
fn the_earliest_running_deadline_is_what_a_task_must_meet() {
    let start = at("2026-11-30T09:00:00Z");
    let mut clocks = SlaClocks::started(start);
    let t = targets(2, 8);
    assert_eq!(
        earliest_breach(&clocks, &t, &office(), start),
        Some(at("2026-11-30T11:00:00Z")),
        "the first response is due before the resolution"
    );
    clocks.responded(at("2026-11-30T10:00:00Z"));
    assert_eq!(
        earliest_breach(&clocks, &t, &office(), at("2026-11-30T10:00:00Z")),
        Some(at("2026-11-30T17:00:00Z")),
        "answered: only the resolution runs"
    );
    clocks.pause(at("2026-11-30T10:00:00Z"));
    assert_eq!(
        earliest_breach(&clocks, &t, &office(), at("2026-11-30T12:00:00Z")),
        None,
        "paused clocks set no deadline"
    );
    let late = SlaClocks::started(start);
    assert_eq!(
        earliest_breach(&late, &t, &office(), at("2026-11-30T12:00:00Z")),
        Some(at("2026-11-30T12:00:00Z")),
        "a breached clock makes the work due now"
    );
}

#[test]
fn escalations_come_once_per_level_and_a_late_look_skips_the_warning() {
    let start = at("2026-11-30T09:00:00Z");
    let mut clocks = SlaClocks::started(start);
    let t = targets(2, 8);
    // 75 % of 2 h is 90 min: the first look is due then.
    let fresh = status(&clocks, &t, &office(), start);
    assert_eq!(
        next_check(&fresh, &t, &office(), start),
        Some(at("2026-11-30T10:30:00Z"))
    );
    let warned = status(&clocks, &t, &office(), at("2026-11-30T10:30:00Z"));
    let due = due_escalations(&clocks, &t, &warned);
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].kind, due[0].level),
        (SlaKind::FirstResponse, SlaState::Warning)
    );
    assert_eq!(due[0].actions, vec![EscalationAction::NotifyTeamLead]);
    clocks.escalated.insert(due[0].key.clone());
    assert!(
        due_escalations(&clocks, &t, &warned).is_empty(),
        "made once"
    );
    assert_eq!(
        next_check(&warned, &t, &office(), at("2026-11-30T10:30:00Z")),
        Some(at("2026-11-30T11:00:00Z")),
        "next, the breach"
    );
    // Seen only after both clocks breached: breaches, no warnings.
    let late = status(&clocks, &t, &office(), at("2026-12-02T09:00:00Z"));
    let due = due_escalations(&clocks, &t, &late);
    assert!(due.iter().all(|e| e.level == SlaState::Breached));
    assert_eq!(due.len(), 2);
    assert!(due[0].actions.contains(&EscalationAction::RaisePriority));
    assert_eq!(
        next_check(&late, &t, &office(), at("2026-12-02T09:00:00Z")),
        None
    );
}

#[test]
fn each_run_of_the_next_response_clock_escalates_on_its_own() {
    let mut clocks = SlaClocks::started(at("2026-11-30T09:00:00Z"));
    clocks.responded(at("2026-11-30T09:10:00Z"));
    let t = SlaTargets {
        next_response: Some(hours(1)),
        ..SlaTargets::default()
    };
    clocks.requester_wrote(at("2026-11-30T10:00:00Z"));
    let first = due_escalations(
        &clocks,
        &t,
        &status(&clocks, &t, &office(), at("2026-11-30T11:00:00Z")),
    );
    assert_eq!(first.len(), 1);
    clocks.escalated.insert(first[0].key.clone());
    clocks.responded(at("2026-11-30T11:30:00Z"));
    clocks.requester_wrote(at("2026-11-30T13:00:00Z"));
    let second = due_escalations(
        &clocks,
        &t,
        &status(&clocks, &t, &office(), at("2026-11-30T14:00:00Z")),
    );
    assert_eq!(second.len(), 1, "a new run of the clock breached again");
    assert_ne!(second[0].key, first[0].key);
}
