//! Custom field definitions and the validation of a ticket's values against them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DomainError;
use crate::ids::CustomFieldId;
use crate::priority::text_enum;
use crate::ticket::TicketType;

text_enum!(/// What a custom field holds.
    FieldKind { Text = "text", Number = "number", Select = "select", MultiSelect = "multi_select", Date = "date", Checkbox = "checkbox" });

/// An admin-defined extra ticket field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    pub id: CustomFieldId,
    /// Stable key used in `custom_fields` objects: lower-case letters, digits, `_`.
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    /// Allowed values of select and multi-select fields.
    pub options: Vec<String>,
    pub required: bool,
    /// Ticket types the field belongs to; empty means all.
    pub ticket_types: Vec<TicketType>,
}

pub const TEXT_MAX_CHARS: usize = 4000;

impl CustomFieldDef {
    /// Checks the definition itself.
    pub fn validate(&self) -> Result<(), DomainError> {
        let key_ok = !self.key.is_empty()
            && self.key.len() <= 64
            && self.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && self.key.starts_with(|c: char| c.is_ascii_lowercase());
        if !key_ok {
            return Err(DomainError::invalid("key", "1-64 of a-z, 0-9 and _, starting with a letter"));
        }
        let is_select = matches!(self.kind, FieldKind::Select | FieldKind::MultiSelect);
        if is_select && self.options.is_empty() {
            return Err(DomainError::invalid("options", "a select field needs options"));
        }
        if !is_select && !self.options.is_empty() {
            return Err(DomainError::invalid("options", "only select fields have options"));
        }
        let mut sorted = self.options.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.options.len()
            || self.options.iter().any(|o| o.trim().is_empty() || o.chars().count() > 200)
        {
            return Err(DomainError::invalid("options", "options are distinct, non-empty, at most 200 characters"));
        }
        Ok(())
    }

    pub fn applies_to(&self, t: TicketType) -> bool {
        self.ticket_types.is_empty() || self.ticket_types.contains(&t)
    }

    fn check_value(&self, v: &Value) -> Result<(), DomainError> {
        let bad = |why: &str| Err(DomainError::invalid(format!("custom_fields.{}", self.key), why.to_owned()));
        match (self.kind, v) {
            (FieldKind::Text, Value::String(s)) if s.chars().count() <= TEXT_MAX_CHARS && !s.contains('\0') => Ok(()),
            (FieldKind::Text, _) => bad("must be text of at most 4000 characters"),
            (FieldKind::Number, Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
            (FieldKind::Number, _) => bad("must be a number"),
            (FieldKind::Checkbox, Value::Bool(_)) => Ok(()),
            (FieldKind::Checkbox, _) => bad("must be true or false"),
            (FieldKind::Date, Value::String(s)) if s.parse::<jiff::civil::Date>().is_ok() => Ok(()),
            (FieldKind::Date, _) => bad("must be a date like 2026-01-31"),
            (FieldKind::Select, Value::String(s)) if self.options.contains(s) => Ok(()),
            (FieldKind::Select, _) => bad("must be one of the field's options"),
            (FieldKind::MultiSelect, Value::Array(items))
                if items.iter().all(|i| i.as_str().is_some_and(|s| self.options.iter().any(|o| o == s))) =>
            {
                Ok(())
            }
            (FieldKind::MultiSelect, _) => bad("must be a list of the field's options"),
        }
    }
}

/// Validates a ticket's complete custom field values for its type: every key defined and
/// applicable, every value of the right kind, and (with `require`) every required field present.
/// Updates pass `require = false` so that tickets older than a new required field stay editable.
pub fn validate_values(
    defs: &[CustomFieldDef],
    ticket_type: TicketType,
    values: &Map<String, Value>,
    require: bool,
) -> Result<(), DomainError> {
    for (key, value) in values {
        let Some(def) = defs.iter().find(|d| &d.key == key) else {
            return Err(DomainError::invalid(format!("custom_fields.{key}"), "no such custom field"));
        };
        if !def.applies_to(ticket_type) {
            return Err(DomainError::invalid(
                format!("custom_fields.{key}"),
                format!("does not apply to {ticket_type} tickets"),
            ));
        }
        def.check_value(value)?;
    }
    for def in defs.iter().filter(|d| require && d.required && d.applies_to(ticket_type)) {
        let missing = match values.get(&def.key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if missing {
            return Err(DomainError::invalid(
                format!("custom_fields.{}", def.key),
                format!("{} is required", def.label),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(key: &str, kind: FieldKind, options: &[&str], required: bool, types: Vec<TicketType>) -> CustomFieldDef {
        CustomFieldDef {
            id: CustomFieldId::generate(),
            key: key.into(),
            label: key.into(),
            kind,
            options: options.iter().map(|s| s.to_string()).collect(),
            required,
            ticket_types: types,
        }
    }

    #[test]
    fn definitions_are_checked() {
        assert!(def("asset_tag", FieldKind::Text, &[], false, vec![]).validate().is_ok());
        assert!(def("Asset Tag", FieldKind::Text, &[], false, vec![]).validate().is_err());
        assert!(def("os", FieldKind::Select, &[], false, vec![]).validate().is_err());
        assert!(def("os", FieldKind::Select, &["a", "a"], false, vec![]).validate().is_err());
        assert!(def("n", FieldKind::Number, &["1"], false, vec![]).validate().is_err());
    }

    #[test]
    fn values_table() {
        let defs = vec![
            def("asset_tag", FieldKind::Text, &[], false, vec![]),
            def("cost", FieldKind::Number, &[], false, vec![TicketType::ServiceRequest]),
            def("os", FieldKind::Select, &["linux", "windows"], true, vec![TicketType::Incident]),
            def("apps", FieldKind::MultiSelect, &["mail", "vpn"], false, vec![]),
            def("due", FieldKind::Date, &[], false, vec![]),
            def("urgent", FieldKind::Checkbox, &[], false, vec![]),
        ];
        let inc = TicketType::Incident;
        let ok =
            |v: serde_json::Value, t| validate_values(&defs, t, v.as_object().unwrap_or(&Map::new()), true).is_ok();
        assert!(ok(json!({"os": "linux"}), inc));
        assert!(ok(
            json!({"os": "linux", "apps": ["vpn"], "due": "2026-02-28", "urgent": true, "asset_tag": "A-1"}),
            inc
        ));
        assert!(!ok(json!({}), inc), "os is required for incidents");
        assert!(ok(json!({}), TicketType::ServiceRequest), "…but not for requests");
        assert!(!ok(json!({"os": "mac"}), inc));
        assert!(!ok(json!({"os": "linux", "apps": ["fax"]}), inc));
        assert!(!ok(json!({"os": "linux", "due": "31/01/2026"}), inc));
        assert!(!ok(json!({"os": "linux", "urgent": "yes"}), inc));
        assert!(!ok(json!({"os": "linux", "cost": 5}), inc), "cost is for service requests");
        assert!(ok(json!({"cost": 5.5}), TicketType::ServiceRequest));
        assert!(!ok(json!({"os": "linux", "unknown": 1}), inc));
        assert!(!ok(json!({"os": ""}), inc));
        assert!(validate_values(&defs, inc, &Map::new(), false).is_ok(), "updates do not demand new required fields");
    }
}
