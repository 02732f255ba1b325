//! A whole day on a large floor: about 300,000 contacts over 24 hours and 1,000 agents in
//! shifts, four skills with multi-skilled groups (`scenarios/day-300k.toml`). The goal is
//! under 10 s per day.
//!
//! Run with `cargo bench -p delego-sim --bench day`; divan prints the time per day and
//! contacts per second. `delego simulate --scenario crates/delego-sim/scenarios/day-300k.toml`
//! runs the same day and prints events per second.

use delego_sim::{Options, Plan, Scenario};

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn day_300k(bencher: divan::Bencher) {
    let scenario = Scenario::from_toml(include_str!("../scenarios/day-300k.toml"))
        .expect("the benchmark scenario");
    let plan = Plan::new(&scenario).expect("a valid plan");
    assert_eq!(plan.workers(), 1_000);
    bencher
        .counter(divan::counter::ItemsCount::new(
            plan.expected_contacts().round() as usize,
        ))
        .bench(|| {
            plan.run(&Options {
                seed: 1,
                ..Options::default()
            })
            .total
            .tally
            .answered
        });
}
