//! Grant expansion: "every principal holding S also holds D" edges, applied to a
//! fixpoint. Sets only grow, so the iteration ends, and cycles (roles that trust each
//! other) are expanded completely instead of being left out.

use crate::store::proto::{
    self, Empty, Entitlement, Grant, GrantExpandable, GrantSource, GrantSources, Resource,
    ResourceId,
};
use crate::store::writer::put_grants_in;
use anyhow::Result;
use prost::Message;
use rusqlite::{params, Connection};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Principal = (String, String);

struct Edge {
    source: String,
    destination: String,
    shallow: bool,
    types: Vec<String>,
}

/// How a principal holds an entitlement: `sources` as baton stores it (empty = direct only).
#[derive(Clone, Default)]
struct Holding {
    direct: bool,
    sources: BTreeMap<String, bool>,
    /// The stored grant, if the connector emitted one.
    row: Option<(String, Grant)>,
}

impl Holding {
    fn holds_directly(&self, entitlement: &str) -> bool {
        self.direct || self.sources.get(entitlement).copied().unwrap_or(false)
    }
}

pub struct Outcome {
    pub edges: usize,
    pub created: usize,
    pub updated: usize,
    pub warnings: Vec<String>,
}

/// Expands the sync's grant edges. Runs in the caller's transaction, so that a killed
/// host never leaves a half-expanded sync.
pub fn expand(conn: &Connection, sync_id: &str) -> Result<Outcome> {
    let mut warnings = Vec::new();
    let edges = load_edges(conn, sync_id, &mut warnings)?;
    if edges.is_empty() {
        return Ok(Outcome {
            edges: 0,
            created: 0,
            updated: 0,
            warnings,
        });
    }
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|e| [e.source.as_str(), e.destination.as_str()])
        .collect();
    let mut holders: HashMap<String, BTreeMap<Principal, Holding>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "select external_id, principal_resource_type_id, principal_resource_id, data from v1_grants
             where sync_id = ?1 and entitlement_id = ?2",
        )?;
        for node in &nodes {
            let map = holders.entry(node.to_string()).or_default();
            let rows = stmt.query_map(params![sync_id, node], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })?;
            for row in rows {
                let (id, ptype, pid, data) = row?;
                let grant = Grant::decode(data.as_slice())?;
                let sources: BTreeMap<String, bool> = grant
                    .sources
                    .as_ref()
                    .map(|s| {
                        s.sources
                            .iter()
                            .map(|(k, v)| (k.clone(), v.is_direct))
                            .collect()
                    })
                    .unwrap_or_default();
                map.insert(
                    (ptype, pid),
                    Holding {
                        direct: sources.is_empty(),
                        sources,
                        row: Some((id, grant)),
                    },
                );
            }
        }
    }
    let mut changed_keys: BTreeSet<(String, Principal)> = BTreeSet::new();
    loop {
        let mut changed = false;
        for edge in &edges {
            let from: Vec<(Principal, bool)> = holders
                .get(&edge.source)
                .map(|m| {
                    m.iter()
                        .map(|(p, h)| (p.clone(), h.holds_directly(&edge.source)))
                        .collect()
                })
                .unwrap_or_default();
            let dest = holders.entry(edge.destination.clone()).or_default();
            for (principal, source_direct) in from {
                if edge.shallow && !source_direct {
                    continue;
                }
                if !edge.types.is_empty() && !edge.types.contains(&principal.0) {
                    continue;
                }
                let h = dest.entry(principal.clone()).or_default();
                let before = h.sources.get(&edge.source).copied();
                if before == Some(true) || before == Some(source_direct) {
                    continue;
                }
                if h.direct && h.sources.is_empty() {
                    // A direct grant that gains an inherited source records itself as one.
                    h.sources.insert(edge.destination.clone(), true);
                }
                h.sources.insert(
                    edge.source.clone(),
                    source_direct || before.unwrap_or(false),
                );
                changed_keys.insert((edge.destination.clone(), principal));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let (created, updated) = write(conn, sync_id, &holders, &changed_keys, &mut warnings)?;
    Ok(Outcome {
        edges: edges.len(),
        created,
        updated,
        warnings,
    })
}

fn load_edges(conn: &Connection, sync_id: &str, warnings: &mut Vec<String>) -> Result<Vec<Edge>> {
    let mut stmt = conn.prepare(
        "select external_id, entitlement_id, principal_resource_type_id, principal_resource_id, expansion
         from v1_grants where sync_id = ?1 and expansion is not null order by id",
    )?;
    let rows = stmt.query_map(params![sync_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Vec<u8>>(4)?,
        ))
    })?;
    let mut edges = Vec::new();
    for row in rows {
        let (grant_id, destination, ptype, pid, blob) = row?;
        let x = GrantExpandable::decode(blob.as_slice())?;
        let prefix = format!("{ptype}:{pid}:");
        for source in x.entitlement_ids {
            // baton only follows edges whose source entitlement belongs to the principal.
            if !source.starts_with(&prefix) {
                warnings.push(format!(
                    "grant {grant_id}: expansion source {source} is not an entitlement of its principal; ignored"
                ));
                continue;
            }
            edges.push(Edge {
                source,
                destination: destination.clone(),
                shallow: x.shallow,
                types: x.resource_type_ids.clone(),
            });
        }
    }
    Ok(edges)
}

fn write(
    conn: &Connection,
    sync_id: &str,
    holders: &HashMap<String, BTreeMap<Principal, Holding>>,
    changed: &BTreeSet<(String, Principal)>,
    warnings: &mut Vec<String>,
) -> Result<(usize, usize)> {
    let mut entitlements: HashMap<String, Option<Entitlement>> = HashMap::new();
    let mut out: Vec<(Grant, Option<GrantExpandable>)> = Vec::new();
    let mut expansions: HashMap<String, Vec<u8>> = HashMap::new();
    let (mut created, mut updated) = (0, 0);
    for (destination, principal) in changed {
        let h = &holders[destination][principal];
        let sources = GrantSources {
            sources: h
                .sources
                .iter()
                .map(|(k, &d)| (k.clone(), GrantSource { is_direct: d }))
                .collect(),
        };
        match &h.row {
            Some((id, grant)) => {
                let mut g = grant.clone();
                g.sources = Some(sources);
                // Keep the row's expansion edge as the connector wrote it.
                let blob: Option<Vec<u8>> = conn.query_row(
                    "select expansion from v1_grants where sync_id = ?1 and external_id = ?2",
                    params![sync_id, id],
                    |r| r.get(0),
                )?;
                if let Some(b) = blob {
                    expansions.insert(id.clone(), b);
                }
                out.push((g, None));
                updated += 1;
            }
            None => {
                let ent = entitlements
                    .entry(destination.clone())
                    .or_insert_with(|| load_entitlement(conn, sync_id, destination).ok().flatten());
                let Some(ent) = ent.clone() else {
                    warnings.push(format!(
                        "expansion target {destination} is not a synced entitlement; skipped"
                    ));
                    continue;
                };
                out.push((
                    Grant {
                        entitlement: Some(ent),
                        principal: Some(Resource {
                            id: Some(ResourceId {
                                resource_type: principal.0.clone(),
                                resource: principal.1.clone(),
                                baton_resource: false,
                            }),
                            ..Default::default()
                        }),
                        id: format!("{destination}:{}:{}", principal.0, principal.1),
                        annotations: vec![proto::any("GrantImmutable", &Empty {})],
                        sources: Some(sources),
                    },
                    None,
                ));
                created += 1;
            }
        }
    }
    for chunk in out.chunks(10_000) {
        put_grants_in(conn, sync_id, chunk)?;
    }
    // Updated rows keep their expansion columns (the upsert above cleared them).
    for (id, blob) in expansions {
        conn.execute(
            "update v1_grants set expansion = ?1, needs_expansion = 0 where sync_id = ?2 and external_id = ?3",
            params![blob, sync_id, id],
        )?;
    }
    Ok((created, updated))
}

fn load_entitlement(conn: &Connection, sync_id: &str, id: &str) -> Result<Option<Entitlement>> {
    let mut stmt = conn.prepare_cached(
        "select data from v1_entitlements where sync_id = ?1 and external_id = ?2",
    )?;
    let mut rows = stmt.query(params![sync_id, id])?;
    match rows.next()? {
        Some(r) => Ok(Some(Entitlement::decode(
            r.get::<_, Vec<u8>>(0)?.as_slice(),
        )?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::Writer;

    fn rid(t: &str, id: &str) -> ResourceId {
        ResourceId {
            resource_type: t.into(),
            resource: id.into(),
            baton_resource: false,
        }
    }

    fn ent(t: &str, id: &str, slug: &str) -> Entitlement {
        Entitlement {
            resource: Some(Resource {
                id: Some(rid(t, id)),
                ..Default::default()
            }),
            id: format!("{t}:{id}:{slug}"),
            slug: slug.into(),
            ..Default::default()
        }
    }

    /// `principal` holds `entitlement`; with `via`, holders of `via` hold it too.
    fn grant(
        e: &Entitlement,
        principal: (&str, &str),
        via: Option<(&str, bool)>,
    ) -> (Grant, Option<GrantExpandable>) {
        (
            Grant {
                entitlement: Some(e.clone()),
                principal: Some(Resource {
                    id: Some(rid(principal.0, principal.1)),
                    ..Default::default()
                }),
                id: format!("{}:{}:{}", e.id, principal.0, principal.1),
                annotations: vec![],
                sources: None,
            },
            via.map(|(s, shallow)| GrantExpandable {
                entitlement_ids: vec![s.into()],
                shallow,
                resource_type_ids: vec![],
            }),
        )
    }

    fn holders(w: &Writer, entitlement: &str) -> BTreeMap<String, BTreeMap<String, bool>> {
        let mut stmt = w
            .conn()
            .prepare("select principal_resource_id, data from v1_grants where sync_id = ?1 and entitlement_id = ?2")
            .unwrap();
        let rows = stmt
            .query_map(params![w.sync_id, entitlement], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .unwrap();
        rows.map(|r| {
            let (p, data) = r.unwrap();
            let g = Grant::decode(data.as_slice()).unwrap();
            let sources = g
                .sources
                .map(|s| {
                    s.sources
                        .into_iter()
                        .map(|(k, v)| (k, v.is_direct))
                        .collect()
                })
                .unwrap_or_default();
            (p, sources)
        })
        .collect()
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::begin(&dir.path().join("t.c1z")).unwrap();
        (dir, w)
    }

    #[test]
    fn roles_that_trust_each_other_expand_completely() {
        let (_d, mut w) = writer();
        let a = ent("role", "a", "assignment");
        let b = ent("role", "b", "assignment");
        w.put_entitlements(&[a.clone(), b.clone()], "{}").unwrap();
        w.put_grants(
            &[
                grant(&a, ("iam_user", "dave"), None),
                grant(&a, ("role", "b"), Some(("role:b:assignment", false))),
                grant(&b, ("role", "a"), Some(("role:a:assignment", false))),
            ],
            "{}",
        )
        .unwrap();
        let out = expand(w.conn(), &w.sync_id).unwrap();
        assert_eq!(out.edges, 2);
        let on_b = holders(&w, "role:b:assignment");
        assert_eq!(on_b.keys().cloned().collect::<Vec<_>>(), ["a", "b", "dave"]);
        assert_eq!(
            on_b["dave"],
            BTreeMap::from([("role:a:assignment".to_string(), true)])
        );
        // The direct grant records itself as a source once it also inherits.
        assert!(on_b["a"]["role:b:assignment"]);
        let on_a = holders(&w, "role:a:assignment");
        assert_eq!(on_a.keys().cloned().collect::<Vec<_>>(), ["a", "b", "dave"]);
        assert_eq!(out.created, 3);
    }

    #[test]
    fn chains_pass_on_holders_and_shallow_edges_only_direct_ones() {
        let (_d, mut w) = writer();
        let g = ent("group", "g", "member");
        let r1 = ent("role", "r1", "assignment");
        let r2 = ent("role", "r2", "assignment");
        let p = ent("policy", "p", "attached");
        w.put_entitlements(&[g.clone(), r1.clone(), r2.clone(), p.clone()], "{}")
            .unwrap();
        w.put_grants(
            &[
                grant(&g, ("iam_user", "u1"), None),
                // r1 is assumable by members of g; r2 by whoever assumes r1.
                grant(&r1, ("group", "g"), Some(("group:g:member", false))),
                grant(&r2, ("role", "r1"), Some(("role:r1:assignment", false))),
                // A shallow edge passes on only direct holders of r2: r1, not u1 or g (expanded).
                grant(&p, ("role", "r2"), Some(("role:r2:assignment", true))),
            ],
            "{}",
        )
        .unwrap();
        expand(w.conn(), &w.sync_id).unwrap();
        assert!(holders(&w, "role:r1:assignment").contains_key("u1"));
        assert_eq!(
            holders(&w, "role:r2:assignment")["u1"],
            BTreeMap::from([("role:r1:assignment".to_string(), false)])
        );
        assert_eq!(
            holders(&w, "policy:p:attached")
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            ["r1", "r2"]
        );
    }

    #[test]
    fn an_edge_from_an_entitlement_not_of_the_principal_is_ignored() {
        let (_d, mut w) = writer();
        let a = ent("role", "a", "assignment");
        w.put_entitlements(std::slice::from_ref(&a), "{}").unwrap();
        w.put_grants(
            &[grant(&a, ("role", "b"), Some(("role:c:assignment", false)))],
            "{}",
        )
        .unwrap();
        let out = expand(w.conn(), &w.sync_id).unwrap();
        assert_eq!(out.edges, 0);
        assert_eq!(out.warnings.len(), 1);
    }
}
