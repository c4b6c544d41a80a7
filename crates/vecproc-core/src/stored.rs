//! A vector kept in a key-value store, for the stateful API (issue 19):
//! where its parts live, how they are encoded, and what each operation
//! reads and writes. No I/O: a guest runs these plans against
//! `wasi:keyvalue` (reads, writes, one compare-and-swap on the header) and
//! this module decides everything else, so the logic is tested natively,
//! including a model of concurrent writers.
//!
//! Layout, for a vector `ID`:
//! - `vec:ID`, the header ([`Header`], JSON): a version that every change
//!   increments, the number of values, the key of each chunk in order, and
//!   the order the values are known to be in;
//! - `vec:ID:N:TAG`, chunk `N`: up to [`CHUNK_VALUES`] values as
//!   little-endian f64. `TAG` is unique to the attempt that wrote it, so a
//!   chunk's key names contents that never change.
//!
//! A tag starts with the time its attempt began, so a sweep can delete a
//! chunk that no header names once it is older than any attempt can be.
//!
//! A change writes its new chunks under fresh keys, then swaps the header
//! in one compare-and-swap; a writer that loses the swap has changed
//! nothing a reader can see (its chunks are unreferenced; it deletes them
//! and retries from the new header). After a won swap, the chunks the old
//! header named and the new one does not are deleted. A reader that read a
//! header and then finds one of its chunks gone has met a newer change:
//! it answers 412 or reads again, never a mix of two versions.
//!
//! An append rewrites only the last, partial chunk and adds new ones, so
//! its cost is bounded by [`CHUNK_VALUES`] plus the batch, not by the
//! vector's length (the header grows by one short key per 8,192 values).

use serde::{Deserialize, Serialize};

use crate::SortOrder;

/// Values per chunk: 64 KiB of f64.
pub const CHUNK_VALUES: usize = 8192;

/// The most values one vector may hold (the article adds a million).
pub const MAX_VALUES: u64 = 2_000_000;

/// The longest id a client may choose (`PUT /vectors/{id}`).
pub const MAX_ID_LEN: usize = 64;

/// What is wrong with a stored vector or a request on one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredError {
    /// An id that is empty, too long, or has characters other than ASCII
    /// letters, digits, `-` and `_`.
    #[error("a vector id is 1 to {MAX_ID_LEN} ASCII letters, digits, '-' or '_'")]
    InvalidId,
    /// The vector would hold more than [`MAX_VALUES`].
    #[error("the vector would hold {would} values; the limit is {MAX_VALUES}")]
    TooLarge {
        /// The count it would reach.
        would: u64,
    },
    /// The stored bytes are not what this module wrote.
    #[error("stored vector is corrupt: {0}")]
    Corrupt(String),
    /// A page starts past the end.
    #[error("offset {offset} is past the end ({count} values)")]
    OffsetPastEnd {
        /// The offset asked for.
        offset: u64,
        /// The vector's length.
        count: u64,
    },
}

/// A vector's header: everything but the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Incremented by every change; the `ETag`.
    pub version: u64,
    /// The number of values.
    pub count: u64,
    /// The key of each chunk, in order; all but the last are full.
    pub chunks: Vec<String>,
    /// `"asc"` or `"desc"` when the values are known to be sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorted: Option<String>,
    /// Seconds of idleness after which the vector expires (renewed by every
    /// change), and when that is (Unix milliseconds); kept by the API layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// See `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

/// The header key of vector `id`.
pub fn header_key(id: &str) -> String {
    format!("vec:{id}")
}

/// The key of chunk `index` written by the attempt tagged `tag`.
pub fn chunk_key(id: &str, index: usize, tag: &str) -> String {
    format!("vec:{id}:{index}:{tag}")
}

/// Checks a client-chosen id.
pub fn check_id(id: &str) -> Result<(), StoredError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(StoredError::InvalidId)
}

/// A server-chosen id from 16 random bytes: 32 lower-case hex digits (128
/// bits, so ids cannot be guessed or enumerated).
pub fn random_id(random: [u8; 16]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// A write tag: when the attempt began (Unix milliseconds, hex) and 8
/// random bytes, so a sweep can tell a chunk abandoned by a writer that
/// died from one whose header swap is still to come ([`tag_time`]).
pub fn write_tag(now_ms: u64, random: [u8; 8]) -> String {
    format!("{now_ms:x}-{}", random_tag(random))
}

/// When the attempt that wrote a chunk began, from a [`write_tag`].
pub fn tag_time(tag: &str) -> Option<u64> {
    u64::from_str_radix(tag.split_once('-')?.0, 16).ok()
}

/// What a key of the store holds, for the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind<'a> {
    /// `vec:ID`.
    Header {
        /// The vector.
        id: &'a str,
    },
    /// `vec:ID:N:TAG`.
    Chunk {
        /// The vector.
        id: &'a str,
        /// When it was written ([`tag_time`]), if its tag says.
        written_ms: Option<u64>,
    },
    /// Anything else.
    Other,
}

/// Reads a key this module wrote.
pub fn classify_key(key: &str) -> KeyKind<'_> {
    let Some(rest) = key.strip_prefix("vec:") else {
        return KeyKind::Other;
    };
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [id] if check_id(id).is_ok() => KeyKind::Header { id },
        [id, n, tag] if check_id(id).is_ok() && n.parse::<usize>().is_ok() => KeyKind::Chunk {
            id,
            written_ms: tag_time(tag),
        },
        _ => KeyKind::Other,
    }
}

/// A write tag from 8 random bytes.
pub fn random_tag(random: [u8; 8]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// Values as stored: little-endian f64.
pub fn encode(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Stored bytes back to values.
pub fn decode(bytes: &[u8]) -> Result<Vec<f64>, StoredError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(StoredError::Corrupt(format!(
            "a chunk of {} bytes is not whole f64 values",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect())
}

impl Header {
    /// A new, empty vector's header (version 1).
    pub fn empty() -> Self {
        Header {
            version: 1,
            count: 0,
            chunks: Vec::new(),
            sorted: None,
            ttl: None,
            expires_ms: None,
        }
    }

    /// The header as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a header serializes")
    }

    /// A stored header.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredError> {
        let header: Header = serde_json::from_slice(bytes)
            .map_err(|e| StoredError::Corrupt(format!("header: {e}")))?;
        let full = header.chunks.len().saturating_sub(1) as u64 * CHUNK_VALUES as u64;
        let capacity = header.chunks.len() as u64 * CHUNK_VALUES as u64;
        if header.count > capacity || (header.count <= full && !header.chunks.is_empty()) {
            return Err(StoredError::Corrupt(format!(
                "{} values cannot fill {} chunks",
                header.count,
                header.chunks.len()
            )));
        }
        Ok(header)
    }

    /// The order the values are known to be in.
    pub fn order(&self) -> Option<SortOrder> {
        match self.sorted.as_deref() {
            Some("asc") => Some(SortOrder::Ascending),
            Some("desc") => Some(SortOrder::Descending),
            _ => None,
        }
    }

    /// Values in the last chunk.
    fn tail_len(&self) -> usize {
        match self.count as usize % CHUNK_VALUES {
            0 if self.count > 0 => CHUNK_VALUES,
            n => n,
        }
    }

    /// The chunk an append must read first: the last one, when it is not
    /// full.
    pub fn partial_tail(&self) -> Option<&str> {
        let last = self.chunks.last()?;
        (self.tail_len() < CHUNK_VALUES).then_some(last.as_str())
    }
}

/// A change to make: chunks to write, then the header to swap in (with a
/// compare-and-swap against the header it was planned from), then chunks
/// to delete once the swap has won.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `(key, bytes)` to write before the swap.
    pub writes: Vec<(String, Vec<u8>)>,
    /// The header to swap in.
    pub header: Header,
    /// Keys no longer referenced once the swap has won.
    pub garbage: Vec<String>,
}

impl Change {
    /// The keys this change wrote, to delete when its swap lost.
    pub fn written(&self) -> impl Iterator<Item = &str> {
        self.writes.iter().map(|(k, _)| k.as_str())
    }
}

/// Plans appending `values` to the vector `id` with header `header`.
/// `tail` holds the values of [`Header::partial_tail`] (read by the
/// caller), and `tag` is fresh for this attempt.
pub fn append(
    id: &str,
    header: &Header,
    tail: Option<&[f64]>,
    values: &[f64],
    tag: &str,
) -> Result<Change, StoredError> {
    let would = header.count + values.len() as u64;
    if would > MAX_VALUES {
        return Err(StoredError::TooLarge { would });
    }
    let mut chunks = header.chunks.clone();
    let mut garbage = Vec::new();
    let mut pending: Vec<f64> = Vec::new();
    let mut first_index = chunks.len();
    if let Some(key) = header.partial_tail() {
        let tail =
            tail.ok_or_else(|| StoredError::Corrupt("the partial last chunk was not read".into()))?;
        if tail.len() != header.tail_len() {
            return Err(StoredError::Corrupt(format!(
                "the last chunk holds {} values, the header says {}",
                tail.len(),
                header.tail_len()
            )));
        }
        if !values.is_empty() {
            garbage.push(key.to_string());
            chunks.pop();
            first_index -= 1;
            pending.extend_from_slice(tail);
        }
    }
    pending.extend_from_slice(values);
    let mut writes = Vec::new();
    for (i, part) in pending.chunks(CHUNK_VALUES).enumerate() {
        let key = chunk_key(id, first_index + i, tag);
        writes.push((key.clone(), encode(part)));
        chunks.push(key);
    }
    Ok(Change {
        writes,
        header: Header {
            version: header.version + 1,
            count: would,
            chunks,
            sorted: if values.is_empty() {
                header.sorted.clone()
            } else {
                None
            },
            ttl: header.ttl,
            expires_ms: header.expires_ms,
        },
        garbage,
    })
}

/// Plans replacing the whole vector with `values` (a sort, or a new
/// vector's initial values): every chunk rewritten under `tag`.
pub fn replace(
    id: &str,
    header: &Header,
    values: &[f64],
    sorted: Option<SortOrder>,
    tag: &str,
) -> Result<Change, StoredError> {
    let empty = Header {
        version: header.version,
        count: 0,
        chunks: Vec::new(),
        sorted: None,
        ttl: header.ttl,
        expires_ms: header.expires_ms,
    };
    let mut change = append(id, &empty, None, values, tag)?;
    change.header.sorted = sorted.map(|o| {
        match o {
            SortOrder::Ascending => "asc",
            SortOrder::Descending => "desc",
        }
        .to_string()
    });
    change.garbage = header.chunks.clone();
    Ok(change)
}

/// Which chunks hold values `offset..offset + limit`, and where in the
/// first of them the page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Keys to read, in order.
    pub chunks: Vec<String>,
    /// Values to skip in the first chunk.
    pub skip: usize,
    /// Values in the page.
    pub len: usize,
    /// The offset of the next page, if there is one.
    pub next: Option<u64>,
}

/// Plans reading a page. An offset equal to the count gives an empty last
/// page; past it is an error.
pub fn page(header: &Header, offset: u64, limit: u64) -> Result<Page, StoredError> {
    if offset > header.count {
        return Err(StoredError::OffsetPastEnd {
            offset,
            count: header.count,
        });
    }
    let end = offset.saturating_add(limit).min(header.count);
    let len = (end - offset) as usize;
    if len == 0 {
        return Ok(Page {
            chunks: Vec::new(),
            skip: 0,
            len: 0,
            next: None,
        });
    }
    let first = (offset / CHUNK_VALUES as u64) as usize;
    let last = ((end - 1) / CHUNK_VALUES as u64) as usize;
    Ok(Page {
        chunks: header.chunks[first..=last].to_vec(),
        skip: (offset % CHUNK_VALUES as u64) as usize,
        len,
        next: (end < header.count).then_some(end),
    })
}

/// The page's values from its chunks' contents (as decoded, in order).
pub fn assemble(page: &Page, chunks: &[Vec<f64>]) -> Result<Vec<f64>, StoredError> {
    let values: Vec<f64> = chunks
        .iter()
        .flatten()
        .copied()
        .skip(page.skip)
        .take(page.len)
        .collect();
    if values.len() != page.len {
        return Err(StoredError::Corrupt(format!(
            "the chunks hold {} of the page's {} values",
            values.len(),
            page.len
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A key-value store with compare-and-swap on whole values, as
    /// `wasi:keyvalue/atomics` gives it.
    #[derive(Default)]
    struct Model {
        data: HashMap<String, Vec<u8>>,
    }

    impl Model {
        fn cas(&mut self, key: &str, expected: Option<&[u8]>, new: Vec<u8>) -> bool {
            if self.data.get(key).map(Vec::as_slice) != expected {
                return false;
            }
            self.data.insert(key.to_string(), new);
            true
        }

        fn read_all(&self, id: &str) -> Vec<f64> {
            let header = Header::from_bytes(&self.data[&header_key(id)]).unwrap();
            let p = page(&header, 0, u64::MAX).unwrap();
            let chunks: Vec<Vec<f64>> = p
                .chunks
                .iter()
                .map(|k| decode(&self.data[k]).unwrap())
                .collect();
            assemble(&p, &chunks).unwrap()
        }
    }

    /// One writer's append, in the steps a guest takes, so a schedule can
    /// interleave writers between any two of them.
    struct Writer {
        values: Vec<f64>,
        step: u8,
        seen: Option<Vec<u8>>,
        change: Option<Change>,
        attempt: u32,
        name: usize,
        done: bool,
    }

    impl Writer {
        fn advance(&mut self, store: &mut Model, id: &str) {
            match self.step {
                0 => {
                    self.seen = Some(store.data[&header_key(id)].clone());
                    self.step = 1;
                }
                1 => {
                    let header = Header::from_bytes(self.seen.as_ref().unwrap()).unwrap();
                    // The tail may already be gone: the header read is stale.
                    let tail = match header.partial_tail() {
                        Some(k) => match store.data.get(k) {
                            Some(b) => Some(decode(b).unwrap()),
                            None => {
                                self.step = 0;
                                return;
                            }
                        },
                        None => None,
                    };
                    let tag = format!("w{}a{}", self.name, self.attempt);
                    let change = append(id, &header, tail.as_deref(), &self.values, &tag).unwrap();
                    for (k, v) in &change.writes {
                        store.data.insert(k.clone(), v.clone());
                    }
                    self.change = Some(change);
                    self.step = 2;
                }
                _ => {
                    let change = self.change.take().unwrap();
                    let expected = self.seen.take().unwrap();
                    if store.cas(
                        &header_key(id),
                        Some(expected.as_slice()),
                        change.header.to_bytes(),
                    ) {
                        for k in &change.garbage {
                            store.data.remove(k);
                        }
                        self.done = true;
                    } else {
                        for k in change.written() {
                            store.data.remove(k);
                        }
                        self.attempt += 1;
                        self.step = 0;
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Concurrent appenders, interleaved at every step in any order:
        /// every append lands exactly once, each batch contiguous, and no
        /// chunk is left behind unreferenced.
        #[test]
        fn no_append_is_lost_under_any_interleaving(
            batches in prop::collection::vec(1usize..20_000, 1..6),
            schedule in prop::collection::vec(0usize..6, 0..400),
        ) {
            let id = "v";
            let mut store = Model::default();
            store.data.insert(header_key(id), Header::empty().to_bytes());
            let mut writers: Vec<Writer> = batches
                .iter()
                .enumerate()
                .map(|(w, &n)| Writer {
                    values: (0..n).map(|i| (w * 1_000_000 + i) as f64).collect(),
                    step: 0,
                    seen: None,
                    change: None,
                    attempt: 0,
                    name: w,
                    done: false,
                })
                .collect();
            let mut turns = schedule.into_iter().chain((0..).map(|i| i % 6));
            while writers.iter().any(|w| !w.done) {
                let pick = turns.next().unwrap() % writers.len();
                if !writers[pick].done {
                    writers[pick].advance(&mut store, id);
                }
            }
            let values = store.read_all(id);
            prop_assert_eq!(values.len(), batches.iter().sum::<usize>());
            for (w, &n) in batches.iter().enumerate() {
                let start = values.iter().position(|&v| v == (w * 1_000_000) as f64).unwrap();
                let expected: Vec<f64> = (0..n).map(|i| (w * 1_000_000 + i) as f64).collect();
                prop_assert_eq!(&values[start..start + n], expected.as_slice());
            }
            let header = Header::from_bytes(&store.data[&header_key(id)]).unwrap();
            prop_assert_eq!(header.version, 1 + batches.len() as u64);
            prop_assert_eq!(store.data.len(), 1 + header.chunks.len());
        }
    }

    #[test]
    fn an_append_rewrites_only_the_tail() {
        let id = "a";
        let values: Vec<f64> = (0..CHUNK_VALUES * 3 + 10).map(|i| i as f64).collect();
        let first = append(id, &Header::empty(), None, &values, "t1").unwrap();
        assert_eq!(first.writes.len(), 4);
        assert_eq!(first.header.count, values.len() as u64);
        let header = first.header.clone();
        assert_eq!(header.partial_tail(), Some(chunk_key(id, 3, "t1").as_str()));
        let tail: Vec<f64> = values[CHUNK_VALUES * 3..].to_vec();
        let second = append(id, &header, Some(tail.as_slice()), &[1.0, 2.0], "t2").unwrap();
        assert_eq!(second.writes.len(), 1, "only the tail is rewritten");
        assert_eq!(second.writes[0].0, chunk_key(id, 3, "t2"));
        assert_eq!(second.writes[0].1.len(), 12 * 8);
        assert_eq!(second.garbage, [chunk_key(id, 3, "t1")]);
        assert_eq!(second.header.version, header.version + 1);
        assert_eq!(second.header.chunks[..3], header.chunks[..3]);
        // A full tail is not read or rewritten.
        let full = append(id, &Header::empty(), None, &values[..CHUNK_VALUES], "t3").unwrap();
        assert_eq!(full.header.partial_tail(), None);
        let next = append(id, &full.header, None, &[5.0], "t4").unwrap();
        assert_eq!(next.writes.len(), 1);
        assert!(next.garbage.is_empty());
    }

    #[test]
    fn limits_and_ids() {
        let header = Header {
            version: 3,
            count: MAX_VALUES - 1,
            chunks: (0..MAX_VALUES.div_ceil(CHUNK_VALUES as u64))
                .map(|i| format!("k{i}"))
                .collect(),
            ..Header::empty()
        };
        let tail = vec![0.0; header.tail_len()];
        assert_eq!(
            append("x", &header, Some(tail.as_slice()), &[1.0, 2.0], "t"),
            Err(StoredError::TooLarge {
                would: MAX_VALUES + 1
            })
        );
        assert!(check_id("article-1_B").is_ok());
        let long = "x".repeat(65);
        for bad in ["", "a/b", "../x", "ü", long.as_str()] {
            assert_eq!(check_id(bad), Err(StoredError::InvalidId), "{bad:?}");
        }
        assert_eq!(random_id([0xab; 16]).len(), 32);
        assert!(check_id(&random_id([7; 16])).is_ok());
    }

    #[test]
    fn pages_cover_exactly_what_they_say() {
        let values: Vec<f64> = (0..CHUNK_VALUES * 2 + 5).map(|i| i as f64).collect();
        let change = append("p", &Header::empty(), None, &values, "t").unwrap();
        let chunks: Vec<Vec<f64>> = change
            .writes
            .iter()
            .map(|(_, b)| decode(b).unwrap())
            .collect();
        let read = |offset: u64, limit: u64| {
            let p = page(&change.header, offset, limit).unwrap();
            let first = change
                .header
                .chunks
                .iter()
                .position(|k| *k == p.chunks[0])
                .unwrap();
            let got = assemble(&p, &chunks[first..first + p.chunks.len()]).unwrap();
            (got, p.next)
        };
        let (got, next) = read(CHUNK_VALUES as u64 - 2, 4);
        assert_eq!(got, values[CHUNK_VALUES - 2..CHUNK_VALUES + 2]);
        assert_eq!(next, Some(CHUNK_VALUES as u64 + 2));
        let (got, next) = read(values.len() as u64 - 3, 100);
        assert_eq!(got, values[values.len() - 3..]);
        assert_eq!(next, None);
        let empty = page(&change.header, values.len() as u64, 10).unwrap();
        assert_eq!((empty.len, empty.next), (0, None));
        assert_eq!(
            page(&change.header, values.len() as u64 + 1, 1),
            Err(StoredError::OffsetPastEnd {
                offset: values.len() as u64 + 1,
                count: values.len() as u64
            })
        );
    }

    #[test]
    fn a_replace_rewrites_everything_and_records_the_order() {
        let first = append("s", &Header::empty(), None, &[3.0, 1.0, 2.0], "t1").unwrap();
        let sorted = replace(
            "s",
            &first.header,
            &[1.0, 2.0, 3.0],
            Some(SortOrder::Ascending),
            "t2",
        )
        .unwrap();
        assert_eq!(sorted.header.order(), Some(SortOrder::Ascending));
        assert_eq!(sorted.header.version, first.header.version + 1);
        assert_eq!(sorted.garbage, first.header.chunks);
        let after = append(
            "s",
            &sorted.header,
            Some(&[1.0, 2.0, 3.0][..]),
            &[0.5],
            "t3",
        )
        .unwrap();
        assert_eq!(after.header.order(), None, "an append ends the known order");
    }

    #[test]
    fn corrupt_headers_and_chunks_are_refused() {
        assert!(matches!(
            Header::from_bytes(b"{"),
            Err(StoredError::Corrupt(_))
        ));
        let lying = Header {
            version: 1,
            count: CHUNK_VALUES as u64 * 3,
            chunks: vec!["a".into()],
            ..Header::empty()
        };
        assert!(matches!(
            Header::from_bytes(&lying.to_bytes()),
            Err(StoredError::Corrupt(_))
        ));
        assert!(matches!(decode(&[0; 9]), Err(StoredError::Corrupt(_))));
        let h = Header::empty();
        assert_eq!(Header::from_bytes(&h.to_bytes()).unwrap(), h);
    }
}
