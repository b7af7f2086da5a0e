//! Reads the latest finished full sync of a `.c1z`.

use super::c1z::{self, TempDb};
use super::schema::DDL;
use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;

pub struct Reader {
    pub conn: Connection,
    pub sync_id: String,
    pub started_at: String,
    pub ended_at: String,
    _db: TempDb,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader> {
        if !path.exists() {
            bail!(
                "{} does not exist; run `host run` first or pass the file with -f",
                path.display()
            );
        }
        let db = TempDb::beside(&std::env::temp_dir().join("read.c1z"), "read");
        c1z::unpack(path, &db.path)?;
        let conn = Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("{} does not hold a SQLite database", path.display()))?;
        // As baton's readers do: create what an older file lacks, in the private copy.
        conn.execute_batch(DDL)
            .with_context(|| format!("{} does not hold a baton database", path.display()))?;
        let row = conn
            .query_row(
                "select sync_id, started_at, ended_at from v1_sync_runs
                 where sync_type = 'full' and ended_at is not null
                 order by ended_at desc, sync_id desc limit 1",
                params![],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .with_context(|| format!("{} holds no finished full sync", path.display()))?;
        Ok(Reader {
            conn,
            sync_id: row.0,
            started_at: row.1,
            ended_at: row.2,
            _db: db,
        })
    }

    /// The `data` blobs of a table for this sync, optionally filtered by a column.
    pub fn blobs(&self, table: &str, filter: Option<(&str, &str)>) -> Result<Vec<Vec<u8>>> {
        let (sql, args): (String, Vec<String>) = match filter {
            Some((col, val)) => (
                format!("select data from {table} where sync_id = ?1 and {col} = ?2 order by id"),
                vec![self.sync_id.clone(), val.to_string()],
            ),
            None => (
                format!("select data from {table} where sync_id = ?1 order by id"),
                vec![self.sync_id.clone()],
            ),
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
