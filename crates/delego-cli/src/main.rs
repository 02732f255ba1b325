//! `delego`: run and operate Delego from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use delego_core::clock::SystemClock;
use delego_store::Backend;

mod bench;
mod catalog;
mod demo;
mod serve;
mod simulate;
mod staff;
mod transfer;
mod users;

#[derive(Parser)]
#[command(
    name = "delego",
    version,
    about = "Delego: the operations platform for BPO and KPO providers",
    long_about = "Delego runs outsourced work — tickets, claims, forms, research requests — \
                  through versioned processes, routes human steps to qualified workers and \
                  keeps every change in an audit log.\n\n\
                  Start with `delego demo` to see a living system on embedded SQLite."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the JSON API under /api/v1 and its OpenAPI document.
    Serve(serve::ServeArgs),
    /// Create demo clients, workers, users and a flow of work items, then serve.
    ///
    /// Uses its own database (./delego-data/demo.db unless --database-url is given) and
    /// prints the users you can sign in as.
    Demo(demo::DemoArgs),
    /// Manage users who sign in.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage API tokens for machines.
    #[command(subcommand)]
    Token(users::TokenCommand),
    /// Work with service definitions (the catalog).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Submit work items to an engagement from a CSV or JSON Lines file, one per row.
    ///
    /// Exits with status 0 when every row was imported (or had been before), 2 when some
    /// rows failed (the valid ones are kept) and 1 on a fatal error such as an unknown
    /// engagement or an unreadable file.
    Import(transfer::ImportArgs),
    /// Write work items as JSON Lines or CSV, to standard output or a file.
    Export(transfer::ExportArgs),
    /// Measure performance on generated data: `delego bench routing` times task claims.
    ///
    /// Writes only to a temporary database unless given --database-url. Build with
    /// --release for meaningful figures.
    Bench(bench::BenchArgs),
    /// Play a day of contacts through the real routing rules and print service level,
    /// ASA, abandonment and occupancy per interval.
    ///
    /// Reads a scenario (arrival rates, handle times, patience, worker groups with skills
    /// and shifts) from --scenario FILE, or runs the built-in --example (print it with
    /// --print-example to start your own). The same --seed gives the same figures; wall
    /// time and events per second go to standard error.
    Simulate(simulate::SimulateArgs),
    /// Staffing for one interval: the fewest agents that meet a service level (Erlang C,
    /// or Erlang A with --patience-seconds) and how many to schedule after shrinkage.
    ///
    /// With --json prints one JSON object: model, load_erlangs, agents, scheduled,
    /// service_level, p_wait, asa_seconds, occupancy and, under Erlang A, p_abandon.
    /// Ratios are 0–1; under Erlang A they are shares of all arriving contacts.
    Staff(staff::StaffArgs),
    /// Back-office staffing for a window: (backlog + arrivals) × AHT ÷ productive hours
    /// per worker, then shrinkage.
    ///
    /// With --json prints one JSON object: workers (fractional), required and scheduled.
    Workload(staff::WorkloadArgs),
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Check service definition files and list every problem with its line and column.
    ///
    /// Exits with status 1 if any file has a problem, so it fits a CI step.
    Check {
        /// The TOML files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print one JSON object per file instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Clone)]
pub struct DatabaseArgs {
    /// Where the data lives: a SQLite file path (or sqlite://PATH), or postgres://… for
    /// several nodes sharing one database.
    #[arg(
        long,
        env = "DELEGO_DATABASE_URL",
        default_value = "sqlite://delego-data/delego.db"
    )]
    pub database_url: String,
    /// PostgreSQL connections this process keeps open at most. All nodes together must stay
    /// under the server's max_connections. Ignored for SQLite.
    #[arg(long, env = "DELEGO_MAX_CONNECTIONS", default_value_t = delego_store::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub max_connections: u32,
}

impl DatabaseArgs {
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Backend>> {
        delego_store::open(
            &self.database_url,
            Arc::new(SystemClock),
            self.max_connections,
        )
        .await
        .with_context(|| format!("cannot open {}", self.database_url))
    }
}

/// Who a command-line change is recorded as in the audit log: the operating-system user.
pub fn operator() -> delego_core::model::Actor {
    delego_core::model::Actor::Operator(
        std::env::var("USER").unwrap_or_else(|_| "delego-cli".into()),
    )
}

/// The address to listen on.
pub fn parse_bind(bind: &str) -> anyhow::Result<SocketAddr> {
    bind.parse()
        .with_context(|| format!("`{bind}` is not an address like 127.0.0.1:8080"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Catalog(CatalogCommand::Check { files, json }) => {
                return Ok(catalog::check_files(&files, json));
            }
            Command::Serve(args) => serve::run(args).await?,
            Command::Demo(args) => demo::run(args).await?,
            Command::User(command) => users::run_user(command).await?,
            Command::Token(command) => users::run_token(command).await?,
            Command::Import(args) => return transfer::import(args).await,
            Command::Export(args) => transfer::export(args).await?,
            Command::Bench(args) => return bench::run(args).await,
            Command::Simulate(args) => simulate::run(args)?,
            Command::Staff(args) => staff::run(&args)?,
            Command::Workload(args) => staff::run_workload(&args)?,
            Command::Migrate(args) => {
                let store = args.open().await?;
                println!("{} database is up to date", store.backend());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
