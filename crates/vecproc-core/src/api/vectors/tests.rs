//! The stateful API against an in-memory store: the article's flow, the
//! preconditions, expiry, limits and a store that fails.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::*;
use crate::api::handler::RequestHead;
use crate::{Statistics, Vector, VectorError};

#[derive(Default)]
struct MemStore {
    map: RefCell<HashMap<String, Vec<u8>>>,
    down: Cell<bool>,
    /// Writes a rival header version before the next swap (a lost race).
    rival: Cell<u32>,
}

impl MemStore {
    fn check(&self) -> Result<(), StoreFault> {
        if self.down.get() {
            Err(StoreFault("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

impl Store for MemStore {
    type Cas = (String, Option<Vec<u8>>);
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreFault> {
        self.check()?;
        Ok(self.map.borrow().get(key).cloned())
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreFault> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreFault> {
        self.check()?;
        self.map.borrow_mut().extend(pairs);
        Ok(())
    }
    fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreFault> {
        self.check()?;
        for k in keys {
            self.map.borrow_mut().remove(&k);
        }
        Ok(())
    }
    fn list_keys(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreFault> {
        self.check()?;
        // Pages of 4 keys in order, the cursor the last key: many pages.
        let mut keys: Vec<String> = self.map.borrow().keys().cloned().collect();
        keys.sort();
        let page: Vec<String> = keys
            .into_iter()
            .filter(|k| cursor.as_ref().is_none_or(|c| k > c))
            .take(4)
            .collect();
        let next = (page.len() == 4).then(|| page[3].clone());
        Ok((page, next))
    }
    fn watch(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Cas), StoreFault> {
        let v = self.get(key)?;
        Ok((v.clone(), (key.to_string(), v)))
    }
    fn swap(&self, (key, seen): Self::Cas, value: Vec<u8>) -> Result<bool, StoreFault> {
        self.check()?;
        if self.rival.get() > 0 {
            self.rival.set(self.rival.get() - 1);
            return Ok(false);
        }
        let mut map = self.map.borrow_mut();
        if map.get(&key) != seen.as_ref() {
            return Ok(false);
        }
        map.insert(key, value);
        Ok(true)
    }
}

struct TestEnv {
    counter: Cell<u64>,
    now: Cell<u64>,
}

impl Env for TestEnv {
    fn random16(&self) -> [u8; 16] {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let mut b = [7u8; 16];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    }
    fn random8(&self) -> [u8; 8] {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        n.to_le_bytes()
    }
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn pause_ms(&self, _ms: u64) {}
}

struct Native;

impl Processor for Native {
    fn compute(&self, n: u32) -> f64 {
        crate::compute(n)
    }
    fn statistics(&self, values: Vec<f64>) -> Result<Statistics, VectorError> {
        let mut v = Vector::new();
        v.add_values_owned(values)?;
        Ok(v.statistics())
    }
    fn sorted(&self, values: Vec<f64>, order: SortOrder) -> Result<Vec<f64>, VectorError> {
        let mut v = Vector::new();
        v.add_values_owned(values)?;
        Ok(v.sorted(order).to_vec())
    }
}

struct Api {
    store: MemStore,
    env: TestEnv,
}

impl Api {
    fn new() -> Self {
        Api {
            store: MemStore::default(),
            env: TestEnv {
                counter: Cell::new(0),
                now: Cell::new(1_000_000),
            },
        }
    }

    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let head = RequestHead::new(method.into(), Some(path.into()), |name| {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes().to_vec())
                .collect()
        });
        match begin(&head, 1 << 30) {
            Err(e) => Reply::error(&e),
            Ok(mut p) => {
                if p.needs_body() {
                    if let Err(e) = p.push(body) {
                        return Reply::error(&e);
                    }
                }
                p.run(&self.store, &self.env, &Native)
            }
        }
    }

    fn json(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = self.call(
            method,
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

fn code(r: &Reply) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

#[test]
fn the_articles_flow_matches_the_stateless_answers() {
    let api = Api::new();
    let r = api.call("POST", "/vectors", &[], b"");
    assert_eq!(r.status, 201);
    let location = header(&r, "location").unwrap().to_string();
    assert_eq!(header(&r, "etag"), Some("\"1\""));
    let id = location.strip_prefix("/vectors/").unwrap();
    assert_eq!(id.len(), 32);
    let mut all = Vec::new();
    for batch in 0..5 {
        let values: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919 + batch * 31) % 10007) as f64 - 5000.5)
            .collect();
        all.extend_from_slice(&values);
        let (status, body) = api.json(
            "POST",
            &format!("{location}/values"),
            &serde_json::to_string(&values).unwrap(),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], all.len());
        assert_eq!(body["version"], batch + 2);
    }
    // Stats byte-identical to POST /stats of the same values.
    let r = api.call("GET", &format!("{location}/stats"), &[], b"");
    assert_eq!(r.status, 200);
    let expected = stats_json(&Native.statistics(all.clone()).unwrap());
    assert_eq!(r.body, expected);
    // Sort, then the first ten sorted values.
    let (status, meta) = api.json("POST", &format!("{location}/sort?order=asc"), "");
    assert_eq!((status, meta["sorted"].as_str()), (200, Some("asc")));
    let (status, page) = api.json("GET", &format!("{location}/values?limit=10"), "");
    assert_eq!(status, 200);
    let sorted = Native.sorted(all.clone(), SortOrder::Ascending).unwrap();
    let first: Vec<f64> = serde_json::from_value(page["values"].clone()).unwrap();
    assert_eq!(first, sorted[..10]);
    assert_eq!(page["total"], 25_000);
    let next = page["next"].as_str().unwrap().to_string();
    assert!(next.contains("offset=10") && next.contains(&format!("version={}", meta["version"])));
    // Every page together is the sorted vector.
    let mut paged = Vec::new();
    let mut url = format!("{location}/values?limit=9999");
    loop {
        let (status, page) = api.json("GET", &url, "");
        assert_eq!(status, 200, "{page}");
        paged.extend(serde_json::from_value::<Vec<f64>>(page["values"].clone()).unwrap());
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, sorted);
    let (status, past) = api.json("GET", &format!("{location}/values?offset=2000000"), "");
    assert_eq!(
        (status, past["values"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(past["next"], serde_json::Value::Null);
    // A page across a change is refused, not torn.
    api.json("POST", &format!("{location}/values"), "[1]");
    let (status, body) = api.json("GET", &next, "");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (412, Some("precondition_failed"))
    );
    // Delete: 204, then 404, and no chunk is left behind.
    let r = api.call("DELETE", &location, &[], b"");
    assert_eq!(r.status, 204);
    let r = api.call("GET", &location, &[], b"");
    assert_eq!((r.status, code(&r).as_str()), (404, "not_found"));
    let keys: Vec<String> = api.store.map.borrow().keys().cloned().collect();
    assert_eq!(keys, [format!("vec:{id}")], "only the tombstone is left");
}

#[test]
fn preconditions() {
    let api = Api::new();
    let put = |h: &[(&str, &str)], body: &str| {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend_from_slice(h);
        api.call("PUT", "/vectors/mine", &headers, body.as_bytes())
    };
    let r = put(&[("if-none-match", "*")], "[3, 1, 2]");
    assert_eq!((r.status, header(&r, "etag")), (201, Some("\"1\"")));
    let r = put(&[("if-none-match", "*")], "[]");
    assert_eq!((r.status, code(&r).as_str()), (412, "precondition_failed"));
    // Append with a stale If-Match: 412, nothing appended.
    let append = |etag: &str, body: &str| {
        api.call(
            "POST",
            "/vectors/mine/values",
            &[("content-type", "application/json"), ("if-match", etag)],
            body.as_bytes(),
        )
    };
    let r = append("\"1\"", "[4]");
    assert_eq!((r.status, header(&r, "etag")), (200, Some("\"2\"")));
    let r = append("\"1\"", "[5]");
    assert_eq!(r.status, 412);
    let (_, meta) = api.json("GET", "/vectors/mine", "");
    assert_eq!(
        (meta["count"].as_u64(), meta["version"].as_u64()),
        (Some(4), Some(2))
    );
    // A lost race under If-Match is 412; without it, the append retries.
    api.store.rival.set(1);
    assert_eq!(append("\"2\"", "[6]").status, 412);
    api.store.rival.set(3);
    let (status, body) = api.json("POST", "/vectors/mine/values", "[6]");
    assert_eq!((status, body["count"].as_u64()), (200, Some(5)));
    api.store.rival.set(MAX_ATTEMPTS);
    let (status, body) = api.json("POST", "/vectors/mine/values", "[7]");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (_, meta) = api.json("GET", "/vectors/mine", "");
    assert_eq!(meta["count"].as_u64(), Some(5), "a 409 appended nothing");
    // PUT with If-Match replaces that version only.
    let r = put(&[("if-match", "\"1\"")], "[9]");
    assert_eq!(r.status, 412);
    let r = put(&[("if-match", "\"3\"")], "[9]");
    assert_eq!(r.status, 200);
    let r = api.call("DELETE", "/vectors/mine", &[("if-match", "\"3\"")], b"");
    assert_eq!(r.status, 412);
    let r = api.call("DELETE", "/vectors/mine", &[("if-match", "\"4\"")], b"");
    assert_eq!(r.status, 204);
    // Created again after deletion.
    assert_eq!(put(&[("if-none-match", "*")], "[1]").status, 201);
}

#[test]
fn expiry_limits_and_bad_requests() {
    let api = Api::new();
    let r = api.call("PUT", "/vectors/short?ttl=5", &[], b"");
    assert_eq!(r.status, 201);
    let (_, meta) = api.json("GET", "/vectors/short", "");
    assert_eq!(
        (meta["ttl"].as_u64(), meta["expires_at"].as_u64()),
        (Some(5), Some(1_005_000))
    );
    api.env.now.set(1_004_000);
    assert_eq!(
        api.json("POST", "/vectors/short/values", "[1]").0,
        200,
        "a change renews it"
    );
    api.env.now.set(1_008_999);
    assert_eq!(api.json("GET", "/vectors/short", "").0, 200);
    api.env.now.set(1_009_000);
    assert_eq!(api.json("GET", "/vectors/short", "").0, 404);
    assert_eq!(
        api.store.map.borrow().get("vec:short").map(Vec::as_slice),
        Some(TOMBSTONE),
        "an expired vector is removed when found"
    );
    assert_eq!(api.store.map.borrow().len(), 1);

    for (method, path, status, code_) in [
        ("GET", "/vectors/a.b", 400, "bad_query"),
        ("GET", "/vectors/nope", 404, "not_found"),
        ("GET", "/vectors/nope/stats", 404, "not_found"),
        ("POST", "/vectors/nope/sort", 404, "not_found"),
        ("DELETE", "/vectors/nope", 404, "not_found"),
        ("GET", "/vectors", 405, "method_not_allowed"),
        ("PATCH", "/vectors/x", 405, "method_not_allowed"),
        ("GET", "/vectors/x/nothing", 404, "not_found"),
        ("POST", "/vectors?ttl=0", 400, "bad_query"),
        ("POST", "/vectors?size=1", 400, "bad_query"),
        ("POST", "/vectors/x/sort?order=up", 400, "bad_query"),
        ("GET", "/vectors/x/values?limit=0", 400, "bad_query"),
    ] {
        let r = api.call(method, path, &[], b"");
        assert_eq!(
            (r.status, code(&r).as_str()),
            (status, code_),
            "{method} {path}"
        );
    }
    assert_eq!(api.json("POST", "/vectors/nope/values", "[1]").0, 404);
    let too_many = vec![0u8; 8 * (MAX_VALUES_PER_REQUEST + 1)];
    let r = api.call(
        "POST",
        "/vectors",
        &[("content-type", "application/octet-stream")],
        &too_many,
    );
    assert_eq!((r.status, code(&r).as_str()), (413, "vector_too_large"));
    let r = api.call("POST", "/vectors", &[("content-type", "text/plain")], b"1");
    assert_eq!(r.status, 415);
    api.call("PUT", "/vectors/x", &[], b"");
    let r = api.call("POST", "/vectors/x/values", &[], b"");
    assert_eq!(
        (r.status, code(&r).as_str()),
        (400, "bad_json"),
        "an append needs values"
    );

    api.store.down.set(true);
    let r = api.call("POST", "/vectors", &[], b"");
    assert_eq!((r.status, code(&r).as_str()), (503, "store_unavailable"));
    assert_eq!(header(&r, "retry-after"), Some("1"));
}

#[test]
fn routes_only_its_own_paths() {
    assert!(is_vectors_path("/vectors"));
    assert!(is_vectors_path("/vectors?ttl=1"));
    assert!(is_vectors_path("/vectors/x/values"));
    assert!(!is_vectors_path("/vectorsx"));
    assert!(!is_vectors_path("/stats"));
}

#[test]
fn the_sweep_removes_expired_vectors_and_abandoned_chunks_only() {
    let api = Api::new();
    // Three vectors: one expires, one stays, one is deleted.
    assert_eq!(
        api.call(
            "PUT",
            "/vectors/gone?ttl=5",
            &[("content-type", "application/json")],
            b"[1, 2]"
        )
        .status,
        201
    );
    assert_eq!(
        api.call(
            "PUT",
            "/vectors/kept",
            &[("content-type", "application/json")],
            b"[3]"
        )
        .status,
        201
    );
    let kept_before: Vec<String> = api
        .store
        .map
        .borrow()
        .keys()
        .filter(|k| k.starts_with("vec:kept"))
        .cloned()
        .collect();
    // A chunk left by a writer that died long ago, and one whose writer may
    // still be about to swap.
    let now = api.env.now.get();
    let old = stored::chunk_key(
        "dead",
        0,
        &stored::write_tag(now - ORPHAN_GRACE_MS - 1, [1; 8]),
    );
    let young = stored::chunk_key("busy", 0, &stored::write_tag(now, [2; 8]));
    let stale_of_kept = stored::chunk_key(
        "kept",
        0,
        &stored::write_tag(now - ORPHAN_GRACE_MS - 1, [3; 8]),
    );
    api.store
        .set_many(vec![
            (old.clone(), vec![0; 8]),
            (young.clone(), vec![0; 8]),
            (stale_of_kept.clone(), vec![0; 8]),
        ])
        .unwrap();
    api.env.now.set(now + 6_000);
    // Sweep steps until the cursor wraps.
    let mut total = Swept::default();
    for _ in 0..100 {
        let s = sweep_step(&api.store, &api.env).unwrap();
        total.expired += s.expired;
        total.orphans += s.orphans;
        if s.wrapped {
            break;
        }
    }
    assert_eq!((total.expired, total.orphans), (1, 2), "{total:?}");
    let keys: Vec<String> = {
        let mut k: Vec<String> = api.store.map.borrow().keys().cloned().collect();
        k.sort();
        k
    };
    assert!(
        !keys.contains(&old) && !keys.contains(&stale_of_kept),
        "{keys:?}"
    );
    assert!(
        keys.contains(&young),
        "a young chunk may still be swapped in"
    );
    for k in &kept_before {
        assert!(keys.contains(k), "the live vector's {k} stays");
    }
    assert_eq!(
        api.store.map.borrow().get("vec:gone").map(Vec::as_slice),
        Some(TOMBSTONE)
    );
    assert!(!keys.iter().any(|k| k.starts_with("vec:gone:")), "{keys:?}");
    assert!(
        !keys.contains(&SWEEP_CURSOR.to_string()),
        "a wrapped sweep starts over"
    );
    assert_eq!(api.json("GET", "/vectors/kept/stats", "").1["count"], 1);
}

#[test]
fn keys_are_read_back() {
    assert_eq!(
        stored::classify_key("vec:ab-1"),
        stored::KeyKind::Header { id: "ab-1" }
    );
    let tag = stored::write_tag(0x1234, [0; 8]);
    assert_eq!(
        stored::classify_key(&stored::chunk_key("ab", 3, &tag)),
        stored::KeyKind::Chunk {
            id: "ab",
            written_ms: Some(0x1234)
        }
    );
    for other in ["sweep:cursor", "vec:", "vec:a:b", "vec:a:x:t", "other"] {
        assert_eq!(
            stored::classify_key(other),
            stored::KeyKind::Other,
            "{other}"
        );
    }
}
