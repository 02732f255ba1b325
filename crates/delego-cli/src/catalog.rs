//! The built-in service catalog, compiled into the binary, and `delego catalog check`.

use std::path::PathBuf;
use std::process::ExitCode;

use delego_core::definition::{Problem, load_definition};
use delego_store::Backend;

/// Every service that ships with Delego: only services whose every part works.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "customer-support.toml",
        include_str!("../../../catalog/customer-support.toml"),
    ),
    (
        "technical-support.toml",
        include_str!("../../../catalog/technical-support.toml"),
    ),
    (
        "it-helpdesk.toml",
        include_str!("../../../catalog/it-helpdesk.toml"),
    ),
    (
        "insurance-claims.toml",
        include_str!("../../../catalog/insurance-claims.toml"),
    ),
    (
        "telemarketing.toml",
        include_str!("../../../catalog/telemarketing.toml"),
    ),
];

/// Publishes the built-in services and returns them; republishing an unchanged version is
/// a no-op.
pub async fn publish_built_in(
    store: &dyn Backend,
) -> anyhow::Result<Vec<std::sync::Arc<delego_core::definition::ServiceDefinition>>> {
    let mut published = Vec::with_capacity(BUILT_IN.len());
    for (file, source) in BUILT_IN {
        let definition = store
            .publish_service(source)
            .await
            .map_err(|e| anyhow::anyhow!("built-in service {file}: {e}"))?;
        published.push(definition);
    }
    Ok(published)
}

/// Prints each file's verdict; problems in the compiler's `file:line:column: message`
/// form, which editors and CI annotate.
pub fn check_files(files: &[PathBuf], json: bool) -> ExitCode {
    let mut failed = false;
    for file in files {
        let verdict = std::fs::read_to_string(file)
            .map_err(|e| {
                vec![Problem {
                    line: 0,
                    column: 0,
                    path: String::new(),
                    message: format!("cannot read the file: {e}"),
                }]
            })
            .and_then(|source| load_definition(&source));
        failed |= verdict.is_err();
        let name = file.display();
        match (verdict, json) {
            (Ok(definition), false) => println!(
                "{name}: ok: service `{}` version {}, {} steps",
                definition.key,
                definition.version,
                definition.steps.len()
            ),
            (Ok(definition), true) => println!(
                "{}",
                serde_json::json!({
                    "file": name.to_string(),
                    "ok": true,
                    "service": definition.key,
                    "version": definition.version,
                })
            ),
            (Err(problems), false) => {
                for problem in &problems {
                    let at = if problem.path.is_empty() {
                        String::new()
                    } else {
                        format!(" {}:", problem.path)
                    };
                    println!(
                        "{name}:{}:{}:{at} {}",
                        problem.line, problem.column, problem.message
                    );
                }
                println!("{name}: {} problem(s)", problems.len());
            }
            (Err(problems), true) => println!(
                "{}",
                serde_json::json!({"file": name.to_string(), "ok": false, "problems": problems})
            ),
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
