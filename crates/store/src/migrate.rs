//! Embedded, forward-only migrations: one folder per dialect with matching names. An applied
//! migration whose text changed, or one this binary does not know (a newer database), stops
//! start-up before anything is written.

use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

/// One migration of one dialect.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

macro_rules! migrations {
    ($dialect:literal: $($version:literal $name:literal),+ $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dialect, "/", $name, ".sql")),
        }),+]
    };
}

/// File names (without `.sql`) of every migration, in order; both dialects have each.
pub const MIGRATION_NAMES: &[&str] = &[
    "0001_core",
    "0002_sessions_and_login",
    "0003_ticket_work",
    "0004_attachments",
    "0005_saved_filters",
    "0006_queue_indexes",
    "0007_group_queue_index",
    "0008_list_indexes",
    "0009_view_counters",
    "0010_search_merge",
    "0011_mail",
    "0012_jobs",
    "0013_imap_state",
    "0014_password_resets",
    "0015_one_search_vector",
    "0016_lean_search_index",
    "0017_set_aside_indexes",
    "0018_group_queue_order",
    "0019_assignee_counters",
    "0020_ungrouped_queue_order",
    "0021_view_counters",
    "0022_requester_recent",
    "0023_held_mail",
    "0024_mailbox_limits",
    "0025_inbound_raw",
    "0026_local_senders",
];

pub(crate) const SQLITE: &[Migration] = migrations!("sqlite": 1 "0001_core", 2 "0002_sessions_and_login", 3 "0003_ticket_work", 4 "0004_attachments", 5 "0005_saved_filters", 6 "0006_queue_indexes", 7 "0007_group_queue_index", 8 "0008_list_indexes", 9 "0009_view_counters", 10 "0010_search_merge", 11 "0011_mail", 12 "0012_jobs", 13 "0013_imap_state", 14 "0014_password_resets", 15 "0015_one_search_vector", 16 "0016_lean_search_index", 17 "0017_set_aside_indexes", 18 "0018_group_queue_order", 19 "0019_assignee_counters", 20 "0020_ungrouped_queue_order", 21 "0021_view_counters", 22 "0022_requester_recent", 23 "0023_held_mail", 24 "0024_mailbox_limits", 25 "0025_inbound_raw", 26 "0026_local_senders");
pub(crate) const POSTGRES: &[Migration] = migrations!("postgres": 1 "0001_core", 2 "0002_sessions_and_login", 3 "0003_ticket_work", 4 "0004_attachments", 5 "0005_saved_filters", 6 "0006_queue_indexes", 7 "0007_group_queue_index", 8 "0008_list_indexes", 9 "0009_view_counters", 10 "0010_search_merge", 11 "0011_mail", 12 "0012_jobs", 13 "0013_imap_state", 14 "0014_password_resets", 15 "0015_one_search_vector", 16 "0016_lean_search_index", 17 "0017_set_aside_indexes", 18 "0018_group_queue_order", 19 "0019_assignee_counters", 20 "0020_ungrouped_queue_order", 21 "0021_view_counters", 22 "0022_requester_recent", 23 "0023_held_mail", 24 "0024_mailbox_limits", 25 "0025_inbound_raw", 26 "0026_local_senders");

/// A row of the `schema_migrations` table.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub version: i64,
    pub name: String,
    pub checksum: String,
}

/// Checks what the database has applied against what this binary carries and returns the
/// migrations still to apply.
pub(crate) fn pending<'a>(known: &'a [Migration], applied: &[Applied]) -> StoreResult<Vec<&'a Migration>> {
    for a in applied {
        match known.iter().find(|m| m.version == a.version) {
            None => {
                return Err(StoreError::Schema(format!(
                    "the database has migration {} ({}) which this binary does not know: it was \
                     upgraded by a newer Ferrodesk; run that version or restore a backup",
                    a.version, a.name
                )));
            }
            Some(m) if m.checksum() != a.checksum || m.name != a.name => {
                return Err(StoreError::Schema(format!(
                    "migration {} ({}) was changed after it was applied; applied migrations must \
                     never be edited — restore the original file and add a new migration",
                    a.version, m.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(known.iter().filter(|m| !applied.iter().any(|a| a.version == m.version)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(m: &Migration) -> Applied {
        Applied { version: m.version, name: m.name.to_string(), checksum: m.checksum() }
    }

    #[test]
    fn both_dialects_carry_the_same_migrations_as_the_folders() {
        for (dialect, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let names: Vec<&str> = list.iter().map(|m| m.name).collect();
            assert_eq!(names, MIGRATION_NAMES, "{dialect}");
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/");
            let mut on_disk: Vec<String> = std::fs::read_dir(format!("{dir}{dialect}"))
                .map(|rd| {
                    rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().replace(".sql", "")).collect()
                })
                .unwrap_or_default();
            on_disk.sort();
            assert_eq!(on_disk, MIGRATION_NAMES, "{dialect} folder and list differ");
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "versions are 1, 2, 3, …");
            }
        }
    }

    #[test]
    fn pending_refuses_edited_and_unknown_migrations() {
        assert_eq!(pending(SQLITE, &[]).map(|p| p.len()).ok(), Some(SQLITE.len()));
        let all: Vec<Applied> = SQLITE.iter().map(applied).collect();
        assert_eq!(pending(SQLITE, &all).map(|p| p.len()).ok(), Some(0));

        let mut edited = all.clone();
        edited[0].checksum = "0".repeat(64);
        let err = pending(SQLITE, &edited).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("0001_core") && err.contains("changed"), "{err}");

        let mut newer = all;
        newer.push(Applied { version: 999, name: "0999_future".into(), checksum: String::new() });
        let err = pending(SQLITE, &newer).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("0999_future") && err.contains("newer"), "{err}");
    }
}
