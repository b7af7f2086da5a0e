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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::proto::ResourceType;
    use crate::store::writer::Writer;

    /// A finished one-sync `.c1z`, as bytes.
    fn valid_file(dir: &Path) -> Vec<u8> {
        let out = dir.join("valid.c1z");
        let mut w = Writer::begin(&out).unwrap();
        w.put_resource_types(
            &[ResourceType {
                id: "iam_user".into(),
                display_name: "IAM User".into(),
                ..Default::default()
            }],
            "{}",
        )
        .unwrap();
        w.finish("{}").unwrap();
        std::fs::read(&out).unwrap()
    }

    fn open_bytes(dir: &Path, bytes: &[u8]) -> Result<Reader> {
        let path = dir.join("input.c1z");
        std::fs::write(&path, bytes).unwrap();
        Reader::open(&path)
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let valid = valid_file(dir.path());
        assert!(open_bytes(dir.path(), &valid).is_ok());
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut bytes = valid.clone();
            match next() % 3 {
                0 => bytes.truncate((next() as usize) % bytes.len()),
                1 => {
                    for _ in 0..=(next() % 8) {
                        let at = (next() as usize) % bytes.len();
                        bytes[at] ^= (next() as u8) | 1;
                    }
                }
                _ => {
                    let at = 5 + (next() as usize) % (bytes.len() - 5);
                    bytes.splice(at..at, (0..(next() % 64)).map(|_| next() as u8));
                }
            }
            // Any outcome but a panic: most are errors; a flip in padding may still read.
            let _ = open_bytes(dir.path(), &bytes);
        }
    }

    #[test]
    fn wrong_files_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let say = |bytes: &[u8]| format!("{:#}", open_bytes(dir.path(), bytes).err().unwrap());
        assert!(say(b"C1").contains("too short"));
        assert!(say(b"PK\x03\x04 a zip").contains("does not start with C1ZF"));
        assert!(say(b"C1Z3\0pebble").contains("c1z v3"));
        assert!(say(b"C1ZF\0not zstd at all").contains("does not decode"));
        let not_sqlite = zstd::encode_all(&b"hello, not a database"[..], 3).unwrap();
        let e = say(&[b"C1ZF\0".as_slice(), &not_sqlite].concat());
        assert!(e.contains("baton database") || e.contains("SQLite"), "{e}");
        // A valid database without a finished sync.
        let empty_db = dir.path().join("empty.db");
        Connection::open(&empty_db)
            .unwrap()
            .execute_batch("create table x (y int);")
            .unwrap();
        let packed = zstd::encode_all(&std::fs::read(&empty_db).unwrap()[..], 3).unwrap();
        let e = say(&[b"C1ZF\0".as_slice(), &packed].concat());
        assert!(e.contains("no finished full sync"), "{e}");
    }
}
