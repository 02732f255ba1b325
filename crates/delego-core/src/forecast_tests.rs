//! The forecast beats seasonal naive where there is a trend, reproduces a pure season, never
//! goes negative, and refuses what it cannot fit.

use jiff::SignedDuration;
use proptest::prelude::*;

use super::*;

/// 30-minute intervals, a weekly season.
const WEEK: usize = 336;
const DAY: usize = 48;

/// A small xorshift generator, so that the noisy series are the same on every run.
struct XorShift(u64);

impl XorShift {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Knuth's method: fine for the small means of interval counts.
    fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let (mut count, mut product) = (0, self.unit());
        while product > limit {
            count += 1;
            product *= self.unit();
        }
        count
    }
}

/// Expected arrivals in interval `i` of the week (Monday 00:00 first): nothing at night, a
/// morning peak and a smaller afternoon one, a busier Monday, a quiet weekend.
fn weekly_shape(i: usize) -> f64 {
    let hour = (i % DAY) as f64 / 2.0;
    if !(7.0..22.0).contains(&hour) {
        return 0.0;
    }
    let bump = |centre: f64, width: f64| (-((hour - centre) / width).powi(2)).exp();
    let day = [1.15, 1.0, 1.0, 1.0, 0.95, 0.5, 0.3][i / DAY];
    day * (8.0 + 30.0 * bump(10.5, 2.0) + 20.0 * bump(15.0, 2.5))
}

/// The expected arrivals of interval `t` of a history growing by `growth` of the first
/// week's volume each week.
fn trending_mean(t: usize, growth: f64) -> f64 {
    weekly_shape(t % WEEK) * (1.0 + growth * t as f64 / WEEK as f64)
}

/// `weeks` of Poisson arrivals, as calls arrive, around [`trending_mean`].
fn trending_history(weeks: usize, growth: f64, seed: u64) -> Vec<u32> {
    let mut rng = XorShift(seed);
    (0..weeks * WEEK)
        .map(|t| rng.poisson(trending_mean(t, growth)))
        .collect()
}

fn config(season: usize, horizon: usize) -> ForecastConfig {
    ForecastConfig {
        season,
        horizon,
        holdout: season,
    }
}

#[test]
fn forecast_beats_seasonal_naive_on_a_trending_series() {
    // Eight weeks of 30-minute intervals (2,688 points) growing 2 % a week. Poisson noise
    // alone moves one week's WAPE by a few points, so five seeds are pooled.
    let (mut own, mut naive) = (0.0, 0.0);
    for seed in 1..=5u64 {
        let history = trending_history(8, 0.02, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let result = forecast(&history, config(WEEK, WEEK)).unwrap();

        let (train, holdout) = history.split_at(7 * WEEK);
        let baseline = wape(holdout, &seasonal_naive(train, WEEK, WEEK).unwrap()).unwrap();
        assert_eq!(result.baseline_wape, Some(baseline));
        let error = result.holdout_wape.unwrap();
        println!("seed {seed}: forecast {error:.4}, seasonal naive {baseline:.4}");
        assert!(error < baseline, "seed {seed}: {error} vs {baseline}");
        own += error;
        naive += baseline;

        // The trend carries on into the week after the history.
        let next: f64 = result.values.iter().sum();
        let expected: f64 = (8 * WEEK..9 * WEEK).map(|t| trending_mean(t, 0.02)).sum();
        assert!((next / expected - 1.0).abs() < 0.03, "{next} vs {expected}");
    }
    println!(
        "mean: forecast {:.4}, seasonal naive {:.4}",
        own / 5.0,
        naive / 5.0
    );
    assert!(
        own < 0.85 * naive,
        "forecast {own} vs seasonal naive {naive}"
    );
}

#[test]
fn a_pure_season_is_forecast_exactly() {
    let history: Vec<u32> = (0..3 * WEEK)
        .map(|t| (weekly_shape(t % WEEK) * 2.0).round() as u32)
        .collect();
    let result = forecast(&history, config(WEEK, 2 * WEEK)).unwrap();

    assert!(result.holdout_wape.unwrap() < 1e-9);
    let expected: Vec<f64> = (0..2 * WEEK)
        .map(|t| f64::from(history[t % WEEK]))
        .collect();
    for (got, want) in result.values.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-6, "{got} != {want}");
    }
}

#[test]
fn a_falling_series_is_never_forecast_below_zero() {
    // Volume halves every week; a straight-line trend would go negative within days.
    let history: Vec<u32> = (0..4 * WEEK)
        .map(|t| (weekly_shape(t % WEEK) * 8.0 * 0.5f64.powf(t as f64 / WEEK as f64)) as u32)
        .collect();
    let result = forecast(&history, config(WEEK, 4 * WEEK)).unwrap();
    assert!(result.values.iter().all(|v| v.is_finite() && *v >= 0.0));
}

#[test]
fn a_history_without_arrivals_forecasts_zero_and_reports_no_error() {
    let result = forecast(&[0; 3 * 24], config(24, 10)).unwrap();
    assert_eq!(result.values, vec![0.0; 10]);
    assert_eq!(result.holdout_wape, None);
    assert_eq!(result.baseline_wape, None);
}

#[test]
fn two_seasons_forecast_without_a_holdout_error() {
    // Fitting needs two seasons, so holding one out would leave too little to fit on.
    let history: Vec<u32> = (0..2 * WEEK)
        .map(|t| weekly_shape(t % WEEK) as u32)
        .collect();
    let result = forecast(&history, config(WEEK, 5)).unwrap();
    assert_eq!(result.values.len(), 5);
    assert_eq!(result.holdout_wape, None);

    let no_holdout = ForecastConfig {
        holdout: 0,
        ..config(24, 5)
    };
    let result = forecast(&[3; 5 * 24], no_holdout).unwrap();
    assert_eq!(result.holdout_wape, None);
}

#[test]
fn less_than_two_seasons_is_refused() {
    assert_eq!(
        forecast(&[1; 47], config(24, 24)),
        Err(ForecastError::TooShort {
            got: 47,
            needed: 48
        })
    );
    assert_eq!(
        seasonal_naive(&[1; 23], 24, 24),
        Err(ForecastError::TooShort {
            got: 23,
            needed: 24
        })
    );
}

#[test]
fn an_empty_season_is_refused() {
    assert_eq!(
        forecast(&[1; 100], config(0, 24)),
        Err(ForecastError::EmptySeason)
    );
    assert_eq!(
        seasonal_naive(&[1; 100], 0, 24),
        Err(ForecastError::EmptySeason)
    );
}

#[test]
fn seasonal_naive_repeats_the_last_season() {
    let history = [9, 9, 1, 2, 3];
    assert_eq!(
        seasonal_naive(&history, 3, 7).unwrap(),
        vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
    );
}

#[test]
fn wape_weighs_errors_by_volume() {
    assert_eq!(wape(&[10, 0, 30], &[12.0, 1.0, 27.0]), Some(6.0 / 40.0));
    assert_eq!(wape(&[0, 0], &[1.0, 2.0]), None);
}

#[test]
fn weekly_config_counts_intervals_per_week() {
    let half_hour = ForecastConfig::weekly(SignedDuration::from_mins(30), 48).unwrap();
    assert_eq!(half_hour, config(WEEK, 48));
    assert_eq!(
        ForecastConfig::weekly(SignedDuration::from_hours(1), 1)
            .unwrap()
            .season,
        168
    );
    for bad in [
        SignedDuration::ZERO,
        SignedDuration::from_mins(-30),
        SignedDuration::from_mins(7 * 60 + 1),
    ] {
        assert_eq!(
            ForecastConfig::weekly(bad, 1),
            Err(ForecastError::Interval(bad))
        );
    }
}

proptest! {
    #[test]
    fn forecasts_are_finite_and_never_negative(
        season in 1usize..12,
        extra in 0usize..30,
        seed in any::<u64>(),
        scale in prop_oneof![Just(1u32), Just(100), Just(u32::MAX)],
        zero_share in 0.0f64..1.0,
        horizon in 0usize..40,
        holdout in 0usize..30,
    ) {
        let mut rng = XorShift(seed | 1);
        let history: Vec<u32> = (0..2 * season + extra)
            .map(|_| {
                if rng.unit() < zero_share { 0 } else { (rng.unit() * f64::from(scale)) as u32 }
            })
            .collect();
        let result = forecast(&history, ForecastConfig { season, horizon, holdout }).unwrap();
        prop_assert_eq!(result.values.len(), horizon);
        prop_assert!(result.values.iter().all(|v| v.is_finite() && *v >= 0.0));
        for error in [result.holdout_wape, result.baseline_wape].into_iter().flatten() {
            prop_assert!(error.is_finite() && error >= 0.0);
        }
    }
}
