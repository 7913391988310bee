//! Black-box tests: the real server over HTTP, the store's conformance suite, and the CLI,
//! each against SQLite and PostgreSQL. One test binary keeps linking fast.

mod access;
mod attachments;
mod bad_input;
mod cli;
mod directory;
mod faults;
mod helpers;
mod imap;
mod mail;
mod mail_limits;
mod mail_trust;
mod password_reset;
mod scale_out;
mod sessions;
mod store_conformance;
mod system;
mod ticket_work;
mod tickets;
mod web_ui;
