//! Tests of the local store: durability, versions, locking, and refusing damage.

use super::*;

use std::collections::BTreeSet;
use strata_provider::Value;

fn record(address: &str) -> InstanceRecord {
    InstanceRecord {
        address: address.into(),
        id: Uuid::new_v4(),
        type_name: "strata_data".into(),
        provider: "strata".into(),
        attributes: Value::object([("input", Value::from("x"))]),
        dependencies: vec![],
        create_before_destroy: false,
    }
}

#[test]
fn writes_survive_reopen_and_versions_are_kept() {
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    let serial = store.begin_version("apply", "me").unwrap();
    assert_eq!(serial, 1);
    let seq = store.next_seq(1).unwrap();
    let intent = Intent {
        apply_id: Uuid::new_v4(),
        operation: Operation::Create,
        address: "strata_data.a".into(),
        id: Uuid::new_v4(),
        type_name: "strata_data".into(),
        provider: "strata".into(),
        planned: None,
        prior: None,
        rollback: false,
        dependencies: vec![],
        create_before_destroy: false,
        undo: None,
    };
    store.commit(vec![Write::Intent { seq, intent: intent.clone() }]).unwrap();
    store.commit(vec![Write::PutInstance(record("strata_data.b"))]).unwrap();
    drop(store);

    let store = LocalStore::new(&dir);
    assert_eq!(store.pending_intents().unwrap(), vec![(seq, intent)]);
    assert!(store.next_seq(1).unwrap() > seq, "sequence numbers are never reused while pending");
    store.commit(vec![Write::Resolve { seq }]).unwrap();
    assert!(store.pending_intents().unwrap().is_empty());
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.meta.serial, 1);
    assert_eq!(snap.instances.keys().collect::<Vec<_>>(), vec!["strata_data.b"]);

    store.begin_version("destroy", "me").unwrap();
    store.commit(vec![Write::RemoveInstance { address: "strata_data.b".into() }]).unwrap();
    let history = store.history().unwrap();
    assert_eq!(history.iter().map(|v| v.serial).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(store.version(1).unwrap().instances.len(), 1);
    assert_eq!(store.version(2).unwrap().instances.len(), 0);
}

#[test]
fn second_locker_is_refused_and_dead_holders_are_broken() {
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    let me = LockInfo::for_this_process("apply");
    assert_eq!(store.lock(&me).unwrap(), None);
    let other = LockInfo::for_this_process("plan");
    match store.lock(&other) {
        Err(StateError::Locked(holder)) => assert_eq!(holder.id, me.id),
        r => panic!("expected Locked, got {r:?}"),
    }
    store.unlock(&me).unwrap();

    let dead = LockInfo { pid: dead_pid(), ..LockInfo::for_this_process("apply") };
    std::fs::write(dir.join("lock.json"), serde_json::to_vec(&dead).unwrap()).unwrap();
    let broken = store.lock(&other).unwrap().expect("the stale lock is reported");
    assert_eq!(broken.id, dead.id);
    assert_eq!(store.force_unlock(&other.id).unwrap(), BrokenLock::Held(other.clone()));
    assert!(store.lock_holder().unwrap().is_none());
}

#[test]
fn a_store_that_mostly_reads_locks_and_writes_as_a_writable_one() {
    // Only its page cache differs: a plan's store still takes the lock and
    // may write, and what it writes the others read.
    let (dir, expected) = populated();
    let store = LocalStore::read_mostly(&dir);
    assert_eq!(everything(&store).unwrap(), expected);
    let me = LockInfo::for_this_process("plan");
    assert_eq!(store.lock(&me).unwrap(), None);
    assert!(matches!(LocalStore::new(&dir).lock(&LockInfo::for_this_process("apply")), Err(StateError::Locked(_))));
    store.begin_version("apply", "me").unwrap();
    store.commit(vec![Write::PutInstance(record("strata_data.new"))]).unwrap();
    store.unlock(&me).unwrap();
    drop(store);
    assert!(LocalStore::read_only(&dir).snapshot().unwrap().instances.contains_key("strata_data.new"));
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-state-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A state with a few instances, outputs, an intent and kept versions.
fn populated() -> (PathBuf, Everything) {
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    for round in 0..3 {
        store.begin_version("apply", "me").unwrap();
        let mut writes: Vec<Write> = (0..6).map(|i| Write::PutInstance(record(&format!("strata_data.r{round}_{i}")))).collect();
        writes.push(Write::SetOutputs(BTreeMap::from([("out".to_owned(), Value::from(format!("v{round}")))])));
        store.commit(writes).unwrap();
    }
    let seq = store.next_seq(1).unwrap();
    store.commit(vec![Write::Intent { seq, intent: intent("strata_data.pending") }]).unwrap();
    let everything = everything(&store).unwrap();
    drop(store);
    (dir, everything)
}

fn intent(address: &str) -> Intent {
    Intent {
        apply_id: Uuid::new_v4(),
        operation: Operation::Create,
        address: address.into(),
        id: Uuid::new_v4(),
        type_name: "strata_data".into(),
        provider: "strata".into(),
        planned: None,
        prior: None,
        rollback: false,
        dependencies: vec![],
        create_before_destroy: false,
        undo: None,
    }
}

/// Everything a command can read from a store.
#[derive(Debug, PartialEq)]
struct Everything {
    snapshot: Snapshot,
    intents: Vec<(u64, Intent)>,
    history: Vec<VersionInfo>,
    versions: Vec<Snapshot>,
}

fn everything(store: &LocalStore) -> Result<Everything> {
    let history = store.history()?;
    let versions = history.iter().map(|v| store.version(v.serial)).collect::<Result<_>>()?;
    Ok(Everything { snapshot: store.snapshot()?, intents: store.pending_intents()?, history, versions })
}

fn case_dir(from: &Path) -> PathBuf {
    let to = tempdir();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to
}

/// Reads `dir` read-only and read-write: each must fail with the damage
/// named, or read exactly `expected`. A panic fails the test.
fn assert_damage_refused_or_harmless(dir: &Path, expected: &Everything, what: &str) -> usize {
    let mut refused = 0;
    for (store, mode) in [(LocalStore::read_only(dir), "read-only"), (LocalStore::new(dir), "read-write")] {
        match everything(&store) {
            Ok(got) => assert!(&got == expected, "{what}, {mode}: the state silently changed"),
            Err(e @ StateError::Damaged { .. }) => {
                let text = e.to_string();
                assert!(text.contains("state restore-backup") || text.contains("no backup"), "{what}: {text}");
                refused += 1;
            }
            Err(e) => panic!("{what}, {mode}: unexpected error kind: {e}"),
        }
    }
    refused
}

#[test]
fn a_missing_or_truncated_database_is_refused_never_taken_for_a_new_state() {
    let (dir, expected) = populated();
    let bytes = std::fs::read(dir.join(DB_FILE)).unwrap();
    let len = bytes.len();
    let mut lengths = vec![0, 1, 7, 512, 4095, 4096, 4097, len / 3, len / 2, len - 4096, len - 1];
    lengths.retain(|l| *l < len);
    for cut in lengths {
        let case = case_dir(&dir);
        std::fs::write(case.join(DB_FILE), &bytes[..cut]).unwrap();
        let refused = assert_damage_refused_or_harmless(&case, &expected, &format!("truncated to {cut} of {len} bytes"));
        if cut < 4096 {
            assert_eq!(refused, 2, "a database cut to {cut} bytes cannot be read");
        }
    }
    let case = case_dir(&dir);
    std::fs::remove_file(case.join(DB_FILE)).unwrap();
    for store in [LocalStore::read_only(&case), LocalStore::new(&case)] {
        let err = store.snapshot().unwrap_err().to_string();
        assert!(err.contains("is damaged: it is missing") && err.contains("state restore-backup"), "{err}");
    }
    assert!(!case.join(DB_FILE).exists(), "no new database was created in place of the lost one");
    // Even with state.meta lost too, the backup tells that there was state.
    std::fs::remove_file(case.join(META_FILE)).unwrap();
    let err = LocalStore::new(&case).snapshot().unwrap_err().to_string();
    assert!(err.contains("a backup of this directory's state exists") && err.contains("state restore-backup"), "{err}");
}

#[test]
fn byte_flips_anywhere_are_refused_or_harmless_never_a_panic_or_a_silent_change() {
    let (dir, expected) = populated();
    let bytes = std::fs::read(dir.join(DB_FILE)).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Random positions over the whole file, and as many in the records
    // themselves (most of the file is free pages).
    let mut positions: Vec<usize> = (0..300).map(|_| (next() % bytes.len() as u64) as usize).collect();
    let records: Vec<usize> = bytes.windows(12).enumerate().filter(|(_, w)| *w == b"strata_data.").map(|(i, _)| i).collect();
    assert!(!records.is_empty());
    positions.extend((0..300).map(|_| (records[(next() % records.len() as u64) as usize] + (next() % 160) as usize).saturating_sub(40)));
    positions.retain(|p| *p < bytes.len());
    let mut refused = 0;
    for &at in &positions {
        let flip = (next() % 255 + 1) as u8;
        let case = case_dir(&dir);
        let mut damaged = bytes.clone();
        damaged[at] ^= flip;
        std::fs::write(case.join(DB_FILE), &damaged).unwrap();
        refused += assert_damage_refused_or_harmless(&case, &expected, &format!("byte {at} xor {flip:#04x}"));
        std::fs::remove_dir_all(&case).unwrap();
    }
    eprintln!("{refused} of {} reads refused a flip", 2 * positions.len());
    // Flips inside the records cannot all be harmless.
    assert!(refused > positions.len() / 4, "only {refused} flips were detected");
}

#[test]
fn a_damaged_state_can_be_restored_from_the_backup_of_the_last_change() {
    let (dir, expected) = populated();
    std::fs::write(dir.join(DB_FILE), b"").unwrap();
    let store = LocalStore::new(&dir);
    assert!(matches!(store.snapshot(), Err(StateError::Damaged { .. })));
    let restored = store.restore_backup().unwrap();
    // The backup was written before the last version began: version 2.
    assert_eq!(restored.serial, expected.snapshot.meta.serial - 1);
    assert_eq!(store.snapshot().unwrap(), expected.versions[2]);
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("state.redb.damaged-")));
    // And the restored state is a normal state again: the next change works.
    assert_eq!(store.begin_version("apply", "me").unwrap(), restored.serial + 1);
}

#[test]
fn a_crash_that_undoes_the_renames_of_begin_version_leaves_a_usable_state() {
    // `begin_version` does not fsync the directory after replacing the
    // backup and state.meta: a machine crash may bring both old files back
    // while the database (durable commits) is at the new version.
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    store.begin_version("apply", "me").unwrap();
    store.commit(vec![Write::PutInstance(record("strata_data.a"))]).unwrap();
    drop(store);
    let old_meta = std::fs::read(dir.join(META_FILE)).unwrap();
    let old_backup = std::fs::read(dir.join(BACKUP_FILE)).unwrap();
    let store = LocalStore::new(&dir);
    assert_eq!(store.begin_version("apply", "me").unwrap(), 2);
    store.commit(vec![Write::PutInstance(record("strata_data.b"))]).unwrap();
    drop(store);
    std::fs::write(dir.join(META_FILE), &old_meta).unwrap();
    std::fs::write(dir.join(BACKUP_FILE), &old_backup).unwrap();

    let store = LocalStore::new(&dir);
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.meta.serial, 2);
    assert_eq!(snap.instances.keys().collect::<Vec<_>>(), vec!["strata_data.a", "strata_data.b"]);
    drop(store);
    let meta: Sidecar = serde_json::from_slice(&std::fs::read(dir.join(META_FILE)).unwrap()).unwrap();
    assert_eq!(meta.serial, 2, "the open caught state.meta up with the database");
    // The older backup is still a whole, checked way back.
    std::fs::write(dir.join(DB_FILE), b"").unwrap();
    let restored = LocalStore::new(&dir).restore_backup().unwrap();
    assert_eq!(restored.serial, 0);
}

#[test]
fn another_states_database_is_refused() {
    let (dir, _) = populated();
    let (other, _) = populated();
    std::fs::copy(other.join(DB_FILE), dir.join(DB_FILE)).unwrap();
    let err = LocalStore::new(&dir).snapshot().unwrap_err().to_string();
    assert!(err.contains("lineage"), "{err}");
    let err = LocalStore::read_only(&dir).snapshot().unwrap_err().to_string();
    assert!(err.contains("lineage"), "{err}");
}

/// Every file's bytes and modification time.
fn fingerprint(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (e.file_name().to_string_lossy().into_owned(), (std::fs::read(e.path()).unwrap(), meta.modified().unwrap()))
        })
        .collect()
}

#[test]
fn reading_writes_nothing() {
    let (dir, expected) = populated();
    let before = fingerprint(&dir);
    let store = LocalStore::read_only(&dir);
    assert_eq!(everything(&store).unwrap(), expected);
    assert!(store.apply_log().unwrap().is_none());
    assert!(matches!(store.commit(vec![Write::RemoveInstance { address: "x".into() }]), Err(StateError::Database(_))));
    drop(store);
    assert!(fingerprint(&dir) == before, "a read-only open changed a file");

    let nowhere = std::env::temp_dir().join(format!("strata-state-test-{}", Uuid::new_v4()));
    let store = LocalStore::read_only(&nowhere);
    assert!(store.snapshot().unwrap().instances.is_empty());
    assert!(store.history().unwrap().is_empty());
    assert!(!nowhere.exists(), "reading a state that does not exist creates nothing");
}

#[test]
fn a_database_that_was_not_closed_is_read_from_a_repaired_copy() {
    let (dir, expected) = populated();
    // A writer killed mid-apply leaves the file needing repair; simulate by
    // copying the file of a database that is still open.
    let store = LocalStore::new(&dir);
    store.commit(vec![Write::Resolve { seq: 999 }]).unwrap();
    let case = case_dir(&dir);
    drop(store);
    let before = fingerprint(&case);
    let reader = LocalStore::read_only(&case);
    assert_eq!(everything(&reader).unwrap(), expected);
    let handle = reader.db.lock().unwrap().clone().unwrap();
    assert!(matches!(handle.handle, Handle::Write(_)), "the reader used a repaired copy");
    assert!(fingerprint(&case) == before, "the original was not touched");
}

#[test]
fn records_written_before_checksums_are_sealed_on_the_first_writable_open() {
    let dir = tempdir();
    {
        let db = Database::create(dir.join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let meta = Meta { lineage: Uuid::new_v4(), serial: 4 };
            tx.open_table(META).unwrap().insert(META_KEY, serde_json::to_vec(&meta).unwrap().as_slice()).unwrap();
            let r = record("strata_data.old");
            tx.open_table(INSTANCES).unwrap().insert(r.address.as_str(), serde_json::to_vec(&r).unwrap().as_slice()).unwrap();
            for def in tables::STR_TABLES {
                tx.open_table(def).unwrap();
            }
            for def in tables::SEQ_TABLES {
                tx.open_table(def).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let legacy = LocalStore::read_only(&dir).snapshot().unwrap();
    assert_eq!(legacy.meta.serial, 4);
    assert_eq!(legacy.instances.keys().collect::<Vec<_>>(), vec!["strata_data.old"]);
    let store = LocalStore::new(&dir);
    assert_eq!(store.snapshot().unwrap(), legacy);
    drop(store);
    assert!(dir.join(META_FILE).exists(), "the lineage is now kept outside the database too");
    assert_eq!(LocalStore::read_only(&dir).snapshot().unwrap(), legacy);
}

#[test]
fn a_corrupt_lock_file_is_reported_with_the_way_out_and_can_be_cleared() {
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    std::fs::write(dir.join("lock.json"), b"{\"id\": \"trunc").unwrap();
    let err = store.lock(&LockInfo::for_this_process("apply")).unwrap_err();
    assert!(matches!(err, StateError::LockCorrupt { .. }), "{err}");
    assert!(err.to_string().contains("strata force-unlock"), "{err}");
    assert!(matches!(store.force_unlock("corrupt").unwrap(), BrokenLock::Corrupt(_)));
    assert!(store.lock(&LockInfo::for_this_process("apply")).unwrap().is_none());
}

#[test]
fn a_lock_file_a_machine_crash_left_empty_or_zeroed_is_no_lock() {
    // The lock record is written without fsync: after a power loss the file
    // may be there with its data lost. Neither is a holder nor needs a
    // force-unlock.
    for leftover in [&b""[..], &[0u8; 180][..]] {
        let dir = tempdir();
        let store = LocalStore::new(&dir);
        std::fs::write(dir.join("lock.json"), leftover).unwrap();
        assert_eq!(store.lock_holder().unwrap(), None);
        let me = LockInfo::for_this_process("apply");
        assert_eq!(store.lock(&me).unwrap(), None, "taken over a {}-byte leftover", leftover.len());
        assert_eq!(store.lock_holder().unwrap().map(|h| h.id), Some(me.id.clone()));
        store.unlock(&me).unwrap();
    }
}

#[test]
fn lock_temp_files_of_killed_processes_are_cleaned_up() {
    let dir = tempdir();
    let dead = dead_pid();
    let leftover = dir.join(format!(".lock.json.{dead}.0123.tmp"));
    std::fs::write(&leftover, b"{}").unwrap();
    let store = LocalStore::new(&dir);
    let me = LockInfo::for_this_process("apply");
    store.lock(&me).unwrap();
    store.unlock(&me).unwrap();
    let names: BTreeSet<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.is_empty(), "left behind: {names:?}");
}

#[test]
fn the_locked_error_says_how_to_force_unlock() {
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    let me = LockInfo::for_this_process("apply");
    store.lock(&me).unwrap();
    let err = store.lock(&LockInfo::for_this_process("plan")).unwrap_err().to_string();
    assert!(err.contains(&format!("strata force-unlock {}", me.id)), "{err}");
}

/// Fills the filesystem holding `dir` until a write fails.
fn fill_disk(dir: &Path) {
    use std::io::Write as _;
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = filler.write_all(&block).and_then(|()| filler.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    // The last partial block may have left a few bytes free: use them up.
    while filler.write_all(&block[..512]).is_ok() && filler.sync_all().is_ok() {}
}

#[test]
fn a_full_disk_spends_the_reserve_on_the_writes_that_finish_work_and_refuses_new_work() {
    let mount = tempdir();
    let status = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"]).arg(&mount).status().unwrap();
    assert!(status.success(), "mounting a tmpfs needs root");
    let result = std::panic::catch_unwind(|| {
        let dir = mount.join(".strata");
        let store = LocalStore::new(&dir);
        store.begin_version("apply", "me").unwrap();
        assert!(dir.join(RESERVE_FILE).exists(), "space is set aside before the change starts");
        fill_disk(&mount);

        // The outcome of work already done still gets recorded...
        let big = |i: usize| InstanceRecord {
            attributes: Value::object([("blob", Value::from("x".repeat(4000)))]),
            ..record(&format!("strata_data.big{i}"))
        };
        store.commit((0..40).map(|i| Write::PutInstance(big(i))).collect()).unwrap();
        assert!(!dir.join(RESERVE_FILE).exists(), "the reserve was spent");
        // ...new work is refused...
        let seq = store.next_seq(2).unwrap();
        let err = store.commit(vec![Write::Intent { seq, intent: intent("strata_data.new") }]).unwrap_err();
        assert!(matches!(err, StateError::NoSpace(_)), "{err}");
        // ...and undoing what was done is accepted.
        let undo = Intent { operation: Operation::Delete, rollback: true, ..intent("strata_data.big0") };
        store.commit(vec![Write::Intent { seq: seq + 1, intent: undo }]).unwrap();
        store.commit(vec![Write::RemoveInstance { address: "strata_data.big0".into() }, Write::Resolve { seq: seq + 1 }]).unwrap();
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.instances.len(), 39);
        drop(store);
        // With a little room again (less than the reserve), a new change
        // does not start without its reserve...
        let filler = std::fs::OpenOptions::new().write(true).open(mount.join("filler")).unwrap();
        filler.set_len(filler.metadata().unwrap().len() - 256 * 1024).unwrap();
        let err = LocalStore::new(&dir).begin_version("apply", "me").unwrap_err();
        assert!(matches!(err, StateError::NoSpace(_)), "{err}");
        assert_eq!(LocalStore::read_only(&dir).snapshot().unwrap(), snap);
        // ...but a destroy, which frees space, does.
        assert_eq!(LocalStore::new(&dir).begin_version("destroy", "me").unwrap(), snap.meta.serial + 1);
    });
    let _ = std::process::Command::new("umount").arg(&mount).status();
    result.unwrap();
}

#[test]
fn a_begun_version_is_written_by_the_next_commit_and_state_meta_only_after_it() {
    let dir = tempdir();
    let sidecar_serial = || serde_json::from_slice::<Sidecar>(&std::fs::read(dir.join(META_FILE)).unwrap()).unwrap().serial;
    let store = LocalStore::new(&dir);
    store.begin_version("apply", "me").unwrap();
    store.commit(vec![Write::PutInstance(record("strata_data.a"))]).unwrap();
    drop(store);
    assert_eq!(sidecar_serial(), 1);

    // Begun, then the process ends before any commit (as a kill -9 before
    // an apply's first intents would): nothing of version 2 is anywhere,
    // and state.meta is never ahead of the database.
    let store = LocalStore::new(&dir);
    assert_eq!(store.begin_version("apply", "me").unwrap(), 2);
    assert_eq!(sidecar_serial(), 1, "state.meta waits for the commit");
    drop(store);
    let store = LocalStore::new(&dir);
    assert_eq!(store.snapshot().unwrap().meta.serial, 1);
    assert_eq!(store.history().unwrap().iter().map(|v| v.serial).collect::<Vec<_>>(), vec![0, 1]);

    // Begun, then committed: the version and the write in one transaction.
    assert_eq!(store.begin_version("destroy", "me").unwrap(), 2);
    store.commit(vec![Write::RemoveInstance { address: "strata_data.a".into() }]).unwrap();
    assert_eq!(sidecar_serial(), 2);
    drop(store);
    let store = LocalStore::new(&dir);
    let history = store.history().unwrap();
    assert_eq!(history.iter().map(|v| (v.serial, v.operation.as_str())).collect::<Vec<_>>(), vec![(0, "init"), (1, "apply"), (2, "destroy")]);
    assert_eq!(store.version(1).unwrap().instances.len(), 1);
    assert!(store.snapshot().unwrap().instances.is_empty());

    // A commit with no writes still writes a begun version.
    assert_eq!(store.begin_version("apply -refresh-only", "me").unwrap(), 3);
    store.commit(Vec::new()).unwrap();
    assert_eq!((store.snapshot().unwrap().meta.serial, sidecar_serial()), (3, 3));
}

/// The snapshot's instances as `read_decoded` gives them and as
/// `read_all` followed by a decoding loop gives them (errors as text).
fn instances_both_ways(dir: &Path, enc: &Encryption) -> (std::result::Result<Vec<(String, InstanceRecord)>, String>, std::result::Result<Vec<(String, InstanceRecord)>, String>) {
    let db = Database::open(dir.join(DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let decode_one = |key: &[u8], payload: &[u8]| -> Result<(String, InstanceRecord)> { Ok((tables::str_key(key)?, decode("instance record", payload)?)) };
    let in_place = tables::read_decoded::<_, _, Vec<_>>(&tx, INSTANCES, Format::Checked, enc, decode_one).map_err(|e| e.to_string());
    let copied = tables::read_all(&tx, INSTANCES, Format::Checked, enc)
        .and_then(|all| all.iter().map(|(k, p)| decode_one(k, p)).collect::<Result<Vec<_>>>())
        .map_err(|e| e.to_string());
    (in_place, copied)
}

#[test]
fn records_decoded_in_place_give_what_the_copying_read_gives_errors_included() {
    let dir = tempdir();
    let store = LocalStore::new(&dir);
    store.begin_version("apply", "me").unwrap();
    store.commit((0..5).map(|i| Write::PutInstance(record(&format!("strata_data.r{i}")))).collect()).unwrap();
    drop(store);
    let none = Encryption::none();
    let (in_place, copied) = instances_both_ways(&dir, &none);
    assert_eq!(in_place.as_ref().unwrap().len(), 5);
    assert_eq!(in_place, copied);

    let aes = Encryption::new(crate::encryption::Method::AesGcm { name: "k".into(), key: Arc::new(crate::encryption::Pbkdf2Key::new("k", "pass", 1000)) }, None);
    let rewrite = |enc: &Encryption, f: &dyn Fn(&mut Writer<'_>)| {
        let db = Database::open(dir.join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        let mut w = Writer::new(&tx, enc);
        f(&mut w);
        w.finish().unwrap();
        tx.commit().unwrap();
    };
    // A sealed record that is no instance record, and after it one sealed
    // under a key this reader lacks: the key is reported, as before.
    rewrite(&none, &|w| w.put(INSTANCES, "strata_data.r1", &serde_json::json!({"not": "a record"})).unwrap());
    rewrite(&aes, &|w| w.put(INSTANCES, "strata_data.r3", &record("strata_data.r3")).unwrap());
    let (in_place, copied) = instances_both_ways(&dir, &none);
    assert!(in_place.as_ref().unwrap_err().contains("encrypt"), "{in_place:?}");
    assert_eq!(in_place, copied);
    // With the key (and plain records allowed): the one that does not decode.
    let aes_or_plain = Encryption::new(
        crate::encryption::Method::AesGcm { name: "k".into(), key: Arc::new(crate::encryption::Pbkdf2Key::new("k", "pass", 1000)) },
        Some(crate::encryption::Method::Unencrypted { name: "migrate".into() }),
    );
    let (in_place, copied) = instances_both_ways(&dir, &aes_or_plain);
    assert!(in_place.as_ref().unwrap_err().contains("instance record"), "{in_place:?}");
    assert_eq!(in_place, copied);
    // Without the encrypted one: the one that does not decode.
    rewrite(&none, &|w| w.remove(INSTANCES, "strata_data.r3").unwrap());
    let (in_place, copied) = instances_both_ways(&dir, &none);
    assert!(in_place.as_ref().unwrap_err().contains("instance record"), "{in_place:?}");
    assert_eq!(in_place, copied);
    // A record gone behind the digest's back: the digest, before decoding.
    {
        let db = Database::open(dir.join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(INSTANCES).unwrap().remove("strata_data.r4").unwrap();
        tx.commit().unwrap();
    }
    let (in_place, copied) = instances_both_ways(&dir, &none);
    assert!(in_place.as_ref().unwrap_err().contains("digest"), "{in_place:?}");
    assert_eq!(in_place, copied);
    std::fs::remove_dir_all(&dir).ok();
}
