//! People: roles, e-mail addresses, names.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{OrganisationId, UserId};
use crate::priority::text_enum;

text_enum!(/// What a user is to the service desk.
    Role { Admin = "admin", Supervisor = "supervisor", Agent = "agent", Requester = "requester" });

impl Role {
    /// Agents, supervisors and admins work tickets; requesters raise them.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Requester)
    }
}

/// A syntactically plausible, lower-cased e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_lowercase();
        let bad = |why: &str| Err(DomainError::invalid("email", why.to_owned()));
        if s.len() > 254 {
            return bad("at most 254 characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return bad("must look like name@example.org");
        };
        if local.is_empty() || local.len() > 64 || domain.is_empty() || domain.contains('@') {
            return bad("must look like name@example.org");
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return bad("the domain must have a dot, like example.org");
        }
        // Nothing that could split a mail header or hide in one.
        if s.chars().any(|c| c.is_control() || c.is_whitespace() || "<>,;\"'()[]\\".contains(c)) {
            return bad("must be a single plain address");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a display name: non-blank, at most 200 characters, no control characters.
pub fn validate_name(field: &str, name: &str) -> Result<String, DomainError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if n.chars().count() > 200 {
        return Err(DomainError::invalid(field, "at most 200 characters"));
    }
    if n.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "must not contain control characters"));
    }
    Ok(n.to_owned())
}

/// Checks a new password's length. Strength beyond length is left to the person.
pub fn validate_password(pw: &str) -> Result<(), DomainError> {
    let n = pw.chars().count();
    if n < 10 {
        return Err(DomainError::invalid("password", "at least 10 characters"));
    }
    if pw.len() > 1024 {
        return Err(DomainError::invalid("password", "at most 1024 bytes"));
    }
    Ok(())
}

/// A user as the rest of the system sees them (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: EmailAddress,
    pub name: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub active: bool,
    pub created_at: jiff::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        assert_eq!(EmailAddress::parse(" Ana@Example.ORG ").map(|e| e.to_string()), Ok("ana@example.org".into()));
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.org",
            "ana@x",
            "a b@x.org",
            "ana@x..org",
            "victim@x.com,attacker@y.com",
            "victim@x.com\r\ncc:attacker@y.com",
            "a@b@c.org",
            "<a@b.org>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_passwords() {
        assert!(validate_name("name", "  ").is_err());
        assert!(validate_name("name", "Ana\u{7}").is_err());
        assert_eq!(validate_name("name", " Ana Lima "), Ok("Ana Lima".into()));
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough pass").is_ok());
    }
}
