//! The e-mail channel's API: mailboxes, raw messages from mail relays, and the inbound log
//! with its quarantine (see, retry, discard). Admins only: raw mail is personal data.

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrodesk_core::access::{Action, Resource};
use ferrodesk_core::ids::{CategoryId, GroupId, TicketId, UserId};
use ferrodesk_core::mail::{
    AfterProcessing, ImapSecurity, ImapSettings, InboundSource, InboundStatus, validate_mailbox_name,
};
use ferrodesk_core::ticket::TicketType;
use ferrodesk_core::user::EmailAddress;
use ferrodesk_mail::ingest::Ingested;
use ferrodesk_store::{InboundMessage, Mailbox};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{authorise, page_limit, parse_id};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiQuery};
use crate::views::{Page, page};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The delivery reads its body under its own (message) limit.
        .routes(routes!(deliver, list_inbound))
        .layer(DefaultBodyLimit::disable())
        .routes(routes!(create_mailbox, list_mailboxes))
        .routes(routes!(update_mailbox))
        .routes(routes!(get_inbound))
        .routes(routes!(get_inbound_raw))
        .routes(routes!(retry_inbound))
        .routes(routes!(discard_inbound))
}

#[derive(Serialize, ToSchema)]
pub struct MailboxView {
    id: uuid::Uuid,
    name: String,
    address: String,
    default_group_id: Option<GroupId>,
    default_category_id: Option<CategoryId>,
    default_type: TicketType,
    active: bool,
    /// Larger messages are kept, unread, in the quarantine, and their sender is told.
    max_message_bytes: i64,
    /// Mail from addresses without a dotted domain (`root@mailhost`) opens tickets as this
    /// user; `null`: it is quarantined.
    local_senders_as: Option<UserId>,
    /// IMAP settings and the poller's state; `null` when mail arrives by relay or pipe only.
    imap: Option<ImapView>,
}

/// IMAP settings as shown: the password never leaves the server.
#[derive(Serialize, ToSchema)]
pub struct ImapView {
    host: String,
    port: u16,
    security: ImapSecurity,
    username: String,
    has_password: bool,
    folder: String,
    poll_seconds: i64,
    after_processing: AfterProcessing,
    move_to: Option<String>,
    last_poll_at: Option<String>,
    /// Why the last poll failed, if it did.
    last_error: Option<String>,
}

impl From<Mailbox> for MailboxView {
    fn from(m: Mailbox) -> Self {
        let state = m.imap_state;
        Self {
            id: m.id,
            name: m.name,
            address: m.address.to_string(),
            default_group_id: m.default_group_id,
            default_category_id: m.default_category_id,
            default_type: m.default_type,
            active: m.active,
            max_message_bytes: m.max_message_bytes,
            local_senders_as: m.local_senders_as,
            imap: m.imap.map(|i| ImapView {
                host: i.host,
                port: i.port,
                security: i.security,
                username: i.username,
                has_password: i.password_sealed.is_some(),
                folder: i.folder,
                poll_seconds: i.poll_seconds,
                after_processing: i.after,
                move_to: i.move_to,
                last_poll_at: state.last_poll_at.map(|t| t.to_string()),
                last_error: state.last_error,
            }),
        }
    }
}

/// IMAP settings as given. Omitted fields take their defaults (port from the security, folder
/// INBOX, every 60 s, mark seen); an omitted password keeps the stored one.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ImapInput {
    pub host: String,
    pub port: Option<u16>,
    pub security: Option<ImapSecurity>,
    pub username: String,
    /// Stored sealed with the server's `FERRODESK_SECRET_KEY`; never shown again.
    pub password: Option<String>,
    pub folder: Option<String>,
    pub poll_seconds: Option<i64>,
    pub after_processing: Option<AfterProcessing>,
    pub move_to: Option<String>,
}

/// Turns the input into settings, sealing the password (or keeping `previous`'s).
pub fn imap_settings(
    state: &AppState,
    input: ImapInput,
    previous: Option<&ImapSettings>,
) -> Result<ImapSettings, ApiError> {
    let security = input.security.unwrap_or(ImapSecurity::Tls);
    let password_sealed = match input.password {
        Some(p) => {
            let secrets = state.secrets.as_ref().ok_or_else(|| {
                ApiError::invalid("imap.password", "the server has no FERRODESK_SECRET_KEY to store passwords with")
            })?;
            Some(secrets.seal(&p, rand::random()))
        }
        None => previous.and_then(|p| p.password_sealed.clone()),
    };
    let settings = ImapSettings {
        host: input.host.trim().to_owned(),
        port: input.port.unwrap_or(if security == ImapSecurity::Tls { 993 } else { 143 }),
        security,
        username: input.username,
        password_sealed,
        folder: input.folder.unwrap_or_else(|| "INBOX".into()),
        poll_seconds: input.poll_seconds.unwrap_or(60),
        after: input.after_processing.unwrap_or(AfterProcessing::Seen),
        move_to: input.move_to,
    };
    settings.validate()?;
    Ok(settings)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailbox {
    /// Short name for the command line, e.g. `support`.
    pub name: String,
    /// The address people write to.
    pub address: String,
    pub default_group_id: Option<GroupId>,
    pub default_category_id: Option<CategoryId>,
    pub default_type: Option<TicketType>,
    /// The largest message taken (1 MiB to 256 MiB; default 50 MiB).
    pub max_message_bytes: Option<i64>,
    /// The user that mail from addresses without a dotted domain opens tickets as (e.g. a
    /// "Monitoring" requester); omitted: such mail is quarantined.
    pub local_senders_as: Option<UserId>,
    /// Read this mailbox over IMAP.
    pub imap: Option<ImapInput>,
}

/// Add a mailbox. Admins only.
#[utoipa::path(post, path = "/mailboxes", tag = "mail", request_body = CreateMailbox,
    responses((status = 201, body = MailboxView), (status = 409, body = crate::error::Problem)))]
async fn create_mailbox(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateMailbox>,
) -> Result<(StatusCode, Json<MailboxView>), ApiError> {
    authorise(&actor, Resource::Mail, Action::Create)?;
    let mailbox = add_mailbox(&state, body).await?;
    Ok((StatusCode::CREATED, Json(mailbox.into())))
}

/// List mailboxes. Admins only.
#[utoipa::path(get, path = "/mailboxes", tag = "mail", responses((status = 200, body = Page<MailboxView>)))]
async fn list_mailboxes(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<Page<MailboxView>>, ApiError> {
    authorise(&actor, Resource::Mail, Action::Read)?;
    Ok(page(state.store.mailboxes().await?.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMailbox {
    name: Option<String>,
    address: Option<String>,
    #[serde(default, deserialize_with = "crate::json::double_option")]
    #[schema(value_type = Option<GroupId>)]
    default_group_id: Option<Option<GroupId>>,
    #[serde(default, deserialize_with = "crate::json::double_option")]
    #[schema(value_type = Option<CategoryId>)]
    default_category_id: Option<Option<CategoryId>>,
    default_type: Option<TicketType>,
    /// An inactive mailbox refuses new mail (relays are told to retry later) and is not polled.
    active: Option<bool>,
    /// The largest message taken (1 MiB to 256 MiB).
    max_message_bytes: Option<i64>,
    /// The user mail from addresses without a dotted domain opens tickets as; `null`: quarantine it.
    #[serde(default, deserialize_with = "crate::json::double_option")]
    #[schema(value_type = Option<UserId>)]
    local_senders_as: Option<Option<UserId>>,
    /// New IMAP settings; `null` stops reading the mailbox over IMAP.
    #[serde(default, deserialize_with = "crate::json::double_option")]
    #[schema(value_type = Option<ImapInput>)]
    imap: Option<Option<ImapInput>>,
}

/// Change a mailbox. Admins only.
#[utoipa::path(patch, path = "/mailboxes/{id}", tag = "mail", request_body = UpdateMailbox, params(("id" = String, Path)),
    responses((status = 200, body = MailboxView)))]
async fn update_mailbox(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateMailbox>,
) -> Result<Json<MailboxView>, ApiError> {
    authorise(&actor, Resource::Mail, Action::Update)?;
    let id: uuid::Uuid = parse_id(&id)?;
    let mut mailbox =
        state.store.mailboxes().await?.into_iter().find(|m| m.id == id).ok_or_else(ApiError::not_found)?;
    if let Some(n) = body.name {
        mailbox.name = validate_mailbox_name(&n)?;
    }
    if let Some(a) = body.address {
        mailbox.address = EmailAddress::parse(&a).map_err(|e| ApiError::invalid("address", e.to_string()))?;
    }
    if let Some(g) = body.default_group_id {
        mailbox.default_group_id = g;
    }
    if let Some(c) = body.default_category_id {
        mailbox.default_category_id = c;
    }
    if let Some(t) = body.default_type {
        mailbox.default_type = t;
    }
    if let Some(a) = body.active {
        mailbox.active = a;
    }
    if let Some(limit) = body.max_message_bytes {
        mailbox.max_message_bytes = ferrodesk_core::mail::validate_max_message_bytes(limit)?;
    }
    if let Some(user) = body.local_senders_as {
        mailbox.local_senders_as = local_senders_user(&state, user).await?;
    }
    if let Some(imap) = body.imap {
        mailbox.imap = imap.map(|i| imap_settings(&state, i, mailbox.imap.as_ref())).transpose()?;
    }
    mailbox.updated_at = state.now();
    state.store.update_mailbox(&mailbox).await?;
    Ok(Json(mailbox.into()))
}

#[derive(Serialize, ToSchema)]
pub struct InboundView {
    id: uuid::Uuid,
    mailbox_id: Option<uuid::Uuid>,
    /// `pipe`, `http` or `imap`.
    source: InboundSource,
    received_at: String,
    size: i64,
    message_id: Option<String>,
    from: Option<String>,
    subject: String,
    /// `pending`, `processed`, `held`, `ignored`, `duplicate`, `quarantined` or `discarded`.
    status: InboundStatus,
    /// Who wrote it: `human`, `generated`, `auto-reply` or `bounce`.
    automation: Option<String>,
    /// Why it is quarantined (or ignored).
    error: Option<String>,
    ticket_id: Option<TicketId>,
    duplicate_of: Option<uuid::Uuid>,
    attempts: i64,
}

impl From<InboundMessage> for InboundView {
    fn from(m: InboundMessage) -> Self {
        Self {
            id: m.id,
            mailbox_id: m.mailbox_id,
            source: m.source,
            received_at: m.received_at.to_string(),
            size: m.size,
            message_id: m.message_id,
            from: m.from_address,
            subject: m.subject,
            status: m.status,
            automation: m.automation,
            error: m.error,
            ticket_id: m.ticket_id,
            duplicate_of: m.duplicate_of,
            attempts: m.attempts,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// `opened`, `commented`, `held` (kept on its ticket for an agent: it did not prove its
    /// sender), `ignored`, `duplicate` or `quarantined`.
    outcome: &'static str,
    message: InboundView,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliverParams {
    /// The mailbox (by name) the message was sent to. Required.
    mailbox: Option<String>,
}

/// Deliver one raw RFC 5322 message (`Content-Type: message/rfc822`), as a mail relay does.
/// The message is stored before anything else; `201` means it is safe (even when it was
/// quarantined: see `outcome`). `503` means it was not stored: retry later.
#[utoipa::path(post, path = "/mail/inbound", tag = "mail", params(DeliverParams),
    request_body(content = String, content_type = "message/rfc822"),
    responses((status = 201, body = DeliveryView), (status = 415, body = crate::error::Problem)))]
async fn deliver(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(params): ApiQuery<DeliverParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    authorise(&actor, Resource::Mail, Action::Create)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim_start().to_ascii_lowercase().starts_with("message/rfc822") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the raw message with Content-Type: message/rfc822",
        ));
    }
    let Some(name) = params.mailbox else {
        return Err(ApiError::invalid("mailbox", "name the mailbox the message was sent to: ?mailbox=NAME"));
    };
    let mailbox = state
        .store
        .mailboxes()
        .await?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ApiError::invalid("mailbox", format!("there is no mailbox named {name:?}")))?;
    if !mailbox.active {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "mailbox_inactive",
            "this mailbox is switched off; retry later",
        ));
    }
    // A few large messages at a time (or of unknown size): each is held in memory whole.
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let _permit = match announced.is_none_or(|n| n > ferrodesk_mail::ingest::LARGE_MESSAGE_BYTES) {
        true => Some(state.large_deliveries.acquire().await.map_err(ApiError::internal)?),
        false => None,
    };
    let raw = axum::body::to_bytes(body, state.limits.message_bytes).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the message is larger than allowed")
    })?;
    let result = state.ingest.receive(raw, Some(&mailbox), InboundSource::Http, state.now()).await;
    let ingested = match result {
        Ok(i) => i,
        // Not stored (or stored but not processed because the database failed): retry.
        Err(e) => return Err(e.into()),
    };
    if let Some(ticket) = ingested.ticket() {
        crate::usecases::announce_change(&state, ticket).await;
    }
    let message = state.store.inbound(ingested.inbound_id()).await?.ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(DeliveryView { outcome: outcome_name(&ingested), message: message.into() })))
}

fn outcome_name(i: &Ingested) -> &'static str {
    match i {
        Ingested::Opened { .. } => "opened",
        Ingested::Commented { .. } => "commented",
        Ingested::Held { .. } => "held",
        Ingested::Ignored { .. } => "ignored",
        Ingested::Duplicate { .. } => "duplicate",
        Ingested::Quarantined { .. } => "quarantined",
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboundParams {
    /// Only messages in this state (e.g. `quarantined`).
    status: Option<InboundStatus>,
    /// Page size (1–200, default 50).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The inbound log, newest first: every message received, with what became of it. Admins only.
#[utoipa::path(get, path = "/mail/inbound", tag = "mail", params(InboundParams),
    responses((status = 200, body = Page<InboundView>)))]
async fn list_inbound(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(params): ApiQuery<InboundParams>,
) -> Result<Json<Page<InboundView>>, ApiError> {
    authorise(&actor, Resource::Mail, Action::Read)?;
    let limit = page_limit(params.limit)?;
    let before = match params.cursor {
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(at, id)| {
                    let at = at.parse::<i64>().ok().and_then(|m| jiff::Timestamp::from_microsecond(m).ok())?;
                    Some((at, uuid::Uuid::parse_str(id).ok()?))
                })
                .ok_or_else(|| ApiError::bad_request("invalid_cursor", "the cursor is not one this list gave"))?,
        ),
        None => None,
    };
    let items = state.store.list_inbound(params.status, before, limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|m| format!("{}.{}", m.received_at.as_microsecond(), m.id.simple())))
        .flatten();
    Ok(Json(Page { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

async fn find(state: &AppState, id: &str) -> Result<InboundMessage, ApiError> {
    let id: uuid::Uuid = parse_id(id)?;
    state.store.inbound(id).await?.ok_or_else(ApiError::not_found)
}

/// One inbound message's record. Admins only.
#[utoipa::path(get, path = "/mail/inbound/{id}", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, body = InboundView)))]
async fn get_inbound(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<InboundView>, ApiError> {
    authorise(&actor, Resource::Mail, Action::Read)?;
    Ok(Json(find(&state, &id).await?.into()))
}

/// The message exactly as received, as a download. Admins only.
#[utoipa::path(get, path = "/mail/inbound/{id}/raw", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, content_type = "message/rfc822", body = String)))]
async fn get_inbound_raw(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorise(&actor, Resource::Mail, Action::Read)?;
    let message = find(&state, &id).await?;
    let raw = state.store.inbound_raw(message.id).await?.ok_or_else(ApiError::not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.eml\"", message.id)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        raw,
    )
        .into_response())
}

/// Process a quarantined message again (after fixing its cause, e.g. adding a mailbox or
/// re-activating a sender). Admins only.
#[utoipa::path(post, path = "/mail/inbound/{id}/retry", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 409, body = crate::error::Problem)))]
async fn retry_inbound(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    authorise(&actor, Resource::Mail, Action::Update)?;
    let ingested = retry(&state, &id).await?;
    let message = find(&state, &id).await?;
    Ok(Json(DeliveryView { outcome: outcome_name(&ingested), message: message.into() }))
}

/// Give up on a quarantined message: it stays stored, marked discarded. Admins only.
#[utoipa::path(post, path = "/mail/inbound/{id}/discard", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, body = InboundView), (status = 409, body = crate::error::Problem)))]
async fn discard_inbound(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<InboundView>, ApiError> {
    authorise(&actor, Resource::Mail, Action::Update)?;
    discard(&state, &id).await?;
    Ok(Json(find(&state, &id).await?.into()))
}

/// Processes a quarantined (or stuck pending) message again; shared with the admin page.
pub async fn retry(state: &AppState, id: &str) -> Result<Ingested, ApiError> {
    let message = find(state, id).await?;
    if !message.status.can_retry() {
        return Err(not_quarantined(&message));
    }
    let ingested = state.ingest.process(message.id, state.now()).await?;
    if let Some(ticket) = ingested.ticket() {
        crate::usecases::announce_change(state, ticket).await;
    }
    Ok(ingested)
}

/// Gives up on a quarantined message (kept, marked discarded); shared with the admin page.
pub async fn discard(state: &AppState, id: &str) -> Result<(), ApiError> {
    let message = find(state, id).await?;
    let discarded = state
        .store
        .set_inbound_status(message.id, InboundStatus::Discarded, message.error.clone(), &[InboundStatus::Quarantined])
        .await?;
    if !discarded {
        return Err(not_quarantined(&message));
    }
    Ok(())
}

/// Checks and stores a new mailbox; shared with the admin page.
pub async fn add_mailbox(state: &AppState, body: CreateMailbox) -> Result<Mailbox, ApiError> {
    let now = state.now();
    let imap = body.imap.map(|i| imap_settings(state, i, None)).transpose()?;
    let mailbox = Mailbox {
        imap,
        imap_state: Default::default(),
        id: uuid::Uuid::now_v7(),
        name: validate_mailbox_name(&body.name)?,
        address: EmailAddress::parse(&body.address).map_err(|e| ApiError::invalid("address", e.to_string()))?,
        default_group_id: body.default_group_id,
        default_category_id: body.default_category_id,
        default_type: body.default_type.unwrap_or(TicketType::Incident),
        active: true,
        max_message_bytes: ferrodesk_core::mail::validate_max_message_bytes(
            body.max_message_bytes.unwrap_or(ferrodesk_core::mail::DEFAULT_MAX_MESSAGE_BYTES),
        )?,
        local_senders_as: local_senders_user(state, body.local_senders_as).await?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_mailbox(&mailbox).await?;
    Ok(mailbox)
}

/// Checks the user local senders' mail is opened as: an active account.
async fn local_senders_user(state: &AppState, user: Option<UserId>) -> Result<Option<UserId>, ApiError> {
    let Some(id) = user else { return Ok(None) };
    match state.store.user(id).await? {
        Some(u) if u.active => Ok(Some(id)),
        _ => Err(ApiError::invalid("local_senders_as", "an active user")),
    }
}

fn not_quarantined(message: &InboundMessage) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "not_quarantined", format!("the message is {}", message.status))
}
