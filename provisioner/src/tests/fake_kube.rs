//! A small in-memory Kubernetes API server for reconcile tests, plugged into a real
//! `kube::Client` as its tower service (the kube-rs `Client::new(service)` pattern).
//!
//! It keeps objects as JSON and implements what the provisioner uses: get, list (all or per
//! namespace), create (409 AlreadyExists), replace (409 Conflict on a stale resourceVersion),
//! merge patch (with the same check; also of a `status` subresource), and delete (which only sets deletionTimestamp while
//! finalizers remain, and removes the object once a patch empties them). Faults can be queued
//! per method and path. Watches stream every change after the requested resourceVersion, so
//! kube-runtime's watchers and controllers run against it unchanged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use kube::client::Body;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::broadcast;

type Key = (String, String, String); // (resource, namespace or "", name)
type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// One change: (resourceVersion, resource, namespace, ADDED/MODIFIED/DELETED, object).
type Change = (u64, String, String, &'static str, Value);

struct State {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    requests: Vec<(String, String)>,
    faults: Vec<(Method, String, u16)>,
    changes: Vec<Change>,
    live: broadcast::Sender<Change>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            resource_version: 0,
            requests: Vec::new(),
            faults: Vec::new(),
            changes: Vec::new(),
            live: broadcast::channel(4096).0,
        }
    }
}

impl State {
    /// Stores (or, with DELETED, removes) an object under a fresh resourceVersion and tells
    /// the watchers.
    fn commit(&mut self, key: Key, kind: &'static str, mut obj: Value) -> Value {
        self.resource_version += 1;
        obj["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        if kind == "DELETED" {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key.clone(), obj.clone());
        }
        let change = (self.resource_version, key.0, key.1, kind, obj.clone());
        self.changes.push(change.clone());
        let _ = self.live.send(change);
        obj
    }
}

#[derive(Clone, Default)]
pub struct FakeKube {
    state: Arc<Mutex<State>>,
    /// Path parts whose requests hang until [`FakeKube::release`] (a stuck API server).
    stalled: Arc<tokio::sync::watch::Sender<Vec<String>>>,
}

/// A LIST page as asked by `limit` and `continue` (here simply the offset of the next item).
#[derive(Clone, Copy)]
struct Page {
    limit: Option<usize>,
    offset: usize,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Splits `/api/v1/...` or `/apis/<group>/<version>/...` into (resource, namespace, name).
fn parse_path(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let rest = path.strip_prefix("/api/v1/").or_else(|| {
        path.strip_prefix("/apis/")
            .map(|r| r.splitn(3, '/').nth(2).unwrap_or(""))
    })?;
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["namespaces", ns, resource] => Some(((*resource).into(), Some((*ns).into()), None)),
        // A status subresource is the object itself here: a patch to it merges into the object.
        ["namespaces", ns, resource, name] | ["namespaces", ns, resource, name, "status"] => {
            Some(((*resource).into(), Some((*ns).into()), Some((*name).into())))
        }
        [resource] => Some(((*resource).into(), None, None)),
        [resource, name] | [resource, name, "status"] => {
            Some(((*resource).into(), None, Some((*name).into())))
        }
        _ => None,
    }
}

impl FakeKube {
    /// A fake server and a client talking to it.
    pub fn new() -> (Self, kube::Client) {
        let fake = Self::default();
        let client = fake.client();
        (fake, client)
    }

    /// Another client talking to the same server.
    pub fn client(&self) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(req).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores an object as if created through the API.
    pub fn insert<K: Serialize + kube::Resource<DynamicType = ()>>(&self, obj: &K) {
        let mut value = serde_json::to_value(obj).unwrap_or(Value::Null);
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        let resource = K::plural(&()).to_string();
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        let name = obj.meta().name.clone().unwrap_or_default();
        let mut state = self.lock();
        let key = (resource, ns, name);
        let kind = if state.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.commit(key, kind, value);
    }

    pub fn get<K: DeserializeOwned + kube::Resource<DynamicType = ()>>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<K> {
        let key = (
            K::plural(&()).to_string(),
            namespace.unwrap_or("").to_owned(),
            name.to_owned(),
        );
        let value = self.lock().objects.get(&key).cloned()?;
        serde_json::from_value(value).ok()
    }

    pub fn list<K: DeserializeOwned + kube::Resource<DynamicType = ()>>(&self) -> Vec<K> {
        let resource = K::plural(&()).to_string();
        self.lock()
            .objects
            .iter()
            .filter(|((r, _, _), _)| *r == resource)
            .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    pub fn remove<K: kube::Resource<DynamicType = ()>>(&self, namespace: Option<&str>, name: &str) {
        let key = (
            K::plural(&()).to_string(),
            namespace.unwrap_or("").to_owned(),
            name.to_owned(),
        );
        let mut state = self.lock();
        if let Some(obj) = state.objects.get(&key).cloned() {
            state.commit(key, "DELETED", obj);
        }
    }

    /// `(method, path)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.lock().requests.clone()
    }

    /// The next request with this method whose path contains `path_part` fails with `code`.
    pub fn fail_next(&self, method: Method, path_part: &str, code: u16) {
        self.lock()
            .faults
            .push((method, path_part.to_owned(), code));
    }

    /// Every request whose path contains `path_part` hangs from now until released.
    pub fn stall(&self, path_part: &str) {
        self.stalled
            .send_modify(|parts| parts.push(path_part.to_owned()));
    }

    /// Lets the stalled requests go on.
    pub fn release(&self) {
        self.stalled.send_modify(Vec::clear);
    }

    async fn wait_while_stalled(&self, path: &str) {
        let mut stalled = self.stalled.subscribe();
        let _ = stalled
            .wait_for(|parts| !parts.iter().any(|p| path.contains(p.as_str())))
            .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn handle(&self, req: Request<Body>) -> Response<ResponseBody> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .map(str::to_owned)
        };
        if method == Method::GET && matches!(param("watch").as_deref(), Some("true" | "1")) {
            let since = param("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return self.watch(&path, since);
        }
        self.wait_while_stalled(&path).await;
        let body = req.into_body().collect_bytes().await.unwrap_or_default();
        let page = Page {
            limit: param("limit").and_then(|v| v.parse().ok()),
            offset: param("continue").and_then(|v| v.parse().ok()).unwrap_or(0),
        };
        let (code, value) = self.respond(&method, &path, page, &body);
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .body(Full::new(bytes).boxed_unsync())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
    }

    /// Streams the changes after `since` to this resource (and namespace), then live ones.
    fn watch(&self, path: &str, since: u64) -> Response<ResponseBody> {
        let Some((resource, ns, _)) = parse_path(path) else {
            return Response::new(Full::new(Bytes::new()).boxed_unsync());
        };
        let wanted = move |change: &Change| {
            change.1 == resource && ns.as_ref().is_none_or(|n| *n == change.2)
        };
        let (backlog, mut live) = {
            let mut state = self.lock();
            state.requests.push(("WATCH".into(), path.to_owned()));
            let backlog: Vec<Change> = state
                .changes
                .iter()
                .filter(|c| c.0 > since && wanted(c))
                .cloned()
                .collect();
            (backlog, state.live.subscribe())
        };
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(64);
        tokio::spawn(async move {
            let line = |c: &Change| {
                let mut text =
                    serde_json::to_vec(&json!({"type": c.3, "object": c.4})).unwrap_or_default();
                text.push(b'\n');
                Bytes::from(text)
            };
            let mut last = since;
            for change in &backlog {
                last = change.0;
                if tx.send_data(line(change)).await.is_err() {
                    return;
                }
            }
            while let Ok(change) = live.recv().await {
                if change.0 > last && wanted(&change) && tx.send_data(line(&change)).await.is_err()
                {
                    return;
                }
            }
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(body.boxed_unsync())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
    }

    fn respond(&self, method: &Method, path: &str, page: Page, body: &[u8]) -> (u16, Value) {
        let mut state = self.lock();
        state.requests.push((method.to_string(), path.to_owned()));
        if let Some(i) = state
            .faults
            .iter()
            .position(|(m, p, _)| m == method && path.contains(p.as_str()))
        {
            let (_, _, code) = state.faults.remove(i);
            return (code, status(code, "InternalError", "injected fault"));
        }
        let Some((resource, ns, name)) = parse_path(path) else {
            return (404, status(404, "NotFound", "unknown path"));
        };
        let ns_key = ns.clone().unwrap_or_default();
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let not_found = || {
            (
                404,
                status(404, "NotFound", &format!("{resource} {name:?} not found")),
            )
        };
        match (method.clone(), name.clone()) {
            (Method::GET, None) => {
                let all: Vec<&Value> = state
                    .objects
                    .iter()
                    .filter(|((r, n, _), _)| *r == resource && (ns.is_none() || *n == ns_key))
                    .map(|(_, v)| v)
                    .collect();
                let end = page
                    .limit
                    .map_or(all.len(), |l| (page.offset + l).min(all.len()));
                let items: Vec<Value> = all
                    .get(page.offset..end)
                    .unwrap_or_default()
                    .iter()
                    .map(|v| (*v).clone())
                    .collect();
                let mut metadata = json!({"resourceVersion": state.resource_version.to_string()});
                if end < all.len() {
                    metadata["continue"] = json!(end.to_string());
                }
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": metadata, "items": items}),
                )
            }
            (Method::GET, Some(name)) => match state.objects.get(&(resource.clone(), ns_key, name))
            {
                Some(v) => (200, v.clone()),
                None => not_found(),
            },
            (Method::POST, None) => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let key = (resource.clone(), ns_key.clone(), name.clone());
                if state.objects.contains_key(&key) {
                    return (
                        409,
                        status(
                            409,
                            "AlreadyExists",
                            &format!("{resource} {name:?} already exists"),
                        ),
                    );
                }
                let mut obj = body;
                if obj["metadata"]["uid"].is_null() {
                    obj["metadata"]["uid"] = json!(format!("uid-{}", state.resource_version + 1));
                }
                if ns.is_some() {
                    obj["metadata"]["namespace"] = json!(ns_key);
                }
                (201, state.commit(key, "ADDED", obj))
            }
            (Method::PUT, Some(name)) | (Method::PATCH, Some(name)) => {
                let key = (resource.clone(), ns_key, name);
                let Some(current) = state.objects.get(&key).cloned() else {
                    return not_found();
                };
                let sent_rv = body["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_owned);
                if sent_rv.is_some_and(|rv| {
                    Some(rv.as_str()) != current["metadata"]["resourceVersion"].as_str()
                }) {
                    return (409, status(409, "Conflict", "the object has been modified"));
                }
                let obj = if *method == Method::PUT {
                    body
                } else {
                    let mut obj = current;
                    merge(&mut obj, &body);
                    obj
                };
                let finalizers_left = obj["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                let kind = if !obj["metadata"]["deletionTimestamp"].is_null() && !finalizers_left {
                    "DELETED"
                } else {
                    "MODIFIED"
                };
                (200, state.commit(key, kind, obj))
            }
            (Method::DELETE, Some(name)) => {
                let key = (resource.clone(), ns_key, name);
                let Some(mut obj) = state.objects.get(&key).cloned() else {
                    return not_found();
                };
                if obj["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
                {
                    if obj["metadata"]["deletionTimestamp"].is_null() {
                        obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                        obj = state.commit(key, "MODIFIED", obj);
                    }
                    (200, obj)
                } else {
                    (200, state.commit(key, "DELETED", obj))
                }
            }
            _ => (
                405,
                status(405, "MethodNotAllowed", "not supported by the fake"),
            ),
        }
    }
}

/// Serves the fake over plain HTTP on 127.0.0.1, for code that builds its own client from a
/// `kube::Config` (the program's start-up).
pub async fn serve_http(fake: FakeKube) -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let fake = fake.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let response = fake
                .handle(Request::from_parts(parts, Body::from(bytes)))
                .await;
            response.map(axum::body::Body::new)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake API");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
