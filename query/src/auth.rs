//! Investigator authentication and roles: bearer tokens from a TOML file that stores only
//! their SHA-256 hashes (`camtrail users issue` mints them), each bound to a user name and a
//! role. What each role may do is decided here, in one place.

use std::path::Path;

use camtrail_common::token::{self, TokenTable};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Tracks and passes within the ordinary bounds, snapshots.
    Investigator,
    /// Everything an investigator may, plus broad searches (long or multi-district
    /// passes, old tracks) and reading the audit log.
    Supervisor,
    /// Runs the system: camera lookups and metrics, no personal data.
    Operator,
}

impl Role {
    /// The role's name as stored in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigator => "investigator",
            Self::Supervisor => "supervisor",
            Self::Operator => "operator",
        }
    }

    /// Whether the role may search personal data at all (tracks, passes, snapshots).
    pub fn may_search(self) -> bool {
        matches!(self, Self::Investigator | Self::Supervisor)
    }

    /// Whether the role may run broad searches and read the audit log.
    pub fn is_supervisor(self) -> bool {
        self == Self::Supervisor
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name (as in the users file).
    pub user: String,
    /// Their role.
    pub role: Role,
}

/// One `[[user]]` of the users file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: String,
}

/// The users file: `[[user]]` tables.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Users.
    #[serde(default)]
    pub user: Vec<UserEntry>,
}

/// Why the users file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// Unreadable.
    #[error("cannot read users file {path}: {message}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
    /// A bad entry.
    #[error("users file: user {name}: {message}")]
    Entry {
        /// The user.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Token hash → principal.
#[derive(Debug, Clone, Default)]
pub struct Users {
    tokens: TokenTable<Principal>,
}

impl Users {
    /// Load and check a users file.
    pub fn from_path(path: &Path) -> Result<Self, UsersError> {
        let read_error = |message: String| UsersError::Read {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        let file: UsersFile = toml::from_str(&text).map_err(|e| read_error(e.to_string()))?;
        Self::from_file(&file)
    }

    /// Check the entries of a parsed users file.
    pub fn from_file(file: &UsersFile) -> Result<Self, UsersError> {
        let mut tokens = TokenTable::default();
        for entry in &file.user {
            let bad = |message: &str| UsersError::Entry {
                name: entry.name.clone(),
                message: message.to_string(),
            };
            if entry.name.trim().is_empty() {
                return Err(bad("empty name"));
            }
            let hash = token::parse_hash_hex(&entry.token_sha256)
                .ok_or_else(|| bad("token_sha256 is not 64 hex digits"))?;
            let principal = Principal {
                user: entry.name.clone(),
                role: entry.role,
            };
            if tokens.insert(hash, principal).is_some() {
                return Err(bad("token hash used twice"));
            }
        }
        Ok(Self { tokens })
    }

    /// The principal for an `Authorization` header value (`Bearer <token>`), if valid.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&Principal> {
        self.tokens.authenticate(authorization)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no user is configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// A newly minted token: hand `token` to the user, store `entry`.
#[derive(Clone)]
pub struct IssuedUser {
    /// The secret.
    pub token: String,
    /// What the users file keeps.
    pub entry: UserEntry,
}

/// Mint a random token for `name` with `role`.
pub fn issue(name: &str, role: Role) -> IssuedUser {
    let token = token::mint("ct_");
    let token_sha256 = token::hash_hex(&token);
    IssuedUser {
        token,
        entry: UserEntry {
            name: name.to_string(),
            role,
            token_sha256,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_authenticate_and_nothing_else_does() {
        let alice = issue("alice", Role::Investigator);
        let sam = issue("sam", Role::Supervisor);
        let users = Users::from_file(&UsersFile {
            user: vec![alice.entry.clone(), sam.entry.clone()],
        })
        .expect("users");
        let header = format!("Bearer {}", alice.token);
        let principal = users.authenticate(Some(&header)).expect("alice");
        assert_eq!(principal.user, "alice");
        assert_eq!(principal.role, Role::Investigator);
        assert_eq!(
            users
                .authenticate(Some(&format!("Bearer {}", sam.token)))
                .map(|p| p.role),
            Some(Role::Supervisor)
        );
        assert!(users.authenticate(None).is_none());
        assert!(users.authenticate(Some("Bearer ")).is_none());
        assert!(users.authenticate(Some(&alice.token)).is_none());
        assert!(users.authenticate(Some("Bearer ct_wrong")).is_none());
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut entry = issue("bob", Role::Operator).entry;
        entry.token_sha256 = "xyz".into();
        assert!(Users::from_file(&UsersFile { user: vec![entry] }).is_err());
        let twice = issue("c", Role::Operator).entry;
        assert!(
            Users::from_file(&UsersFile {
                user: vec![twice.clone(), twice]
            })
            .is_err()
        );
    }

    #[test]
    fn roles_decide_what_may_be_searched() {
        assert!(Role::Investigator.may_search());
        assert!(!Role::Operator.may_search());
        assert!(Role::Supervisor.is_supervisor() && !Role::Investigator.is_supervisor());
    }
}
