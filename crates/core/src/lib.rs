//! Ferrodesk's domain: tickets, their lifecycle, priority, people and who may do what.
//!
//! Everything here is pure: no I/O, no SQL, no async runtime, no wall clock. Adapters
//! (store, web, mail, jobs) parse input into these types at the edge and trust them inside.

pub mod access;
pub mod attachment;
pub mod category;
pub mod custom_field;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod priority;
pub mod search;
pub mod ticket;
pub mod time;
pub mod user;

pub use error::DomainError;
