//! One API call of either array, described relative to `/api/<version>/`, before the session
//! (cookie or token) and the version are applied.

use serde_json::Value;

use crate::client::classify::Intent;
use crate::client::transport::Method;

/// One API call, relative to `/api/<version>/`.
#[derive(Clone)]
pub(crate) struct Call {
    pub method: Method,
    /// Percent-encoded.
    pub resource: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub idempotent: bool,
    /// What the call is about, for errors whose reply names nothing.
    pub object: String,
    pub intent: Intent,
}

impl Call {
    pub fn new(method: Method, resource: String, object: &str) -> Self {
        Self {
            method,
            resource,
            query: Vec::new(),
            body: None,
            idempotent: method == Method::Get,
            object: object.to_owned(),
            intent: Intent::Other,
        }
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Repeating the call after a lost reply converges to the same state.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    pub fn destroying(mut self) -> Self {
        self.intent = Intent::Destroy;
        self
    }

    /// `GET volume/x`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", method_name(self.method), self.resource)
    }
}

pub(crate) fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}
