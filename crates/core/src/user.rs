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

/// Refuses, for a new account, an address that could pass for another in a list or a mail
/// header: invisible or look-alike characters (zero-width spaces, direction controls, full-width
/// or mathematical letters: anything Unicode's identifier profile, UTS #39, does not allow) and
/// local parts or domain labels that mix scripts (Latin with Cyrillic, say). Existing accounts
/// are not affected; whether it imitates an existing address is [`look_alike_of`]'s question.
pub fn vet_new_address(address: &EmailAddress) -> Result<(), DomainError> {
    use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};
    let s = address.as_str();
    if let Some(c) = s.chars().find(|c| !c.is_ascii() && !GeneralSecurityProfile::identifier_allowed(*c)) {
        return Err(DomainError::invalid(
            "email",
            format!("contains the invisible or look-alike character U+{:04X}; type the address plainly", u32::from(c)),
        ));
    }
    let (local, domain) = s.split_once('@').unwrap_or((s, ""));
    // Letters only: digits and punctuation belong to every script.
    let letters = |part: &str| part.chars().filter(|c| c.is_alphabetic()).collect::<String>();
    let mixed = |part: &str| !letters(part).as_str().check_restriction_level(RestrictionLevel::HighlyRestrictive);
    if mixed(local) || domain.split('.').any(mixed) {
        return Err(DomainError::invalid("email", "mixes letters of different scripts (e.g. Latin and Cyrillic)"));
    }
    Ok(())
}

/// The plain (ASCII) address this one imitates, if every character of it that is not ASCII
/// is a look-alike of an ASCII one (UTS #39 confusables: Cyrillic "а" of Latin "a", Greek "ο"
/// of "o", …). A new account whose look-alike belongs to someone else is refused.
pub fn look_alike_of(address: &EmailAddress) -> Option<EmailAddress> {
    let s = address.as_str();
    if s.is_ascii() {
        return None;
    }
    let skeleton = |c: char| unicode_security::skeleton(c.encode_utf8(&mut [0; 4])).collect::<String>();
    let plain: Vec<(char, String)> =
        ('a'..='z').chain('0'..='9').chain(['.', '-', '_', '+']).map(|a| (a, skeleton(a))).collect();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let shape = skeleton(c);
        out.push(plain.iter().find(|(_, s)| *s == shape)?.0);
    }
    EmailAddress::parse(&out).ok()
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
    fn addresses_that_pass_for_others_are_refused_for_new_accounts() {
        let parse = |s: &str| EmailAddress::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        for ok in
            ["ann@customer.example", "ann.o'x@customer.example", "иван@пример.рф", "山田@例え.jp", "josé@café.example"]
        {
            let Ok(a) = EmailAddress::parse(ok) else { continue };
            assert!(vet_new_address(&a).is_ok(), "{ok}");
        }
        let refused = [
            "an\u{200b}n@customer.example", // zero-width space
            "ann\u{202e}@customer.example", // right-to-left override
            "an\u{00ad}n@customer.example", // soft hyphen
            "\u{ff41}nn@customer.example",  // full-width a
            "\u{1d41a}nn@customer.example", // mathematical bold a
            "\u{0430}nn@customer.example",  // Cyrillic а among Latin letters
            "ann@cust\u{043e}mer.example",  // Cyrillic о in a Latin domain label
        ];
        for bad in refused {
            let a = parse(bad);
            assert!(vet_new_address(&a).is_err(), "{bad:?}");
        }
        // Whole-script look-alikes pass the script rule but name the address they imitate.
        assert_eq!(look_alike_of(&parse("\u{0430}nn@customer.example")), Some(parse("ann@customer.example")));
        assert_eq!(
            look_alike_of(&parse("\u{0430}\u{0440}\u{0440}@customer.example")),
            Some(parse("app@customer.example"))
        );
        assert_eq!(look_alike_of(&parse("ann@\u{0441}ustomer.example")), Some(parse("ann@customer.example")));
        assert_eq!(look_alike_of(&parse("ann@customer.example")), None, "plain addresses imitate nothing");
        assert_eq!(look_alike_of(&parse("иван@пример.рф")), None, "real Cyrillic imitates no Latin address");
    }

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
