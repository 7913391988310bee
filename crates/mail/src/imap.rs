//! The IMAP adapter: reads a mailbox's folder, hands each message to the ingest, and marks it
//! seen (or moves it) only after it is safely stored. Progress (UIDVALIDITY and the highest UID
//! stored) is saved after every message, so a restart resumes where it stopped and a first sync
//! of a large folder goes in bounded batches. When the server recreated the folder (a new
//! UIDVALIDITY), old UIDs mean nothing: the poller starts over from what is unread (or, when
//! moving, from what is still there), and the ingest's de-duplication keeps re-seen messages
//! from becoming tickets again.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use ferrodesk_core::mail::{AfterProcessing, ImapSecurity, ImapSettings, ImapState, InboundSource};
use ferrodesk_store::{Mailbox, Store};
use futures_util::TryStreamExt;
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::ingest::Ingest;
use crate::secret::SecretBox;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes fetched in one round trip, at most (unless one message alone is larger: it comes by
/// itself).
const FETCH_BYTES: u64 = 32 * 1024 * 1024;
/// Sizes asked in one round trip.
const SIZE_CHUNK: usize = 500;

/// The UIDs in order, grouped for fetching: at most [`FETCH_CHUNK`] messages and
/// [`FETCH_BYTES`] bytes a group, a larger message alone.
fn fetch_groups(uids: &[u32], size_of: impl Fn(u32) -> u64) -> Vec<Vec<u32>> {
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0u64;
    for &uid in uids {
        let size = size_of(uid);
        match groups.last_mut() {
            Some(group) if group.len() < FETCH_CHUNK && bytes + size <= FETCH_BYTES => {
                group.push(uid);
                bytes += size;
            }
            _ => {
                groups.push(vec![uid]);
                bytes = size;
            }
        }
    }
    groups
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Messages handed to the ingest (and then marked or moved).
    pub stored: usize,
    /// The folder's UIDVALIDITY differed from the one remembered.
    pub uidvalidity_changed: bool,
    /// More messages were waiting than one poll takes.
    pub more: bool,
}

/// Polls every active IMAP mailbox whose interval has passed; a mailbox with more waiting than
/// one batch is polled again at once (a first sync of a big folder goes batch by batch).
/// Returns true when a mailbox still has more waiting (call again without pausing).
pub async fn poll_due(store: &Arc<dyn Store>, ingest: &Ingest, secrets: Option<&SecretBox>, now: Timestamp) -> bool {
    let Ok(mailboxes) = store.mailboxes().await else { return false };
    let mut pending = false;
    for m in mailboxes.iter().filter(|m| m.active) {
        let Some(settings) = &m.imap else { continue };
        let due = m
            .imap_state
            .last_poll_at
            .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(settings.poll_seconds)).ok())
            .is_none_or(|next| next <= now);
        if !due {
            continue;
        }
        let mut mailbox = m.clone();
        // At most 20 batches in a row, so one huge folder cannot starve the others.
        for round in 0..20 {
            match poll(store, ingest, secrets, &mailbox, now, BATCH).await {
                Ok(report) if report.more && round == 19 => pending = true,
                Ok(report) if report.more => match store.mailboxes().await {
                    Ok(all) => match all.into_iter().find(|x| x.id == mailbox.id) {
                        Some(fresh) => mailbox = fresh,
                        None => break,
                    },
                    Err(_) => break,
                },
                _ => break,
            }
        }
    }
    pending
}

/// Messages taken per poll: memory stays flat however big the folder.
pub const BATCH: usize = 50;

/// Messages fetched per IMAP command.
const FETCH_CHUNK: usize = 10;

/// Polls one mailbox once, taking at most `max_messages`. The outcome (and any error) is
/// recorded on the mailbox.
pub async fn poll(
    store: &Arc<dyn Store>,
    ingest: &Ingest,
    secrets: Option<&SecretBox>,
    mailbox: &Mailbox,
    now: Timestamp,
    max_messages: usize,
) -> Result<PollReport, String> {
    let Some(settings) = &mailbox.imap else { return Ok(PollReport::default()) };
    let mut state = mailbox.imap_state.clone();
    let result = poll_settings(store, ingest, secrets, mailbox, settings, &mut state, now, max_messages).await;
    // A folder with more waiting stays due, so the next round goes on with it.
    if !result.as_ref().is_ok_and(|r| r.more) {
        state.last_poll_at = Some(now);
    }
    state.last_error = result.as_ref().err().map(|e| e.chars().take(500).collect());
    if let Err(e) = store.set_imap_state(mailbox.id, &state).await {
        tracing::warn!(mailbox = %mailbox.name, error = %e, "cannot record the poll");
    }
    if let Err(e) = &result {
        tracing::warn!(mailbox = %mailbox.name, error = %e, "IMAP poll failed");
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn poll_settings(
    store: &Arc<dyn Store>,
    ingest: &Ingest,
    secrets: Option<&SecretBox>,
    mailbox: &Mailbox,
    settings: &ImapSettings,
    state: &mut ImapState,
    now: Timestamp,
    max_messages: usize,
) -> Result<PollReport, String> {
    let password = match &settings.password_sealed {
        Some(sealed) => {
            secrets.ok_or("no FERRODESK_SECRET_KEY is configured to open the stored password")?.open(sealed)?
        }
        None => return Err("no IMAP password is set".into()),
    };
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((settings.host.as_str(), settings.port)))
        .await
        .map_err(|_| format!("connecting to {}:{} timed out", settings.host, settings.port))?
        .map_err(|e| format!("cannot connect to {}:{}: {e}", settings.host, settings.port))?;
    let job = Job { store, ingest, mailbox, settings, password: &password, now, max_messages };
    match settings.security {
        ImapSecurity::Plain => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            job.run(client, state).await
        }
        ImapSecurity::Tls => {
            let tls = tls_connect(&settings.host, tcp).await?;
            let mut client = Client::new(tls);
            greeting(&mut client).await?;
            job.run(client, state).await
        }
        ImapSecurity::Starttls => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            client.run_command_and_check_ok("STARTTLS", None).await.map_err(|e| format!("STARTTLS refused: {e}"))?;
            let tls = tls_connect(&settings.host, client.into_inner()).await?;
            job.run(Client::new(tls), state).await
        }
    }
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
    client: &mut Client<T>,
) -> Result<(), String> {
    match tokio::time::timeout(TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        _ => Err("the IMAP server did not greet".into()),
    }
}

async fn tls_connect(host: &str, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| format!("{host} is not a server name"))?;
    tokio::time::timeout(TIMEOUT, tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp))
        .await
        .map_err(|_| "the TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS with {host} failed: {e}"))
}

struct Job<'a> {
    store: &'a Arc<dyn Store>,
    ingest: &'a Ingest,
    mailbox: &'a Mailbox,
    settings: &'a ImapSettings,
    password: &'a str,
    now: Timestamp,
    max_messages: usize,
}

impl Job<'_> {
    async fn run<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
        &self,
        client: Client<T>,
        state: &mut ImapState,
    ) -> Result<PollReport, String> {
        let mut session = client
            .login(&self.settings.username, self.password)
            .await
            .map_err(|(e, _)| format!("the IMAP server refused the login: {e}"))?;
        let folder = session
            .select(&self.settings.folder)
            .await
            .map_err(|e| format!("cannot open {}: {e}", self.settings.folder))?;
        let validity = folder.uid_validity.map(i64::from);
        let mut report = PollReport::default();
        let resume_from = match (state.uidvalidity, validity, state.last_uid) {
            (Some(old), Some(new), _) if old != new => {
                report.uidvalidity_changed = true;
                tracing::warn!(mailbox = %self.mailbox.name, old, new, "the IMAP folder was recreated (UIDVALIDITY changed)");
                None
            }
            (_, _, last) => last,
        };
        let query = match (resume_from, self.settings.after) {
            (Some(last), _) => format!("UID {}:*", last + 1),
            // First sync, or a recreated folder: what is unread (when marking) or still there.
            (None, AfterProcessing::Seen) => "UNSEEN".to_owned(),
            (None, AfterProcessing::Move) => "ALL".to_owned(),
        };
        if report.uidvalidity_changed || state.uidvalidity.is_none() {
            state.uidvalidity = validity;
            state.last_uid = None;
        }
        let mut uids: Vec<u32> = session
            .uid_search(&query)
            .await
            .map_err(|e| format!("search failed: {e}"))?
            .into_iter()
            // `n:*` always includes the highest UID, even below n.
            .filter(|uid| resume_from.is_none_or(|last| i64::from(*uid) > last))
            .collect();
        uids.sort_unstable();
        report.more = uids.len() > self.max_messages;
        let wanted: Vec<u32> = uids.into_iter().take(self.max_messages).collect();
        // Their sizes first, so a round trip fetches a few messages, or one large one: memory
        // stays bounded by the group, not the folder.
        let mut sizes = std::collections::HashMap::new();
        for chunk in wanted.chunks(SIZE_CHUNK) {
            let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let listed: Vec<(u32, u32)> = session
                .uid_fetch(&set, "RFC822.SIZE")
                .await
                .map_err(|e| format!("fetch failed: {e}"))?
                .try_filter_map(|f| async move { Ok(f.uid.zip(f.size)) })
                .try_collect()
                .await
                .map_err(|e| format!("fetch failed: {e}"))?;
            sizes.extend(listed);
        }
        let groups = fetch_groups(&wanted, |uid| sizes.get(&uid).copied().map_or(0, u64::from));
        for chunk in &groups {
            let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let mut fetched: Vec<(u32, Vec<u8>)> = session
                .uid_fetch(&set, "BODY.PEEK[]")
                .await
                .map_err(|e| format!("fetch failed: {e}"))?
                .try_filter_map(|f| async move { Ok(f.uid.zip(f.body().map(<[u8]>::to_vec))) })
                .try_collect()
                .await
                .map_err(|e| format!("fetch failed: {e}"))?;
            // In UID order: a reply arrives after what it answers, so it threads.
            fetched.sort_by_key(|(uid, _)| *uid);
            let (uids, raws): (Vec<u32>, Vec<bytes::Bytes>) =
                fetched.into_iter().map(|(uid, raw)| (uid, bytes::Bytes::from(raw))).unzip();
            // Stored (whatever became of each) before anything is marked or moved; if the chunk
            // could not be stored, it stays on the server for the next poll.
            let results = self
                .ingest
                .receive_batch(raws, Some(self.mailbox), InboundSource::Imap, self.now)
                .await
                .map_err(|e| format!("messages could not be stored, they stay on the server: {e}"))?;
            let mut stored = Vec::with_capacity(uids.len());
            let mut failure = None;
            for (uid, result) in uids.into_iter().zip(results) {
                match result {
                    Ok(_) => stored.push(uid),
                    // Stored but not processed (the database failed meanwhile): it is marked
                    // like the others and processed again at the next start (left pending).
                    Err(e) => {
                        stored.push(uid);
                        failure = Some(format!("a stored message could not be processed yet: {e}"));
                    }
                }
            }
            if !stored.is_empty() {
                let set = stored.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
                match (&self.settings.after, &self.settings.move_to) {
                    (AfterProcessing::Move, Some(target)) => {
                        session.uid_mv(&set, target).await.map_err(|e| format!("cannot move to {target}: {e}"))?;
                    }
                    _ => {
                        let _: Vec<_> = session
                            .uid_store(&set, "+FLAGS (\\Seen)")
                            .await
                            .map_err(|e| format!("cannot mark seen: {e}"))?
                            .try_collect()
                            .await
                            .map_err(|e| format!("cannot mark seen: {e}"))?;
                    }
                }
                state.last_uid = stored.iter().max().map(|u| i64::from(*u));
                report.stored += stored.len();
                // Saved per chunk: a restart resumes after the last chunk stored (a message
                // stored but not yet marked is fetched again and recognised as a duplicate).
                self.store.set_imap_state(self.mailbox.id, state).await.map_err(|e| e.to_string())?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        let _ = session.logout().await;
        Ok(report)
    }
}

#[cfg(test)]
mod fetch_tests {
    use super::*;

    #[test]
    fn groups_bound_the_bytes_and_the_count() {
        const MB: u64 = 1024 * 1024;
        let sizes = |uid: u32| match uid {
            3 => 40 * MB,
            4..=6 => 12 * MB,
            _ => 1024,
        };
        let uids: Vec<u32> = (1..=60).collect();
        let groups = fetch_groups(&uids, sizes);
        // 1–2 small; 3 alone (over the budget); 4–5 (24 MiB), 6 starts anew with the small ones.
        assert_eq!(groups[0], [1, 2]);
        assert_eq!(groups[1], [3]);
        assert_eq!(groups[2], [4, 5]);
        assert_eq!(groups[3][0], 6);
        assert!(groups.iter().all(|g| g.len() <= FETCH_CHUNK));
        assert!(groups.iter().all(|g| g.len() == 1 || g.iter().map(|u| sizes(*u)).sum::<u64>() <= FETCH_BYTES));
        assert_eq!(groups.concat(), uids, "every message once, in order");
    }
}
