//! Business calendars: when an engagement's floor is open, so that SLA deadlines count
//! business time rather than wall-clock time.
//!
//! A calendar is weekly opening hours in the local time of an IANA zone, plus holidays and
//! one-off exception days. Opening hours are half-open, `[start, end)`: work finished
//! exactly at closing time is on time, and a deadline may land on a closing instant.
//!
//! Local times become instants through the zone, so 09:00 is 09:00 on both sides of a
//! daylight-saving change. A local time that a change skips or repeats means the *first*
//! instant at which the local clock shows that time or later: a time skipped by a
//! spring-forward gap means the moment the clocks jump (so an interval wholly inside the
//! gap is closed), and a time repeated by a fall-back fold means its first occurrence (so
//! an interval spanning the fold includes the repeated hour). That mapping never runs
//! backwards, so a day's intervals stay ordered and disjoint as instants.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::iter::successors;

use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

const MINUTES_PER_DAY: u16 = 24 * 60;

/// How many days in a row `add` and `next_open` walk through closed days before giving
/// up (ten years): holidays can close a calendar for good, and the walk must end.
const MAX_CLOSED_DAYS: u32 = 3_653;

/// How many touching spans after the first `open_window` joins into one window (two
/// weeks of days open until midnight).
const MAX_WINDOW_SPANS: usize = 14;

/// Weekday keys of [`WeekSpec`], Monday first like [`BusinessCalendar`]'s week.
pub const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// An engagement's opening hours, validated; build one from a [`CalendarSpec`].
///
/// Serialises as its [`CalendarSpec`], so the store keeps it as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "CalendarSpec", into = "CalendarSpec")]
pub struct BusinessCalendar {
    zone_name: String,
    zone: TimeZone,
    /// Opening hours per weekday, Monday first; each day sorted and disjoint.
    weekly: [Vec<OpeningInterval>; 7],
    holidays: BTreeSet<Date>,
    /// Days with their own hours instead of the weekday's; never also a holiday.
    exceptions: BTreeMap<Date, Vec<OpeningInterval>>,
}

/// Why [`BusinessCalendar::add`] has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Business time only runs forward; a negative amount is a caller's mistake.
    #[error("business time cannot be negative (got {0})")]
    NegativeDuration(SignedDuration),
    #[error("the calendar stays closed for ten years in a row, so no deadline can be set")]
    ClosedForTenYears,
}

/// Why a [`CalendarSpec`] is not a calendar, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("zone: {0:?} is not a known IANA time zone, such as \"Europe/Bratislava\"")]
    UnknownZone(String),
    #[error("{field}: {value:?} is not opening hours of the form \"HH:MM-HH:MM\"")]
    MalformedInterval { field: String, value: String },
    #[error("{field}: {value:?} does not end after it starts")]
    EndNotAfterStart { field: String, value: String },
    #[error("{field}: {first:?} and {second:?} overlap")]
    OverlappingIntervals {
        field: String,
        first: String,
        second: String,
    },
    #[error("{field}: {value:?} is not a date of the form \"YYYY-MM-DD\"")]
    MalformedDate { field: String, value: String },
    #[error("{date} is both a holiday and an exception; list it in one place")]
    HolidayAndException { date: Date },
    #[error("hours: no weekday has opening hours, so the calendar would never open")]
    NoWeeklyHours,
}

/// A calendar as users write it and the store keeps it, e.g.
/// `{ "zone": "Europe/Bratislava", "hours": { "mon": ["08:00-12:00", "13:00-17:00"] },
/// "holidays": ["2026-12-24"], "exceptions": { "2026-12-31": ["09:00-12:00"] } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// An IANA time zone name.
    pub zone: String,
    pub hours: WeekSpec,
    /// Dates (`YYYY-MM-DD`) closed all day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
    /// Dates with their own hours instead of the weekday's; an empty list closes the day.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exceptions: BTreeMap<String, Vec<String>>,
}

/// Opening hours per weekday as `"HH:MM-HH:MM"` (an end of `24:00` is midnight); a day
/// left out is closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mon: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tue: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thu: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fri: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sat: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sun: Vec<String>,
}

impl WeekSpec {
    /// The days, Monday first, in the order of [`WEEKDAY_KEYS`].
    fn days(&self) -> [&[String]; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }
}

/// Local opening hours within one day, `[start, end)` in minutes after midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpeningInterval {
    start: u16,
    /// Up to `MINUTES_PER_DAY`, which is the next midnight.
    end: u16,
}

impl OpeningInterval {
    const WHOLE_DAY: Self = Self {
        start: 0,
        end: MINUTES_PER_DAY,
    };

    fn parse(field: &str, text: &str) -> Result<Self, CalendarError> {
        let parsed = text
            .split_once('-')
            .and_then(|(start, end)| Some((parse_clock(start)?, parse_clock(end)?)));
        match parsed {
            None => Err(CalendarError::MalformedInterval {
                field: field.to_owned(),
                value: text.to_owned(),
            }),
            Some((start, end)) if end <= start => Err(CalendarError::EndNotAfterStart {
                field: field.to_owned(),
                value: text.to_owned(),
            }),
            Some((start, end)) => Ok(Self { start, end }),
        }
    }
}

impl fmt::Display for OpeningInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Minutes after midnight of a strict `HH:MM`, allowing `24:00`.
fn parse_clock(text: &str) -> Option<u16> {
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u16>().ok())
            .flatten()
    };
    let (hours, minutes) = text.split_once(':')?;
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    let minute_of_day = hours * 60 + minutes;
    (minutes < 60 && minute_of_day <= MINUTES_PER_DAY).then_some(minute_of_day)
}

/// One day's hours, sorted; adjacent intervals may touch but not overlap.
fn parse_day(field: &str, texts: &[String]) -> Result<Vec<OpeningInterval>, CalendarError> {
    let mut intervals = texts
        .iter()
        .enumerate()
        .map(|(i, text)| OpeningInterval::parse(&format!("{field}[{i}]"), text))
        .collect::<Result<Vec<_>, _>>()?;
    intervals.sort_by_key(|interval| interval.start);
    if let Some(pair) = intervals
        .windows(2)
        .find(|pair| pair[1].start < pair[0].end)
    {
        return Err(CalendarError::OverlappingIntervals {
            field: field.to_owned(),
            first: pair[0].to_string(),
            second: pair[1].to_string(),
        });
    }
    Ok(intervals)
}

/// A strict `YYYY-MM-DD` date.
fn parse_date(field: &str, text: &str) -> Result<Date, CalendarError> {
    text.parse::<Date>()
        .ok()
        .filter(|date| date.to_string() == text)
        .ok_or_else(|| CalendarError::MalformedDate {
            field: field.to_owned(),
            value: text.to_owned(),
        })
}

fn parse_zone(name: &str) -> Result<(String, TimeZone), CalendarError> {
    // UTC needs no time zone database, so calendar-less engagements work without one.
    if name == "UTC" {
        return Ok((name.to_owned(), TimeZone::UTC));
    }
    let zone = TimeZone::get(name).map_err(|_| CalendarError::UnknownZone(name.to_owned()))?;
    let canonical = zone.iana_name().unwrap_or(name).to_owned();
    Ok((canonical, zone))
}

impl TryFrom<CalendarSpec> for BusinessCalendar {
    type Error = CalendarError;

    fn try_from(spec: CalendarSpec) -> Result<Self, CalendarError> {
        let (zone_name, zone) = parse_zone(&spec.zone)?;
        let mut weekly: [Vec<OpeningInterval>; 7] = Default::default();
        for ((hours, key), texts) in weekly.iter_mut().zip(WEEKDAY_KEYS).zip(spec.hours.days()) {
            *hours = parse_day(&format!("hours.{key}"), texts)?;
        }
        if weekly.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoWeeklyHours);
        }
        let holidays = spec
            .holidays
            .iter()
            .enumerate()
            .map(|(i, text)| parse_date(&format!("holidays[{i}]"), text))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let exceptions = spec
            .exceptions
            .iter()
            .map(|(day, texts)| {
                let date = parse_date("exceptions", day)?;
                Ok((date, parse_day(&format!("exceptions.{day}"), texts)?))
            })
            .collect::<Result<BTreeMap<_, _>, CalendarError>>()?;
        if let Some(&date) = exceptions.keys().find(|date| holidays.contains(date)) {
            return Err(CalendarError::HolidayAndException { date });
        }
        Ok(Self {
            zone_name,
            zone,
            weekly,
            holidays,
            exceptions,
        })
    }
}

impl From<&BusinessCalendar> for CalendarSpec {
    fn from(calendar: &BusinessCalendar) -> Self {
        let render = |hours: &[OpeningInterval]| -> Vec<String> {
            hours.iter().map(ToString::to_string).collect()
        };
        let [mon, tue, wed, thu, fri, sat, sun] = calendar.weekly.each_ref().map(|day| render(day));
        CalendarSpec {
            zone: calendar.zone_name.clone(),
            hours: WeekSpec {
                mon,
                tue,
                wed,
                thu,
                fri,
                sat,
                sun,
            },
            holidays: calendar.holidays.iter().map(ToString::to_string).collect(),
            exceptions: calendar
                .exceptions
                .iter()
                .map(|(date, hours)| (date.to_string(), render(hours)))
                .collect(),
        }
    }
}

impl From<BusinessCalendar> for CalendarSpec {
    fn from(calendar: BusinessCalendar) -> Self {
        Self::from(&calendar)
    }
}

/// Two calendars are equal when they open at the same local times in the same-named zone.
impl PartialEq for BusinessCalendar {
    fn eq(&self, other: &Self) -> bool {
        self.zone_name == other.zone_name
            && self.weekly == other.weekly
            && self.holidays == other.holidays
            && self.exceptions == other.exceptions
    }
}

impl Eq for BusinessCalendar {}

/// Always open: business time is wall-clock time.
impl Default for BusinessCalendar {
    fn default() -> Self {
        Self::always_open()
    }
}

/// Open business time as instants, `[start, end)`, never empty.
#[derive(Clone, Copy, Debug)]
struct OpenSpan {
    start: Timestamp,
    end: Timestamp,
}

impl OpenSpan {
    fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// How much of `[from, to)` this span covers.
    fn overlap(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        let (start, end) = (self.start.max(from), self.end.min(to));
        if start < end {
            end.duration_since(start)
        } else {
            SignedDuration::ZERO
        }
    }
}

impl BusinessCalendar {
    /// Open around the clock in UTC: the calendar of engagements that define none, under
    /// which business time is plain wall-clock time.
    pub fn always_open() -> Self {
        Self {
            zone_name: "UTC".to_owned(),
            zone: TimeZone::UTC,
            weekly: std::array::from_fn(|_| vec![OpeningInterval::WHOLE_DAY]),
            holidays: BTreeSet::new(),
            exceptions: BTreeMap::new(),
        }
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Whether `at` falls within opening hours (a closing instant itself is closed).
    pub fn is_open(&self, at: Timestamp) -> bool {
        let day = self.local_date(at);
        // The next day too: a fold across midnight can open it before `at`'s local date ends.
        successors(Some(day), |day| day.tomorrow().ok())
            .take(2)
            .flat_map(|day| self.spans_on(day))
            .any(|span| span.contains(at))
    }

    /// The first open instant at or after `from`: `from` itself when open. `None` when the
    /// calendar stays closed for ten years.
    pub fn next_open(&self, from: Timestamp) -> Option<Timestamp> {
        self.spans_from(from)
            .next()
            .map(|span| span.start.max(from))
    }

    /// The first open window at or after `from`: from its opening (`from` itself when
    /// open) to the next closed instant. Spans that touch, such as a day open until
    /// midnight and the next one open from it, are one window; a calendar open around the
    /// clock gives a window of `MAX_WINDOW_SPANS` spans, not an endless one. `None` when
    /// the calendar stays closed for ten years.
    pub fn open_window(&self, from: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let mut spans = self.spans_from(from);
        let first = spans.next()?;
        let mut end = first.end;
        for span in spans.take(MAX_WINDOW_SPANS) {
            if span.start > end {
                break;
            }
            end = end.max(span.end);
        }
        Some((first.start.max(from), end))
    }

    /// The instant at which `duration` of business time has elapsed since `from`: the
    /// earliest `t` with `between(from, t) == duration`.
    ///
    /// A positive duration ends in open time or exactly at a closing instant, never later
    /// inside closed hours. A zero duration returns `from` unchanged, even when closed, so
    /// that adding `d1` then `d2` always equals adding `d1 + d2`.
    pub fn add(
        &self,
        from: Timestamp,
        duration: SignedDuration,
    ) -> Result<Timestamp, ScheduleError> {
        if duration.is_negative() {
            return Err(ScheduleError::NegativeDuration(duration));
        }
        if duration.is_zero() {
            return Ok(from);
        }
        let mut remaining = duration;
        for span in self.spans_from(from) {
            let start = span.start.max(from);
            let open = span.end.duration_since(start);
            if remaining <= open {
                // Cannot overflow: the result is at most `span.end`.
                return Ok(start + remaining);
            }
            remaining -= open;
        }
        Err(ScheduleError::ClosedForTenYears)
    }

    /// Business time within `[from, to)`; when `to` is before `from`, the negation of
    /// `between(to, from)`, so that `between(a, b) + between(b, c) == between(a, c)` for
    /// any three instants. Walks every day of the range.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        if to < from {
            return -self.between(to, from);
        }
        // One day past `to`'s local date: a fold across midnight can open it before `to`.
        let last = self.local_date(to).tomorrow().unwrap_or(Date::MAX);
        successors(Some(self.local_date(from)), |day| day.tomorrow().ok())
            .take_while(|day| *day <= last)
            .flat_map(|day| self.spans_on(day))
            .map(|span| span.overlap(from, to))
            .sum()
    }

    fn local_date(&self, at: Timestamp) -> Date {
        self.zone.to_datetime(at).date()
    }

    fn hours_on(&self, day: Date) -> &[OpeningInterval] {
        if let Some(hours) = self.exceptions.get(&day) {
            hours
        } else if self.holidays.contains(&day) {
            &[]
        } else {
            // In 0..7 by construction.
            &self.weekly[day.weekday().to_monday_zero_offset() as usize]
        }
    }

    /// The open spans of one local day, in order; intervals that a DST gap swallows whole
    /// are left out.
    fn spans_on(&self, day: Date) -> impl Iterator<Item = OpenSpan> + '_ {
        self.hours_on(day).iter().filter_map(move |interval| {
            let start = self.first_instant_showing(day, interval.start)?;
            let end = self.first_instant_showing(day, interval.end)?;
            (start < end).then_some(OpenSpan { start, end })
        })
    }

    /// The open spans that end after `from`, in order, until the calendar has been closed
    /// for `MAX_CLOSED_DAYS` days in a row.
    ///
    /// Spans of days before `from`'s local date all end by `from`, so the walk starts there.
    fn spans_from(&self, from: Timestamp) -> impl Iterator<Item = OpenSpan> + '_ {
        let mut closed_days = 0;
        successors(Some(self.local_date(from)), |day| day.tomorrow().ok())
            .map(move |day| self.spans_on(day).collect::<Vec<_>>())
            .take_while(move |spans| {
                closed_days = if spans.is_empty() { closed_days + 1 } else { 0 };
                closed_days <= MAX_CLOSED_DAYS
            })
            .flatten()
            .filter(move |span| span.end > from)
    }

    /// The first instant at which the local clock shows `minute_of_day` on `day` or later
    /// (see the module documentation for why). `None` only beyond jiff's supported range.
    fn first_instant_showing(&self, day: Date, minute_of_day: u16) -> Option<Timestamp> {
        let (day, minute_of_day) = if minute_of_day == MINUTES_PER_DAY {
            (day.tomorrow().ok()?, 0)
        } else {
            (day, minute_of_day)
        };
        let hour = i8::try_from(minute_of_day / 60).ok()?;
        let minute = i8::try_from(minute_of_day % 60).ok()?;
        let local = day.at(hour, minute, 0, 0);
        match self.zone.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok(),
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the offset after the jump, a skipped time lies before the jump;
                // the jump itself is the first instant whose clock shows it or later.
                let before_jump = after.to_timestamp(local).ok()?;
                let jump = self.zone.following(before_jump).next()?;
                Some(jump.timestamp())
            }
        }
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
