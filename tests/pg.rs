//! The PostgreSQL state backend end to end, through the CLI against a real
//! server (`scripts/postgres-up.sh`, which `scripts/test-env-up.sh` runs):
//! a saved plan applied from another checkout, locks that name their holder,
//! wait, and free themselves when the holder is killed, kill -9 at random
//! moments, a server restart in the middle of an apply, the serial's
//! compare-and-set, and migration local → pg → local. Every test has a
//! schema of its own; results are checked with `psql` too.

mod common;
#[path = "common/pg.rs"]
mod pg_server;

use common::*;
use pg_server::*;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The restart test ends every session of the server: it runs alone.
static SERVER: RwLock<()> = RwLock::new(());

/// A configuration on the pg backend whose testing-provider world is
/// `world` (shared by checkouts).
fn config(schema: &str, world: &Path, body: &str) -> String {
    format!(
        r#"
terraform {{
  backend "pg" {{
    schema_name = "{schema}"
  }}
}}
variable "gen" {{
  type    = number
  default = 0
}}
variable "latency" {{
  type    = number
  default = 0
}}
provider "testing" {{
  dir        = "{}"
  latency_ms = var.latency
}}
{body}
"#,
        world.display()
    )
}

const OBJECTS: &str = r#"
resource "testing_object" "o" {
  count = 6
  name  = "o-${count.index}"
  value = "gen-${var.gen}"
}
"#;

/// A checkout of the configuration: its own directory, the shared world.
fn checkout(schema: &str, world: &Path, body: &str) -> tempfile::TempDir {
    let dir = scratch();
    write(dir.path(), "main.strata.hcl", &config(schema, world, body));
    dir
}

/// The world's objects under `world` (identity → content).
fn objects(world: &Path) -> usize {
    std::fs::read_dir(world).map(|d| d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json")).count()).unwrap_or(0)
}

fn current_rows(schema: &str) -> i64 {
    count(&format!("SELECT count(*) FROM {schema}.instances WHERE workspace = 'default' AND until_serial IS NULL"))
}

fn serial(schema: &str) -> i64 {
    count(&format!("SELECT serial FROM {schema}.workspaces WHERE name = 'default'"))
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lock_row_exists(schema: &str) -> bool {
    psql(&format!("SELECT count(*) FROM {schema}.locks l WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend_pid)"))
        == "1"
}

/// Every object of the shared world is in state once, and state names no
/// missing object (the world lives outside the checkout here).
fn assert_world_matches_state(dir: &Path, world: &Path) {
    let state = state(dir);
    let ids: std::collections::BTreeSet<&String> = state.values().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), state.len(), "two state entries share an identity");
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(world)
        .map(|d| {
            d.filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension().is_some_and(|x| x == "json")).then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    assert_eq!(on_disk.iter().collect::<std::collections::BTreeSet<_>>(), ids, "world and state disagree");
}

#[test]
fn a_plan_saved_in_one_checkout_is_applied_from_another() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("saved_plan");
    let world = scratch();
    let pr_job = checkout(&schema, world.path(), OBJECTS);
    let merge_job = checkout(&schema, world.path(), OBJECTS);
    expect(pr_job.path(), &["init"], 0);
    expect(pr_job.path(), &["plan", "-out", "tfplan"], 0);
    std::fs::copy(pr_job.path().join("tfplan"), merge_job.path().join("tfplan")).unwrap();
    expect(merge_job.path(), &["apply", "tfplan"], 0);
    assert_eq!(objects(world.path()), 6);
    assert_eq!(current_rows(&schema), 6, "psql sees one current row per instance");
    assert_eq!(serial(&schema), 1);
    // The PR job's checkout sees the merge job's result: nothing to do.
    expect(pr_job.path(), &["plan", "-detailed-exitcode"], 0);
    assert!(!pr_job.path().join(".strata/state.redb").exists(), "no local state was written");
    assert_world_matches_state(pr_job.path(), world.path());
}

#[test]
fn a_second_apply_fails_at_once_naming_the_holder_or_waits_with_lock_timeout() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("lock_holder");
    let world = scratch();
    let a = checkout(&schema, world.path(), OBJECTS);
    let b = checkout(&schema, world.path(), OBJECTS);
    expect(a.path(), &["init"], 0);
    let first = command(a.path(), &["apply", "-auto-approve", "-parallelism", "1", "-var", "latency=300"])
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_REPOSITORY", "example/infra")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first apply to hold the lock", Duration::from_secs(30), || lock_row_exists(&schema));

    let start = Instant::now();
    let out = run(b.path(), &["apply", "-auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(5), "the second apply must not wait: {:?}", start.elapsed());
    let err = stderr(&out);
    assert!(err.contains("locked by") && err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("GitHub Actions run 4242 of example/infra"), "the CI run is named: {err}");
    assert!(err.contains("running `apply`"), "{err}");

    // With a timeout it waits for the holder and then goes through.
    let out = run(b.path(), &["apply", "-auto-approve", "-lock-timeout=90s", "-var", "gen=1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(serial(&schema), 2, "two versions, one after the other");
    assert_world_matches_state(b.path(), world.path());
}

#[test]
fn kill_9_of_the_holder_frees_the_lock_at_once() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("kill_holder");
    let world = scratch();
    let a = checkout(&schema, world.path(), OBJECTS);
    let b = checkout(&schema, world.path(), OBJECTS);
    expect(a.path(), &["init"], 0);
    let mut holder = spawn(a.path(), &["apply", "-auto-approve", "-parallelism", "1", "-var", "latency=500"]);
    wait_for("the apply to hold the lock", Duration::from_secs(30), || lock_row_exists(&schema));
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let killed = Instant::now();
    wait_for("the server to drop the dead holder's lock", Duration::from_secs(2), || !lock_row_exists(&schema));
    let freed_after = killed.elapsed();
    // No force-unlock, no wait: the next run takes the lock and reconciles.
    let out = run(b.path(), &["apply", "-auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("broke a stale state lock"), "the dead holder is named: {}", stderr(&out));
    eprintln!("lock freed {freed_after:?} after kill -9");
    assert_eq!(objects(world.path()), 6);
    assert_world_matches_state(b.path(), world.path());
}

#[test]
fn force_unlock_ends_the_holders_session() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("force_unlock");
    let world = scratch();
    let a = checkout(&schema, world.path(), OBJECTS);
    expect(a.path(), &["init"], 0);
    // Slow enough (6 × 1.5 s) to be still running on a loaded machine.
    let holder = spawn(a.path(), &["apply", "-auto-approve", "-parallelism", "1", "-var", "latency=1500"]);
    wait_for("the apply to hold the lock", Duration::from_secs(30), || lock_row_exists(&schema));
    let id = psql(&format!("SELECT id FROM {schema}.locks"));
    let out = run(a.path(), &["force-unlock", "-force", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let holder = holder.wait_with_output().unwrap();
    assert!(!holder.status.success(), "the holder can write no more once its session is ended");
    assert!(stderr(&holder).contains("lost the connection to PostgreSQL"), "{}", stderr(&holder));
    assert!(!lock_row_exists(&schema));
    // The next run reconciles what the cut-off apply left.
    expect(a.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(objects(world.path()), 6);
    assert_world_matches_state(a.path(), world.path());
}

#[test]
fn kill_9_at_random_moments_of_a_pg_backed_apply_loses_and_duplicates_nothing() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("kill_rounds");
    let world = scratch();
    let body = r#"
resource "testing_object" "a" {
  count = 6
  name  = "a-${count.index}"
  value = "gen-${var.gen}"
}
resource "testing_object" "b" {
  count = 6
  name  = "b-${count.index}"
  value = testing_object.a[count.index].value
}
resource "testing_object" "r" {
  count = 3
  name  = "r-${var.gen}-${count.index}"
}
"#;
    let dir = checkout(&schema, world.path(), body);
    expect(dir.path(), &["init"], 0);
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..32u32 {
        let verb = if round % 7 == 6 { "destroy" } else { "apply" };
        let gen = format!("gen={round}");
        let mut child = spawn(dir.path(), &[verb, "-auto-approve", "-var", &gen, "-var", "latency=3"]);
        std::thread::sleep(Duration::from_millis(20 + next() % 250));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let out = run(dir.path(), &["plan", "-var", &gen]);
        assert_eq!(out.status.code(), Some(0), "round {round}: plan after kill -9 failed:\n{}", stderr(&out));
        assert_world_matches_state(dir.path(), world.path());
    }
    expect(dir.path(), &["apply", "-auto-approve", "-var", "gen=99"], 0);
    assert_world_matches_state(dir.path(), world.path());
    assert_eq!(objects(world.path()), 15, "exactly the configured objects exist");
    assert_eq!(current_rows(&schema), 15);
    assert_eq!(count(&format!("SELECT count(*) FROM {schema}.intents")), 0, "no intent is left pending");
    expect(dir.path(), &["plan", "-detailed-exitcode", "-var", "gen=99"], 0);
}

#[test]
fn a_server_restart_mid_apply_fails_it_clearly_and_the_next_run_reconciles() {
    let _server = SERVER.write().unwrap();
    let schema = fresh_schema("restart");
    let world = scratch();
    let dir = checkout(&schema, world.path(), OBJECTS);
    expect(dir.path(), &["init"], 0);
    let apply = spawn(dir.path(), &["apply", "-auto-approve", "-parallelism", "1", "-var", "latency=400"]);
    wait_for("two objects to be made", Duration::from_secs(30), || objects(world.path()) >= 2);
    let pg_dir = std::env::var("STRATA_PG_DIR").expect("STRATA_PG_DIR is set by scripts/postgres-up.sh");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let restart = Command::new("bash").arg(root.join("scripts/postgres-up.sh")).args(["--restart", &pg_dir]).output().unwrap();
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stderr));
    let out = apply.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("lost the connection to PostgreSQL"), "{}", stderr(&out));
    assert!(objects(world.path()) < 6, "the apply stopped");
    let out = run(dir.path(), &["apply", "-auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(objects(world.path()), 6);
    assert_world_matches_state(dir.path(), world.path());
    assert_eq!(count(&format!("SELECT count(*) FROM {schema}.intents")), 0);
}

#[test]
fn two_writers_on_one_serial_have_exactly_one_winner() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("cas");
    let world = scratch();
    let a = checkout(&schema, world.path(), OBJECTS);
    let b = checkout(&schema, world.path(), OBJECTS);
    expect(a.path(), &["apply", "-auto-approve"], 0);
    assert_eq!(serial(&schema), 1);
    // Hold the workspace row, so both writers read version 1 and then queue
    // on their first write; once released, they race for version 2.
    let mut gate = Command::new("psql")
        .args([&conn_str(), "-v", "ON_ERROR_STOP=1", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut gate_in = gate.stdin.take().unwrap();
    writeln!(gate_in, "BEGIN; SELECT 1 FROM {schema}.workspaces WHERE name = 'default' FOR UPDATE;").unwrap();
    gate_in.flush().unwrap();
    wait_for("the gate to hold the row", Duration::from_secs(10), || {
        count("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND a.application_name = 'psql' AND a.state = 'idle in transaction'") >= 1
    });
    let writers: Vec<_> = [(a.path(), "gen=1"), (b.path(), "gen=2")]
        .iter()
        .map(|(dir, gen)| spawn(dir, &["apply", "-auto-approve", "-lock=false", "-var", gen]))
        .collect();
    wait_for("both writers to queue on the row", Duration::from_secs(30), || {
        count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'strata' AND wait_event_type = 'Lock'") >= 2
    });
    writeln!(gate_in, "COMMIT;").unwrap();
    drop(gate_in);
    gate.wait().unwrap();
    let outs: Vec<_> = writers.into_iter().map(|w| w.wait_with_output().unwrap()).collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one writer commits on version 1:\n{}\n---\n{}", stderr(&outs[0]), stderr(&outs[1]));
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    assert!(stderr(loser).contains("the state changed under this run"), "{}", stderr(loser));
    assert!(stderr(loser).contains("-lock=false"), "the warning names the skipped lock: {}", stderr(loser));
    assert_eq!(serial(&schema), 2, "one new version, not two");
    assert_world_matches_state(a.path(), world.path());
}

#[test]
fn migration_local_to_pg_and_back_keeps_every_instance_and_the_history() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("migrate");
    let dir = scratch();
    let world = dir.path().join("world");
    let local_config = config(&schema, &world, OBJECTS)
        .replacen("backend \"pg\"", "backend \"local\"", 1)
        .replace(&format!("schema_name = \"{schema}\""), "");
    write(dir.path(), "main.strata.hcl", &local_config);
    for gen in 0..3 {
        expect(dir.path(), &["apply", "-auto-approve", "-var", &format!("gen={gen}")], 0);
    }
    let history = stdout(&expect(dir.path(), &["state", "history"], 0));
    let shown = state(dir.path());
    assert_eq!(shown.len(), 6);

    write(dir.path(), "main.strata.hcl", &config(&schema, &world, OBJECTS));
    let out = run(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(1), "a changed backend with state needs -migrate-state");
    assert!(stderr(&out).contains("-migrate-state"), "{}", stderr(&out));
    expect(dir.path(), &["init", "-migrate-state"], 0);
    assert!(!dir.path().join(".strata/state.redb").exists(), "the local state was moved aside");
    assert_eq!(current_rows(&schema), 6);
    assert_eq!(serial(&schema), 3);
    assert_eq!(count(&format!("SELECT count(*) FROM {schema}.versions")), 4, "versions 0 to 3");
    assert_eq!(stdout(&expect(dir.path(), &["state", "history"], 0)), history, "the history came along");
    assert_eq!(state(dir.path()), shown);
    expect(dir.path(), &["plan", "-detailed-exitcode", "-var", "gen=2"], 0);
    expect(dir.path(), &["apply", "-auto-approve", "-var", "gen=3"], 0);
    let history = stdout(&expect(dir.path(), &["state", "history"], 0));
    let shown = state(dir.path());

    write(dir.path(), "main.strata.hcl", &local_config);
    expect(dir.path(), &["init", "-migrate-state"], 0);
    assert!(dir.path().join(".strata/state.redb").exists());
    assert_eq!(count(&format!("SELECT count(*) FROM {schema}.instances")), 0, "the pg workspace was emptied");
    assert_eq!(stdout(&expect(dir.path(), &["state", "history"], 0)), history);
    assert_eq!(state(dir.path()), shown);
    expect(dir.path(), &["plan", "-detailed-exitcode", "-var", "gen=3"], 0);
}

#[test]
fn backend_config_on_init_is_saved_privately_without_the_password() {
    let _server = SERVER.read().unwrap();
    let schema = fresh_schema("backend_config");
    let dir = scratch();
    let world = dir.path().join("world");
    write(dir.path(), "main.strata.hcl", &config(&schema, &world, OBJECTS).replace(&format!("schema_name = \"{schema}\""), ""));
    let password = std::env::var("PGPASSWORD").expect("PGPASSWORD is set by scripts/postgres-up.sh");
    let with_password = format!("{} password={password}", conn_str());
    let init = command(
        dir.path(),
        &["init", &format!("-backend-config=conn_str={with_password}"), &format!("-backend-config=schema_name={schema}")],
    )
    .env_remove("STRATA_PG_CONN_STR")
    .output()
    .unwrap();
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    assert!(stderr(&init).contains("was not saved"), "{}", stderr(&init));
    let saved = std::fs::read_to_string(dir.path().join(".strata/backend.json")).unwrap();
    assert!(!saved.contains(&password), "no password at rest: {saved}");
    assert!(!stdout(&init).contains(&password) && !stderr(&init).contains(&password));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".strata/backend.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Later commands use the saved settings, with the password from PGPASSWORD.
    let out = command(dir.path(), &["apply", "-auto-approve"]).env_remove("STRATA_PG_CONN_STR").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(current_rows(&schema), 6);
}
