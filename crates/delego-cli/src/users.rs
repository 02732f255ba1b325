//! `delego user …` and `delego token …`: bootstrap identities from the command line.

use delego_core::identity::Role;
use delego_core::values::{EmailAddress, Name};
use delego_server::auth;
use delego_store::NewUser;

use crate::{DatabaseArgs, operator};

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a strong password is generated and printed once.
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, manager, team_lead, agent, expert, qa_reviewer or client_user.
        #[arg(long)]
        role: String,
        /// The client of a client user.
        #[arg(long)]
        client: Option<String>,
        /// The worker profile of a team lead, agent, expert or QA reviewer.
        #[arg(long)]
        worker: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the secret is printed once.
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The e-mail of the user the token acts as.
        #[arg(long)]
        email: String,
        /// What the token is for, e.g. "CRM integration".
        #[arg(long)]
        name: String,
    },
}

pub async fn run_user(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        database,
        email,
        name,
        role,
        client,
        worker,
        password_stdin,
    } = command;
    let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let name = Name::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
    let client_id = client
        .map(|c| {
            c.parse()
                .map_err(|_| anyhow::anyhow!("--client: `{c}` is not a client id"))
        })
        .transpose()?;
    let worker_id = worker
        .map(|w| {
            w.parse()
                .map_err(|_| anyhow::anyhow!("--worker: `{w}` is not a worker id"))
        })
        .transpose()?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (auth::random_secret()?[..20].to_owned(), true)
    };
    if password.chars().count() < 12 {
        anyhow::bail!("the password must have at least 12 characters");
    }
    let store = database.open().await?;
    let password_hash = Some(auth::hash_password(password.clone()).await?);
    let user = store
        .create_user(
            NewUser {
                email,
                name,
                role,
                client_id,
                worker_id,
                password_hash,
            },
            &operator(),
        )
        .await?;
    println!("Created {} {} ({})", user.role, user.email, user.id);
    if generated {
        println!("Password (shown once): {password}");
    }
    Ok(())
}

pub async fn run_token(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Create {
        database,
        email,
        name,
    } = command;
    let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let name = Name::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let store = database.open().await?;
    let (user, _) = store.user_by_email(&email).await?;
    let (secret, prefix) = auth::new_token_secret()?;
    let token = store
        .create_api_token(
            user.id,
            name,
            &auth::secret_hash(&secret),
            &prefix,
            &operator(),
        )
        .await?;
    println!("Created token {} for {}", token.id, user.email);
    println!("Secret (shown once; send as `Authorization: Bearer <secret>`):\n{secret}");
    Ok(())
}
