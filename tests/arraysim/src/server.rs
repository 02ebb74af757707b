//! HTTPS transport: accepts TCP, completes TLS, reads each HTTP/1.1 request in full, routes
//! `/_sim/*` to the admin API and everything else through fault injection to the array. A
//! "drop" fault ends the connection without a reply (hyper closes it when the service fails).

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::api::{ApiReply, ApiRequest, parse_query, percent_decode};
use crate::faults::Injected;
use crate::sim::Sim;

/// Largest request body accepted.
const MAX_BODY: usize = 16 << 20;

/// Error that makes hyper drop the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub struct DroppedConnection;

/// Serves until `shutdown` fires, then aborts every open connection.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    sim: Arc<Sim>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    connections.spawn(serve_connection(acceptor.clone(), tcp, Arc::clone(&sim)));
                }
                Err(error) => {
                    log::warn!("{}: accept failed: {error}", sim.spec.name);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(acceptor: TlsAcceptor, tcp: TcpStream, sim: Arc<Sim>) {
    let _ = tcp.set_nodelay(true);
    let stream = match acceptor.accept(tcp).await {
        Ok(stream) => {
            sim.controls.stats.count_connection();
            stream
        }
        Err(error) => {
            log::debug!("{}: TLS handshake failed: {error}", sim.spec.name);
            return;
        }
    };
    let service = service_fn(move |request| respond(Arc::clone(&sim), request));
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        log::debug!("connection ended: {error}");
    }
}

async fn respond(
    sim: Arc<Sim>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(to_response(ApiReply::empty(413))),
    };
    let request = ApiRequest {
        method: parts.method.as_str().to_string(),
        path: percent_decode(parts.uri.path(), false),
        query: parse_query(parts.uri.query()),
        headers: parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect(),
        body: body.to_vec(),
    };
    if request.path == "/_sim" || request.path.starts_with("/_sim/") {
        let reply = blocking(move || admin::handle(&sim, &request)).await;
        return Ok(to_response(reply));
    }
    let (latency, injected) = sim.before_call(&request);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let reply = match injected {
        Injected::Drop => return Err(DroppedConnection),
        Injected::Status(status) => sim.fault_reply(status, &request),
        Injected::None => blocking(move || sim.handle_api(&request)).await,
    };
    Ok(to_response(reply))
}

/// Runs state work (which may copy backing files) off the async workers.
async fn blocking(work: impl FnOnce() -> ApiReply + Send + 'static) -> ApiReply {
    match tokio::task::spawn_blocking(work).await {
        Ok(reply) => reply,
        Err(error) => {
            log::error!("request handler panicked: {error}");
            ApiReply::empty(500)
        }
    }
}

fn to_response(reply: ApiReply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::try_from(name),
            hyper::header::HeaderValue::try_from(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
