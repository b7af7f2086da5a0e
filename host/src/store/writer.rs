//! Writes one sync into a `.c1z`, page by page, each page in one transaction.

use super::c1z::{self, TempDb};
use super::ids::{db_time, new_sync_id};
use super::proto::{Entitlement, Grant, GrantExpandable, Resource, ResourceType};
use super::schema::DDL;
use anyhow::{Context, Result};
use prost::Message;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many full syncs a file keeps (the new one included), as baton does.
const KEEP_FULL_SYNCS: usize = 2;

pub struct Writer {
    conn: Connection,
    pub sync_id: String,
    out: PathBuf,
    // Declared last: the connection closes before the file is removed.
    db: TempDb,
}

fn now() -> String {
    db_time(SystemTime::now())
}

impl Writer {
    /// Starts a full sync. An existing `.c1z` at `out` is carried over (its earlier syncs
    /// are kept, as baton does); it is only replaced when [`Writer::finish`] succeeds.
    pub fn begin(out: &Path) -> Result<Writer> {
        let db = TempDb::beside(out, "sync");
        if out.exists() {
            c1z::unpack(out, &db.path).with_context(|| {
                format!(
                    "cannot add a sync to the existing {}; move it away or choose another file with -f",
                    out.display()
                )
            })?;
        }
        let conn = Connection::open(&db.path)
            .with_context(|| format!("cannot create {}", db.path.display()))?;
        // A private scratch file: a crash discards it, so waiting for the disk on every
        // page commit buys nothing. The finished file is fsynced when packed.
        conn.execute_batch("pragma journal_mode = truncate; pragma synchronous = off;")?;
        conn.execute_batch(DDL)
            .context("cannot create the c1z schema")?;
        let sync_id = new_sync_id();
        conn.execute(
            "insert into v1_sync_runs (sync_id, started_at, sync_token, sync_type, grants_backfilled)
             values (?1, ?2, '', 'full', 1)",
            params![sync_id, now()],
        )?;
        Ok(Writer {
            conn,
            sync_id,
            out: out.to_path_buf(),
            db,
        })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn put_resource_types(&mut self, items: &[ResourceType]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "insert into v1_resource_types (external_id, data, sync_id, discovered_at) values (?1, ?2, ?3, ?4)
                 on conflict (external_id, sync_id) do update set data = excluded.data",
            )?;
            let at = now();
            for t in items {
                stmt.execute(params![t.id, t.encode_to_vec(), self.sync_id, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn put_resources(&mut self, items: &[Resource]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "insert into v1_resources (resource_type_id, external_id, parent_resource_type_id, parent_resource_id, data, sync_id, discovered_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 on conflict (external_id, sync_id) do update set data = excluded.data",
            )?;
            let at = now();
            for r in items {
                let id = r.id.clone().unwrap_or_default();
                let parent = r.parent_resource_id.as_ref();
                stmt.execute(params![
                    id.resource_type,
                    format!("{}:{}", id.resource_type, id.resource),
                    parent.map(|p| p.resource_type.clone()),
                    parent.map(|p| p.resource.clone()),
                    r.encode_to_vec(),
                    self.sync_id,
                    at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn put_entitlements(&mut self, items: &[Entitlement]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "insert into v1_entitlements (resource_type_id, resource_id, external_id, data, sync_id, discovered_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6)
                 on conflict (external_id, sync_id) do update set data = excluded.data",
            )?;
            let at = now();
            for e in items {
                let rid = e
                    .resource
                    .as_ref()
                    .and_then(|r| r.id.clone())
                    .unwrap_or_default();
                stmt.execute(params![
                    rid.resource_type,
                    rid.resource,
                    e.id,
                    e.encode_to_vec(),
                    self.sync_id,
                    at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Grants with their expansion edge, kept out of the blob as baton does.
    pub fn put_grants(&mut self, items: &[(Grant, Option<GrantExpandable>)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        put_grants_in(&tx, &self.sync_id, items)?;
        tx.commit()?;
        Ok(())
    }

    /// Ends the sync, drops syncs beyond the newest two, and replaces the output file.
    pub fn finish(self, stats_json: &str) -> Result<PathBuf> {
        self.conn.execute(
            "update v1_sync_runs set ended_at = ?1, stats = ?2, supports_diff = 1 where sync_id = ?3",
            params![now(), stats_json, self.sync_id],
        )?;
        self.cleanup_old_syncs()?;
        self.conn.execute_batch("vacuum;")?;
        let Writer { conn, out, db, .. } = self;
        conn.close()
            .map_err(|(_, e)| e)
            .context("cannot close the sync database")?;
        c1z::pack(&db.path, &out)?;
        Ok(out)
    }

    fn cleanup_old_syncs(&self) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "select sync_id from v1_sync_runs where sync_type = 'full' and ended_at is not null
             order by ended_at desc, sync_id desc",
        )?;
        let old: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?
            .into_iter()
            .skip(KEEP_FULL_SYNCS)
            .collect();
        for id in old {
            for table in [
                "v1_resource_types",
                "v1_resources",
                "v1_entitlements",
                "v1_grants",
                "v1_assets",
                "v1_connector_sessions",
                "v1_sync_runs",
            ] {
                self.conn.execute(
                    &format!("delete from {table} where sync_id = ?1"),
                    params![id],
                )?;
            }
        }
        Ok(())
    }
}

pub fn put_grants_in(
    conn: &Connection,
    sync_id: &str,
    items: &[(Grant, Option<GrantExpandable>)],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "insert into v1_grants (resource_type_id, resource_id, entitlement_id, principal_resource_type_id, principal_resource_id,
           external_id, expansion, needs_expansion, data, sync_id, discovered_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         on conflict (external_id, sync_id) do update set data = excluded.data,
           expansion = excluded.expansion, needs_expansion = excluded.needs_expansion",
    )?;
    let at = now();
    for (g, expandable) in items {
        let ent = g.entitlement.clone().unwrap_or_default();
        let rid = ent.resource.and_then(|r| r.id).unwrap_or_default();
        let pid = g
            .principal
            .as_ref()
            .and_then(|p| p.id.clone())
            .unwrap_or_default();
        let expansion = expandable.as_ref().map(|x| x.encode_to_vec());
        stmt.execute(params![
            rid.resource_type,
            rid.resource,
            ent.id,
            pid.resource_type,
            pid.resource,
            g.id,
            expansion,
            expansion.is_some() as i64,
            g.encode_to_vec(),
            sync_id,
            at
        ])?;
    }
    Ok(())
}
