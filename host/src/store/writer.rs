//! Writes one sync into a `.c1z`, page by page, each page in one transaction together
//! with the sync's progress, so a killed host can continue where it stopped.
//!
//! The working file is a SQLite database beside the output, `.<name>.checkpoint.db`.
//! It holds the previous syncs (copied from the output) and the unfinished one, whose
//! `sync_token` column carries the host's saved state, as baton keeps an unfinished
//! sync's token. Only a finished sync replaces the output; then the checkpoint goes.

use super::c1z;
use super::ids::{db_time, new_sync_id};
use super::proto::{Entitlement, Grant, GrantExpandable, Resource, ResourceType};
use super::schema::DDL;
use anyhow::{anyhow, Context, Result};
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many full syncs a file keeps (the new one included), as baton does.
const KEEP_FULL_SYNCS: usize = 2;

pub struct Writer {
    conn: Connection,
    pub sync_id: String,
    /// The state the unfinished sync saved with its last page, when this continues it.
    pub saved_state: Option<String>,
    /// Why a checkpoint that was there could not be continued.
    pub discarded: Option<String>,
    out: PathBuf,
    path: PathBuf,
    // Declared last: held until the connection is closed. It keeps a second host from
    // writing the same output, and closing it earlier would drop SQLite's own locks.
    lock: File,
}

fn now() -> String {
    db_time(SystemTime::now())
}

/// The working file of a sync into `out`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("sync.c1z");
    dir.join(format!(".{name}.checkpoint.db"))
}

fn remove_journals(path: &Path) {
    for ext in ["-journal", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{ext}", path.display()));
    }
}

fn open_db(path: &Path) -> Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("cannot create {}", path.display()))?;
    // Every page commits with its progress; a killed process loses nothing committed
    // (the OS holds the writes). A machine crash may damage the file: it is checked
    // before it is continued, and discarded if it fails the check.
    conn.execute_batch("pragma journal_mode = delete; pragma synchronous = off;")?;
    Ok(conn)
}

/// The unfinished sync in an existing checkpoint, if it is sound.
fn unfinished(conn: &Connection) -> Result<(String, String)> {
    let check: String = conn.query_row("pragma quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(anyhow!("it is damaged ({check})"));
    }
    conn.query_row(
        "select sync_id, sync_token from v1_sync_runs where ended_at is null and sync_token != ''
         order by id desc limit 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or_else(|| anyhow!("it holds no unfinished sync"))
}

impl Writer {
    /// Starts a sync into `out`: continues the unfinished one in the checkpoint when
    /// there is one ([`Writer::saved_state`] says so), or begins a new full sync. An
    /// existing `.c1z` at `out` is carried over (its earlier syncs are kept, as baton
    /// does); it is only replaced when [`Writer::finish`] succeeds.
    pub fn begin(out: &Path) -> Result<Writer> {
        let path = checkpoint_path(out);
        let existed = path.metadata().is_ok_and(|m| m.len() > 0);
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        lock.try_lock().map_err(|_| {
            anyhow!(
                "another sync is writing {} (it holds {}); wait for it to finish",
                out.display(),
                path.display()
            )
        })?;
        let mut discarded = None;
        if existed {
            let found = open_db(&path).and_then(|conn| Ok((unfinished(&conn)?, conn)));
            match found {
                Ok(((sync_id, state), conn)) => {
                    return Ok(Writer {
                        conn,
                        sync_id,
                        saved_state: Some(state),
                        discarded: None,
                        out: out.to_path_buf(),
                        path,
                        lock,
                    })
                }
                Err(e) => discarded = Some(format!("{e:#}")),
            }
        }
        let mut w = Writer::fresh(out, path, lock)?;
        w.discarded = discarded;
        Ok(w)
    }

    fn fresh(out: &Path, path: PathBuf, lock: File) -> Result<Writer> {
        // Emptied in place: the file keeps its inode, and so the lock.
        lock.set_len(0)
            .with_context(|| format!("cannot empty {}", path.display()))?;
        remove_journals(&path);
        if out.exists() {
            c1z::unpack(out, &path).with_context(|| {
                format!(
                    "cannot add a sync to the existing {}; move it away or choose another file with -f",
                    out.display()
                )
            })?;
        }
        let conn = open_db(&path)?;
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
            saved_state: None,
            discarded: None,
            out: out.to_path_buf(),
            path,
            lock,
        })
    }

    /// Abandons the unfinished sync (its saved state does not fit this run) and begins
    /// a new one.
    pub fn start_over(self, why: String) -> Result<Writer> {
        let (out, path, lock) = self.close()?;
        let mut w = Writer::fresh(&out, path, lock)?;
        w.discarded = Some(why);
        Ok(w)
    }

    /// Closes the database, keeping the lock: (output, checkpoint, lock).
    fn close(self) -> Result<(PathBuf, PathBuf, File)> {
        let Writer {
            conn,
            out,
            path,
            lock,
            ..
        } = self;
        conn.close()
            .map_err(|(_, e)| e)
            .with_context(|| format!("cannot close {}", path.display()))?;
        Ok((out, path, lock))
    }

    pub fn checkpoint(&self) -> &Path {
        &self.path
    }

    /// Records the sync's progress on its own (between phases).
    pub fn save(&mut self, state: &str) -> Result<()> {
        save_state(&self.conn, &self.sync_id, state)
    }

    /// Runs `write` in one transaction and records the state it returns with it.
    pub fn transaction<T>(
        &mut self,
        write: impl FnOnce(&Transaction, &str) -> Result<(T, String)>,
    ) -> Result<T> {
        let tx = self.conn.transaction()?;
        let (value, state) = write(&tx, &self.sync_id)?;
        save_state(&tx, &self.sync_id, &state)?;
        tx.commit()?;
        Ok(value)
    }

    fn page(
        &mut self,
        state: &str,
        write: impl FnOnce(&Transaction, &str) -> Result<()>,
    ) -> Result<()> {
        self.transaction(|tx, sync_id| Ok((write(tx, sync_id)?, state.to_string())))
    }

    #[cfg(test)]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Up to `limit` resources of this sync stored after row `after`, in the order they
    /// were stored.
    pub fn resources_after(&self, after: i64, limit: usize) -> Result<Vec<(i64, Resource)>> {
        let mut stmt = self.conn.prepare_cached(
            "select id, data from v1_resources where id > ?1 and sync_id = ?2 order by id limit ?3",
        )?;
        let rows = stmt.query_map(params![after, self.sync_id, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, blob) = row?;
            let r = Resource::decode(blob.as_slice())
                .with_context(|| format!("stored resource row {id} is damaged"))?;
            out.push((id, r));
        }
        Ok(out)
    }

    /// The entitlements of this sync offered by one resource, by id.
    pub fn entitlements_of(
        &self,
        resource_type: &str,
        resource: &str,
    ) -> Result<HashMap<String, Entitlement>> {
        let mut stmt = self.conn.prepare_cached(
            "select external_id, data from v1_entitlements
             where resource_type_id = ?1 and resource_id = ?2 and sync_id = ?3",
        )?;
        let rows = stmt.query_map(params![resource_type, resource, self.sync_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, blob) = row?;
            let e = Entitlement::decode(blob.as_slice())
                .with_context(|| format!("stored entitlement {id} is damaged"))?;
            out.insert(id, e);
        }
        Ok(out)
    }

    /// One entitlement of this sync.
    pub fn entitlement(&self, id: &str) -> Result<Option<Entitlement>> {
        let mut stmt = self.conn.prepare_cached(
            "select data from v1_entitlements where external_id = ?1 and sync_id = ?2",
        )?;
        let blob: Option<Vec<u8>> = stmt
            .query_row(params![id, self.sync_id], |r| r.get(0))
            .optional()?;
        blob.map(|b| {
            Entitlement::decode(b.as_slice())
                .with_context(|| format!("stored entitlement {id} is damaged"))
        })
        .transpose()
    }

    pub fn put_resource_types(&mut self, items: &[ResourceType], state: &str) -> Result<()> {
        self.page(state, |tx, sync_id| {
            let mut stmt = tx.prepare_cached(
                "insert into v1_resource_types (external_id, data, sync_id, discovered_at) values (?1, ?2, ?3, ?4)
                 on conflict (external_id, sync_id) do update set data = excluded.data",
            )?;
            let at = now();
            for t in items {
                stmt.execute(params![t.id, t.encode_to_vec(), sync_id, at])?;
            }
            Ok(())
        })
    }

    pub fn put_resources(&mut self, items: &[Resource], state: &str) -> Result<()> {
        self.page(state, |tx, sync_id| {
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
                    sync_id,
                    at
                ])?;
            }
            Ok(())
        })
    }

    pub fn put_entitlements(&mut self, items: &[Entitlement], state: &str) -> Result<()> {
        self.page(state, |tx, sync_id| {
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
                    sync_id,
                    at
                ])?;
            }
            Ok(())
        })
    }

    /// Grants with their expansion edge, kept out of the blob as baton does.
    pub fn put_grants(
        &mut self,
        items: &[(Grant, Option<GrantExpandable>)],
        state: &str,
    ) -> Result<()> {
        self.page(state, |tx, sync_id| put_grants_in(tx, sync_id, items))
    }

    /// Ends the sync, drops syncs beyond the newest two, replaces the output file and
    /// removes the checkpoint.
    pub fn finish(self, stats_json: &str) -> Result<PathBuf> {
        self.conn.execute(
            "update v1_sync_runs set ended_at = ?1, stats = ?2, supports_diff = 1, sync_token = ''
             where sync_id = ?3",
            params![now(), stats_json, self.sync_id],
        )?;
        // Vacuum only gives back what dropping old syncs freed; a first sync has nothing
        // to give back, and vacuuming a large file costs seconds.
        if self.cleanup_old_syncs()? > 0 {
            self.conn.execute_batch("vacuum;")?;
        }
        let (out, path, lock) = self.close()?;
        c1z::pack(&path, &out)?;
        let _ = fs::remove_file(&path);
        remove_journals(&path);
        drop(lock);
        Ok(out)
    }

    /// Drops full syncs beyond the newest [`KEEP_FULL_SYNCS`]; returns how many.
    fn cleanup_old_syncs(&self) -> Result<usize> {
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
        for id in &old {
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
        Ok(old.len())
    }
}

fn save_state(conn: &Connection, sync_id: &str, state: &str) -> Result<()> {
    conn.execute(
        "update v1_sync_runs set sync_token = ?1 where sync_id = ?2",
        params![state, sync_id],
    )?;
    Ok(())
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
