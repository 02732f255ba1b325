//! `delego simulate`: play a scenario out with the real routing rules and print the
//! figures per interval.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use delego_sim::{Options, Plan, Report, Row, Scenario};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["scenario", "example", "print_example"])))]
pub struct SimulateArgs {
    /// The scenario: a TOML file, or JSON when the name ends in `.json`.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Run the built-in example scenario, a support line's day.
    #[arg(long)]
    example: bool,
    /// Print the built-in example scenario, to copy and edit, and exit.
    #[arg(long)]
    print_example: bool,
    /// The same seed gives the same figures; another seed, another day like it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if args.print_example {
        print!("{}", delego_sim::EXAMPLE);
        return Ok(());
    }
    let scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            {
                Scenario::from_json(&text)
            } else {
                Scenario::from_toml(&text)
            }
            .with_context(|| format!("{} is not a scenario", path.display()))?
        }
        None => Scenario::from_toml(delego_sim::EXAMPLE).context("the built-in example")?,
    };
    let plan = Plan::new(&scenario).context("the scenario cannot be run")?;
    let began = Instant::now();
    let report = plan.run(&Options {
        seed: args.seed,
        ..Options::default()
    });
    let elapsed = began.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report, &scenario);
    }
    // Wall time goes to standard error, so standard output depends on the seed alone.
    eprintln!(
        "simulated {} contacts, {} workers, {} events in {elapsed:.3} s ({:.0} events/s)",
        report.total.tally.offered,
        plan.workers(),
        report.events,
        report.events as f64 / elapsed.max(1e-9),
    );
    Ok(())
}

fn print_table(report: &Report, scenario: &Scenario) {
    println!(
        "seed {}; service level = share of offered contacts answered within {} s; times in UTC",
        report.seed, report.service_level_target_secs
    );
    println!(
        "{:<17} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7}",
        "interval", "offered", "answered", "abandon", "SL", "ASA (s)", "aband.", "occup.", "agents"
    );
    let multi_day = scenario.length > jiff::SignedDuration::from_hours(24);
    for row in &report.intervals {
        let label = if multi_day {
            row.start.strftime("%Y-%m-%d %H:%M").to_string()
        } else {
            row.start.strftime("%H:%M").to_string()
        };
        print_row(&label, row);
    }
    print_row("total", &report.total);
    if report.total.tally.unanswered > 0 {
        println!(
            "{} contacts were still waiting at the end: no one on shift could take them",
            report.total.tally.unanswered
        );
    }
}

fn print_row(label: &str, row: &Row) {
    let percent = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{:.1}%", 100.0 * x));
    let figures = &row.figures;
    println!(
        "{label:<17} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7.1}",
        row.tally.offered,
        row.tally.answered,
        row.tally.abandoned,
        percent(figures.service_level),
        figures
            .asa_secs
            .map_or("-".to_owned(), |s| format!("{s:.1}")),
        percent(figures.abandonment_rate),
        percent(figures.occupancy),
        figures.agents,
    );
}
