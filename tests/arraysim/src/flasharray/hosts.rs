//! FlashArray hosts (IQN / WWN / NQN initiators) and private host-volume connections with
//! lowest-free LUN allocation.

use serde_json::{Value, json};

use super::model::{Connection, FaState, Host, MAX_LUN, normalize_wwn};
use super::{FaError, FaResult, paginate, select_names};
use crate::api::Params;

fn missing_host(name: &str) -> FaError {
    FaError::bad("Host does not exist.", name)
}

pub fn list(state: &FaState, params: &Params) -> FaResult {
    let names = params.list("names")?;
    let chosen = select_names(
        state.hosts.keys().map(String::as_str),
        names.as_deref(),
        missing_host,
    )?;
    let rows: Vec<Value> = if params.flag("all")? {
        chosen
            .iter()
            .flat_map(|h| {
                state
                    .connections_of_host(h)
                    .map(Connection::render_for_host)
            })
            .collect()
    } else {
        chosen
            .iter()
            .filter_map(|h| state.hosts.get(h))
            .map(Host::render)
            .collect()
    };
    paginate(rows, params)
}

pub fn get(state: &FaState, name: &str) -> FaResult {
    Ok(state
        .hosts
        .get(name)
        .ok_or_else(|| missing_host(name))?
        .render()
        .into())
}

pub fn create(state: &mut FaState, name: &str, params: &Params) -> FaResult {
    validate_host_name(name)?;
    if state.hosts.contains_key(name) {
        return Err(FaError::bad("Host already exists.", name));
    }
    let mut host = Host {
        name: name.to_string(),
        ..Host::default()
    };
    host.iqn = initiators(params, "iqnlist", Kind::Iqn)?.unwrap_or_default();
    host.wwn = initiators(params, "wwnlist", Kind::Wwn)?.unwrap_or_default();
    host.nqn = initiators(params, "nqnlist", Kind::Nqn)?.unwrap_or_default();
    host.personality = params.string("personality")?;
    check_not_in_use(state, &host)?;
    let body = host.render();
    state.hosts.insert(name.to_string(), host);
    Ok(body.into())
}

/// `PUT host/<h>`: full lists (`iqnlist`), additions (`addiqnlist`), removals (`remiqnlist`),
/// the same for WWNs and NQNs, `personality`, CHAP fields (accepted, not stored) and `name` (rename).
pub fn modify(state: &mut FaState, name: &str, params: &Params) -> FaResult {
    let mut host = state
        .hosts
        .get(name)
        .ok_or_else(|| missing_host(name))?
        .clone();
    for (kind, field) in [(Kind::Iqn, "iqn"), (Kind::Wwn, "wwn"), (Kind::Nqn, "nqn")] {
        let list = match kind {
            Kind::Iqn => &mut host.iqn,
            Kind::Wwn => &mut host.wwn,
            Kind::Nqn => &mut host.nqn,
        };
        if let Some(full) = initiators(params, &format!("{field}list"), kind)? {
            *list = full;
        }
        for add in initiators(params, &format!("add{field}list"), kind)?.unwrap_or_default() {
            if !list.contains(&add) {
                list.push(add);
            }
        }
        for remove in initiators(params, &format!("rem{field}list"), kind)?.unwrap_or_default() {
            if !list.contains(&remove) {
                return Err(FaError::bad(
                    format!(
                        "The specified {} is not assigned to this host.",
                        kind.label()
                    ),
                    remove,
                ));
            }
            list.retain(|i| *i != remove);
        }
    }
    if params.has("personality") {
        host.personality = params.string("personality")?.filter(|p| !p.is_empty());
    }
    check_not_in_use(state, &host)?;
    if let Some(new_name) = params.string("name")?.filter(|n| n != name) {
        validate_host_name(&new_name)?;
        if state.hosts.contains_key(&new_name) {
            return Err(FaError::bad("Host already exists.", new_name));
        }
        host.name = new_name.clone();
        state.hosts.remove(name);
        for connection in state.connections.iter_mut().filter(|c| c.host == name) {
            connection.host = new_name.clone();
        }
    }
    let body = host.render();
    state.hosts.insert(host.name.clone(), host);
    Ok(body.into())
}

pub fn delete(state: &mut FaState, name: &str) -> FaResult {
    if !state.hosts.contains_key(name) {
        return Err(missing_host(name));
    }
    if state.connections_of_host(name).next().is_some() {
        return Err(FaError::bad(
            "Host cannot be deleted due to existing connections.",
            name,
        ));
    }
    state.hosts.remove(name);
    Ok(json!({"name": name}).into())
}

pub fn list_connections(state: &FaState, name: &str, params: &Params) -> FaResult {
    if !state.hosts.contains_key(name) {
        return Err(missing_host(name));
    }
    let rows = state
        .connections_of_host(name)
        .map(Connection::render_for_host)
        .collect();
    paginate(rows, params)
}

pub fn connect(state: &mut FaState, host: &str, volume: &str, params: &Params) -> FaResult {
    if !state.hosts.contains_key(host) {
        return Err(missing_host(host));
    }
    match state.volumes.get(volume) {
        None => return Err(FaError::bad("Volume does not exist.", volume)),
        Some(v) if v.destroyed_at.is_some() => {
            return Err(FaError::bad("Volume has been destroyed.", volume));
        }
        Some(v) if v.is_snapshot() => {
            return Err(FaError::bad(
                "Snapshots cannot be connected to hosts.",
                volume,
            ));
        }
        Some(_) => {}
    }
    if state
        .connections
        .iter()
        .any(|c| c.host == host && c.volume == volume)
    {
        return Err(FaError::bad("Connection already exists.", volume));
    }
    let lun = match params.unsigned("lun")? {
        Some(lun) => {
            let lun = u32::try_from(lun)
                .ok()
                .filter(|l| (1..=MAX_LUN).contains(l));
            let lun = lun.ok_or_else(|| {
                FaError::bad(format!("LUN must be between 1 and {MAX_LUN}."), volume)
            })?;
            if state.connections_of_host(host).any(|c| c.lun == lun) {
                return Err(FaError::bad(
                    "LUN is already in use by another connection of this host.",
                    volume,
                ));
            }
            lun
        }
        None => state
            .lowest_free_lun(host)
            .ok_or_else(|| FaError::bad("Host has no free LUN left.", host))?,
    };
    state.connections.push(Connection {
        host: host.to_string(),
        volume: volume.to_string(),
        lun,
    });
    Ok(json!({"name": host, "vol": volume, "lun": lun}).into())
}

pub fn disconnect(state: &mut FaState, host: &str, volume: &str) -> FaResult {
    if !state.hosts.contains_key(host) {
        return Err(missing_host(host));
    }
    if !state.volumes.contains_key(volume) {
        return Err(FaError::bad("Volume does not exist.", volume));
    }
    let before = state.connections.len();
    state
        .connections
        .retain(|c| !(c.host == host && c.volume == volume));
    if state.connections.len() == before {
        return Err(FaError::bad("Volume is not connected to host.", volume));
    }
    Ok(json!({"name": host, "vol": volume}).into())
}

#[derive(Clone, Copy)]
enum Kind {
    Iqn,
    Wwn,
    Nqn,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Iqn => "IQN",
            Kind::Wwn => "WWN",
            Kind::Nqn => "NQN",
        }
    }
}

/// Reads and validates one initiator list; WWNs are normalised to upper-case hex without colons.
fn initiators(params: &Params, key: &str, kind: Kind) -> Result<Option<Vec<String>>, FaError> {
    let Some(list) = params.list(key)? else {
        return Ok(None);
    };
    list.into_iter()
        .map(|item| {
            let valid = match kind {
                Kind::Iqn => (item.starts_with("iqn.")
                    || item.starts_with("eui.")
                    || item.starts_with("naa."))
                .then(|| item.clone()),
                Kind::Wwn => normalize_wwn(&item),
                Kind::Nqn => item.starts_with("nqn.").then(|| item.clone()),
            };
            valid.ok_or_else(|| {
                FaError::bad(format!("The specified {} is invalid.", kind.label()), item)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// An initiator may belong to one host only.
fn check_not_in_use(state: &FaState, host: &Host) -> Result<(), FaError> {
    for other in state.hosts.values().filter(|h| h.name != host.name) {
        for (mine, theirs, kind) in [
            (&host.iqn, &other.iqn, Kind::Iqn),
            (&host.wwn, &other.wwn, Kind::Wwn),
            (&host.nqn, &other.nqn, Kind::Nqn),
        ] {
            if let Some(clash) = mine.iter().find(|i| theirs.contains(i)) {
                return Err(FaError::bad(
                    format!("The specified {} is already in use.", kind.label()),
                    clash.clone(),
                ));
            }
        }
    }
    Ok(())
}

fn validate_host_name(name: &str) -> Result<(), FaError> {
    if crate::names::is_valid_object_name(name) {
        Ok(())
    } else {
        Err(FaError::bad(
            "Host name is invalid: use 1-63 letters, digits, '-' or '_'.",
            name,
        ))
    }
}
