//! Ferrodesk's e-mail channel. The pure part turns a raw message into facts
//! ([`parse::InboundMail`]: addresses, threading ids, text, sanitised HTML, files, whether a
//! machine wrote it) and decides nothing about storage; [`ingest`] applies those facts to the
//! store (store the raw message first, then thread, create or comment, or quarantine).

pub mod alerts;
pub mod charset;
pub mod classify;
pub mod decide;
pub mod header;
pub mod html;
pub mod imap;
pub mod ingest;
mod keys;
pub mod links;
pub mod outbound;
pub mod outbox;
pub mod parse;
pub mod reply;
pub mod reset;
pub mod secret;
pub mod templates;
pub mod thread;
pub mod trust;

pub use classify::Automation;
pub use parse::{InboundMail, MailAddress, MailFile, ParseLimits, parse};
