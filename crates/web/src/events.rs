//! Ticket change events for live updates. In one process a broadcast channel carries them;
//! server processes sharing a PostgreSQL database also pass them to each other through the
//! store's announcements (`NOTIFY`/`LISTEN`), so a viewer on one node sees a change made on
//! another.

use std::sync::{Arc, OnceLock};

use ferrodesk_core::ids::{TicketId, TicketNumber};
use ferrodesk_store::{Store, StoreResult};
use tokio::sync::{broadcast, mpsc, watch};

/// A ticket reached a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketChanged {
    pub id: TicketId,
    pub number: TicketNumber,
    pub version: i64,
}

impl TicketChanged {
    /// `"<node> <ticket id> <number> <version>"`: what goes between processes.
    fn announcement(&self, node: uuid::Uuid) -> String {
        format!("{node} {} {} {}", self.id.0, self.number.0, self.version)
    }

    /// An announcement of another node; `None` for our own or anything malformed.
    fn from_announcement(payload: &str, node: uuid::Uuid) -> Option<Self> {
        let mut parts = payload.split(' ');
        let from: uuid::Uuid = parts.next()?.parse().ok()?;
        if from == node {
            return None;
        }
        let id = TicketId(parts.next()?.parse().ok()?);
        let number = TicketNumber(parts.next()?.parse().ok()?);
        let version = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self { id, number, version })
    }
}

/// The event bus of this process, and the signal that it is shutting down (so that open
/// event streams end and the server can drain).
#[derive(Clone)]
pub struct Events {
    changes: broadcast::Sender<TicketChanged>,
    closing: Arc<watch::Sender<bool>>,
    /// This process, to recognise its own announcements.
    node: uuid::Uuid,
    /// Where events go to be announced to other processes, once connected.
    outbound: Arc<OnceLock<mpsc::UnboundedSender<TicketChanged>>>,
}

impl Default for Events {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(1024);
        let (closing, _) = watch::channel(false);
        Self { changes, closing: Arc::new(closing), node: uuid::Uuid::now_v7(), outbound: Arc::new(OnceLock::new()) }
    }
}

impl Events {
    pub fn publish(&self, event: TicketChanged) {
        // No subscriber is fine: nobody is watching.
        let _ = self.changes.send(event);
        if let Some(out) = self.outbound.get() {
            let _ = out.send(event);
        }
    }

    pub fn subscribe(&self) -> (broadcast::Receiver<TicketChanged>, watch::Receiver<bool>) {
        (self.changes.subscribe(), self.closing.subscribe())
    }

    /// Ends every open stream.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Joins the other server processes on the same database: our events are announced to
    /// them, theirs are published here. Nothing to do on SQLite (one process).
    pub async fn connect(&self, store: Arc<dyn Store>) -> StoreResult<()> {
        let Some(mut incoming) = store.announcements().await? else {
            return Ok(());
        };
        let (tx, mut outgoing) = mpsc::unbounded_channel::<TicketChanged>();
        if self.outbound.set(tx).is_err() {
            return Ok(());
        }
        let node = self.node;
        tokio::spawn(async move {
            while let Some(event) = outgoing.recv().await {
                // A lost announcement costs a viewer a live refresh, never data: stale edits are
                // still refused by the version check.
                if let Err(e) = store.announce(&event.announcement(node)).await {
                    tracing::warn!(error = %e, "could not announce a ticket change to other servers");
                }
            }
        });
        let changes = self.changes.clone();
        tokio::spawn(async move {
            while let Some(payload) = incoming.recv().await {
                if let Some(event) = TicketChanged::from_announcement(&payload, node) {
                    let _ = changes.send(event);
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_our_own_are_ignored() {
        let (us, them) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let e = TicketChanged { id: TicketId::generate(), number: TicketNumber(1042), version: 7 };
        assert_eq!(TicketChanged::from_announcement(&e.announcement(them), us), Some(e));
        assert_eq!(TicketChanged::from_announcement(&e.announcement(us), us), None);
        for bad in ["", "x", &format!("{them} nope 1 2"), &format!("{them} {} 1 2 extra", e.id.0)] {
            assert_eq!(TicketChanged::from_announcement(bad, us), None, "{bad:?}");
        }
    }
}
