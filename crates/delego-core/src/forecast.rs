//! Arrivals forecast: how many work items will arrive in each coming interval, from the
//! counts of past intervals, with the forecast's own error measured on a held-out tail.
//!
//! The model is a seasonal regression: a level growing linearly, times one index per
//! interval of the season (a week), `y_t = index[t mod season] · (level + trend · t)`,
//! fitted by least squares with older seasons weighted down by a discount picked from the
//! history itself. Why this shape:
//!
//! - Multiplicative, not additive: growth scales the daily shape (more customers call more
//!   at 10:00 and still not at 03:00). An additive season spreads growth evenly over all
//!   intervals, nights included; on a series growing 2 % a week it lost to seasonal naive.
//!   Zero intervals are no trouble here: their index is simply zero.
//! - Regression, not Holt–Winters: for a forecast days ahead, noise dominates interval
//!   counts, and averaging each interval over many weeks beats smoothing, which chases the
//!   last few intervals. On Poisson arrivals with a trend, and with a sudden 30 % level
//!   shift, Holt–Winters with rates fitted out of sample had the higher holdout WAPE.
//! - The discount still lets recent weeks count more when the history is long or has
//!   changed; it is chosen by rolling-origin WAPE, so that the choice never sees the weeks
//!   it is judged on.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// Why no forecast could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForecastError {
    #[error("the season must be at least one interval long")]
    EmptySeason,
    #[error("intervals of {0} do not split a week into a whole number of intervals")]
    Interval(SignedDuration),
    #[error("the history has {got} intervals; at least {needed} are needed")]
    TooShort { got: usize, needed: usize },
}

/// What to forecast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// Intervals per season: 336 for 30-minute intervals and a weekly season.
    pub season: usize,
    /// Intervals to forecast after the last one of the history.
    pub horizon: usize,
    /// Trailing intervals held out to measure the error; 0 skips the measurement.
    pub holdout: usize,
}

impl ForecastConfig {
    /// A weekly season of `interval`-long intervals, holding out the last week.
    pub fn weekly(interval: SignedDuration, horizon: usize) -> Result<Self, ForecastError> {
        const WEEK: SignedDuration = SignedDuration::from_hours(7 * 24);
        let step = interval.as_nanos();
        if step <= 0 || WEEK.as_nanos() % step != 0 {
            return Err(ForecastError::Interval(interval));
        }
        let season = usize::try_from(WEEK.as_nanos() / step)
            .map_err(|_| ForecastError::Interval(interval))?;
        Ok(Self {
            season,
            horizon,
            holdout: season,
        })
    }
}

/// A forecast and how well the method did on the history's tail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Expected arrivals per interval, the first right after the history; never negative.
    pub values: Vec<f64>,
    /// WAPE on the holdout of a forecast fitted without it. `None` when the holdout is 0,
    /// leaves less than two seasons to fit on, or holds no arrivals.
    pub holdout_wape: Option<f64>,
    /// Seasonal naive's WAPE on the same holdout: the figure to beat.
    pub baseline_wape: Option<f64>,
    /// The model fitted on the whole history, which made `values`.
    pub model: Model,
}

/// The fitted regression, as of the end of the history.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Arrivals per interval, averaged over a season, at the last interval of the history.
    pub level: f64,
    /// Change of the level per interval.
    pub trend: f64,
    /// Weight of each season relative to the one after it; 1 weighs all seasons alike.
    pub discount: f64,
}

/// Forecasts `config.horizon` intervals after `history` (arrivals per interval, oldest
/// first), which must hold at least two full seasons.
pub fn forecast(history: &[u32], config: ForecastConfig) -> Result<Forecast, ForecastError> {
    let season = config.season;
    require(history.len(), season, 2)?;
    let series: Vec<f64> = history.iter().map(|&y| f64::from(y)).collect();

    let (mut holdout_wape, mut baseline_wape) = (None, None);
    let train_len = history.len().saturating_sub(config.holdout);
    // Two seasons are the least to tell a trend from a season; less and the holdout says
    // nothing.
    if config.holdout > 0 && train_len >= 2 * season {
        let (train, actual) = history.split_at(train_len);
        let fitted = fit_best(&series[..train_len], season, config.holdout);
        holdout_wape = wape(actual, &fitted.project(config.holdout));
        baseline_wape = wape(actual, &naive(train, season, config.holdout));
    }

    let fitted = fit_best(&series, season, config.horizon);
    Ok(Forecast {
        values: fitted.project(config.horizon),
        holdout_wape,
        baseline_wape,
        model: fitted.model(),
    })
}

/// The seasonal-naive forecast: each interval gets the arrivals of the same interval one
/// season earlier (the last season repeats beyond one season ahead).
pub fn seasonal_naive(
    history: &[u32],
    season: usize,
    horizon: usize,
) -> Result<Vec<f64>, ForecastError> {
    require(history.len(), season, 1)?;
    Ok(naive(history, season, horizon))
}

/// Weighted absolute percentage error, Σ|actual − forecast| / Σ actual, over the intervals
/// both cover. `None` when there were no arrivals to weigh by.
pub fn wape(actual: &[u32], forecast: &[f64]) -> Option<f64> {
    let (mut error, mut total) = (0.0, 0.0);
    for (&a, &f) in actual.iter().zip(forecast) {
        let a = f64::from(a);
        error += (a - f).abs();
        total += a;
    }
    (total > 0.0).then(|| error / total)
}

fn require(len: usize, season: usize, seasons: usize) -> Result<(), ForecastError> {
    if season == 0 {
        return Err(ForecastError::EmptySeason);
    }
    let needed = season.saturating_mul(seasons);
    if len < needed {
        return Err(ForecastError::TooShort { got: len, needed });
    }
    Ok(())
}

/// Seasonal naive for a history of at least one season.
fn naive(history: &[u32], season: usize, horizon: usize) -> Vec<f64> {
    let last = &history[history.len() - season..];
    (0..horizon).map(|h| f64::from(last[h % season])).collect()
}

/// The discounts tried, plain regression first so that it wins ties. 0.5 forgets fast
/// (a week counts half the next one); 1 remembers every week alike.
const DISCOUNTS: [f64; 4] = [1.0, 0.9, 0.75, 0.5];

/// A level below this many arrivals per interval is taken as none: arrivals are whole
/// numbers, and dividing by a vanishing level would only blow up the indices.
const NO_VOLUME: f64 = 1e-6;

/// A regression fitted on a series, ready to project past the series' end.
struct Fitted {
    /// Level at t = 0 and its change per interval.
    intercept: f64,
    trend: f64,
    /// One factor on the level per slot of the season.
    index: Vec<f64>,
    discount: f64,
    /// Length of the series fitted on: the first t to project.
    len: usize,
}

impl Fitted {
    fn at(&self, t: usize) -> f64 {
        (self.intercept + self.trend * t as f64).max(0.0) * self.index[t % self.index.len()]
    }

    fn project(&self, horizon: usize) -> Vec<f64> {
        (self.len..self.len + horizon).map(|t| self.at(t)).collect()
    }

    fn model(&self) -> Model {
        Model {
            level: self.intercept + self.trend * self.len.saturating_sub(1) as f64,
            trend: self.trend,
            discount: self.discount,
        }
    }
}

/// Fits with the discount whose forecasts erred least on the series' own past: from every
/// season boundary after the second, a fit on what came before forecasts the next `lead`
/// intervals (at most a season). With two seasons there is nothing to judge by, and the
/// plain regression stands.
fn fit_best(series: &[f64], season: usize, lead: usize) -> Fitted {
    let lead = lead.clamp(1, season);
    let mut best = (f64::INFINITY, DISCOUNTS[0]);
    for discount in DISCOUNTS {
        let mut error = 0.0;
        for origin in (2 * season..series.len()).step_by(season) {
            let fitted = fit(&series[..origin], season, discount);
            let end = series.len().min(origin + lead);
            for (t, &y) in series.iter().enumerate().take(end).skip(origin) {
                error += (y - fitted.at(t)).abs();
            }
        }
        // Strictly less: ties keep the earlier, plainer discount.
        if error < best.0 {
            best = (error, discount);
        }
    }
    fit(series, season, best.1)
}

/// Weighted least squares of `y_t = c_slot + b·t` (one intercept per slot of the season, a
/// common trend), each season weighing `discount` times the one after it. Over whole
/// seasons `b` is the mean of the slots' own trends, so it is the level's trend also when
/// the season multiplies; each index is then the slot's mean over the level at the slot's
/// mean time. `series` holds at least two seasons, so every slot has two points and `b` is
/// defined.
fn fit(series: &[f64], season: usize, discount: f64) -> Fitted {
    let n = series.len();
    // Weight by age in whole seasons, counted from the end; one power per season, not per
    // point.
    let weights: Vec<f64> = std::iter::successors(Some(1.0), |w| Some(w * discount))
        .take(n / season + 1)
        .collect();
    let weight = |t: usize| weights[(n - 1 - t) / season];

    let mut total = vec![0.0; season];
    let mut t_mean = vec![0.0; season];
    let mut y_mean = vec![0.0; season];
    for (t, &y) in series.iter().enumerate() {
        let w = weight(t);
        total[t % season] += w;
        t_mean[t % season] += w * t as f64;
        y_mean[t % season] += w * y;
    }
    for ((t, y), w) in t_mean.iter_mut().zip(&mut y_mean).zip(&total) {
        *t /= w;
        *y /= w;
    }
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, &y) in series.iter().enumerate() {
        let w = weight(t);
        let dt = t as f64 - t_mean[t % season];
        sxy += w * dt * (y - y_mean[t % season]);
        sxx += w * dt * dt;
    }
    let trend = sxy / sxx;
    // The mean of the slots' intercepts at t = 0 is the level there.
    let intercept = (0..season)
        .map(|s| y_mean[s] - trend * t_mean[s])
        .sum::<f64>()
        / season as f64;
    let index = y_mean
        .iter()
        .zip(&t_mean)
        .map(|(y, t)| y / (intercept + trend * t).max(NO_VOLUME))
        .collect();
    Fitted {
        intercept,
        trend,
        index,
        discount,
        len: n,
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
