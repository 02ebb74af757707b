//! Heap bytes the provisioner's watch caches hold per claim and PV, measured with dhat's heap
//! counters: the objects as the apiserver sends them (`benches/fixtures`, managedFields
//! included), decoded and put into kube-runtime stores exactly as the watches do, once as whole
//! `k8s-openapi` objects and once as the cache types the provisioner keeps (`src/k8s/cache.rs`).
//!
//! Run: `cargo bench -p flashvol-provisioner --bench cache_memory [-- N [--json]]` (N objects
//! of each kind, default 10000). Counts allocations, not RSS, so the numbers do not depend on
//! the machine or the allocator; bench/run.sh reports the process RSS separately.

use flashvol_provisioner::k8s::cache::{CachedClaim, CachedVolume};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn live_bytes() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

const PV_JSON: &str = include_str!("fixtures/pv.json");
const CLAIM_JSON: &str = include_str!("fixtures/pvc.json");
const FIXTURE_UID: &str = "3f1c2a9e-5b7d-4c1e-9a2f-0d8e6b4c7a13";
const FIXTURE_PV_UID: &str = "9b0c4e71-2f3a-4d58-8e6b-1a7c5d2f9e04";

/// The fixture with its names and uids made unique for object `i`, as the apiserver would send
/// the i-th claim or PV.
fn nth(json: &str, i: usize) -> String {
    let uid = format!("3f1c2a9e-5b7d-4c1e-9a2f-{i:012x}");
    let pv_uid = format!("9b0c4e71-2f3a-4d58-8e6b-{i:012x}");
    json.replace(FIXTURE_UID, &uid)
        .replace(FIXTURE_PV_UID, &pv_uid)
        .replace("bench-0412", &format!("bench-{i:05}"))
}

/// Heap bytes held by a store of `n` objects decoded from `json` (wire form as the watch reads
/// it).
fn store_bytes<K>(json: &str, n: usize) -> (isize, Store<K>)
where
    K: kube::Resource<DynamicType = ()> + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let texts: Vec<String> = (0..n).map(|i| nth(json, i)).collect();
    let (reader, mut writer) = reflector::store::<K>();
    let before = live_bytes();
    for text in &texts {
        let obj: K = serde_json::from_str(text).expect("fixture decodes");
        writer.apply_watcher_event(&watcher::Event::Apply(obj));
    }
    let held = live_bytes() - before;
    drop(texts);
    (held, reader)
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut n = 10_000usize;
    let mut json = false;
    for arg in args.by_ref() {
        match arg.as_str() {
            "--json" => json = true,
            other => n = other.parse().expect("usage: cache_memory [N] [--json]"),
        }
    }
    let (full_pv, _a) = store_bytes::<PersistentVolume>(PV_JSON, n);
    let (full_claim, _b) = store_bytes::<PersistentVolumeClaim>(CLAIM_JSON, n);
    let (cached_pv, _c) = store_bytes::<CachedVolume>(PV_JSON, n);
    let (cached_claim, _d) = store_bytes::<CachedClaim>(CLAIM_JSON, n);
    // The same claim before the controller-manager bound it: the cache keeps its whole spec.
    let pending_json = pending_claim_json();
    let (cached_pending, _e) = store_bytes::<CachedClaim>(&pending_json, n);
    let per = |bytes: isize| bytes as f64 / n as f64;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "objects_per_kind": n,
                "wire_bytes": {"pv": PV_JSON.len(), "claim": CLAIM_JSON.len()},
                "whole_objects_bytes_per_object": {"pv": per(full_pv), "claim": per(full_claim)},
                "cached_bytes_per_object": {"pv": per(cached_pv), "claim": per(cached_claim), "unbound_claim": per(cached_pending)},
                "whole_objects_total_mib": (full_pv + full_claim) as f64 / 1048576.0,
                "cached_total_mib": (cached_pv + cached_claim) as f64 / 1048576.0,
            })
        );
        return;
    }
    println!("{n} bound PVs and {n} bound claims in kube-runtime stores (heap bytes held)");
    println!("{:<28}{:>12}{:>12}", "", "per PV", "per claim");
    println!(
        "{:<28}{:>12}{:>12}",
        "JSON as served",
        PV_JSON.len(),
        CLAIM_JSON.len()
    );
    println!(
        "{:<28}{:>12.0}{:>12.0}   total {:.1} MiB",
        "whole k8s-openapi objects",
        per(full_pv),
        per(full_claim),
        (full_pv + full_claim) as f64 / 1048576.0
    );
    println!(
        "{:<28}{:>12.0}{:>12.0}   total {:.1} MiB",
        "cache types (k8s/cache.rs)",
        per(cached_pv),
        per(cached_claim),
        (cached_pv + cached_claim) as f64 / 1048576.0
    );
    println!(
        "{:<28}{:>12}{:>12.0}   (a claim not bound yet keeps its spec)",
        "cache types, unbound claim",
        "",
        per(cached_pending)
    );
}

/// The claim fixture as it is before binding: no `spec.volumeName`, phase Pending.
fn pending_claim_json() -> String {
    let mut claim: serde_json::Value = serde_json::from_str(CLAIM_JSON).expect("fixture");
    if let Some(spec) = claim["spec"].as_object_mut() {
        spec.remove("volumeName");
    }
    claim["status"] = serde_json::json!({"phase": "Pending"});
    claim.to_string()
}
