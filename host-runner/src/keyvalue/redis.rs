//! Redis behind `wasi:keyvalue@0.2.0-draft2`, for several host-runner nodes
//! that share state (`--keyvalue-redis URL` or `--keyvalue-redis-url-file`).
//!
//! - One multiplexed, reconnecting connection (redis-rs's
//!   `ConnectionManager`), made at the first operation, so a node may start
//!   before its Redis and recovers when Redis comes back, without a restart.
//! - Compare-and-swap is one Lua script (GET, compare, SET), atomic on the
//!   server. Never WATCH/MULTI: on a multiplexed connection another task's
//!   commands interleave with the transaction (redis-rs issues 565, 1257).
//! - Keys are `PREFIX BUCKET ':' KEY` (`--keyvalue-redis-prefix`, default
//!   `host-runner:`), so buckets and deployments can share a server.
//! - Credentials: a URL on the command line may not carry a password
//!   (argv is world-readable); put the whole URL in a file instead. The
//!   password never reaches a log line or an error message.

use std::path::Path;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{OpenError, StoreError, LIST_PAGE};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "host-runner:";

/// Sets KEYS[1] to ARGV[3] if it holds ARGV[2] (ARGV[1] = "1") or is
/// absent (ARGV[1] = "0"); 1 if it did.
const CAS: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current == false or current ~= ARGV[2] then return 0 end
elseif current ~= false then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

/// Where Redis is. Its `Debug` shows no credentials.
#[derive(Clone)]
pub struct RedisSettings {
    url: String,
    display: String,
    password: Option<String>,
    /// `--keyvalue-redis-prefix`.
    pub prefix: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.display)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisSettings {
    /// A URL given on the command line: one with a password is refused.
    pub fn from_argument(url: &str, prefix: &str) -> Result<Self, OpenError> {
        let settings = Self::parse(url, prefix, "--keyvalue-redis")?;
        if settings.password.is_some() {
            return Err(OpenError::Redis(
                "--keyvalue-redis: the URL carries a password, and the command line is \
                 readable by every user: put the URL in a file and pass \
                 --keyvalue-redis-url-file FILE"
                    .into(),
            ));
        }
        Ok(settings)
    }

    /// The URL in `file` (trimmed), credentials allowed.
    pub fn from_file(file: &Path, prefix: &str) -> Result<Self, OpenError> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            OpenError::Redis(format!("--keyvalue-redis-url-file {}: {e}", file.display()))
        })?;
        Self::parse(
            text.trim(),
            prefix,
            &format!("--keyvalue-redis-url-file {}", file.display()),
        )
    }

    fn parse(url: &str, prefix: &str, what: &str) -> Result<Self, OpenError> {
        // Errors name the flag or file, never echo the URL (it may hold a
        // password).
        let parsed = url::Url::parse(url)
            .map_err(|e| OpenError::Redis(format!("{what}: not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(OpenError::Redis(format!(
                "{what}: the URL's scheme is {:?}; use redis://HOST:PORT[/DB]",
                parsed.scheme()
            )));
        }
        if parsed.scheme() == "rediss" {
            return Err(OpenError::Redis(format!(
                "{what}: rediss:// (TLS) is not supported; reach Redis over a private network or a local TLS tunnel"
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| OpenError::Redis(format!("{what}: the URL names no host")))?;
        let ok_prefix = prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
        if !ok_prefix {
            return Err(OpenError::Redis(format!(
                "--keyvalue-redis-prefix {prefix:?}: use up to 64 ASCII letters, digits, '-', '_', ':' or '.'"
            )));
        }
        redis::Client::open(url)
            .map_err(|e| OpenError::Redis(format!("{what}: {}", e.kind_name())))?;
        Ok(RedisSettings {
            url: url.to_string(),
            display: format!(
                "redis://{host}:{}{}",
                parsed.port().unwrap_or(6379),
                parsed.path()
            ),
            password: parsed.password().map(str::to_string),
            prefix: prefix.to_string(),
        })
    }
}

/// A Redis error's short kind, for messages.
trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

/// The connection and the script.
pub struct RedisStore {
    client: redis::Client,
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
    settings: RedisSettings,
    cas: redis::Script,
}

impl RedisStore {
    /// A store that connects at its first operation.
    pub fn new(settings: &RedisSettings) -> Result<Self, OpenError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| OpenError::Redis(format!("Redis URL: {}", e.kind_name())))?;
        Ok(RedisStore {
            client,
            manager: tokio::sync::Mutex::new(None),
            settings: settings.clone(),
            cas: redis::Script::new(CAS),
        })
    }

    /// `redis://HOST:PORT/DB`, without credentials.
    pub fn display(&self) -> &str {
        &self.settings.display
    }

    /// A Redis error as the guest is told, with any password scrubbed.
    fn error(&self, e: redis::RedisError) -> StoreError {
        let mut message = format!("redis {}: {e}", self.settings.display);
        if let Some(p) = &self.settings.password {
            message = message.replace(p.as_str(), "***");
        }
        StoreError::Unavailable(message)
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.manager.lock().await;
        if let Some(m) = &*slot {
            return Ok(m.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(1000)))
            .set_response_timeout(Some(Duration::from_millis(1500)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| self.error(e))?;
        tracing::info!("connected to {}", self.settings.display);
        *slot = Some(manager.clone());
        Ok(manager)
    }

    fn key(&self, bucket: &str, key: &str) -> String {
        format!("{}{bucket}:{key}", self.settings.prefix)
    }

    pub(super) async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.conn().await?;
        redis::cmd("GET")
            .arg(self.key(bucket, key))
            .query_async(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    pub(super) async fn get_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let mut cmd = redis::cmd("MGET");
        for k in &keys {
            cmd.arg(self.key(bucket, k));
        }
        cmd.query_async(&mut c).await.map_err(|e| self.error(e))
    }

    pub(super) async fn set_many(
        &self,
        bucket: &str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let mut cmd = redis::cmd("MSET");
        for (k, v) in &pairs {
            cmd.arg(self.key(bucket, k)).arg(v.as_slice());
        }
        cmd.query_async::<()>(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    pub(super) async fn delete_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let mut cmd = redis::cmd("DEL");
        for k in &keys {
            cmd.arg(self.key(bucket, k));
        }
        cmd.query_async::<()>(&mut c)
            .await
            .map_err(|e| self.error(e))
    }

    pub(super) async fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let mut c = self.conn().await?;
        let namespace = self.key(bucket, "");
        // The prefix and bucket hold no glob characters (both are checked),
        // so the pattern matches exactly the bucket's keys.
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor.as_deref().unwrap_or("0"))
            .arg("MATCH")
            .arg(format!("{namespace}*"))
            .arg("COUNT")
            .arg(LIST_PAGE)
            .query_async(&mut c)
            .await
            .map_err(|e| self.error(e))?;
        let keys = keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&namespace).map(str::to_string))
            .collect();
        Ok((keys, (next != "0").then_some(next)))
    }

    pub(super) async fn compare_and_swap(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn().await?;
        let mut invocation = self.cas.key(self.key(bucket, key));
        invocation
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(value);
        let swapped: i64 = invocation
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.error(e))?;
        Ok(swapped == 1)
    }

    pub(super) async fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, StoreError> {
        let mut c = self.conn().await?;
        redis::cmd("INCRBY")
            .arg(self.key(bucket, key))
            .arg(delta)
            .query_async(&mut c)
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::Server(_) => StoreError::Invalid(
                    "the value is not a decimal 64-bit integer, or the sum overflows".into(),
                ),
                _ => self.error(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_on_the_command_line_is_refused_without_echoing_it() {
        let err = RedisSettings::from_argument("redis://u:s3cret@127.0.0.1:6380/2", "p:")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--keyvalue-redis-url-file"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let ok = RedisSettings::from_argument("redis://127.0.0.1:6380/2", "p:").unwrap();
        assert_eq!(ok.display, "redis://127.0.0.1:6380/2");
        let err = RedisSettings::from_argument("http://127.0.0.1", "p:").unwrap_err();
        assert!(err.to_string().contains("scheme"), "{err}");
        let err = RedisSettings::from_argument("redis://127.0.0.1", "a*").unwrap_err();
        assert!(err.to_string().contains("prefix"), "{err}");
    }

    #[test]
    fn a_url_file_may_carry_the_password_and_debug_hides_it() {
        let file = std::env::temp_dir().join(format!("redis-url-{}", std::process::id()));
        std::fs::write(&file, "redis://:s3cret@127.0.0.1:6380\n").unwrap();
        let s = RedisSettings::from_file(&file, DEFAULT_PREFIX).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(s.display, "redis://127.0.0.1:6380");
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
