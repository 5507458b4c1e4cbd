//! Opening the state database and deciding whether to trust it: a lost,
//! emptied, foreign or damaged database is refused with the ways back; a
//! database written before checksums existed is sealed on its first
//! writable open.

use super::*;

/// redb's page cache of a writable open for commands that change state.
/// Its default (1 GiB) keeps every page a snapshot reads, so a plan over
/// 100,000 instances held the whole 200 MB file in memory beside the decoded
/// state; reading state is one pass over each page, which a cache does not
/// speed up. Also the bound of the write buffer, which spills to the file
/// (not durably) beyond it: an apply's writes are faster with this much.
pub(super) const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// redb's page cache for opens that mostly read (a read-only open, and the
/// writable open of a plan, which writes at most a few records): the
/// snapshot reads each page once (its cursors hold the branch pages on their
/// path themselves), and the point lookups of `state show` and the like
/// touch a handful of pages, so a cache the size of [`CACHE_BYTES`] only
/// kept 32 MiB of pages read once. Enough for every branch page of a
/// 100,000-instance file.
pub(super) const READ_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl LocalStore {
    /// How long the database file is, if it is there.
    pub(super) fn db_len(&self) -> Result<Option<u64>> {
        match std::fs::metadata(self.db_path()) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { context: format!("inspect {}", self.db_path().display()), source }),
        }
    }

    /// Refuses a lost database when `state.meta` says there was state.
    fn check_not_lost(&self, len: Option<u64>, sidecar: Option<&Sidecar>) -> Result<()> {
        match (len, sidecar) {
            (None | Some(0), Some(known)) => Err(StateError::Corrupt(format!(
                "it is {} but {} records state lineage {} at version {}",
                if len.is_none() { "missing" } else { "empty (0 bytes)" },
                self.sidecar_path().display(),
                known.lineage,
                known.serial
            ))),
            (None | Some(0), None) if self.dir.join(BACKUP_FILE).exists() => Err(StateError::Corrupt(format!(
                "it is {} and so is {}, but a backup of this directory's state exists",
                if len.is_none() { "missing" } else { "empty (0 bytes)" },
                self.sidecar_path().display()
            ))),
            _ => Ok(()),
        }
    }

    /// Opens the database to write, with a page cache (and write buffer) of
    /// `cache_bytes`.
    pub(super) fn open_writable(&self, cache_bytes: usize) -> Result<Open> {
        crate::private::create_dir(&self.dir)?;
        files::remove_dead_temps(&self.dir);
        let sidecar = Sidecar::read(&self.sidecar_path())?;
        let len = self.db_len()?;
        self.check_not_lost(len, sidecar.as_ref())?;
        let mut fresh = len.unwrap_or(0) == 0;
        let path = self.db_path();
        if fresh {
            // A new database is made under a temporary name and renamed into
            // place once initialised: a kill -9 while redb writes its first
            // pages leaves a temporary file (cleaned up later), never a
            // half-written state.redb that every later command refuses.
            let tmp = files::temp_path(&self.dir, DB_FILE);
            let made = redb::Builder::new().create(&tmp).map_err(|e| self.open_error(e)).and_then(|db| init(&db, false, &self.enc).map(drop));
            if let Err(e) = made {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            crate::private::restrict_file(&tmp);
            std::fs::rename(&tmp, &path)
                .and_then(|()| std::fs::File::open(&self.dir)?.sync_all())
                .map_err(|source| StateError::Io { context: format!("create {}", path.display()), source })?;
            fresh = false;
        }
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            // Verifies every page's checksum: a damaged file fails to open
            // instead of panicking later. The state is small; this is cheap.
            .set_check_integrity_on_open(!fresh)
            .create(&path)
            .map_err(|e| self.open_error(e))?;
        crate::private::restrict_file(&path);
        let format = init(&db, sidecar.is_some(), &self.enc)?;
        let (meta, next) = {
            let tx = db.begin_read().map_err(db_err)?;
            let meta = read_meta(&tx, format, &self.enc)?;
            let journal = tx.open_table(JOURNAL).map_err(db_err)?;
            let next = journal.last().map_err(db_err)?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            (meta, next)
        };
        self.check_sidecar(&meta, sidecar.as_ref())?;
        if sidecar.as_ref().map(|s| (s.lineage, s.serial)) != Some((meta.lineage, meta.serial)) {
            let backup_serial = sidecar.and_then(|s| s.backup_serial);
            Sidecar { lineage: meta.lineage, serial: meta.serial, backup_serial }.write(&self.sidecar_path(), Rename::Durable)?;
        }
        self.seq.fetch_max(next, Ordering::SeqCst);
        Ok(Open { handle: Handle::Write(db), format })
    }

    pub(super) fn open_readable(&self) -> Result<Open> {
        let sidecar = Sidecar::read(&self.sidecar_path())?;
        let len = self.db_len()?;
        self.check_not_lost(len, sidecar.as_ref())?;
        if len.unwrap_or(0) == 0 {
            return Ok(Open { handle: Handle::Absent, format: Format::Checked });
        }
        let path = self.db_path();
        let handle = match redb::Builder::new().set_cache_size(READ_CACHE_BYTES).set_concurrency_mode(ConcurrencyMode::SingleWriter).open_read_only(&path) {
            Ok(db) => Handle::Read(db),
            // Not closed cleanly (a killed apply) and no writer to repair
            // it: read a repaired private copy instead of the file itself.
            Err(redb::DatabaseError::RepairAborted) => Handle::Write(self.open_repaired_copy(&path)?),
            Err(e) => return Err(self.open_error(e)),
        };
        let open = Open { handle, format: if sidecar.is_some() { Format::Checked } else { Format::Legacy } };
        let format = match open.begin_read()? {
            Some(tx) if open.format == Format::Legacy && has_digests(&tx)? => Format::Checked,
            _ => open.format,
        };
        let open = Open { format, ..open };
        if let Some(tx) = open.begin_read()? {
            let meta = read_meta(&tx, format, &self.enc)?;
            self.check_sidecar(&meta, sidecar.as_ref())?;
        }
        Ok(open)
    }

    /// Copies the database to a private temp file and opens the copy, which
    /// redb repairs (and checks) without touching the original.
    pub(super) fn open_repaired_copy(&self, path: &Path) -> Result<Database> {
        let tmp = tempfile::Builder::new()
            .prefix("strata-state-")
            .tempfile()
            .map_err(|source| StateError::Io { context: "create a temp file to read the state".into(), source })?;
        let mut source =
            std::fs::File::open(path).map_err(|source| StateError::Io { context: format!("read {}", path.display()), source })?;
        std::io::copy(&mut source, &mut tmp.as_file())
            .map_err(|source| StateError::Io { context: "copy the state to read it".into(), source })?;
        // Only read from, like a read-only open (redb's default cache of 1 GiB
        // would keep every page of the copy).
        redb::Builder::new()
            .set_cache_size(READ_CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(tmp.path())
            .map_err(|e| self.open_error(e))
        // The temp file is removed here; the open database keeps its descriptor.
    }

    pub(super) fn open_error(&self, e: redb::DatabaseError) -> StateError {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => self.already_open(),
            // What redb reports for a file that is not (or no longer) a database.
            redb::DatabaseError::Storage(redb::StorageError::Io(source))
                if matches!(source.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
            {
                StateError::Corrupt(source.to_string())
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => {
                StateError::Io { context: format!("open {}", self.db_path().display()), source }
            }
            e => StateError::Corrupt(e.to_string()),
        }
    }

    /// The database is open in another process: name it, even if its lock
    /// file was removed.
    fn already_open(&self) -> StateError {
        let me = std::process::id();
        match self.lock.holder() {
            Ok(Some(holder)) if holder.pid != me || holder.host != crate::lock::hostname() => StateError::Locked(Box::new(holder)),
            _ => {
                let path = self.db_path();
                let holders: Vec<String> =
                    crate::lock::pids_locking(&path).into_iter().filter(|p| *p != me).map(|p| p.to_string()).collect();
                StateError::Database(if holders.is_empty() {
                    format!("{} is open in another Strata process", path.display())
                } else {
                    format!(
                        "{} is open in another Strata process (pid {}), whose lock file {} was removed",
                        path.display(),
                        holders.join(", "),
                        self.dir.join("lock.json").display()
                    )
                })
            }
        }
    }

    fn check_sidecar(&self, meta: &Meta, sidecar: Option<&Sidecar>) -> Result<()> {
        let Some(known) = sidecar else { return Ok(()) };
        if known.lineage != meta.lineage {
            return Err(StateError::Corrupt(format!(
                "it holds state lineage {} but {} records lineage {}",
                meta.lineage,
                self.sidecar_path().display(),
                known.lineage
            )));
        }
        if meta.serial < known.serial {
            return Err(StateError::Corrupt(format!(
                "it holds state version {} but the state was already at version {} (an older copy of the file?)",
                meta.serial, known.serial
            )));
        }
        Ok(())
    }

    /// The error for a damaged or lost database, with the ways back.
    pub(super) fn damaged(&self, detail: String) -> StateError {
        let backup = self.dir.join(BACKUP_FILE);
        let backup_serial = Sidecar::read(&self.sidecar_path()).ok().flatten().and_then(|s| s.backup_serial);
        let recovery = if backup.exists() {
            format!(
                "A backup written before the last change is in {}{}. To go back to it, run:\n  strata state restore-backup\n\
                 It keeps the damaged file beside it. Objects created or changed after that version are not in the backup: \
                 `strata plan` shows them as to be created; import them or delete them by hand.",
                backup.display(),
                backup_serial.map(|s| format!(" (state version {s})")).unwrap_or_default()
            )
        } else {
            format!(
                "There is no backup yet ({} is written before each apply). Restore {} from a copy of your own; \
                 moving {} aside starts from an empty state, and the next apply would create every object again.",
                backup.display(),
                self.db_path().display(),
                self.dir.display()
            )
        };
        StateError::Damaged { path: self.db_path(), detail, recovery }
    }
}

/// Creates the tables (and, for a new state, its identity); seals a
/// database written before checksums existed. Returns the record format.
pub(super) fn init(db: &Database, known: bool, enc: &Encryption) -> Result<Format> {
    if is_complete(db)? {
        // Nothing to create: no write at all, so that a command refused
        // later (a wrong key) leaves the file byte for byte as it was.
        return Ok(Format::Checked);
    }
    let tx = db.begin_write().map_err(db_err)?;
    {
        let has_meta = tx.open_table(META).map_err(db_err)?.get(META_KEY).map_err(db_err)?.is_some();
        let has_digests = tx.open_table(DIGESTS).map_err(db_err)?.len().map_err(db_err)? > 0;
        for def in tables::STR_TABLES {
            tx.open_table(def).map_err(db_err)?;
        }
        for def in tables::SEQ_TABLES {
            tx.open_table(def).map_err(db_err)?;
        }
        match (has_meta, has_digests) {
            (false, false) if known => return Err(StateError::Corrupt("it has no state record".into())),
            (false, false) => {
                let mut w = Writer::new(&tx, enc);
                for def in tables::STR_TABLES {
                    w.reset_digest(def.name());
                }
                for def in tables::SEQ_TABLES {
                    w.reset_digest(def.name());
                }
                w.put(META, META_KEY, &Meta { lineage: Uuid::new_v4(), serial: 0 })?;
                w.finish()?;
            }
            (true, false) if known => return Err(StateError::Corrupt("its records have no checksums".into())),
            (true, false) => tables::migrate_to_checked(&tx, enc)?,
            (_, true) => {}
        }
    }
    tx.commit().map_err(db_err)?;
    Ok(Format::Checked)
}

/// Every table is there, with digests and the state record.
fn is_complete(db: &Database) -> Result<bool> {
    let tx = db.begin_read().map_err(db_err)?;
    let exists = |e: std::result::Result<(), redb::TableError>| match e {
        Ok(()) => Ok(true),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(db_err(e)),
    };
    for def in tables::STR_TABLES {
        if !exists(tx.open_table(def).map(drop))? {
            return Ok(false);
        }
    }
    for def in tables::SEQ_TABLES {
        if !exists(tx.open_table(def).map(drop))? {
            return Ok(false);
        }
    }
    if !has_digests(&tx)? {
        return Ok(false);
    }
    Ok(tx.open_table(META).map_err(db_err)?.get(META_KEY).map_err(db_err)?.is_some())
}

fn has_digests(tx: &ReadTransaction) -> Result<bool> {
    match tx.open_table(DIGESTS) {
        Ok(t) => Ok(t.len().map_err(db_err)? > 0),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(db_err(e)),
    }
}
