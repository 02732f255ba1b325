//! Staffing maths: how many agents an interval of contacts needs (Erlang C, and Erlang A
//! where callers abandon), how many to schedule once shrinkage is counted, the workload
//! model for back-office work, and the gaps of a roster against a plan.
//!
//! Conventions: rates come from an [`Interval`] (contacts per interval length), ratios are
//! 0–1, times are seconds. Under Erlang A every figure is over *all* arriving contacts:
//! the service level counts an abandoned contact as not answered in time, and the average
//! speed of answer is the mean wait of all arrivals (Mandelbaum & Zeltyn).

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

/// Why a staffing question has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StaffingError {
    /// An input is outside its domain; the message names it.
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{agents} agents cannot carry {load:.3} Erlangs: without abandonment the queue grows \
         without bound"
    )]
    Unstable { agents: u32, load: f64 },
    #[error("no staffing up to {tried} agents meets the target")]
    Unreachable { tried: u32 },
    #[error("{0} is too large to compute")]
    TooLarge(&'static str),
    #[error("the plan has {required} intervals but the roster has {rostered}")]
    PlanMismatch { required: usize, rostered: usize },
}

/// One interval of contact work: how many contacts arrive in how long, and how long
/// each takes to handle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    arrivals: f64,
    length: Duration,
    aht: Duration,
}

impl Interval {
    pub fn new(arrivals: f64, length: Duration, aht: Duration) -> Result<Self, StaffingError> {
        if !(arrivals.is_finite() && arrivals > 0.0) {
            return Err(StaffingError::Invalid(format!(
                "arrivals must be a positive number of contacts, got {arrivals}"
            )));
        }
        if length.is_zero() {
            return Err(invalid("the interval must be longer than zero"));
        }
        if aht.is_zero() {
            return Err(invalid("the average handle time must be longer than zero"));
        }
        Ok(Interval {
            arrivals,
            length,
            aht,
        })
    }

    /// Offered load in Erlangs: arrivals × AHT ÷ interval length.
    pub fn load(&self) -> f64 {
        self.arrivals * self.aht.as_secs_f64() / self.length.as_secs_f64()
    }

    /// Contacts per second.
    pub fn arrival_rate(&self) -> f64 {
        self.arrivals / self.length.as_secs_f64()
    }

    pub fn aht(&self) -> Duration {
        self.aht
    }
}

/// What an interval must achieve: a share of contacts answered within a time and,
/// optionally, a ceiling on occupancy (to keep agents from burning out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    service_level: f64,
    answer_within: Duration,
    max_occupancy: Option<f64>,
}

impl Target {
    pub fn new(service_level: f64, answer_within: Duration) -> Result<Self, StaffingError> {
        // 100 % is excluded because no number of agents guarantees it: with any staffing
        // a contact can find every agent busy.
        if !(service_level > 0.0 && service_level < 1.0) {
            return Err(StaffingError::Invalid(format!(
                "the target service level must be above 0 % and below 100 %, got {} %",
                service_level * 100.0
            )));
        }
        Ok(Target {
            service_level,
            answer_within,
            max_occupancy: None,
        })
    }

    pub fn with_max_occupancy(self, max_occupancy: f64) -> Result<Self, StaffingError> {
        if !(max_occupancy > 0.0 && max_occupancy <= 1.0) {
            return Err(StaffingError::Invalid(format!(
                "the maximum occupancy must be above 0 and at most 1, got {max_occupancy}"
            )));
        }
        Ok(Target {
            max_occupancy: Some(max_occupancy),
            ..self
        })
    }

    pub fn service_level(&self) -> f64 {
        self.service_level
    }

    pub fn answer_within(&self) -> Duration {
        self.answer_within
    }

    pub fn max_occupancy(&self) -> Option<f64> {
        self.max_occupancy
    }

    /// Results within this of a limit count as meeting it, so that rounding in exact
    /// inputs (8 Erlangs on 10 agents at 80 % maximum occupancy) does not add an agent.
    const TOLERANCE: f64 = 1e-12;

    fn is_met_by(&self, performance: &Performance) -> bool {
        performance.service_level >= self.service_level - Self::TOLERANCE
            && self
                .max_occupancy
                .is_none_or(|max| performance.occupancy <= max + Self::TOLERANCE)
    }
}

/// The queueing model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Callers wait as long as it takes.
    ErlangC,
    /// Callers hang up after an exponentially distributed patience with this mean.
    ErlangA { patience: Duration },
}

impl Model {
    /// The name reports and the API give the model.
    pub fn name(self) -> &'static str {
        match self {
            Model::ErlangC => "erlang-c",
            Model::ErlangA { .. } => "erlang-a",
        }
    }
}

/// How an interval performs with a given number of agents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Performance {
    pub agents: u32,
    /// Share of all arriving contacts answered within the target time.
    pub service_level: f64,
    /// Share of arriving contacts that find every agent busy.
    pub p_wait: f64,
    /// Average speed of answer: the mean wait of all arriving contacts, in seconds.
    pub asa_seconds: f64,
    /// Share of the agents' time spent handling contacts.
    pub occupancy: f64,
    /// Share of arriving contacts that abandon; `None` under Erlang C.
    pub p_abandon: Option<f64>,
}

/// Erlang B (blocking probability) by the stable recursion, which needs no factorials
/// and so never overflows. `load` is in Erlangs.
pub fn erlang_b(load: f64, agents: u32) -> f64 {
    (1..=agents).fold(1.0, |b, k| next_erlang_b(load, k, b))
}

/// B(k) from B(k − 1).
fn next_erlang_b(load: f64, k: u32, previous: f64) -> f64 {
    load * previous / (f64::from(k) + load * previous)
}

/// Erlang C for `agents` agents: defined only when they outnumber the offered load.
pub fn erlang_c(
    interval: &Interval,
    agents: u32,
    answer_within: Duration,
) -> Result<Performance, StaffingError> {
    erlang_c_given_b(
        interval,
        agents,
        erlang_b(interval.load(), agents),
        answer_within,
    )
}

fn erlang_c_given_b(
    interval: &Interval,
    agents: u32,
    erlang_b: f64,
    answer_within: Duration,
) -> Result<Performance, StaffingError> {
    let load = interval.load();
    let n = f64::from(agents);
    if n <= load {
        return Err(StaffingError::Unstable { agents, load });
    }
    let aht = interval.aht.as_secs_f64();
    let p_wait = n * erlang_b / (n - load * (1.0 - erlang_b));
    Ok(Performance {
        agents,
        service_level: 1.0 - p_wait * (-(n - load) * answer_within.as_secs_f64() / aht).exp(),
        p_wait,
        asa_seconds: p_wait * aht / (n - load),
        occupancy: load / n,
        p_abandon: None,
    })
}

/// Erlang A (M/M/N+M) for `agents` agents, exact: the birth–death chain of contacts in
/// the system, truncated where the remaining probability is below about 1e-17.
pub fn erlang_a(
    interval: &Interval,
    agents: u32,
    patience: Duration,
    answer_within: Duration,
) -> Result<Performance, StaffingError> {
    erlang_a_given_b(
        interval,
        agents,
        erlang_b(interval.load(), agents),
        patience,
        answer_within,
    )
}

/// Queue states beyond this many are refused rather than ground through.
const MAX_QUEUE_STATES: u64 = 10_000_000;

fn erlang_a_given_b(
    interval: &Interval,
    agents: u32,
    erlang_b: f64,
    patience: Duration,
    answer_within: Duration,
) -> Result<Performance, StaffingError> {
    if agents == 0 {
        return Err(invalid("Erlang A needs at least one agent"));
    }
    if patience.is_zero() {
        return Err(invalid("the mean patience must be longer than zero"));
    }
    let load = interval.load();
    let n = f64::from(agents);
    let aht = interval.aht.as_secs_f64();
    let patience = patience.as_secs_f64();
    let t = answer_within.as_secs_f64();

    // With k contacts waiting, the chain moves up at rate λ and down at N·μ + k·θ, so
    // P(k waiting) ∝ q_k = Π_{i≤k} λ/(N·μ + i·θ), relative to P(all N busy, none waiting).
    // The q_k can overflow when λ > N·μ, so they are summed in logs with a running scale.
    //
    // A contact that finds k waiting is answered within t if the k ahead of it leave
    // (rates N·μ + j·θ) and then an agent frees up (N·μ), all before t and before its own
    // patience runs out (θ). With r = N·μ/θ the chance it survives every step telescopes
    // to r/(r+k+1), and e^(−θ·T) of the time T taken is Beta(r+1, k+1), so
    //   g_k = r/(r+k+1) · (1 − Σ_{j≤k} C(r+j, j) y^(r+1) (1−y)^j),  y = e^(−θ·t):
    // a negative binomial sum with positive terms, also kept in logs.
    let r = n * patience / aht;
    let ln_y = -t / patience;
    let ln_not_y = (-(-t / patience).exp_m1()).ln();
    let mut ln_q = 0.0_f64;
    let mut ln_term = (r + 1.0) * ln_y;
    let mut answered_in_time_cdf = 0.0_f64;
    let mut scale = 0.0_f64;
    let (mut mass, mut waiting, mut answered) = (0.0_f64, 0.0_f64, 0.0_f64);
    for k in 0..=MAX_QUEUE_STATES {
        let kf = k as f64;
        let ratio = load * patience / (n * patience + kf * aht);
        if k > 0 {
            ln_q += ratio.ln();
            ln_term += ((r + kf) / kf).ln() + ln_not_y;
        }
        answered_in_time_cdf += ln_term.exp();
        if ln_q > scale {
            let shrink = (scale - ln_q).exp();
            mass *= shrink;
            waiting *= shrink;
            answered *= shrink;
            scale = ln_q;
        }
        let weight = (ln_q - scale).exp();
        mass += weight;
        waiting += kf * weight;
        answered += weight * r / (r + kf + 1.0) * (1.0 - answered_in_time_cdf).max(0.0);
        // Past the peak the q_k fall faster than geometrically; e^−40 ≈ 4e−18.
        if ratio < 1.0 && ln_q - scale < -40.0 {
            let ln_queue_mass = scale + mass.ln();
            // P(n ≥ N) = Q·B / (1 − B + Q·B), Q = Σ q_k; written so that B = 0 gives 0.
            let p_wait = 1.0 / (1.0 + (1.0 - erlang_b) * (-ln_queue_mass - erlang_b.ln()).exp());
            let mean_queue = p_wait * waiting / mass;
            // Little's law over all arrivals, and PASTA: θ·E[queue] abandon per second.
            let asa_seconds = mean_queue / interval.arrival_rate();
            // Busy agents: N when all are busy; below that π_n ∝ A^n/n!, whose partial
            // mean is Σ_{n<N} n·π_n = A·(1 − p_wait) − N·π_N. Counted directly, not as
            // A·(1 − P(abandon))/N, which cancels badly when nearly everyone abandons.
            let all_busy_none_waiting = p_wait * (-ln_queue_mass).exp();
            return Ok(Performance {
                agents,
                service_level: (1.0 - p_wait) + p_wait * answered / mass,
                p_wait,
                asa_seconds,
                occupancy: p_wait - all_busy_none_waiting + load * (1.0 - p_wait) / n,
                p_abandon: Some(asa_seconds / patience),
            });
        }
    }
    Err(StaffingError::TooLarge("the queue (arrivals × patience)"))
}

/// The fewest agents that meet `target` under `model`, with how they perform.
pub fn required_agents(
    interval: &Interval,
    model: Model,
    target: &Target,
) -> Result<Performance, StaffingError> {
    let load = interval.load();
    // Erlang C needs more agents than Erlangs. Under Erlang A the service level is at most
    // the answered share, which N agents cap at N/A, so fewer than SL·A cannot do.
    let first = match model {
        Model::ErlangC => load.floor() + 1.0,
        Model::ErlangA { .. } => (target.service_level * load).floor().max(1.0),
    };
    // Far more than any reachable target needs: the square-root staffing rule puts even
    // a 1 − 1e−15 target within about 8·√A above the load (or the occupancy bound).
    let last =
        load.max(target.max_occupancy.map_or(load, |max| load / max)) + 20.0 * load.sqrt() + 100.0;
    if last > f64::from(MAX_AGENTS) {
        return Err(StaffingError::TooLarge("the offered load"));
    }
    let (first, last) = (first as u32, last.ceil() as u32);
    let mut b = erlang_b(load, first);
    for agents in first..=last {
        if agents > first {
            b = next_erlang_b(load, agents, b);
        }
        let performance = match model {
            Model::ErlangC => erlang_c_given_b(interval, agents, b, target.answer_within)?,
            Model::ErlangA { patience } => {
                erlang_a_given_b(interval, agents, b, patience, target.answer_within)?
            }
        };
        if target.is_met_by(&performance) {
            return Ok(performance);
        }
    }
    Err(StaffingError::Unreachable { tried: last })
}

/// A floor larger than this is refused.
const MAX_AGENTS: u32 = 10_000_000;

/// The share of paid time in which agents are not available for work (breaks, training,
/// absence), kept as an exact decimal so that grossing up never rounds the wrong way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shrinkage(Decimal);

impl Shrinkage {
    pub fn new(share: Decimal) -> Result<Self, StaffingError> {
        if !(Decimal::ZERO..Decimal::ONE).contains(&share) {
            return Err(StaffingError::Invalid(format!(
                "shrinkage must be at least 0 and below 1, got {share}"
            )));
        }
        Ok(Shrinkage(share))
    }

    pub fn share(&self) -> Decimal {
        self.0
    }

    /// Agents to schedule so that `agents` are available: ⌈agents ÷ (1 − shrinkage)⌉,
    /// exactly (1 agent at 0.8 is 5, where floating point gives 6).
    pub fn scheduled(&self, agents: u32) -> Result<u64, StaffingError> {
        self.gross_up(u128::from(agents), 1)
    }

    /// ⌈(numerator ÷ denominator) ÷ (1 − shrinkage)⌉ in integers: 1 − shrinkage is
    /// m ÷ 10^scale, so this is ⌈numerator · 10^scale ÷ (denominator · m)⌉.
    fn gross_up(&self, numerator: u128, denominator: u128) -> Result<u64, StaffingError> {
        let available = (Decimal::ONE - self.0).normalize();
        let m = available.mantissa().unsigned_abs();
        let too_large = || StaffingError::TooLarge("the scheduled staff");
        let numerator = numerator
            .checked_mul(10u128.pow(available.scale()))
            .ok_or_else(too_large)?;
        let denominator = denominator.checked_mul(m).ok_or_else(too_large)?;
        u64::try_from(numerator.div_ceil(denominator)).map_err(|_| too_large())
    }
}

impl FromStr for Shrinkage {
    type Err = StaffingError;

    /// Parses a decimal like `0.3` straight into exact arithmetic, never through `f64`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let share = Decimal::from_str(text.trim()).map_err(|_| {
            StaffingError::Invalid(format!(
                "shrinkage must be a decimal number like 0.3, got `{text}`"
            ))
        })?;
        Shrinkage::new(share)
    }
}

/// Back-office work over a window: no caller waits, so staff follows the work content.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    /// Items already waiting that must be cleared in the window.
    pub backlog: u64,
    /// Items expected to arrive in the window.
    pub arrivals: u64,
    /// Average handle time of an item.
    pub aht: Duration,
    /// Productive time one worker gives in the window.
    pub productive_time: Duration,
}

/// Back-office staff for a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackOfficeStaff {
    /// (backlog + arrivals) × AHT ÷ productive time: fractional workers.
    pub agents: f64,
    /// `agents` rounded up, exactly.
    pub required: u64,
    /// ⌈agents ÷ (1 − shrinkage)⌉, exactly: shrinkage applies to the fractional figure.
    pub scheduled: u64,
}

/// Workers a back-office window needs: (backlog + arrivals) × AHT ÷ productive time per
/// worker, then shrinkage. Durations are counted in nanoseconds, so rounding is exact.
pub fn workload_staff(
    workload: &Workload,
    shrinkage: Shrinkage,
) -> Result<BackOfficeStaff, StaffingError> {
    if workload.aht.is_zero() {
        return Err(invalid("the average handle time must be longer than zero"));
    }
    if workload.productive_time.is_zero() {
        return Err(invalid("the productive time must be longer than zero"));
    }
    let items = u128::from(workload.backlog) + u128::from(workload.arrivals);
    let work = items
        .checked_mul(workload.aht.as_nanos())
        .ok_or(StaffingError::TooLarge("the workload"))?;
    let per_worker = workload.productive_time.as_nanos();
    let required = u64::try_from(work.div_ceil(per_worker))
        .map_err(|_| StaffingError::TooLarge("the workload"))?;
    Ok(BackOfficeStaff {
        agents: work as f64 / per_worker as f64,
        required,
        scheduled: shrinkage.gross_up(work, per_worker)?,
    })
}

/// One interval of a staffing plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    /// Expected arrivals.
    pub arrivals: f64,
    /// The fewest agents meeting the target (0 when nothing is expected).
    pub agents: u32,
    /// Agents to schedule after shrinkage.
    pub scheduled: u64,
    /// How the agents would perform; `None` when nothing is expected.
    pub performance: Option<Performance>,
}

/// Staffs each interval of a forecast: the agents the target needs and how many to
/// schedule. Intervals expecting (almost) nothing need nobody.
pub fn plan(
    arrivals: &[f64],
    length: Duration,
    aht: Duration,
    model: Model,
    target: &Target,
    shrinkage: Shrinkage,
) -> Result<Vec<PlanRow>, StaffingError> {
    arrivals
        .iter()
        .map(|&expected| {
            // Below a thousandth of a contact the interval is empty in all but name.
            if expected < 1e-3 {
                return Ok(PlanRow {
                    arrivals: expected.max(0.0),
                    agents: 0,
                    scheduled: 0,
                    performance: None,
                });
            }
            let interval = Interval::new(expected, length, aht)?;
            let performance = required_agents(&interval, model, target)?;
            Ok(PlanRow {
                arrivals: expected,
                agents: performance.agents,
                scheduled: shrinkage.scheduled(performance.agents)?,
                performance: Some(performance),
            })
        })
        .collect()
}

/// Per interval, how many agents the roster is short of the plan (positive) or over it
/// (negative).
pub fn plan_gaps(required: &[u32], rostered: &[u32]) -> Result<Vec<i64>, StaffingError> {
    if required.len() != rostered.len() {
        return Err(StaffingError::PlanMismatch {
            required: required.len(),
            rostered: rostered.len(),
        });
    }
    Ok(required
        .iter()
        .zip(rostered)
        .map(|(&need, &have)| i64::from(need) - i64::from(have))
        .collect())
}

fn invalid(message: &str) -> StaffingError {
    StaffingError::Invalid(message.to_owned())
}

#[cfg(test)]
#[path = "staffing_tests.rs"]
mod tests;
