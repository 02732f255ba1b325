//! Business calendars: hand-computed answers, spec errors, and properties that must hold
//! across DST changes in both directions and across year ends.

use std::collections::{BTreeMap, BTreeSet};
use std::iter::successors;

use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;
use serde_json::json;

use super::*;

const BRATISLAVA: &str = "Europe/Bratislava";

fn calendar(spec: serde_json::Value) -> BusinessCalendar {
    serde_json::from_value(spec).unwrap()
}

/// Monday to Friday, 09:00 to 17:00.
fn office_hours(zone: &str) -> BusinessCalendar {
    office_hours_with(zone, json!([]), json!({}))
}

fn office_hours_with(
    zone: &str,
    holidays: serde_json::Value,
    exceptions: serde_json::Value,
) -> BusinessCalendar {
    let day = json!(["09:00-17:00"]);
    calendar(json!({
        "zone": zone,
        "hours": { "mon": day, "tue": day, "wed": day, "thu": day, "fri": day },
        "holidays": holidays,
        "exceptions": exceptions,
    }))
}

fn around_the_clock(zone: &str) -> BusinessCalendar {
    let day = json!(["00:00-24:00"]);
    calendar(json!({
        "zone": zone,
        "hours": {
            "mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day,
        },
    }))
}

/// A local wall-clock time that exists exactly once in `zone`.
fn at(zone: &str, local: &str) -> Timestamp {
    local
        .parse::<DateTime>()
        .unwrap()
        .in_tz(zone)
        .unwrap()
        .timestamp()
}

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

const NANO: SignedDuration = SignedDuration::from_nanos(1);

// ---- Hand-computed answers -------------------------------------------------------------

#[test]
fn two_hours_from_friday_afternoon_end_on_monday_morning() {
    let office = office_hours(BRATISLAVA);
    let due = office.add(at(BRATISLAVA, "2026-06-05T16:00"), hours(2));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-06-08T10:00")));
}

#[test]
fn a_deadline_landing_on_closing_time_stays_at_closing_time() {
    let office = office_hours(BRATISLAVA);
    let due = office.add(at(BRATISLAVA, "2026-06-05T16:00"), hours(1));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-06-05T17:00")));
}

#[test]
fn counting_starts_at_the_next_opening_when_closed() {
    let office = office_hours(BRATISLAVA);
    let due = office.add(at(BRATISLAVA, "2026-06-06T12:00"), mins(30));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-06-08T09:30")));
}

#[test]
fn adding_nothing_returns_the_start_even_when_closed() {
    let office = office_hours(BRATISLAVA);
    let saturday = at(BRATISLAVA, "2026-06-06T12:00");
    assert_eq!(office.add(saturday, SignedDuration::ZERO), Ok(saturday));
}

#[test]
fn negative_business_time_is_refused() {
    let office = office_hours(BRATISLAVA);
    let error = office.add(at(BRATISLAVA, "2026-06-05T16:00"), -hours(1));
    assert_eq!(error, Err(ScheduleError::NegativeDuration(-hours(1))));
    assert_eq!(
        error.unwrap_err().to_string(),
        "business time cannot be negative (got -PT1H)"
    );
}

#[test]
fn a_year_of_office_hours_ends_on_the_last_friday_at_closing_time() {
    let office = office_hours("UTC");
    let due = office.add(at("UTC", "2026-01-05T09:00"), hours(52 * 40));
    assert_eq!(due, Ok(at("UTC", "2027-01-01T17:00")));
}

#[test]
fn a_day_has_23_business_hours_when_clocks_spring_forward_and_25_when_they_fall_back() {
    let cases = [
        (BRATISLAVA, "2026-03-29", 23),
        (BRATISLAVA, "2026-10-25", 25),
        ("America/New_York", "2026-03-08", 23),
        ("America/New_York", "2026-11-01", 25),
        ("Australia/Sydney", "2026-10-04", 23),
        ("Australia/Sydney", "2026-04-05", 25),
        ("UTC", "2026-03-29", 24),
    ];
    for (zone, day, expected) in cases {
        let day: Date = day.parse().unwrap();
        let start = at(zone, &format!("{day}T00:00"));
        let end = at(zone, &format!("{}T00:00", day.tomorrow().unwrap()));
        assert_eq!(
            around_the_clock(zone).between(start, end),
            hours(expected),
            "{zone} {day}"
        );
    }
}

#[test]
fn opening_hours_keep_their_local_times_across_a_dst_change() {
    let office = office_hours(BRATISLAVA);
    // Clocks spring forward in the night to Sunday 2026-03-29.
    let due = office.add(at(BRATISLAVA, "2026-03-27T16:00"), hours(2));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-03-30T10:00")));
    let week = office.between(
        at(BRATISLAVA, "2026-10-19T00:00"),
        at(BRATISLAVA, "2026-10-26T00:00"),
    );
    assert_eq!(week, hours(40));
}

#[test]
fn hours_skipped_by_spring_forward_are_closed_and_hours_repeated_by_fall_back_count_twice() {
    let sunday = |day: &str, hours: serde_json::Value| {
        let calendar = calendar(json!({ "zone": BRATISLAVA, "hours": { "sun": hours } }));
        let start = at(BRATISLAVA, &format!("{day}T00:00"));
        calendar.between(start, start + SignedDuration::from_hours(30))
    };
    // 02:00 to 03:00 does not exist on 2026-03-29: 02:15-02:45 never opens.
    let gap = json!(["02:15-02:45", "09:00-10:00"]);
    assert_eq!(sunday("2026-03-22", gap.clone()), mins(90));
    assert_eq!(sunday("2026-03-29", gap), hours(1));
    // 01:30 to 03:30 spans the gap (one hour) and the fold (three hours).
    let across = json!(["01:30-03:30"]);
    assert_eq!(sunday("2026-03-29", across.clone()), hours(1));
    assert_eq!(sunday("2026-10-25", across), hours(3));
}

#[test]
fn holidays_close_the_whole_day() {
    let office = office_hours_with(BRATISLAVA, json!(["2026-06-08"]), json!({}));
    let due = office.add(at(BRATISLAVA, "2026-06-05T16:00"), hours(2));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-06-09T10:00")));
}

#[test]
fn exceptions_replace_a_days_hours_across_the_year_end() {
    let office = office_hours_with(
        BRATISLAVA,
        json!(["2027-01-01"]),
        json!({ "2026-12-31": ["09:00-12:00"], "2027-01-02": [] }),
    );
    // Thursday 11:00: one hour before the early close, Friday a holiday, then the weekend.
    let due = office.add(at(BRATISLAVA, "2026-12-31T11:00"), hours(2));
    assert_eq!(due, Ok(at(BRATISLAVA, "2027-01-04T10:00")));
}

#[test]
fn an_exception_can_open_a_weekend_day() {
    let office = office_hours_with(
        BRATISLAVA,
        json!([]),
        json!({ "2026-06-06": ["10:00-11:00"] }),
    );
    let due = office.add(at(BRATISLAVA, "2026-06-05T16:30"), hours(1));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-06-06T10:30")));
}

#[test]
fn hours_ending_at_midnight_join_the_next_days_hours() {
    let nights = calendar(json!({
        "zone": BRATISLAVA,
        "hours": { "fri": ["22:00-24:00"], "sat": ["00:00-02:00"] },
    }));
    let due = nights.add(at(BRATISLAVA, "2026-06-05T23:00"), hours(2));
    assert_eq!(due, Ok(at(BRATISLAVA, "2026-06-06T01:00")));
    assert!(nights.is_open(at(BRATISLAVA, "2026-06-06T00:00")));
}

#[test]
fn next_open_is_the_instant_itself_when_open_and_the_next_opening_otherwise() {
    let office = office_hours(BRATISLAVA);
    let open = at(BRATISLAVA, "2026-06-05T10:00");
    let closing = at(BRATISLAVA, "2026-06-05T17:00");
    assert!(office.is_open(open));
    assert!(office.is_open(at(BRATISLAVA, "2026-06-05T09:00")));
    assert!(!office.is_open(closing));
    assert_eq!(office.next_open(open), Some(open));
    assert_eq!(
        office.next_open(closing),
        Some(at(BRATISLAVA, "2026-06-08T09:00"))
    );
}

#[test]
fn business_time_runs_negative_when_the_range_runs_backwards() {
    let office = office_hours(BRATISLAVA);
    let (friday, monday) = (
        at(BRATISLAVA, "2026-06-05T16:00"),
        at(BRATISLAVA, "2026-06-08T10:00"),
    );
    assert_eq!(office.between(friday, monday), hours(2));
    assert_eq!(office.between(monday, friday), -hours(2));
    assert_eq!(office.between(friday, friday), SignedDuration::ZERO);
}

#[test]
fn always_open_is_wall_clock_time() {
    let always = BusinessCalendar::always_open();
    let start = at("UTC", "2026-12-31T23:59:59.5");
    let later = start + SignedDuration::from_hours(10_000) + NANO;
    assert_eq!(always.add(start, later.duration_since(start)), Ok(later));
    assert_eq!(always.between(start, later), later.duration_since(start));
    assert_eq!(always.next_open(start), Some(start));
    assert_eq!(BusinessCalendar::default(), always);
}

#[test]
fn a_calendar_closed_for_ten_years_sets_no_deadline() {
    let mondays: Vec<String> = successors(Some(Date::constant(2026, 1, 5)), |day| {
        day.checked_add(7.days()).ok()
    })
    .take(11 * 53)
    .map(|day| day.to_string())
    .collect();
    let closed = calendar(json!({
        "zone": "UTC",
        "hours": { "mon": ["09:00-17:00"] },
        "holidays": mondays,
    }));
    let start = at("UTC", "2026-01-01T00:00");
    assert_eq!(
        closed.add(start, hours(1)),
        Err(ScheduleError::ClosedForTenYears)
    );
    assert_eq!(closed.next_open(start), None);
}

// ---- Specs and their errors ------------------------------------------------------------

#[test]
fn a_calendar_serialises_back_to_its_spec() {
    let written = json!({
        "zone": "Europe/Bratislava",
        "hours": {
            "mon": ["13:00-17:00", "08:00-12:00"],
            "fri": ["08:00-12:00", "12:00-24:00"],
        },
        "holidays": ["2026-12-25", "2026-12-24", "2026-12-24"],
        "exceptions": { "2026-12-31": ["09:00-12:00"], "2026-12-27": [] },
    });
    let calendar = calendar(written);
    let stored = serde_json::to_value(&calendar).unwrap();
    assert_eq!(
        stored,
        json!({
            "zone": "Europe/Bratislava",
            "hours": {
                "mon": ["08:00-12:00", "13:00-17:00"],
                "fri": ["08:00-12:00", "12:00-24:00"],
            },
            "holidays": ["2026-12-24", "2026-12-25"],
            "exceptions": { "2026-12-27": [], "2026-12-31": ["09:00-12:00"] },
        })
    );
    assert_eq!(
        serde_json::from_value::<BusinessCalendar>(stored).unwrap(),
        calendar
    );
    let always = serde_json::to_value(BusinessCalendar::always_open()).unwrap();
    assert_eq!(always["zone"], "UTC");
    assert_eq!(always["hours"]["sun"], json!(["00:00-24:00"]));
}

#[test]
fn spec_errors_name_the_field_at_fault() {
    let mon = |hours: serde_json::Value| json!({ "zone": "UTC", "hours": { "mon": hours } });
    let with = |key: &str, value: serde_json::Value| {
        let mut spec = mon(json!(["09:00-17:00"]));
        spec[key] = value;
        spec
    };
    let cases = [
        (
            with("zone", json!("Europe/Bratslava")),
            r#"zone: "Europe/Bratslava" is not a known IANA time zone, such as "Europe/Bratislava""#,
        ),
        (
            mon(json!(["09:00-17:00", "9-17"])),
            r#"hours.mon[1]: "9-17" is not opening hours of the form "HH:MM-HH:MM""#,
        ),
        (
            mon(json!(["09:00-24:30"])),
            r#"hours.mon[0]: "09:00-24:30" is not opening hours of the form "HH:MM-HH:MM""#,
        ),
        (
            mon(json!(["09:60-17:00"])),
            r#"hours.mon[0]: "09:60-17:00" is not opening hours of the form "HH:MM-HH:MM""#,
        ),
        (
            mon(json!(["17:00-09:00"])),
            r#"hours.mon[0]: "17:00-09:00" does not end after it starts"#,
        ),
        (
            mon(json!(["09:00-09:00"])),
            r#"hours.mon[0]: "09:00-09:00" does not end after it starts"#,
        ),
        (
            mon(json!(["11:00-13:00", "08:00-12:00"])),
            r#"hours.mon: "08:00-12:00" and "11:00-13:00" overlap"#,
        ),
        (
            mon(json!([])),
            "hours: no weekday has opening hours, so the calendar would never open",
        ),
        (
            with("holidays", json!(["2026-12-24", "2026-02-30"])),
            r#"holidays[1]: "2026-02-30" is not a date of the form "YYYY-MM-DD""#,
        ),
        (
            with("holidays", json!(["2026-12-24T00:00"])),
            r#"holidays[0]: "2026-12-24T00:00" is not a date of the form "YYYY-MM-DD""#,
        ),
        (
            with("exceptions", json!({ "31.12.2026": [] })),
            r#"exceptions: "31.12.2026" is not a date of the form "YYYY-MM-DD""#,
        ),
        (
            with("exceptions", json!({ "2026-12-31": ["09:00-25:00"] })),
            r#"exceptions.2026-12-31[0]: "09:00-25:00" is not opening hours of the form "HH:MM-HH:MM""#,
        ),
        (
            json!({
                "zone": "UTC",
                "hours": { "mon": ["09:00-17:00"] },
                "holidays": ["2026-12-31"],
                "exceptions": { "2026-12-31": ["09:00-12:00"] },
            }),
            "2026-12-31 is both a holiday and an exception; list it in one place",
        ),
    ];
    for (spec, expected) in cases {
        let spec: CalendarSpec = serde_json::from_value(spec).unwrap();
        let error = BusinessCalendar::try_from(spec).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn unknown_weekday_keys_are_refused_by_name() {
    let spec = json!({ "zone": "UTC", "hours": { "monday": ["09:00-17:00"] } });
    let error = serde_json::from_value::<BusinessCalendar>(spec)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `monday`"), "{error}");
}

#[test]
fn spec_errors_surface_when_deserialising_a_calendar() {
    let spec = json!({ "zone": "UTC", "hours": { "tue": ["17:00-09:00"] } });
    let error = serde_json::from_value::<BusinessCalendar>(spec)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        r#"hours.tue[0]: "17:00-09:00" does not end after it starts"#
    );
}

// ---- Properties ------------------------------------------------------------------------

/// Each zone beside its DST changes in both directions (and the US and Australian ones
/// for good measure in Europe) and beside the year end: every property is checked within a
/// few days of one of them, often within hours.
const ZONE_ANCHORS: [(&str, &str); 14] = [
    (BRATISLAVA, "2026-03-29T01:00:00Z"),
    (BRATISLAVA, "2026-10-25T01:00:00Z"),
    (BRATISLAVA, "2026-12-31T23:00:00Z"),
    (BRATISLAVA, "2026-03-08T07:00:00Z"),
    ("America/New_York", "2026-03-08T07:00:00Z"),
    ("America/New_York", "2026-11-01T06:00:00Z"),
    ("America/New_York", "2027-01-01T05:00:00Z"),
    ("America/New_York", "2026-10-25T01:00:00Z"),
    ("Australia/Sydney", "2026-04-04T16:00:00Z"),
    ("Australia/Sydney", "2026-10-03T16:00:00Z"),
    ("Australia/Sydney", "2026-12-31T13:00:00Z"),
    ("UTC", "2026-12-31T23:00:00Z"),
    ("UTC", "2026-03-29T01:00:00Z"),
    ("UTC", "2026-11-01T06:00:00Z"),
];

/// One day's hours as minute pairs on a 15-minute grid: sorted, disjoint, never empty.
/// Half the boundaries fall between 01:00 and 04:00, where clocks change.
fn day_hours() -> impl Strategy<Value = Vec<(u16, u16)>> {
    let quarter = prop_oneof![0u16..=96, 4u16..=16];
    prop::collection::btree_set(quarter, 0..=6).prop_map(|points| {
        let points: Vec<u16> = points.into_iter().map(|quarter| quarter * 15).collect();
        points
            .chunks_exact(2)
            .map(|pair| (pair[0], pair[1]))
            .collect()
    })
}

fn render(hours: &[(u16, u16)]) -> Vec<String> {
    let clock = |minutes: u16| format!("{:02}:{:02}", minutes / 60, minutes % 60);
    hours
        .iter()
        .map(|&(start, end)| format!("{}-{}", clock(start), clock(end)))
        .collect()
}

/// A random calendar's parts, kept raw so that a test can model them independently.
#[derive(Clone, Debug)]
struct Parts {
    week: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
    exceptions: BTreeMap<Date, Vec<(u16, u16)>>,
}

impl Parts {
    fn calendar(&self, zone: &str) -> Option<BusinessCalendar> {
        let [mon, tue, wed, thu, fri, sat, sun] = self.week.each_ref().map(|day| render(day));
        let spec = CalendarSpec {
            zone: zone.to_owned(),
            hours: WeekSpec {
                mon,
                tue,
                wed,
                thu,
                fri,
                sat,
                sun,
            },
            holidays: self.holidays.iter().map(ToString::to_string).collect(),
            exceptions: self
                .exceptions
                .iter()
                .map(|(day, hours)| (day.to_string(), render(hours)))
                .collect(),
        };
        // A week without hours is refused; proptest draws another.
        BusinessCalendar::try_from(spec).ok()
    }

    fn hours_on(&self, day: Date) -> &[(u16, u16)] {
        match self.exceptions.get(&day) {
            Some(hours) => hours,
            None if self.holidays.contains(&day) => &[],
            None => &self.week[day.weekday().to_monday_zero_offset() as usize],
        }
    }

    /// Which of the `count` minutes from `first` are open, found without the calendar's
    /// arithmetic: from the local clock of every minute, each interval runs from the first
    /// minute that shows its start or later to the first that shows its end or later.
    ///
    /// Opening times are looked for from a day before `first`, which is early enough for
    /// every zone tested (their clocks never jump by a day).
    fn open_minutes(&self, zone: &TimeZone, first: Timestamp, count: i64) -> Vec<bool> {
        let scan_from = first - SignedDuration::from_hours(24);
        let scanned = count + 2 * 24 * 60;
        let clocks: Vec<DateTime> = (0..scanned)
            .map(|minute| zone.to_datetime(scan_from + SignedDuration::from_mins(minute)))
            .collect();
        let first_showing = |local: DateTime| {
            clocks
                .iter()
                .position(|clock| *clock >= local)
                .unwrap_or(clocks.len())
        };
        let mut open = vec![false; clocks.len()];
        let (first_day, last_day) = (clocks[0].date(), clocks[clocks.len() - 1].date());
        for day in successors(first_day.tomorrow().ok(), |day| day.tomorrow().ok())
            .take_while(|day| *day <= last_day)
        {
            for &(start, end) in self.hours_on(day) {
                let local = |minute: u16| {
                    day.to_datetime(jiff::civil::Time::midnight())
                        + SignedDuration::from_mins(i64::from(minute))
                };
                open[first_showing(local(start))..first_showing(local(end))].fill(true);
            }
        }
        open.drain(..24 * 60);
        open.truncate(usize::try_from(count).unwrap_or(0));
        open
    }
}

/// Holidays and exceptions fall within a few weeks of `anchor`'s date.
fn parts(anchor: Timestamp) -> impl Strategy<Value = Parts> {
    let anchor_day = anchor.to_zoned_datetime(TimeZone::UTC).date();
    let near = move |offset: i64| anchor_day.checked_add(offset.days()).unwrap();
    (
        prop::array::uniform7(day_hours()),
        prop::collection::btree_set(-10i64..20, 0..4),
        prop::collection::btree_map(-10i64..20, day_hours(), 0..3),
    )
        .prop_map(move |(week, holidays, exceptions)| {
            let holidays: BTreeSet<Date> = holidays.into_iter().map(near).collect();
            let exceptions = exceptions
                .into_iter()
                .map(|(offset, hours)| (near(offset), hours))
                .filter(|(day, _)| !holidays.contains(day))
                .collect();
            Parts {
                week,
                holidays,
                exceptions,
            }
        })
}

#[derive(Clone, Debug)]
struct Scenario {
    calendar: BusinessCalendar,
    anchor: Timestamp,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop::sample::select(&ZONE_ANCHORS[..]).prop_flat_map(|(zone, anchor)| {
        let anchor: Timestamp = anchor.parse().unwrap();
        parts(anchor).prop_filter_map("a week without hours", move |parts| {
            Some(Scenario {
                calendar: parts.calendar(zone)?,
                anchor,
            })
        })
    })
}

/// An offset from an anchor of up to three days either way: on the minute (so it often
/// hits an opening or closing exactly), on the second, or on the nanosecond; or within
/// six hours, on the minute.
fn offset() -> impl Strategy<Value = SignedDuration> {
    prop_oneof![
        (-360i64..360).prop_map(SignedDuration::from_mins),
        (-4_320i64..4_320).prop_map(SignedDuration::from_mins),
        (-259_200i64..259_200).prop_map(SignedDuration::from_secs),
        (-259_200_000_000_000i64..259_200_000_000_000).prop_map(SignedDuration::from_nanos),
    ]
}

/// Business time of up to 40 hours, sometimes none.
fn duration() -> impl Strategy<Value = SignedDuration> {
    prop_oneof![
        1 => Just(SignedDuration::ZERO),
        4 => (1i64..=2_400).prop_map(SignedDuration::from_mins),
        4 => (1i64..=144_000).prop_map(SignedDuration::from_secs),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn adding_in_two_steps_equals_adding_the_sum(
        s in scenario(), offset in offset(), d1 in duration(), d2 in duration(),
    ) {
        let start = s.anchor + offset;
        let stepwise = s.calendar.add(s.calendar.add(start, d1)?, d2)?;
        prop_assert_eq!(stepwise, s.calendar.add(start, d1 + d2)?);
    }

    #[test]
    fn a_deadline_is_open_time_or_a_closing_instant(
        s in scenario(), offset in offset(), d in duration(),
    ) {
        prop_assume!(!d.is_zero());
        let start = s.anchor + offset;
        let due = s.calendar.add(start, d)?;
        prop_assert!(due > start);
        // The instant before the deadline is open: the deadline is never deep in closed time.
        prop_assert!(s.calendar.is_open(due - NANO));
    }

    #[test]
    fn business_time_up_to_a_deadline_is_the_time_added(
        s in scenario(), offset in offset(), d in duration(),
    ) {
        let start = s.anchor + offset;
        prop_assert_eq!(s.calendar.between(start, s.calendar.add(start, d)?), d);
    }

    #[test]
    fn business_time_is_additive_over_split_ranges(
        s in scenario(), a in offset(), b in offset(), c in offset(),
    ) {
        let (a, b, c) = (s.anchor + a, s.anchor + b, s.anchor + c);
        let calendar = &s.calendar;
        prop_assert_eq!(calendar.between(a, c), calendar.between(a, b) + calendar.between(b, c));
        prop_assert_eq!(calendar.between(a, b), -calendar.between(b, a));
        let (low, high) = (a.min(b), a.max(b));
        prop_assert!(calendar.between(low, high) <= high.duration_since(low));
        prop_assert!(calendar.between(low, high) >= SignedDuration::ZERO);
    }

    #[test]
    fn next_open_is_open_and_nothing_before_it_is(s in scenario(), offset in offset()) {
        let start = s.anchor + offset;
        let opens = s.calendar.next_open(start);
        prop_assert!(opens.is_some());
        let opens = opens.unwrap_or(start);
        prop_assert!(opens >= start);
        prop_assert!(s.calendar.is_open(opens));
        prop_assert_eq!(s.calendar.between(start, opens), SignedDuration::ZERO);
        let wait = opens.duration_since(start);
        for step in 0..64 {
            let sample = start + wait * step / 64;
            prop_assert!(sample == opens || !s.calendar.is_open(sample), "open at {}", sample);
        }
        if opens > start {
            prop_assert!(!s.calendar.is_open(opens - NANO));
        }
    }

    #[test]
    fn an_open_window_is_open_throughout_and_closed_at_its_end(
        s in scenario(), offset in offset(),
    ) {
        let start = s.anchor + offset;
        let window = s.calendar.open_window(start);
        prop_assert!(window.is_some());
        let (opens, closes) = window.unwrap_or((start, start));
        prop_assert_eq!(Some(opens), s.calendar.next_open(start));
        prop_assert!(opens < closes);
        prop_assert_eq!(s.calendar.between(opens, closes), closes.duration_since(opens));
        // Closed at its end, unless the window was cut at its longest.
        prop_assert!(
            !s.calendar.is_open(closes) || closes.duration_since(opens) >= SignedDuration::from_hours(24 * 7),
            "open at the window's end {}", closes
        );
    }

    #[test]
    fn is_open_agrees_with_business_time(s in scenario(), offset in offset()) {
        let at = s.anchor + offset;
        prop_assert_eq!(s.calendar.is_open(at), s.calendar.between(at, at + NANO) == NANO);
    }

    #[test]
    fn a_calendar_survives_a_round_trip_through_json(s in scenario()) {
        let stored = serde_json::to_value(&s.calendar)?;
        prop_assert_eq!(serde_json::from_value::<BusinessCalendar>(stored)?, s.calendar);
    }

    #[test]
    fn business_time_is_the_count_of_open_minutes(
        (zone, anchor, parts) in prop::sample::select(&ZONE_ANCHORS[..])
            .prop_flat_map(|(zone, anchor)| {
                let anchor: Timestamp = anchor.parse().unwrap();
                (Just(zone), Just(anchor), parts(anchor))
            }),
        start in -2_880i64..2_880,
        length in 0i64..2_880,
    ) {
        let calendar = parts.calendar(zone);
        prop_assume!(calendar.is_some());
        let calendar = calendar.unwrap_or_default();
        let from = anchor + SignedDuration::from_mins(start);
        let expected = parts.open_minutes(calendar.zone(), from, length);
        let open_minutes = i64::try_from(expected.iter().filter(|open| **open).count())?;
        prop_assert_eq!(
            calendar.between(from, from + SignedDuration::from_mins(length)),
            SignedDuration::from_mins(open_minutes)
        );
        for (minute, open) in (0..).zip(expected) {
            let at = from + SignedDuration::from_mins(minute);
            prop_assert_eq!(calendar.is_open(at), open, "at {}", at);
        }
    }
}
