//! The `.c1z` v1 container: `C1ZF\0` followed by one zstd frame holding a SQLite file.
//!
//! Writing happens in a private SQLite file beside the output; only a finished sync is
//! compressed to `<out>.tmp`, fsynced and renamed over `<out>`, so a failed or killed
//! sync never damages the previous file.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 5] = b"C1ZF\0";
/// Readers cap the zstd window at 128 MiB of decoder memory; level 1 stays far below.
const ZSTD_LEVEL: i32 = 1;

/// A SQLite file that is removed when dropped unless it was handed on.
pub struct TempDb {
    pub path: PathBuf,
}

impl TempDb {
    /// A fresh path beside `near` (same filesystem, so nothing crosses devices).
    pub fn beside(near: &Path, tag: &str) -> TempDb {
        let dir = near
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = near
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("sync.c1z");
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd).expect("the OS random source is available");
        let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        TempDb {
            path: dir.join(format!(".{name}.{tag}-{}-{suffix}.db", std::process::id())),
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for ext in ["", "-journal", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{ext}", self.path.display()));
        }
    }
}

/// Decompresses a `.c1z` into `dest` (a SQLite file).
pub fn unpack(c1z: &Path, dest: &Path) -> Result<()> {
    let mut f = File::open(c1z).with_context(|| format!("cannot open {}", c1z.display()))?;
    let mut magic = [0u8; 5];
    f.read_exact(&mut magic)
        .with_context(|| format!("{} is too short to be a .c1z file", c1z.display()))?;
    if &magic != MAGIC {
        if &magic[..4] == b"C1Z3" {
            bail!(
                "{} is a c1z v3 (Pebble) file; only v1 (SQLite) files are supported",
                c1z.display()
            );
        }
        bail!(
            "{} is not a .c1z file (it does not start with C1ZF)",
            c1z.display()
        );
    }
    let mut decoder = zstd::stream::read::Decoder::new(f)
        .with_context(|| format!("{}: cannot start zstd decoding", c1z.display()))?;
    decoder
        .window_log_max(27)
        .with_context(|| format!("{}: cannot limit the zstd window", c1z.display()))?;
    let mut out =
        File::create(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    std::io::copy(&mut decoder, &mut out).with_context(|| {
        format!(
            "{} is damaged: its zstd data does not decode",
            c1z.display()
        )
    })?;
    out.sync_all()?;
    Ok(())
}

/// Compresses the SQLite file `db` into `out` atomically: `<out>.tmp`, fsync, rename.
pub fn pack(db: &Path, out: &Path) -> Result<()> {
    // Streamed: the database may be far larger than the host's memory budget.
    let mut data = File::open(db).with_context(|| format!("cannot read {}", db.display()))?;
    let size = data.metadata()?.len();
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    let result = (|| -> Result<()> {
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(MAGIC)?;
        let mut encoder = zstd::stream::write::Encoder::new(&mut f, ZSTD_LEVEL)?;
        encoder.set_pledged_src_size(Some(size))?;
        encoder.include_contentsize(true)?;
        std::io::copy(&mut data, &mut encoder)
            .with_context(|| format!("cannot compress {}", db.display()))?;
        encoder.finish()?;
        f.sync_all()?;
        fs::rename(&tmp, out)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
        if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| {
        format!(
            "writing {} failed; the previous file is unchanged",
            out.display()
        )
    })
}
