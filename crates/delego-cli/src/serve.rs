//! `delego serve`.

use std::sync::Arc;

use delego_core::clock::SystemClock;
use delego_server::blobs::LocalDirectory;
use delego_server::{AppState, Config};
use delego_store::Backend;

use crate::{DatabaseArgs, catalog, parse_bind};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// How this node serves, whatever its database.
#[derive(clap::Args, Clone)]
pub struct NodeArgs {
    /// The address and port to listen on.
    #[arg(long, env = "DELEGO_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Mark session cookies `Secure`: turn on when Delego is served over HTTPS.
    #[arg(long, env = "DELEGO_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Where files live: attachments go to `<data-dir>/attachments`.
    #[arg(long, env = "DELEGO_DATA_DIR", default_value = "delego-data")]
    pub data_dir: std::path::PathBuf,
    /// Seconds a claimed task is held before the worker's client must renew its lease; a
    /// closed browser or a crashed node gives the task back after this long.
    #[arg(long, env = "DELEGO_LEASE_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(5..=86_400))]
    pub lease_seconds: u32,
    /// The bearer token Prometheus scrapes `/metrics` with; without it `/metrics` answers
    /// 404.
    #[arg(long, env = "DELEGO_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// The SMTP relay replies and notices go out through; without one, mail waits in its
    /// queue. Each engagement with mail also reads `<data-dir>/maildirs/<its address>/`.
    #[arg(long, env = "DELEGO_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "DELEGO_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// `starttls`, `tls` (implicit, usually port 465) or `none` (a relay on a trusted
    /// network).
    #[arg(long, env = "DELEGO_SMTP_SECURITY", default_value = "starttls", value_parser = ["starttls", "tls", "none"])]
    pub smtp_security: String,
    #[arg(long, env = "DELEGO_SMTP_USER")]
    pub smtp_user: Option<String>,
    #[arg(long, env = "DELEGO_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// The domain of the `Message-ID`s of the mail Delego sends.
    #[arg(long, env = "DELEGO_MAIL_DOMAIN", default_value = "delego.localhost")]
    pub mail_domain: String,
}

impl NodeArgs {
    fn mail(&self) -> delego_server::mail::MailConfig {
        let smtp = self.smtp_host.as_ref().map(|host| {
            let mut smtp = delego_mail::Smtp::plain(host.clone(), self.smtp_port);
            smtp.security = match self.smtp_security.as_str() {
                "tls" => delego_mail::SmtpSecurity::Tls,
                "none" => delego_mail::SmtpSecurity::None,
                _ => delego_mail::SmtpSecurity::StartTls,
            };
            smtp.credentials = match (&self.smtp_user, &self.smtp_password) {
                (Some(user), Some(password)) => Some(delego_mail::Credentials {
                    user: user.clone(),
                    password: password.clone(),
                }),
                _ => None,
            };
            smtp
        });
        delego_server::mail::MailConfig {
            smtp,
            maildir_root: Some(self.data_dir.join("maildirs")),
            domain: self.mail_domain.clone(),
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let store = args.database.open().await?;
    catalog::publish_built_in(store.as_ref()).await?;
    if store.users(None).await?.is_empty() {
        println!(
            "No users yet. Create the first admin, then sign in with its e-mail and password:\n  \
             delego user create --database-url {} --role admin --email you@example.com --name \"Your Name\"",
            args.database.database_url
        );
    }
    serve_until_stopped(store, &args.node).await
}

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn serve_until_stopped(store: Arc<dyn Backend>, node: &NodeArgs) -> anyhow::Result<()> {
    let address = parse_bind(&node.bind)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
    // One SQLite node hands held tasks back when it stops; PostgreSQL nodes leave them to
    // their leases, since the workers' clients carry on through the other nodes.
    let config = Config {
        secure_cookies: node.secure_cookies,
        hand_back_on_shutdown: store.backend() == "sqlite",
        task_lease: jiff::SignedDuration::from_secs(i64::from(node.lease_seconds)),
        metrics_token: node.metrics_token.clone().filter(|t| !t.is_empty()),
        mail: node.mail(),
        ..Config::default()
    };
    let attachments = node.data_dir.join("attachments");
    let blobs = LocalDirectory::open(&attachments).await.map_err(|e| {
        anyhow::anyhow!("cannot use {} for attachments: {e}", attachments.display())
    })?;
    let state = AppState::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(blobs),
        config,
    );
    println!(
        "Delego is serving on http://{}/ ({} database); API at /api/v1, OpenAPI at /api/v1/openapi.json",
        listener.local_addr()?,
        store.backend()
    );
    delego_server::serve(listener, state, shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    println!("Shutting down");
}
