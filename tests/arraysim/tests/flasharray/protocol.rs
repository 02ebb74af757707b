//! The REST protocol: version discovery (450 for others), sessions and the cookie on every 200,
//! paging with a token on every page, and parameters from the query or the body, bad ones refused.

use serde_json::{Value, json};

use crate::common::fa_msg;
use crate::start;

#[test]
fn version_discovery_lists_1_19_and_other_versions_get_450() {
    let (_dir, _sim, client) = start();
    let versions = client.call("GET", "/api/api_version", None).json();
    let list: Vec<&str> = versions["version"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(list.contains(&"1.19") && list.contains(&"1.0"));
    let reply = client.call("GET", "/api/2.4/volume", None);
    assert_eq!(reply.status, 450);

    client.admin(
        "PUT",
        "api_versions",
        Some(&json!({"versions": ["1.16", "1.17"]})),
    );
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 450);
    assert_eq!(client.call("GET", "/api/1.17/volume", None).status, 200);
    assert_eq!(
        client.call("GET", "/api/api_version", None).json()["version"],
        json!(["1.16", "1.17"])
    );
}

#[test]
fn calls_need_a_session_and_every_200_sets_the_cookie_again() {
    let (_dir, sim, mut client) = start();
    let cookie = client.cookie.clone().expect("login set a cookie");
    for _ in 0..3 {
        let reply = client.call("GET", "/api/1.19/array", None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(
            reply
                .header("set-cookie")
                .is_some_and(|c| c.starts_with(&format!("session={cookie}")))
        );
    }
    client.cookie = None;
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 401);
    assert_eq!(client.fa_login("wrong-token").status, 401);
    assert_eq!(sim.stats().authentications, 1);

    client.cookie = Some(cookie);
    assert_eq!(
        client.call("DELETE", "/api/1.19/auth/session", None).status,
        200
    );
    assert_eq!(client.call("GET", "/api/1.19/volume", None).status, 401);
}

#[test]
fn paging_returns_next_token_on_every_page_and_an_empty_last_page() {
    let (_dir, _sim, client) = start();
    for i in 0..5 {
        client.call(
            "POST",
            &format!("/api/1.19/volume/k8s-pvc-{i}"),
            Some(&json!({"size": 512})),
        );
    }
    client.call(
        "POST",
        "/api/1.19/volume/other",
        Some(&json!({"size": 512})),
    );
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = match &token {
            Some(t) => json!({"names": "k8s-pvc-*", "limit": 2, "token": t}),
            None => json!({"names": "k8s-pvc-*", "limit": 2}),
        };
        let reply = client.call("GET", "/api/1.19/volume", Some(&body));
        let next = reply.header("x-next-token").map(str::to_string);
        assert!(next.is_some(), "x-next-token on every page");
        let page = reply.json();
        let page = page.as_array().expect("list");
        pages += 1;
        if page.is_empty() {
            break;
        }
        names.extend(
            page.iter()
                .filter_map(|v| v["name"].as_str().map(str::to_string)),
        );
        token = next;
        assert!(pages < 10, "paging must terminate");
    }
    assert_eq!(
        names,
        (0..5).map(|i| format!("k8s-pvc-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(pages, 4);
    let query = client.call(
        "GET",
        "/api/1.19/volume?names=k8s-pvc-1,other&limit=1",
        None,
    );
    assert_eq!(query.json().as_array().map(Vec::len), Some(1));
    assert!(
        fa_msg(&client.call("GET", "/api/1.19/volume?names=missing", None))
            .contains("does not exist")
    );
    assert_eq!(
        client
            .call("GET", "/api/1.19/volume?names=nothing*", None)
            .json(),
        json!([])
    );
}

#[test]
fn parameters_are_read_from_query_or_body_and_bad_input_is_rejected() {
    let (_dir, _sim, client) = start();
    assert_eq!(
        client
            .call("POST", "/api/1.19/volume/q?size=1M", None)
            .status,
        200
    );
    assert_eq!(
        client
            .call("GET", "/api/1.19/volume/q?space=True", None)
            .json()["size"],
        json!(1 << 20)
    );
    let bad_json = client
        .try_call("GET", "/api/1.19/volume", None, &[])
        .expect("call");
    assert_eq!(bad_json.status, 200);
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/volume/bad", Some(&json!({"size": 1000}))))
            .contains("Invalid size")
    );
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/volume/-bad", Some(&json!({"size": 512}))))
            .contains("invalid")
    );
    assert!(
        fa_msg(&client.call("POST", "/api/1.19/volume/nosize", Some(&json!({})))).contains("size")
    );
    assert_eq!(
        client.call("GET", "/api/1.19/nothing-here", None).status,
        404
    );
}
