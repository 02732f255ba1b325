//! `delego staff`: the agents one interval of contacts needs, by Erlang C or Erlang A.

use std::time::Duration;

use anyhow::anyhow;
use delego_core::staffing::{Interval, Model, Performance, Shrinkage, Target, required_agents};
use serde_json::json;

#[derive(clap::Args)]
pub struct StaffArgs {
    /// Contacts expected in the interval.
    #[arg(long, allow_negative_numbers = true)]
    pub arrivals: f64,
    /// Length of the interval in minutes.
    #[arg(long, allow_negative_numbers = true)]
    pub interval_minutes: f64,
    /// Average handle time of a contact in seconds (talk, hold and wrap-up).
    #[arg(long, allow_negative_numbers = true)]
    pub aht_seconds: f64,
    /// Target service level: the percentage of contacts to answer within
    /// --target-seconds (above 0, below 100).
    #[arg(long, allow_negative_numbers = true)]
    pub target_percent: f64,
    /// The answer time of the target service level, in seconds.
    #[arg(long, allow_negative_numbers = true)]
    pub target_seconds: f64,
    /// Share of paid time agents are unavailable (breaks, training, absence), from 0 to
    /// below 1, e.g. 0.3. Read as an exact decimal.
    #[arg(long, allow_hyphen_values = true)]
    pub shrinkage: String,
    /// Highest acceptable occupancy (share of agents' time on contacts), above 0 up to 1.
    #[arg(long, allow_negative_numbers = true)]
    pub max_occupancy: Option<f64>,
    /// Mean patience of callers in seconds: use Erlang A, where callers abandon after an
    /// exponentially distributed patience with this mean. Without it, Erlang C.
    #[arg(long, allow_negative_numbers = true)]
    pub patience_seconds: Option<f64>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &StaffArgs) -> anyhow::Result<()> {
    let interval = Interval::new(
        args.arrivals,
        duration("--interval-minutes", args.interval_minutes, 60.0)?,
        duration("--aht-seconds", args.aht_seconds, 1.0)?,
    )?;
    let mut target = Target::new(
        args.target_percent / 100.0,
        duration("--target-seconds", args.target_seconds, 1.0)?,
    )?;
    if let Some(max) = args.max_occupancy {
        target = target.with_max_occupancy(max)?;
    }
    let shrinkage: Shrinkage = args.shrinkage.parse()?;
    let model = match args.patience_seconds {
        None => Model::ErlangC,
        Some(patience) => Model::ErlangA {
            patience: duration("--patience-seconds", patience, 1.0)?,
        },
    };
    let performance = required_agents(&interval, model, &target)?;
    let scheduled = shrinkage.scheduled(performance.agents)?;
    if args.json {
        println!("{}", to_json(&interval, model, &performance, scheduled));
    } else {
        print_table(args, &interval, model, &performance, scheduled);
    }
    Ok(())
}

/// A flag's value in units of `unit_seconds` as a duration, refusing negative, infinite
/// and NaN values (zero is left to the core, which knows where it makes sense).
fn duration(flag: &str, value: f64, unit_seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value * unit_seconds)
        .map_err(|_| anyhow!("{flag} must be a number of at least 0, got {value}"))
}

fn to_json(
    interval: &Interval,
    model: Model,
    performance: &Performance,
    scheduled: u64,
) -> serde_json::Value {
    let mut object = json!({
        "model": model.name(),
        "load_erlangs": interval.load(),
        "agents": performance.agents,
        "scheduled": scheduled,
        "service_level": performance.service_level,
        "p_wait": performance.p_wait,
        "asa_seconds": performance.asa_seconds,
        "occupancy": performance.occupancy,
    });
    if let Some(p_abandon) = performance.p_abandon {
        object["p_abandon"] = json!(p_abandon);
    }
    object
}

fn print_table(
    args: &StaffArgs,
    interval: &Interval,
    model: Model,
    performance: &Performance,
    scheduled: u64,
) {
    let percent = |share: f64| format!("{:.2} %", share * 100.0);
    let caller = match model {
        Model::ErlangC => "Erlang C: callers wait as long as it takes".to_owned(),
        Model::ErlangA { patience } => format!(
            "Erlang A: callers hang up after {} s on average",
            patience.as_secs_f64()
        ),
    };
    println!("{caller}");
    println!(
        "{} contacts in {} min at {} s each: {:.3} Erlangs offered",
        args.arrivals,
        args.interval_minutes,
        args.aht_seconds,
        interval.load()
    );
    let occupancy_cap = args
        .max_occupancy
        .map(|max| format!(", occupancy at most {}", percent(max)))
        .unwrap_or_default();
    println!(
        "target: {} % answered within {} s{occupancy_cap}; shrinkage {}",
        args.target_percent, args.target_seconds, args.shrinkage
    );
    println!();
    let mut rows = vec![
        (
            "agents",
            performance.agents.to_string(),
            "fewest handling contacts that meet the target",
        ),
        (
            "scheduled",
            scheduled.to_string(),
            "agents ÷ (1 − shrinkage), rounded up",
        ),
        (
            "service level",
            percent(performance.service_level),
            "of all contacts answered within the target time",
        ),
        (
            "P(wait)",
            percent(performance.p_wait),
            "of contacts find every agent busy",
        ),
        (
            "ASA",
            format!("{:.1} s", performance.asa_seconds),
            "average speed of answer: mean wait of all contacts",
        ),
        (
            "occupancy",
            percent(performance.occupancy),
            "of agents' time spent on contacts",
        ),
    ];
    if let Some(p_abandon) = performance.p_abandon {
        rows.push((
            "P(abandon)",
            percent(p_abandon),
            "of contacts hang up before an answer",
        ));
    }
    for (name, value, meaning) in rows {
        println!("{name:<14} {value:>9}   {meaning}");
    }
}

/// `delego workload`: back-office work, which waits in a queue rather than on the line.
#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    /// Items already waiting that must be cleared within the window.
    #[arg(long)]
    pub backlog: u64,
    /// Items expected to arrive within the window.
    #[arg(long)]
    pub arrivals: u64,
    /// Average handle time of an item in seconds.
    #[arg(long, allow_negative_numbers = true)]
    pub aht_seconds: f64,
    /// Productive hours one worker gives within the window (e.g. 7.5 of an 8-hour shift).
    #[arg(long, allow_negative_numbers = true)]
    pub productive_hours: f64,
    /// Share of paid time workers are unavailable, from 0 to below 1. Read as an exact
    /// decimal.
    #[arg(long, allow_hyphen_values = true)]
    pub shrinkage: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run_workload(args: &WorkloadArgs) -> anyhow::Result<()> {
    let workload = delego_core::staffing::Workload {
        backlog: args.backlog,
        arrivals: args.arrivals,
        aht: duration("--aht-seconds", args.aht_seconds, 1.0)?,
        productive_time: duration("--productive-hours", args.productive_hours, 3600.0)?,
    };
    let shrinkage: Shrinkage = args.shrinkage.parse()?;
    let staff = delego_core::staffing::workload_staff(&workload, shrinkage)?;
    if args.json {
        println!(
            "{}",
            json!({
                "workers": staff.agents,
                "required": staff.required,
                "scheduled": staff.scheduled,
            })
        );
    } else {
        println!(
            "({} waiting + {} arriving) × {} s ÷ {} productive hours per worker",
            args.backlog, args.arrivals, args.aht_seconds, args.productive_hours
        );
        println!();
        println!(
            "{:<10} {:>9.2}   workers' worth of work",
            "workers", staff.agents
        );
        println!(
            "{:<10} {:>9}   rounded up: working the whole window",
            "required", staff.required
        );
        println!(
            "{:<10} {:>9}   workers ÷ (1 − shrinkage {}), rounded up",
            "scheduled", staff.scheduled, args.shrinkage
        );
    }
    Ok(())
}
