//! Alerts to the admins, by mail, when something needs a person: a flood of mail from one
//! sender or domain, mail from our own address (a loop). At most one per cause per hour, however
//! often the cause repeats, so an alert can never become a flood itself.

use std::sync::Arc;

use ferrodesk_core::user::Role;
use ferrodesk_store::{Store, StoreError, UserQuery};
use jiff::Timestamp;

use crate::outbound::{MailJob, Notification};

/// Admins mailed per alert, at most.
const MAX_RECIPIENTS: u32 = 50;

/// Queues an alert to every active admin unless one for the same `cause` went out within the
/// hour; logs it either way. Returns whether mail was queued.
pub async fn alert_admins(
    store: &Arc<dyn Store>,
    cause: &str,
    title: String,
    details: Vec<String>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    tracing::warn!(%cause, %title, "admin alert");
    let topic = format!("alert:{cause}");
    if crate::outbound::queued_within_hour(store, &topic, now).await? {
        return Ok(false);
    }
    let query = UserQuery { role: Some(Role::Admin), limit: MAX_RECIPIENTS, ..Default::default() };
    let jobs: Vec<_> = store
        .list_users(&query)
        .await?
        .into_iter()
        .filter(|u| u.active)
        .map(|admin| {
            let job = MailJob {
                title: Some(title.clone()),
                details: details.clone(),
                ..MailJob::about(Notification::AdminAlert, None, admin.id)
            };
            job.into_job(Some(topic.clone()), now)
        })
        .collect();
    if jobs.is_empty() {
        return Ok(false);
    }
    store.enqueue_jobs(jobs, now).await?;
    Ok(true)
}
