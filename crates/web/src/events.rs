//! Ticket change events for live updates. In one process a broadcast channel carries them; a
//! multi-node deployment on PostgreSQL will feed the same channel from LISTEN/NOTIFY (next step).

use std::sync::Arc;

use ferrodesk_core::ids::{TicketId, TicketNumber};
use tokio::sync::{broadcast, watch};

/// A ticket reached a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketChanged {
    pub id: TicketId,
    pub number: TicketNumber,
    pub version: i64,
}

/// The event bus of this process, and the signal that it is shutting down (so that open
/// event streams end and the server can drain).
#[derive(Clone)]
pub struct Events {
    changes: broadcast::Sender<TicketChanged>,
    closing: Arc<watch::Sender<bool>>,
}

impl Default for Events {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(1024);
        let (closing, _) = watch::channel(false);
        Self { changes, closing: Arc::new(closing) }
    }
}

impl Events {
    pub fn publish(&self, event: TicketChanged) {
        // No subscriber is fine: nobody is watching.
        let _ = self.changes.send(event);
    }

    pub fn subscribe(&self) -> (broadcast::Receiver<TicketChanged>, watch::Receiver<bool>) {
        (self.changes.subscribe(), self.closing.subscribe())
    }

    /// Ends every open stream.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }
}
