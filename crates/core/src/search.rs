//! The full-text query language: plain words, all required. Parsed here once so that no
//! dialect ever sees raw user text in its query syntax.

use crate::error::DomainError;

pub const QUERY_MAX_CHARS: usize = 256;
pub const QUERY_MAX_TERMS: usize = 12;

/// Splits a query into lower-cased words (letters and digits); punctuation and operators are
/// separators, never syntax. Refuses queries that are too long or have nothing to search for.
pub fn search_terms(q: &str) -> Result<Vec<String>, DomainError> {
    if q.chars().count() > QUERY_MAX_CHARS {
        return Err(DomainError::invalid("q", format!("at most {QUERY_MAX_CHARS} characters")));
    }
    let mut terms: Vec<String> = Vec::new();
    for word in q.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !terms.contains(&word) {
            terms.push(word);
        }
    }
    if terms.is_empty() {
        return Err(DomainError::invalid("q", "has no words to search for"));
    }
    if terms.len() > QUERY_MAX_TERMS {
        return Err(DomainError::invalid("q", format!("at most {QUERY_MAX_TERMS} words")));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_quotes_are_just_separators() {
        assert_eq!(
            search_terms("VPN \"drops\" OR 1=1"),
            Ok(vec!["vpn".into(), "drops".into(), "or".into(), "1".into()])
        );
        assert_eq!(search_terms("id;--"), Ok(vec!["id".into()]));
        for bad in ["*", "\"", "\\", "(((((", "", "   "] {
            assert!(search_terms(bad).is_err(), "{bad:?}");
        }
        assert!(search_terms(&"a".repeat(10_000)).is_err());
        assert!(search_terms(&"w ".repeat(20)).is_ok(), "repeated words collapse");
        assert!(search_terms("a b c d e f g h i j k l m").is_err());
    }
}
