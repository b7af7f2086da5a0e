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

/// Entitlements and principals as small numbers: expansion at organisation scale holds
/// hundreds of thousands of holdings, and strings in each would not fit the memory budget.
#[derive(Default)]
struct Interner<K> {
    ids: HashMap<K, u32>,
    names: Vec<K>,
}

impl<K: Clone + Eq + std::hash::Hash> Interner<K> {
    fn id(&mut self, key: &K) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(key.clone());
        self.ids.insert(key.clone(), id);
        id
    }
}

struct Edge {
    source: u32,
    destination: u32,
    shallow: bool,
    types: Vec<String>,
}

/// How a principal holds an entitlement: `sources` as baton stores it (empty = direct only).
#[derive(Clone, Default)]
struct Holding {
    direct: bool,
    /// The connector emitted a grant for it (updated in place, not created).
    stored: bool,
    sources: Vec<(u32, bool)>,
}

impl Holding {
    fn source(&self, entitlement: u32) -> Option<bool> {
        self.sources
            .iter()
            .find(|(e, _)| *e == entitlement)
            .map(|(_, d)| *d)
    }

    fn set_source(&mut self, entitlement: u32, direct: bool) {
        match self.sources.iter_mut().find(|(e, _)| *e == entitlement) {
            Some(s) => s.1 = direct,
            None => self.sources.push((entitlement, direct)),
        }
    }

    fn holds_directly(&self, entitlement: u32) -> bool {
        self.direct || self.source(entitlement).unwrap_or(false)
    }
}

pub struct Outcome {
    pub edges: usize,
    pub created: usize,
    pub updated: usize,
    pub warnings: Vec<String>,
}

/// Grants created by expansion are written this many at a time.
const WRITE_BATCH: usize = 1_000;

/// Expands the sync's grant edges. Runs in the caller's transaction, so that a killed
/// host never leaves a half-expanded sync.
///
/// Entitlements that are the source of some edge keep their holders in memory until the
/// fixpoint is reached; one that is only ever a destination (an account's permission set,
/// typically, with most of the holders) is then filled, written and dropped on its own.
pub fn expand(conn: &Connection, sync_id: &str) -> Result<Outcome> {
    let mut warnings = Vec::new();
    let mut nodes: Interner<String> = Interner::default();
    let edges = load_edges(conn, sync_id, &mut nodes, &mut warnings)?;
    if edges.is_empty() {
        return Ok(Outcome {
            edges: 0,
            created: 0,
            updated: 0,
            warnings,
        });
    }
    let mut principals: Interner<(String, String)> = Interner::default();
    let sources: BTreeSet<u32> = edges.iter().map(|e| e.source).collect();
    let mut held: HashMap<u32, HashMap<u32, Holding>> = HashMap::new();
    for &node in &sources {
        let map = stored_holders(conn, sync_id, node, &mut nodes, &mut principals)?;
        held.insert(node, map);
    }
    let (inner, outer): (Vec<&Edge>, Vec<&Edge>) =
        edges.iter().partition(|e| sources.contains(&e.destination));

    let mut changed: BTreeSet<(u32, u32)> = BTreeSet::new();
    loop {
        let mut any = false;
        for edge in &inner {
            let from = passed_on(&held[&edge.source], edge);
            let dest = held.get_mut(&edge.destination).expect("sources are loaded");
            for principal in apply(edge, &from, dest, &principals.names) {
                changed.insert((edge.destination, principal));
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    let mut out = Output::new(conn, sync_id);
    for &(destination, principal) in &changed {
        let h = &held[&destination][&principal];
        out.put(&nodes, &principals, (destination, principal), h)?;
    }

    let mut by_destination: BTreeMap<u32, Vec<&Edge>> = BTreeMap::new();
    for edge in outer {
        by_destination
            .entry(edge.destination)
            .or_default()
            .push(edge);
    }
    for (destination, edges) in by_destination {
        let mut dest = stored_holders(conn, sync_id, destination, &mut nodes, &mut principals)?;
        let mut changed: BTreeSet<u32> = BTreeSet::new();
        for edge in edges {
            let from = passed_on(&held[&edge.source], edge);
            changed.extend(apply(edge, &from, &mut dest, &principals.names));
        }
        for principal in changed {
            out.put(
                &nodes,
                &principals,
                (destination, principal),
                &dest[&principal],
            )?;
        }
    }
    out.flush()?;
    warnings.append(&mut out.warnings);
    Ok(Outcome {
        edges: edges.len(),
        created: out.created,
        updated: out.updated,
        warnings,
    })
}

/// The holders of one entitlement as the connector stored them.
fn stored_holders(
    conn: &Connection,
    sync_id: &str,
    node: u32,
    nodes: &mut Interner<String>,
    principals: &mut Interner<(String, String)>,
) -> Result<HashMap<u32, Holding>> {
    let mut stmt = conn.prepare_cached(
        "select principal_resource_type_id, principal_resource_id, data from v1_grants
         where sync_id = ?1 and entitlement_id = ?2",
    )?;
    let name = nodes.names[node as usize].clone();
    let rows = stmt.query_map(params![sync_id, name], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut map = HashMap::new();
    for row in rows {
        let (ptype, pid, data) = row?;
        let sources: Vec<(u32, bool)> = Grant::decode(data.as_slice())?
            .sources
            .map(|s| {
                s.sources
                    .into_iter()
                    .map(|(k, v)| (nodes.id(&k), v.is_direct))
                    .collect()
            })
            .unwrap_or_default();
        map.insert(
            principals.id(&(ptype, pid)),
            Holding {
                direct: sources.is_empty(),
                stored: true,
                sources,
            },
        );
    }
    Ok(map)
}

/// The principals an edge passes on from its source, and whether each holds it directly.
fn passed_on(source: &HashMap<u32, Holding>, edge: &Edge) -> Vec<(u32, bool)> {
    source
        .iter()
        .map(|(p, h)| (*p, h.holds_directly(edge.source)))
        .collect()
}

/// Applies one edge to its destination's holders; returns the principals it changed.
fn apply(
    edge: &Edge,
    from: &[(u32, bool)],
    dest: &mut HashMap<u32, Holding>,
    principals: &[(String, String)],
) -> Vec<u32> {
    let mut changed = Vec::new();
    for &(principal, source_direct) in from {
        if edge.shallow && !source_direct {
            continue;
        }
        if !edge.types.is_empty() && !edge.types.contains(&principals[principal as usize].0) {
            continue;
        }
        let h = dest.entry(principal).or_default();
        let before = h.source(edge.source);
        if before == Some(true) || before == Some(source_direct) {
            continue;
        }
        if h.direct && h.sources.is_empty() {
            // A direct grant that gains an inherited source records itself as one.
            h.sources.push((edge.destination, true));
        }
        h.set_source(edge.source, source_direct || before.unwrap_or(false));
        changed.push(principal);
    }
    changed
}

fn load_edges(
    conn: &Connection,
    sync_id: &str,
    nodes: &mut Interner<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Edge>> {
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
                source: nodes.id(&source),
                destination: nodes.id(&destination),
                shallow: x.shallow,
                types: x.resource_type_ids.clone(),
            });
        }
    }
    Ok(edges)
}

/// Writes what expansion changed: stored grants get their sources in place (their
/// expansion edge untouched); new grants are created a batch at a time.
struct Output<'a> {
    conn: &'a Connection,
    sync_id: &'a str,
    batch: Vec<(Grant, Option<GrantExpandable>)>,
    entitlements: HashMap<u32, Option<Entitlement>>,
    created: usize,
    updated: usize,
    warnings: Vec<String>,
}

impl<'a> Output<'a> {
    fn new(conn: &'a Connection, sync_id: &'a str) -> Output<'a> {
        Output {
            conn,
            sync_id,
            batch: Vec::with_capacity(WRITE_BATCH),
            entitlements: HashMap::new(),
            created: 0,
            updated: 0,
            warnings: Vec::new(),
        }
    }

    /// The holding `h` of `principal` on `destination`, as changed by expansion.
    fn put(
        &mut self,
        nodes: &Interner<String>,
        principals: &Interner<(String, String)>,
        (destination, principal): (u32, u32),
        h: &Holding,
    ) -> Result<()> {
        let (conn, sync_id) = (self.conn, self.sync_id);
        let sources = GrantSources {
            sources: h
                .sources
                .iter()
                .map(|&(e, d)| {
                    (
                        nodes.names[e as usize].clone(),
                        GrantSource { is_direct: d },
                    )
                })
                .collect(),
        };
        let dest_name = &nodes.names[destination as usize];
        let (ptype, pid) = &principals.names[principal as usize];
        if h.stored {
            let mut stored = conn.prepare_cached(
                "select id, data from v1_grants where entitlement_id = ?1 and principal_resource_type_id = ?2
                   and principal_resource_id = ?3 and sync_id = ?4",
            )?;
            let rows: Vec<(i64, Vec<u8>)> = stored
                .query_map(params![dest_name, ptype, pid, sync_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut update = conn.prepare_cached("update v1_grants set data = ?1 where id = ?2")?;
            for (row, data) in rows {
                let mut g = Grant::decode(data.as_slice())?;
                g.sources = Some(sources.clone());
                update.execute(params![g.encode_to_vec(), row])?;
            }
            self.updated += 1;
            return Ok(());
        }
        let ent = self
            .entitlements
            .entry(destination)
            .or_insert_with(|| load_entitlement(conn, sync_id, dest_name).ok().flatten());
        let Some(ent) = ent.clone() else {
            self.warnings.push(format!(
                "expansion target {dest_name} is not a synced entitlement; skipped"
            ));
            return Ok(());
        };
        self.batch.push((
            Grant {
                entitlement: Some(ent),
                principal: Some(Resource {
                    id: Some(ResourceId {
                        resource_type: ptype.clone(),
                        resource: pid.clone(),
                        baton_resource: false,
                    }),
                    ..Default::default()
                }),
                id: format!("{dest_name}:{ptype}:{pid}"),
                annotations: vec![proto::any("GrantImmutable", &Empty {})],
                sources: Some(sources),
            },
            None,
        ));
        self.created += 1;
        if self.batch.len() >= WRITE_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        put_grants_in(self.conn, self.sync_id, &self.batch)?;
        self.batch.clear();
        Ok(())
    }
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
    use std::collections::BTreeMap;

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
