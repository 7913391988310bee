//! The words of our mail: one text and one HTML template per notification (MiniJinja, the
//! Jinja2 language), built in and overridable by files in a directory (`serve --templates DIR`).
//! Every template is checked at start-up by rendering it with the variables its notification
//! really gets, so a typo or an unknown variable stops the server with the file and line
//! instead of failing at 3 a.m. when the first such mail is sent.
//!
//! HTML templates escape every variable (the subject, a requester's name and their words are
//! theirs, not ours); text templates do not need to.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::outbound::{Context, Notification};

/// The shared frame of the HTML mails; override it alone to brand every mail.
pub const LAYOUT: &str = "_layout.html";

/// The built-in templates, by file name.
const BUILT_IN: &[(&str, &str)] = &[
    (LAYOUT, include_str!("../templates/_layout.html")),
    ("received.txt", include_str!("../templates/received.txt")),
    ("received.html", include_str!("../templates/received.html")),
    ("agent_reply.txt", include_str!("../templates/agent_reply.txt")),
    ("agent_reply.html", include_str!("../templates/agent_reply.html")),
    ("requester_reply.txt", include_str!("../templates/requester_reply.txt")),
    ("requester_reply.html", include_str!("../templates/requester_reply.html")),
    ("pending_on_you.txt", include_str!("../templates/pending_on_you.txt")),
    ("pending_on_you.html", include_str!("../templates/pending_on_you.html")),
    ("resolved.txt", include_str!("../templates/resolved.txt")),
    ("resolved.html", include_str!("../templates/resolved.html")),
    ("assigned.txt", include_str!("../templates/assigned.txt")),
    ("assigned.html", include_str!("../templates/assigned.html")),
    ("password_reset.txt", include_str!("../templates/password_reset.txt")),
    ("password_reset.html", include_str!("../templates/password_reset.html")),
    ("internal_note.txt", include_str!("../templates/internal_note.txt")),
    ("internal_note.html", include_str!("../templates/internal_note.html")),
    ("attachments_dropped.txt", include_str!("../templates/attachments_dropped.txt")),
    ("attachments_dropped.html", include_str!("../templates/attachments_dropped.html")),
    ("admin_alert.txt", include_str!("../templates/admin_alert.txt")),
    ("admin_alert.html", include_str!("../templates/admin_alert.html")),
    ("message_too_large.txt", include_str!("../templates/message_too_large.txt")),
    ("message_too_large.html", include_str!("../templates/message_too_large.html")),
];

/// Template files larger than this are refused (a template is a page of text, not data).
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// The loaded, checked templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Which files came from the override directory, for the start-up log.
    overridden: Vec<String>,
}

impl Templates {
    /// Only the built-in templates.
    pub fn built_in() -> Self {
        match Self::with_overrides(Vec::new()) {
            Ok(t) => t,
            // The built-ins are checked by a unit test; reaching this is a build defect.
            Err(e) => unreachable!("the built-in mail templates are broken: {e}"),
        }
    }

    /// The built-in templates, with the files in `dir` in place of the ones they name. Every
    /// problem is reported (file, line, what), not just the first.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read the template directory {dir:?}: {e}"))?;
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read the template directory {dir:?}: {e}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if !BUILT_IN.iter().any(|(known, _)| *known == name) {
                problems.push(format!("{name}: not a template Ferrodesk knows (known: {})", known_names()));
                continue;
            }
            let path = entry.path();
            match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => problems.push(format!("{name}: not a file")),
                Ok(m) if m.len() > MAX_TEMPLATE_BYTES => {
                    problems.push(format!("{name}: larger than {} KiB", MAX_TEMPLATE_BYTES / 1024))
                }
                Ok(_) => match std::fs::read(&path).map(String::from_utf8) {
                    Ok(Ok(source)) => files.push((name, source)),
                    Ok(Err(_)) => problems.push(format!("{name}: not UTF-8 text")),
                    Err(e) => problems.push(format!("{name}: {e}")),
                },
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        files.sort();
        Self::with_overrides(files)
    }

    fn with_overrides(files: Vec<(String, String)>) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.add_filter("quote", quote);
        let mut problems = Vec::new();
        let overridden: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        for (name, source) in BUILT_IN {
            let source = files.iter().find(|(n, _)| n == name).map_or((*source).to_owned(), |(_, s)| s.clone());
            if let Err(e) = env.add_template_owned(*name, source) {
                problems.push(describe(name, &e));
            }
        }
        if problems.is_empty() {
            let templates = Self { env, overridden };
            templates.check(&mut problems);
            if problems.is_empty() {
                return Ok(templates);
            }
        }
        Err(problems.join("\n"))
    }

    /// Renders every notification's templates with the variables it really gets.
    fn check(&self, problems: &mut Vec<String>) {
        let mailbox = sample_mailbox();
        for kind in Notification::ALL {
            let ctx = Context::sample(*kind, &mailbox);
            for ext in ["txt", "html"] {
                let name = format!("{}.{ext}", kind.template_name());
                if let Err(e) = self.render_file(&name, *kind, &ctx) {
                    problems.push(e);
                }
            }
        }
    }

    /// The files that replaced built-in ones.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// The text and the HTML body of a notification.
    pub fn render(&self, kind: Notification, ctx: &Context<'_>) -> Result<(String, String), String> {
        let name = kind.template_name();
        Ok((
            self.render_file(&format!("{name}.txt"), kind, ctx)?,
            self.render_file(&format!("{name}.html"), kind, ctx)?,
        ))
    }

    fn render_file(&self, file: &str, kind: Notification, ctx: &Context<'_>) -> Result<String, String> {
        let template = self.env.get_template(file).map_err(|e| describe(file, &e))?;
        template.render(minijinja::value::Serde(Vars::of(kind, ctx))).map_err(|e| describe(file, &e))
    }

    /// Writes the built-in templates into `dir` (a starting point for overriding them);
    /// refuses to overwrite a file that is there.
    pub fn export(dir: &Path) -> Result<Vec<String>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let mut written = Vec::new();
        for (name, source) in BUILT_IN {
            let path = dir.join(name);
            let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(format!("{path:?} exists; not overwritten (export into an empty directory)"));
                }
                Err(e) => return Err(format!("cannot write {path:?}: {e}")),
            };
            std::io::Write::write_all(&mut file, source.as_bytes())
                .map_err(|e| format!("cannot write {path:?}: {e}"))?;
            written.push((*name).to_owned());
        }
        Ok(written)
    }
}

fn known_names() -> String {
    BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// "file, line N: what" — with the template the error is in (an `extends` may put it in
/// another file than the one rendered).
fn describe(file: &str, e: &minijinja::Error) -> String {
    let mut what = e.kind().to_string();
    if let Some(detail) = e.detail() {
        what = format!("{what}: {detail}");
    }
    match (e.name(), e.line()) {
        (Some(name), Some(line)) if name != file => format!("{file} (in {name}, line {line}): {what}"),
        (_, Some(line)) => format!("{file}, line {line}: {what}"),
        _ => format!("{file}: {what}"),
    }
}

/// `{{ text | quote }}`: every line prefixed with "> ", as mail programs quote.
fn quote(text: String) -> String {
    text.lines().map(|l| if l.is_empty() { ">".to_owned() } else { format!("> {l}") }).collect::<Vec<_>>().join("\n")
}

/// What a template sees. A part a notification does not get is absent (`none`), so that a
/// template using it fails the start-up check instead of printing nothing.
#[derive(Serialize)]
struct Vars<'a> {
    /// The sending mailbox's address.
    desk: &'a str,
    reply_marker: &'static str,
    recipient: Person<'a>,
    ticket: Option<TicketVars<'a>>,
    comment: Option<CommentVars<'a>>,
    /// Earlier public messages of the ticket, newest first.
    conversation: &'a [crate::outbound::Quoted],
    /// Lines about what happened (dropped files, an alert's facts).
    details: Option<&'a [String]>,
    /// An alert's subject.
    title: Option<&'a str>,
    links: Option<LinkVars<'a>>,
    reset: Option<ResetVars<'a>>,
}

#[derive(Serialize)]
struct Person<'a> {
    name: &'a str,
    email: &'a str,
}

#[derive(Serialize)]
struct TicketVars<'a> {
    number: i64,
    subject: &'a str,
    url: &'a str,
    requester_name: &'a str,
    resolution: Option<&'a str>,
}

#[derive(Serialize)]
struct CommentVars<'a> {
    author: &'a str,
    body: &'a str,
}

#[derive(Serialize)]
struct LinkVars<'a> {
    confirm: &'a str,
    reopen: &'a str,
    days: i64,
}

#[derive(Serialize)]
struct ResetVars<'a> {
    link: &'a str,
    minutes: i64,
}

impl<'a> Vars<'a> {
    fn of(kind: Notification, ctx: &'a Context<'a>) -> Self {
        let parts = kind.parts();
        Vars {
            desk: ctx.mailbox.address.as_str(),
            reply_marker: crate::reply::REPLY_ABOVE_MARKER,
            recipient: Person { name: ctx.recipient_name, email: ctx.recipient },
            ticket: parts.ticket.then(|| TicketVars {
                number: ctx.number.unwrap_or_default(),
                subject: ctx.subject,
                url: &ctx.ticket_url,
                requester_name: ctx.requester_name,
                resolution: ctx.resolution.filter(|r| !r.trim().is_empty()),
            }),
            comment: parts.comment.then(|| CommentVars {
                author: ctx.author_name.unwrap_or("Service desk"),
                body: ctx.comment.map(|c| c.body.as_str()).unwrap_or_default(),
            }),
            conversation: if parts.ticket { &ctx.conversation } else { &[] },
            details: parts.details.then_some(ctx.details.as_slice()),
            title: (parts.details && !parts.ticket).then_some(ctx.subject),
            links: parts.links.then(|| LinkVars {
                confirm: ctx.action_links.as_ref().map(|(c, _)| c.as_str()).unwrap_or_default(),
                reopen: ctx.action_links.as_ref().map(|(_, r)| r.as_str()).unwrap_or_default(),
                days: crate::links::LINK_LIFETIME.as_hours() / 24,
            }),
            reset: parts.reset.then(|| ResetVars {
                link: ctx.reset_link.as_deref().unwrap_or_default(),
                minutes: crate::reset::RESET_LIFETIME.as_mins(),
            }),
        }
    }
}

/// The mailbox samples are sent from (also the unit tests').
pub(crate) fn sample_mailbox() -> ferrodesk_store::Mailbox {
    ferrodesk_store::Mailbox {
        id: uuid::Uuid::nil(),
        name: "support".into(),
        address: ferrodesk_core::user::EmailAddress::parse("help@desk.example")
            .unwrap_or_else(|_| unreachable!("a valid literal address")),
        default_group_id: None,
        default_category_id: None,
        default_type: ferrodesk_core::ticket::TicketType::Incident,
        active: true,
        max_message_bytes: ferrodesk_core::mail::DEFAULT_MAX_MESSAGE_BYTES,
        local_senders_as: None,
        imap: None,
        imap_state: Default::default(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
        updated_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fd-templates-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
        }
        dir
    }

    #[test]
    fn the_built_in_templates_pass_their_own_check() {
        assert!(Templates::with_overrides(Vec::new()).is_ok());
    }

    #[test]
    fn an_override_replaces_one_template_and_keeps_the_rest() {
        let dir = dir_with(&[("received.txt", "Got it: #{{ ticket.number }} for {{ recipient.name }}\n")]);
        let t = Templates::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.overridden(), ["received.txt"]);
        let mailbox = sample_mailbox();
        let ctx = Context::sample(Notification::Received, &mailbox);
        let (text, html) = t.render(Notification::Received, &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, "Got it: #1042 for Ann Example\n");
        assert!(html.contains("we have received your request"), "{html}");
    }

    #[test]
    fn broken_templates_are_refused_with_file_and_line() {
        // A syntax error, a variable that does not exist, a part this notification does not
        // get (an acknowledgement has no comment), and a file nobody would read.
        let dir = dir_with(&[
            ("received.txt", "Hello\n{{ ticket.number }\n"),
            ("assigned.html", "{% extends \"_layout.html\" %}{% block body %}\n\n{{ tciket.number }}{% endblock %}"),
            ("pending_on_you.txt", "{{ comment.body }}"),
            ("recieved.txt", "typo in the file name"),
        ]);
        let err = Templates::load(&dir).err().unwrap_or_default();
        assert!(err.contains("recieved.txt: not a template Ferrodesk knows"), "{err}");
        std::fs::remove_file(dir.join("recieved.txt")).unwrap_or_else(|e| panic!("{e}"));
        let err = Templates::load(&dir).err().unwrap_or_default();
        assert!(err.contains("received.txt, line 2: syntax error"), "{err}");
        std::fs::write(dir.join("received.txt"), "fixed {{ ticket.number }}").unwrap_or_else(|e| panic!("{e}"));
        let err = Templates::load(&dir).err().unwrap_or_default();
        assert!(err.contains("assigned.html, line 3: undefined value"), "{err}");
        assert!(err.contains("pending_on_you.txt, line 1: undefined value"), "{err}");
    }

    #[test]
    fn html_templates_escape_what_people_wrote() {
        let mailbox = sample_mailbox();
        let mut ctx = Context::sample(Notification::AgentReply, &mailbox);
        ctx.subject = "<script>alert(1)</script>";
        let (text, html) =
            Templates::built_in().render(Notification::AgentReply, &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(text.contains("<script>alert(1)</script>"), "text mail shows it as it is: {text}");
    }

    #[test]
    fn export_writes_every_template_and_never_overwrites() {
        let dir = dir_with(&[]);
        let written = Templates::export(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(written.len(), BUILT_IN.len());
        assert!(Templates::load(&dir).is_ok());
        assert!(Templates::export(&dir).is_err());
    }

    #[test]
    fn quoting_prefixes_every_line() {
        assert_eq!(quote("a\n\nb".into()), "> a\n>\n> b");
    }
}
