//! The stateful API (`/vectors`): the article's `VectorProcessor` as a
//! resource a client keeps across requests, stored in a key-value store as
//! [`crate::stored`] lays it out.
//!
//! A guest supplies the store ([`Store`]: `wasi:keyvalue` get, batch and
//! compare-and-swap), randomness and time ([`Env`]) and the processor; this
//! module decides every status code:
//!
//! | request | answer |
//! |---|---|
//! | `POST /vectors[?ttl=S]` (optional values) | 201, `Location`, `ETag` |
//! | `PUT /vectors/{id}[?ttl=S]` (optional values) | 201 created / 200 replaced; `If-None-Match: *` creates only, `If-Match` replaces only that version |
//! | `POST /vectors/{id}/values` | 200 `{count, version}`; `If-Match` or retried until it lands |
//! | `GET /vectors/{id}` | 200 `{id, count, version, sorted, ttl, expires_at}` |
//! | `GET /vectors/{id}/stats` | 200, byte-identical to `POST /stats` of the same values |
//! | `POST /vectors/{id}/sort?order=asc\|desc` | 200 metadata |
//! | `GET /vectors/{id}/values?offset=&limit=[&version=]` | 200 `{values, offset, total, version, next}`; past the end an empty page |
//! | `DELETE /vectors/{id}` | 204, then 404 |
//!
//! Every change is a compare-and-swap of the vector's header. Without
//! `If-Match`, a change that lost a race is planned again from the new
//! header (with a short random pause), so concurrent appends all land;
//! after [`MAX_ATTEMPTS`] losses it answers 409 having changed nothing.
//!
//! A deleted vector's header becomes a small tombstone (a deletion is a
//! swap too, so it cannot erase a vector created at the same moment), and
//! its chunks are deleted. Vectors expire after `ttl` seconds without a
//! change (default [`DEFAULT_TTL`], at most [`MAX_TTL`]): an expired vector
//! answers 404 and is removed by the first request that finds it, or by
//! the sweep ([`sweep_step`]): every create, and one other change in
//! [`SWEEP_EVERY`], also looks at the next page of the bucket's keys and
//! removes the expired vectors and the abandoned chunks on it. The TTL
//! lives in the header because a vector is many keys: a per-key TTL in the
//! store would let old chunks expire under a live header.

use serde::Serialize;

use super::body::{check_declared_length, parse_values, too_large, BodyFormat};
use super::error::{ApiError, ErrorCode};
use super::handler::{Processor, Reply, RequestHead};
use super::render::stats_json;
use crate::stored::{self, Header, StoredError};
use crate::SortOrder;

/// Changes planned again after losing a compare-and-swap, before 409.
pub const MAX_ATTEMPTS: u32 = 64;
/// Values one request may add.
pub const MAX_VALUES_PER_REQUEST: usize = 1_000_000;
/// Values per page when `limit` is not given, and the most per page.
pub const DEFAULT_PAGE: u64 = 1000;
/// See [`DEFAULT_PAGE`].
pub const MAX_PAGE: u64 = 100_000;
/// Idle seconds before a vector expires, unless `?ttl=` says otherwise.
pub const DEFAULT_TTL: u64 = 24 * 3600;
/// The longest `?ttl=`: 30 days.
pub const MAX_TTL: u64 = 30 * 24 * 3600;
/// The largest `?version=` (2^53 - 1: every version is exact in JSON).
pub const MAX_VERSION: u64 = (1 << 53) - 1;
/// `Retry-After` of a 503.
pub const RETRY_AFTER_S: u32 = 1;
/// A deleted vector's header.
const TOMBSTONE: &[u8] = b"{\"deleted\":true}";
/// Where the sweep keeps its place in the bucket.
pub const SWEEP_CURSOR: &str = "sweep:cursor";
/// How old an unreferenced chunk must be before the sweep deletes it: far
/// longer than any request may run (host-runner stops a guest after 60 s by
/// default), so a writer's chunks are never deleted before its swap.
pub const ORPHAN_GRACE_MS: u64 = 10 * 60 * 1000;
/// Besides every create, one change in this many also runs a sweep step.
pub const SWEEP_EVERY: u64 = 32;

/// The store failed or cannot be reached (a 503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFault(pub String);

/// What the API needs of a key-value store.
pub trait Store {
    /// A compare-and-swap handle: what [`Store::watch`] saw.
    type Cas;
    /// The value of `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreFault>;
    /// The values of `keys`, in order.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreFault>;
    /// Writes every pair.
    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreFault>;
    /// Deletes the keys.
    fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreFault>;
    /// A page of the bucket's keys after `cursor`, and the next cursor.
    fn list_keys(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreFault>;
    /// The value of `key` and a handle to swap it.
    fn watch(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Cas), StoreFault>;
    /// Sets the watched key to `value` if it still holds what was seen;
    /// whether it did.
    fn swap(&self, cas: Self::Cas, value: Vec<u8>) -> Result<bool, StoreFault>;
}

/// Randomness and time.
pub trait Env {
    /// 16 random bytes (ids).
    fn random16(&self) -> [u8; 16];
    /// 8 random bytes (chunk tags, pauses).
    fn random8(&self) -> [u8; 8];
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
    /// Waits this long before trying again.
    fn pause_ms(&self, ms: u64);
}

/// A request under `/vectors`, routed.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Create {
        ttl: u64,
    },
    Put {
        id: String,
        ttl: u64,
    },
    Append {
        id: String,
    },
    Meta {
        id: String,
    },
    Stats {
        id: String,
    },
    Sort {
        id: String,
        order: SortOrder,
    },
    Values {
        id: String,
        offset: u64,
        limit: u64,
        version: Option<u64>,
    },
    Delete {
        id: String,
    },
}

impl Op {
    fn takes_body(&self) -> bool {
        matches!(self, Op::Create { .. } | Op::Put { .. } | Op::Append { .. })
    }
}

/// Whether a path belongs to this API.
pub fn is_vectors_path(path_with_query: &str) -> bool {
    let path = path_with_query.split('?').next().unwrap_or("");
    path == "/vectors" || path.starts_with("/vectors/")
}

/// A routed request waiting for its body (when it takes one) and the store.
#[derive(Debug)]
pub struct Pending {
    op: Op,
    format: Option<BodyFormat>,
    if_match: Option<Precondition>,
    if_none_match_any: bool,
    limit: u64,
    bytes: Vec<u8>,
}

/// An `If-Match` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    Any,
    Version(u64),
}

fn bad_query(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadQuery, message)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no vector {id:?} (never created, deleted, or expired)"),
    )
}

fn unavailable(fault: StoreFault) -> ApiError {
    ApiError {
        retry_after: Some(RETRY_AFTER_S),
        ..ApiError::new(
            ErrorCode::StoreUnavailable,
            format!("the key-value store is unavailable: {}", fault.0),
        )
    }
}

fn stored_error(e: StoredError) -> ApiError {
    match e {
        StoredError::InvalidId => bad_query(e.to_string()),
        StoredError::TooLarge { .. } => ApiError::new(ErrorCode::VectorTooLarge, e.to_string()),
        StoredError::OffsetPastEnd { .. } => bad_query(e.to_string()),
        StoredError::Corrupt(_) => ApiError::new(ErrorCode::Internal, e.to_string()),
    }
}

fn precondition_failed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::PreconditionFailed, message)
}

fn parse_precondition(value: &str) -> Result<Precondition, ApiError> {
    let v = value.trim();
    if v == "*" {
        return Ok(Precondition::Any);
    }
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    v.parse().map(Precondition::Version).map_err(|_| {
        precondition_failed(format!(
            "If-Match {value:?} is not an ETag of this API (\"N\" or *)"
        ))
    })
}

fn query_params(query: &str) -> Result<Vec<(&str, &str)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .ok_or_else(|| bad_query(format!("query parameter {p:?} has no value")))
        })
        .collect()
}

fn number(name: &str, value: &str, max: u64) -> Result<u64, ApiError> {
    match value.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad_query(format!(
            "{name} must be a whole number from 0 to {max}, not {value:?}"
        ))),
    }
}

fn route(method: &str, path_with_query: &str) -> Result<Op, ApiError> {
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((path_with_query, ""));
    let params = query_params(query)?;
    let allow = |expected: &'static str, ok: bool| -> Result<(), ApiError> {
        if ok {
            Ok(())
        } else {
            Err(ApiError {
                allow: Some(expected),
                ..ApiError::new(
                    ErrorCode::MethodNotAllowed,
                    format!("{path} accepts {expected}, not {method}"),
                )
            })
        }
    };
    let known = |names: &[&str]| -> Result<(), ApiError> {
        match params.iter().find(|(k, _)| !names.contains(k)) {
            Some((k, _)) => Err(bad_query(format!(
                "unknown query parameter {k:?} for {path}"
            ))),
            None => Ok(()),
        }
    };
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    };
    let ttl = || -> Result<u64, ApiError> {
        match param("ttl") {
            Some(v) => match number("ttl", v, MAX_TTL)? {
                0 => Err(bad_query("ttl must be at least 1 second")),
                n => Ok(n),
            },
            None => Ok(DEFAULT_TTL),
        }
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |s: &str| -> Result<String, ApiError> {
        stored::check_id(s).map_err(stored_error)?;
        Ok(s.to_string())
    };
    match parts.as_slice() {
        ["vectors"] => {
            allow("POST", method == "POST")?;
            known(&["ttl"])?;
            Ok(Op::Create { ttl: ttl()? })
        }
        ["vectors", raw] => {
            allow(
                "GET, PUT, DELETE",
                matches!(method, "GET" | "PUT" | "DELETE"),
            )?;
            let id = id(raw)?;
            match method {
                "PUT" => {
                    known(&["ttl"])?;
                    Ok(Op::Put { id, ttl: ttl()? })
                }
                "GET" => {
                    known(&[])?;
                    Ok(Op::Meta { id })
                }
                _ => {
                    known(&[])?;
                    Ok(Op::Delete { id })
                }
            }
        }
        ["vectors", raw, "values"] => {
            allow("GET, POST", matches!(method, "GET" | "POST"))?;
            let id = id(raw)?;
            if method == "POST" {
                known(&[])?;
                return Ok(Op::Append { id });
            }
            known(&["offset", "limit", "version"])?;
            Ok(Op::Values {
                id,
                offset: param("offset")
                    .map(|v| number("offset", v, stored::MAX_VALUES))
                    .transpose()?
                    .unwrap_or(0),
                limit: match param("limit") {
                    Some(v) => match number("limit", v, MAX_PAGE)? {
                        0 => return Err(bad_query("limit must be at least 1")),
                        n => n,
                    },
                    None => DEFAULT_PAGE,
                },
                version: param("version")
                    .map(|v| number("version", v, MAX_VERSION))
                    .transpose()?,
            })
        }
        ["vectors", raw, "stats"] => {
            allow("GET", method == "GET")?;
            known(&[])?;
            Ok(Op::Stats { id: id(raw)? })
        }
        ["vectors", raw, "sort"] => {
            allow("POST", method == "POST")?;
            known(&["order"])?;
            let order = match param("order").unwrap_or("asc") {
                "asc" => SortOrder::Ascending,
                "desc" => SortOrder::Descending,
                other => {
                    return Err(bad_query(format!(
                        "order must be asc or desc, not {other:?}"
                    )))
                }
            };
            Ok(Op::Sort {
                id: id(raw)?,
                order,
            })
        }
        _ => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no route for {path}; the stateful API has /vectors, /vectors/{{id}}, \
                 /vectors/{{id}}/values, /vectors/{{id}}/stats and /vectors/{{id}}/sort"
            ),
        )),
    }
}

/// Routes a `/vectors` request and checks its headers. `limit` is the
/// request-body limit in bytes.
pub fn begin(head: &RequestHead, limit: u64) -> Result<Pending, ApiError> {
    let op = route(&head.method, &head.path_with_query)?;
    let format = if op.takes_body() {
        check_declared_length(head.content_length, limit)?;
        Some(BodyFormat::from_content_type(head.content_type.as_deref())?)
    } else {
        None
    };
    let if_match = head
        .if_match
        .as_deref()
        .map(parse_precondition)
        .transpose()?;
    let if_none_match_any = match head.if_none_match.as_deref().map(str::trim) {
        None => false,
        Some("*") => true,
        Some(other) => {
            return Err(precondition_failed(format!(
                "If-None-Match {other:?}: only * (create, never replace) is supported"
            )))
        }
    };
    Ok(Pending {
        op,
        format,
        if_match,
        if_none_match_any,
        limit,
        bytes: Vec::new(),
    })
}

impl Pending {
    /// Whether the guest must read the body (then [`Pending::push`] it).
    pub fn needs_body(&self) -> bool {
        self.format.is_some()
    }

    /// Appends a chunk of the body; 413 past the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        if self.bytes.len() as u64 + chunk.len() as u64 > self.limit {
            return Err(too_large(self.limit));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Does what the request asks against the store.
    pub fn run<S: Store>(self, store: &S, env: &impl Env, processor: &impl Processor) -> Reply {
        match self.run_inner(store, env, processor) {
            Ok(reply) => reply,
            Err(e) => Reply::error(&e),
        }
    }

    fn values(&self) -> Result<Vec<f64>, ApiError> {
        let Some(format) = self.format else {
            return Ok(Vec::new());
        };
        // Initial values are optional; an append's are not (an empty body
        // is `bad_json`, as for `POST /stats`).
        let optional = matches!(self.op, Op::Create { .. } | Op::Put { .. });
        if optional && self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        let values = parse_values(format, &self.bytes)?;
        if values.len() > MAX_VALUES_PER_REQUEST {
            return Err(ApiError::new(
                ErrorCode::VectorTooLarge,
                format!(
                    "{} values in one request; the limit is {MAX_VALUES_PER_REQUEST}",
                    values.len()
                ),
            ));
        }
        Ok(values)
    }

    fn run_inner<S: Store>(
        &self,
        store: &S,
        env: &impl Env,
        processor: &impl Processor,
    ) -> Result<Reply, ApiError> {
        let ctx = Ctx { store, env };
        let reply = self.dispatch(&ctx, processor)?;
        // Reclaim what expiry and dead writers leave behind, a page at a
        // time, on the requests that write anyway.
        let sweep = match self.op {
            Op::Create { .. } => true,
            Op::Put { .. } | Op::Append { .. } | Op::Sort { .. } | Op::Delete { .. } => {
                u64::from_le_bytes(env.random8()).is_multiple_of(SWEEP_EVERY)
            }
            _ => false,
        };
        if sweep {
            let _ = sweep_step(store, env);
        }
        Ok(reply)
    }

    fn dispatch<S: Store, E: Env>(
        &self,
        ctx: &Ctx<'_, S, E>,
        processor: &impl Processor,
    ) -> Result<Reply, ApiError> {
        let env = ctx.env;
        match &self.op {
            Op::Create { ttl } => {
                let values = self.values()?;
                let id = stored::random_id(env.random16());
                let header = ctx.create(&id, &values, *ttl, true)?.0;
                Ok(meta_reply(201, &id, &header, true))
            }
            Op::Put { id, ttl } => {
                let values = self.values()?;
                let (header, created) = match (self.if_none_match_any, self.if_match) {
                    (true, _) => ctx.create(id, &values, *ttl, true)?,
                    (false, Some(p)) => (ctx.replace(id, &values, *ttl, p)?, false),
                    (false, None) => ctx.create(id, &values, *ttl, false)?,
                };
                Ok(meta_reply(
                    if created { 201 } else { 200 },
                    id,
                    &header,
                    created,
                ))
            }
            Op::Append { id } => {
                let values = self.values()?;
                let header = ctx.change(id, self.if_match, |header, tail, tag| {
                    stored::append(id, header, tail, &values, tag)
                })?;
                let body = serde_json::to_vec(&serde_json::json!({
                    "count": header.count,
                    "version": header.version,
                }))
                .expect("numbers serialise");
                Ok(with_etag(Reply::json(body), &header))
            }
            Op::Meta { id } => {
                let header = ctx.read_header(id)?;
                Ok(meta_reply(200, id, &header, false))
            }
            Op::Stats { id } => {
                let (header, values) = ctx.read_all(id)?;
                let stats = processor.statistics(values).map_err(|e| {
                    ApiError::new(ErrorCode::Internal, format!("stored values: {e:?}"))
                })?;
                Ok(with_etag(Reply::json(stats_json(&stats)), &header))
            }
            Op::Sort { id, order } => {
                let header = ctx.sort(id, *order, self.if_match, processor)?;
                Ok(meta_reply(200, id, &header, false))
            }
            Op::Values {
                id,
                offset,
                limit,
                version,
            } => ctx.page(
                id,
                *offset,
                *limit,
                version.or(match self.if_match {
                    Some(Precondition::Version(v)) => Some(v),
                    _ => None,
                }),
            ),
            Op::Delete { id } => {
                ctx.delete(id, self.if_match)?;
                Ok(Reply {
                    status: 204,
                    body: Vec::new(),
                    ..Reply::json(Vec::new())
                })
            }
        }
    }
}

fn with_etag(mut reply: Reply, header: &Header) -> Reply {
    reply
        .headers
        .push(("etag", format!("\"{}\"", header.version)));
    reply
}

#[derive(Serialize)]
struct Meta<'a> {
    id: &'a str,
    count: u64,
    version: u64,
    sorted: Option<&'a str>,
    ttl: u64,
    expires_at: Option<u64>,
}

fn meta_reply(status: u16, id: &str, header: &Header, location: bool) -> Reply {
    let body = serde_json::to_vec(&Meta {
        id,
        count: header.count,
        version: header.version,
        sorted: header.sorted.as_deref(),
        ttl: header.ttl.unwrap_or(DEFAULT_TTL),
        expires_at: header.expires_ms,
    })
    .expect("metadata serialises");
    let mut reply = with_etag(
        Reply {
            status,
            ..Reply::json(body)
        },
        header,
    );
    if location {
        reply.headers.push(("location", format!("/vectors/{id}")));
    }
    reply
}

/// A stored header as read: live, or absent for every purpose.
enum Found {
    Live(Header),
    /// Never created, deleted (tombstone), or expired (with the chunks to
    /// remove).
    Absent {
        expired: Option<Header>,
    },
}

struct Ctx<'a, S, E> {
    store: &'a S,
    env: &'a E,
}

impl<S: Store, E: Env> Ctx<'_, S, E> {
    fn classify(&self, bytes: Option<&[u8]>) -> Result<Found, ApiError> {
        match bytes {
            None => Ok(Found::Absent { expired: None }),
            Some(b) if b == TOMBSTONE => Ok(Found::Absent { expired: None }),
            Some(b) => {
                let header = Header::from_bytes(b).map_err(stored_error)?;
                match header.expires_ms {
                    Some(at) if at <= self.env.now_ms() => Ok(Found::Absent {
                        expired: Some(header),
                    }),
                    _ => Ok(Found::Live(header)),
                }
            }
        }
    }

    fn stamp(&self, header: &mut Header, ttl: u64) {
        header.ttl = Some(ttl);
        header.expires_ms = Some(self.env.now_ms().saturating_add(ttl * 1000));
    }

    fn tag(&self) -> String {
        stored::write_tag(self.env.now_ms(), self.env.random8())
    }

    /// A short random pause before attempt `n` again: up to 2^n ms, at
    /// most 64.
    fn back_off(&self, attempt: u32) {
        let cap = 1u64 << attempt.min(6);
        let r = u64::from_le_bytes(self.env.random8());
        self.env.pause_ms(r % cap + 1);
    }

    /// Removes what an expired or replaced header named, best effort: an
    /// orphaned chunk is garbage, never visible.
    fn discard(&self, keys: Vec<String>) {
        if !keys.is_empty() {
            let _ = self.store.delete_many(keys);
        }
    }

    /// Creates `id` holding `values`. With `only_new`, an existing vector is
    /// 412; otherwise it is replaced. Returns the header and whether it was
    /// created.
    fn create(
        &self,
        id: &str,
        values: &[f64],
        ttl: u64,
        only_new: bool,
    ) -> Result<(Header, bool), ApiError> {
        let key = stored::header_key(id);
        for attempt in 0..MAX_ATTEMPTS {
            let (current, cas) = self.store.watch(&key).map_err(unavailable)?;
            let (base, created, garbage) = match self.classify(current.as_deref())? {
                Found::Live(_) if only_new => {
                    return Err(precondition_failed(format!("vector {id:?} exists")));
                }
                Found::Live(h) => (h.version, false, h.chunks),
                Found::Absent { expired } => (
                    expired.as_ref().map_or(0, |h| h.version),
                    true,
                    expired.map(|h| h.chunks).unwrap_or_default(),
                ),
            };
            let mut change = stored::replace(
                id,
                &Header {
                    version: base,
                    ..Header::empty()
                },
                values,
                None,
                &self.tag(),
            )
            .map_err(stored_error)?;
            self.stamp(&mut change.header, ttl);
            change.garbage = garbage;
            if let Some(header) = self.commit(cas, change, id, None)? {
                return Ok((header, created));
            }
            if only_new {
                return Err(precondition_failed(format!(
                    "vector {id:?} was created by another request"
                )));
            }
            self.back_off(attempt);
        }
        Err(conflict(id))
    }

    /// Replaces a live `id`'s values if it matches `p`.
    fn replace(
        &self,
        id: &str,
        values: &[f64],
        ttl: u64,
        p: Precondition,
    ) -> Result<Header, ApiError> {
        self.change(id, Some(p), |header, _tail, tag| {
            let mut change = stored::replace(id, header, values, None, tag)?;
            change.header.ttl = Some(ttl);
            Ok(change)
        })
    }

    /// Applies `plan` to live `id` by compare-and-swap, retrying from the
    /// new header when another change won (unless `If-Match` pinned a
    /// version: then 412).
    fn change(
        &self,
        id: &str,
        if_match: Option<Precondition>,
        plan: impl Fn(&Header, Option<&[f64]>, &str) -> Result<stored::Change, StoredError>,
    ) -> Result<Header, ApiError> {
        let key = stored::header_key(id);
        for attempt in 0..MAX_ATTEMPTS {
            let (current, cas) = self.store.watch(&key).map_err(unavailable)?;
            let header = match self.classify(current.as_deref())? {
                Found::Live(h) => h,
                Found::Absent { expired } => {
                    if let Some(h) = expired {
                        self.expire(cas, h);
                    }
                    return Err(not_found(id));
                }
            };
            check_version(id, &header, if_match)?;
            let tail = match header.partial_tail() {
                Some(k) => match self.store.get(k).map_err(unavailable)? {
                    Some(bytes) => Some(stored::decode(&bytes).map_err(stored_error)?),
                    // A newer change replaced the tail since we read the
                    // header: plan again from the new one.
                    None => {
                        self.back_off(attempt);
                        continue;
                    }
                },
                None => None,
            };
            let mut change = plan(&header, tail.as_deref(), &self.tag()).map_err(stored_error)?;
            let ttl = change.header.ttl.unwrap_or(DEFAULT_TTL);
            self.stamp(&mut change.header, ttl);
            if let Some(header) = self.commit(cas, change, id, if_match)? {
                return Ok(header);
            }
            self.back_off(attempt);
        }
        Err(conflict(id))
    }

    /// Writes `change`'s chunks and swaps its header in against `cas`: the
    /// new header if the swap won. If another change won, the chunks are
    /// deleted again and the answer is `None` (plan again), or 412 when
    /// `If-Match` pinned the version.
    fn commit(
        &self,
        cas: S::Cas,
        mut change: stored::Change,
        id: &str,
        if_match: Option<Precondition>,
    ) -> Result<Option<Header>, ApiError> {
        let written: Vec<String> = change.written().map(str::to_string).collect();
        self.store
            .set_many(std::mem::take(&mut change.writes))
            .map_err(unavailable)?;
        if self
            .store
            .swap(cas, change.header.to_bytes())
            .map_err(unavailable)?
        {
            self.discard(change.garbage);
            return Ok(Some(change.header));
        }
        self.discard(written);
        if matches!(if_match, Some(Precondition::Version(_))) {
            return Err(precondition_failed(format!(
                "vector {id:?} changed while this request was applied; nothing was changed"
            )));
        }
        Ok(None)
    }

    /// Turns an expired header into a tombstone (by swap, so a vector
    /// created meanwhile is untouched) and removes its chunks.
    fn expire(&self, cas: S::Cas, header: Header) {
        if let Ok(true) = self.store.swap(cas, TOMBSTONE.to_vec()) {
            self.discard(header.chunks);
        }
    }

    fn read_header(&self, id: &str) -> Result<Header, ApiError> {
        let key = stored::header_key(id);
        let current = self.store.get(&key).map_err(unavailable)?;
        match self.classify(current.as_deref())? {
            Found::Live(h) => Ok(h),
            Found::Absent { expired } => {
                if expired.is_some() {
                    // Reclaim it, by swap.
                    if let Ok((again, cas)) = self.store.watch(&key) {
                        if let Ok(Found::Absent { expired: Some(h) }) =
                            self.classify(again.as_deref())
                        {
                            self.expire(cas, h);
                        }
                    }
                }
                Err(not_found(id))
            }
        }
    }

    /// The chunks' values, or `None` when one is gone (a newer change).
    fn read_chunks(&self, keys: &[String]) -> Result<Option<Vec<Vec<f64>>>, ApiError> {
        let found = self.store.get_many(keys).map_err(unavailable)?;
        let mut chunks = Vec::with_capacity(found.len());
        for bytes in found {
            match bytes {
                Some(b) => chunks.push(stored::decode(&b).map_err(stored_error)?),
                None => return Ok(None),
            }
        }
        Ok(Some(chunks))
    }

    /// Every value of one version.
    fn read_all(&self, id: &str) -> Result<(Header, Vec<f64>), ApiError> {
        for attempt in 0..MAX_ATTEMPTS {
            let header = self.read_header(id)?;
            let page = stored::page(&header, 0, header.count).map_err(stored_error)?;
            if let Some(chunks) = self.read_chunks(&page.chunks)? {
                let values = stored::assemble(&page, &chunks).map_err(stored_error)?;
                return Ok((header, values));
            }
            self.back_off(attempt);
        }
        Err(conflict(id))
    }

    fn sort(
        &self,
        id: &str,
        order: SortOrder,
        if_match: Option<Precondition>,
        processor: &impl Processor,
    ) -> Result<Header, ApiError> {
        let key = stored::header_key(id);
        for attempt in 0..MAX_ATTEMPTS {
            let (current, cas) = self.store.watch(&key).map_err(unavailable)?;
            let header = match self.classify(current.as_deref())? {
                Found::Live(h) => h,
                Found::Absent { .. } => return Err(not_found(id)),
            };
            check_version(id, &header, if_match)?;
            let wanted = match order {
                SortOrder::Ascending => "asc",
                SortOrder::Descending => "desc",
            };
            if header.sorted.as_deref() == Some(wanted) {
                return Ok(header);
            }
            let page = stored::page(&header, 0, header.count).map_err(stored_error)?;
            let Some(chunks) = self.read_chunks(&page.chunks)? else {
                self.back_off(attempt);
                continue;
            };
            let values = stored::assemble(&page, &chunks).map_err(stored_error)?;
            let sorted = processor
                .sorted(values, order)
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("stored values: {e:?}")))?;
            let mut change = stored::replace(id, &header, &sorted, Some(order), &self.tag())
                .map_err(stored_error)?;
            self.stamp(&mut change.header, header.ttl.unwrap_or(DEFAULT_TTL));
            if let Some(header) = self.commit(cas, change, id, if_match)? {
                return Ok(header);
            }
            self.back_off(attempt);
        }
        Err(conflict(id))
    }

    fn page(
        &self,
        id: &str,
        offset: u64,
        limit: u64,
        version: Option<u64>,
    ) -> Result<Reply, ApiError> {
        for attempt in 0..MAX_ATTEMPTS {
            let header = self.read_header(id)?;
            if let Some(v) = version {
                if v != header.version {
                    return Err(precondition_failed(format!(
                        "vector {id:?} is at version {}, not {v}: its pages changed",
                        header.version
                    )));
                }
            }
            // Past the end is an empty last page, as at the end.
            let page =
                stored::page(&header, offset.min(header.count), limit).map_err(stored_error)?;
            let Some(chunks) = self.read_chunks(&page.chunks)? else {
                if version.is_some() {
                    return Err(precondition_failed(format!(
                        "vector {id:?} changed while the page was read"
                    )));
                }
                self.back_off(attempt);
                continue;
            };
            let values = stored::assemble(&page, &chunks).map_err(stored_error)?;
            #[derive(Serialize)]
            struct PageBody<'a> {
                values: &'a [f64],
                offset: u64,
                total: u64,
                version: u64,
                next: Option<String>,
            }
            let body = serde_json::to_vec(&PageBody {
                values: &values,
                offset,
                total: header.count,
                version: header.version,
                next: page.next.map(|n| {
                    format!(
                        "/vectors/{id}/values?offset={n}&limit={limit}&version={}",
                        header.version
                    )
                }),
            })
            .expect("a page serialises");
            return Ok(with_etag(Reply::json(body), &header));
        }
        Err(conflict(id))
    }

    fn delete(&self, id: &str, if_match: Option<Precondition>) -> Result<(), ApiError> {
        let key = stored::header_key(id);
        for attempt in 0..MAX_ATTEMPTS {
            let (current, cas) = self.store.watch(&key).map_err(unavailable)?;
            let header = match self.classify(current.as_deref())? {
                Found::Live(h) => h,
                Found::Absent { expired } => {
                    if let Some(h) = expired {
                        self.expire(cas, h);
                    }
                    return Err(not_found(id));
                }
            };
            check_version(id, &header, if_match)?;
            if self
                .store
                .swap(cas, TOMBSTONE.to_vec())
                .map_err(unavailable)?
            {
                self.discard(header.chunks);
                return Ok(());
            }
            if matches!(if_match, Some(Precondition::Version(_))) {
                return Err(precondition_failed(format!(
                    "vector {id:?} changed before it could be deleted"
                )));
            }
            self.back_off(attempt);
        }
        Err(conflict(id))
    }
}

/// What one sweep step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Keys looked at.
    pub keys: usize,
    /// Expired vectors turned into tombstones (their chunks deleted).
    pub expired: usize,
    /// Chunks no header names, older than [`ORPHAN_GRACE_MS`], deleted.
    pub orphans: usize,
    /// Whether the step reached the end of the bucket (the next starts over).
    pub wrapped: bool,
}

/// One step of the sweep: the next page of the bucket's keys (from where
/// the last step stopped, kept under [`SWEEP_CURSOR`]). Expired vectors on
/// it are removed as a request finding them would (a swap to a tombstone,
/// then their chunks), and chunks that no live header names and that are
/// older than [`ORPHAN_GRACE_MS`] (left by a writer that lost its swap and
/// died before cleaning up, or by a crash) are deleted.
pub fn sweep_step<S: Store>(store: &S, env: &impl Env) -> Result<Swept, StoreFault> {
    let ctx = Ctx { store, env };
    let cursor = store
        .get(SWEEP_CURSOR)?
        .and_then(|b| String::from_utf8(b).ok());
    let (keys, next) = store.list_keys(cursor)?;
    let mut swept = Swept {
        keys: keys.len(),
        wrapped: next.is_none(),
        ..Swept::default()
    };
    let mut ids: Vec<&str> = keys
        .iter()
        .filter_map(|k| match stored::classify_key(k) {
            stored::KeyKind::Header { id } | stored::KeyKind::Chunk { id, .. } => Some(id),
            stored::KeyKind::Other => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let header_keys: Vec<String> = ids.iter().map(|id| stored::header_key(id)).collect();
    let headers = store.get_many(&header_keys)?;
    let mut live = std::collections::HashMap::new();
    for ((id, key), bytes) in ids.iter().zip(&header_keys).zip(headers) {
        match ctx.classify(bytes.as_deref()) {
            Ok(Found::Live(h)) => {
                live.insert(*id, h);
            }
            Ok(Found::Absent { expired: Some(_) }) => {
                let (again, cas) = store.watch(key)?;
                if let Ok(Found::Absent { expired: Some(h) }) = ctx.classify(again.as_deref()) {
                    if store.swap(cas, TOMBSTONE.to_vec())? {
                        ctx.discard(h.chunks);
                        swept.expired += 1;
                    }
                }
            }
            _ => {}
        }
    }
    let now = env.now_ms();
    let orphans: Vec<String> = keys
        .iter()
        .filter(|k| match stored::classify_key(k) {
            stored::KeyKind::Chunk { id, written_ms } => {
                let old = written_ms.is_none_or(|t| now.saturating_sub(t) > ORPHAN_GRACE_MS);
                old && !live
                    .get(id)
                    .is_some_and(|h: &Header| h.chunks.iter().any(|c| c == *k))
            }
            _ => false,
        })
        .cloned()
        .collect();
    swept.orphans = orphans.len();
    if !orphans.is_empty() {
        store.delete_many(orphans)?;
    }
    match next {
        Some(c) => store.set_many(vec![(SWEEP_CURSOR.to_string(), c.into_bytes())])?,
        None => store.delete_many(vec![SWEEP_CURSOR.to_string()])?,
    }
    Ok(swept)
}

/// 412 unless `if_match` is absent, `*`, or `header`'s version.
fn check_version(
    id: &str,
    header: &Header,
    if_match: Option<Precondition>,
) -> Result<(), ApiError> {
    match if_match {
        Some(Precondition::Version(v)) if v != header.version => Err(precondition_failed(format!(
            "vector {id:?} is at version {}, not {v}",
            header.version
        ))),
        _ => Ok(()),
    }
}

fn conflict(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!(
            "vector {id:?} changed {MAX_ATTEMPTS} times while this request retried; \
             nothing was changed, try again"
        ),
    )
}

#[cfg(test)]
mod tests;
