//! Configuration: defaults < `FERRODESK_*` environment < command-line flags, resolved once.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct GlobalArgs {
    /// Folder for the SQLite database and other local data.
    #[arg(long, global = true, env = "FERRODESK_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// `postgres://user:pass@host/db` to use PostgreSQL; default: SQLite in the data folder.
    #[arg(long, global = true, env = "FERRODESK_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Key that seals stored secrets such as mailbox passwords: 32 random bytes, base64
    /// (`openssl rand -base64 32`). Keep it safe: without it stored passwords cannot be opened.
    #[arg(long, global = true, env = "FERRODESK_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, global = true, env = "FERRODESK_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

pub struct Config {
    pub database_url: String,
    pub log_json: bool,
    pub secrets: Option<ferrodesk_mail::secret::SecretBox>,
}

impl Config {
    pub fn resolve(args: &GlobalArgs) -> Result<Self> {
        let database_url = match &args.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!("sqlite://{}", args.data_dir.join("ferrodesk.db").display()),
        };
        let secrets = match args.secret_key.as_deref().map(str::trim) {
            Some(key) if !key.is_empty() => Some(
                ferrodesk_mail::secret::SecretBox::from_base64(key)
                    .map_err(|e| anyhow::anyhow!("FERRODESK_SECRET_KEY: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self { database_url, log_json: args.log_format == "json", secrets })
    }

    /// The database URL without any password, for logs and messages.
    pub fn database_display(&self) -> String {
        redact_url(&self.database_url)
    }
}

/// Hides the password part of `scheme://user:password@host/...`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:***@{host}")
}

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRODESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redact_url("postgres://desk:s3cret@db:5432/fd"), "postgres://desk:***@db:5432/fd");
        assert_eq!(redact_url("sqlite://data/ferrodesk.db"), "sqlite://data/ferrodesk.db");
    }
}
