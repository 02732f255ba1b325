//! Who may act, and on which clients' data.
//!
//! | role | sees the data of |
//! |---|---|
//! | admin, manager | every client |
//! | team lead, agent, expert, QA reviewer | the clients their worker profile is cleared for |
//! | client user | its own client only |
//!
//! What lies outside a caller's scope is answered exactly like what does not exist.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::id::{ClientId, UserId, WorkerId};
use crate::model::Worker;
use crate::values::{EmailAddress, InvalidValue, Name};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    TeamLead,
    Agent,
    Expert,
    QaReviewer,
    ClientUser,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Manager,
        Role::TeamLead,
        Role::Agent,
        Role::Expert,
        Role::QaReviewer,
        Role::ClientUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::TeamLead => "team_lead",
            Role::Agent => "agent",
            Role::Expert => "expert",
            Role::QaReviewer => "qa_reviewer",
            Role::ClientUser => "client_user",
        }
    }

    /// Roles that do human steps and so need a worker profile.
    pub fn works_tasks(self) -> bool {
        matches!(
            self,
            Role::TeamLead | Role::Agent | Role::Expert | Role::QaReviewer
        )
    }

    /// Provider staff who run the floor: configure clients, engagements and workers.
    pub fn manages(self) -> bool {
        matches!(self, Role::Admin | Role::Manager)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                InvalidValue(format!(
                    "`{s}` is not a role; use one of {}",
                    all.join(", ")
                ))
            })
    }
}

/// A person who signs in: provider staff or a client user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: EmailAddress,
    pub name: Name,
    pub role: Role,
    /// The one client a client user belongs to; `None` for provider staff.
    pub client_id: Option<ClientId>,
    /// The worker profile of a team lead, agent, expert or QA reviewer.
    pub worker_id: Option<WorkerId>,
    pub created_at: Timestamp,
    pub preferences: Preferences,
}

/// A user's own settings for the web UI.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// A language tag the UI ships, e.g. `sk`; `None` follows the browser.
    pub language: Option<String>,
    /// An IANA time zone, e.g. `Europe/Bratislava`; `None` is UTC.
    pub time_zone: Option<String>,
}

/// Why a user cannot be created as given.
pub fn check_user_shape(
    role: Role,
    client_id: Option<ClientId>,
    worker_id: Option<WorkerId>,
) -> Result<(), InvalidValue> {
    match (role, client_id, worker_id) {
        (Role::ClientUser, None, _) => Err(InvalidValue("a client user needs a client".into())),
        (Role::ClientUser, Some(_), Some(_)) => Err(InvalidValue(
            "a client user cannot have a worker profile".into(),
        )),
        (role, Some(_), _) if role != Role::ClientUser => Err(InvalidValue(format!(
            "a {role} works for the provider and belongs to no client"
        ))),
        (role, _, None) if role.works_tasks() => Err(InvalidValue(format!(
            "a {role} needs a worker profile (skills, languages, clearances)"
        ))),
        _ => Ok(()),
    }
}

/// The clients whose data a caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    AllClients,
    Clients(BTreeSet<ClientId>),
}

impl Scope {
    pub fn of(user: &User, worker: Option<&Worker>) -> Scope {
        match user.role {
            Role::Admin | Role::Manager => Scope::AllClients,
            Role::ClientUser => Scope::Clients(user.client_id.into_iter().collect()),
            _ => Scope::Clients(worker.map(|w| w.clearances.clone()).unwrap_or_default()),
        }
    }

    pub fn allows(&self, client: ClientId) -> bool {
        match self {
            Scope::AllClients => true,
            Scope::Clients(clients) => clients.contains(&client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, client_id: Option<ClientId>) -> User {
        User {
            id: UserId::new(),
            email: EmailAddress::parse("a@example.com").unwrap(),
            name: Name::parse("A").unwrap(),
            role,
            client_id,
            worker_id: None,
            created_at: Timestamp::UNIX_EPOCH,
            preferences: Preferences::default(),
        }
    }

    #[test]
    fn a_client_user_sees_only_its_own_client() {
        let (own, other) = (ClientId::new(), ClientId::new());
        let scope = Scope::of(&user(Role::ClientUser, Some(own)), None);
        assert!(scope.allows(own));
        assert!(!scope.allows(other));
    }

    #[test]
    fn a_worker_without_a_profile_sees_nothing_and_managers_see_all() {
        let client = ClientId::new();
        assert!(!Scope::of(&user(Role::Agent, None), None).allows(client));
        assert!(Scope::of(&user(Role::Manager, None), None).allows(client));
    }

    #[test]
    fn user_shapes_match_roles() {
        let client = Some(ClientId::new());
        let worker = Some(WorkerId::new());
        assert!(check_user_shape(Role::ClientUser, client, None).is_ok());
        assert!(check_user_shape(Role::ClientUser, None, None).is_err());
        assert!(check_user_shape(Role::Agent, None, worker).is_ok());
        assert!(check_user_shape(Role::Agent, None, None).is_err());
        assert!(check_user_shape(Role::Manager, client, None).is_err());
        assert!("qa_reviewer".parse::<Role>().is_ok());
        assert!("root".parse::<Role>().is_err());
    }
}
