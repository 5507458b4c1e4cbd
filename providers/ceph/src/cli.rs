//! [`CephClient`] on the `rbd` command-line tool and, for monitor commands
//! and pool listings, the librados/librbd Python bindings the CLIs ship
//! with (`rados_helper.py`).
//!
//! Every call gets the connection arguments (`--conf`, `--id`, `--keyring`:
//! paths and names only, never a key), machine-readable output where it
//! reads, `--no-progress` for `rbd`, and a deadline: a pool over its quota
//! blocks writes forever and an unreachable cluster blocks the connect, so a
//! call that overruns is killed and reported as a timeout. The exit status of
//! both tools is the errno, which [`ClientError`] keeps.

use crate::client::*;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::process::Command;

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct Connection {
    pub conf: Option<PathBuf>,
    /// The cephx client name without `client.` (`admin`, `tenant-a`).
    pub user: Option<String>,
    pub keyring: Option<PathBuf>,
    pub timeout: Duration,
}

pub struct CliClient {
    connection: Connection,
    calls: AtomicU64,
}

/// The monitor-command and listing helper: run by the Python that the
/// `ceph` CLI itself runs on, so that its librados bindings are there.
const RADOS_HELPER: &str = include_str!("rados_helper.py");

impl CliClient {
    pub fn new(connection: Connection) -> CliClient {
        CliClient { connection, calls: AtomicU64::new(0) }
    }

    fn timeout_secs(&self) -> String {
        self.connection.timeout.as_secs().max(1).to_string()
    }

    fn rbd_args(&self, command: &[&str]) -> Vec<String> {
        let c = &self.connection;
        let mut args = Vec::new();
        if let Some(conf) = &c.conf {
            args.extend(["--conf".to_owned(), conf.display().to_string()]);
        }
        if let Some(user) = &c.user {
            args.extend(["--id".to_owned(), user.clone()]);
        }
        if let Some(keyring) = &c.keyring {
            args.extend(["--keyring".to_owned(), keyring.display().to_string()]);
        }
        // The tool's own timeouts turn a hang into ETIMEDOUT with a message;
        // the kill in `execute` is the backstop.
        let secs = self.timeout_secs();
        args.extend(["--client-mount-timeout", &secs, "--rados-osd-op-timeout", &secs, "--rados-mon-op-timeout", &secs].map(str::to_owned));
        if reports_progress(command) {
            args.push("--no-progress".to_owned());
        }
        args.extend(command.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Runs one `rbd` call; returns its stdout.
    async fn run_rbd(&self, args: &[&str]) -> ClientResult<Vec<u8>> {
        let mut cmd = Command::new("rbd");
        cmd.args(self.rbd_args(args));
        self.execute(format!("rbd {}", args.join(" ")), cmd, None).await
    }

    /// Sends one monitor command; `words` is the same command as a user
    /// would type it to the `ceph` CLI (for messages), `command` its JSON
    /// form, which is what the CLI sends too.
    async fn run_mon(&self, words: &[&str], command: Json) -> ClientResult<Vec<u8>> {
        self.run_helper("mon", format!("ceph {}", words.join(" ")), command).await
    }

    /// Runs one helper command with `input` on its stdin; `call` names it
    /// in messages.
    async fn run_helper(&self, helper_command: &str, call: String, input: Json) -> ClientResult<Vec<u8>> {
        let c = &self.connection;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let mut cmd = Command::new(ceph_python());
        cmd.args(["-c", RADOS_HELPER, helper_command])
            .arg(path(&c.conf))
            .arg(c.user.clone().unwrap_or_default())
            .arg(path(&c.keyring))
            .arg(self.timeout_secs());
        self.execute(call, cmd, Some(input.to_string().into_bytes())).await
    }

    async fn execute(&self, call: String, mut cmd: Command, stdin: Option<Vec<u8>>) -> ClientResult<Vec<u8>> {
        use tokio::io::AsyncWriteExt as _;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let program = call.split(' ').next().unwrap_or_default().to_owned();
        let fail = |errno, message: String| ClientError { call: call.clone(), errno, message };
        // The command line and the monitor command hold names, paths and
        // caps only: keys travel in keyrings and on stdout, never logged.
        if tracing::enabled!(target: "strata::ceph", tracing::Level::TRACE) {
            let std = cmd.as_std();
            // The helper's program text is the same on every call.
            let argv: Vec<String> = std::iter::once(std.get_program())
                .chain(std.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .map(|a| if a.contains('\n') { "(rados_helper.py)".to_owned() } else { a })
                .collect();
            let input = stdin.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            tracing::trace!(target: "strata::ceph", ?argv, stdin = %input, "running");
        }
        let started = std::time::Instant::now();
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| fail(None, format!("cannot run {program}: {e} (is ceph-common installed?)")))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(&input).await.map_err(|e| fail(None, format!("{program}: {e}")))?;
        }
        // A little over the tools' own timeouts, so their message wins when
        // they give one.
        let deadline = self.connection.timeout + Duration::from_secs(2);
        let out = match tokio::time::timeout(deadline, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| fail(None, format!("{program}: {e}")))?,
            Err(_) => {
                tracing::debug!(target: "strata::ceph", call = %call, duration = ?started.elapsed(), "ceph call timed out");
                return Err(fail(
                    Some(110),
                    format!(
                        "no answer within {} s: the cluster is unreachable, or a pool is full (over its quota) and blocks writes",
                        deadline.as_secs()
                    ),
                ))
            }
        };
        tracing::debug!(target: "strata::ceph", call = %call, exit = ?out.status.code(), duration = ?started.elapsed(), "ceph call");
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.contains("did not load config file"))
            .unwrap_or("no message")
            .trim_start_matches("rbd: ")
            .to_owned();
        let errno = out.status.code();
        let message =
            if errno == Some(110) { format!("{message} (the cluster is unreachable, or a pool is full and blocks writes)") } else { message };
        Err(fail(errno, message))
    }

    async fn rbd_json<T: DeserializeOwned>(&self, args: &[&str]) -> ClientResult<T> {
        let mut full = args.to_vec();
        full.extend(["--format", "json"]);
        let out = self.run_rbd(&full).await?;
        parse(&format!("rbd {}", args.join(" ")), &out)
    }

    /// A monitor command that answers in JSON.
    async fn mon_json<T: DeserializeOwned>(&self, words: &[&str], mut command: Json) -> ClientResult<T> {
        command["format"] = json!("json");
        let out = self.run_mon(words, command).await?;
        parse(&format!("ceph {}", words.join(" ")), &out)
    }

    async fn rbd(&self, args: &[&str]) -> ClientResult<()> {
        self.run_rbd(args).await.map(drop)
    }

    async fn mon(&self, words: &[&str], command: Json) -> ClientResult<()> {
        self.run_mon(words, command).await.map(drop)
    }
}

fn parse<T: DeserializeOwned>(call: &str, out: &[u8]) -> ClientResult<T> {
    serde_json::from_slice(out).map_err(|e| ClientError { call: call.to_owned(), errno: None, message: format!("unexpected output: {e}") })
}

/// The interpreter named on the `ceph` CLI's `#!` line: the Python that has
/// this host's librados bindings (the first `python3` on PATH may be another
/// one). A `ceph` that is not a Python script (a wrapper) names none; then
/// the system's Python.
fn ceph_python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let from_shebang = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("ceph"))
            .find_map(|ceph| std::fs::read(ceph).ok())
            .and_then(|bytes| {
                let first = bytes.split(|b| *b == b'\n').next()?.to_vec();
                let line = String::from_utf8(first).ok()?;
                let interpreter = line.strip_prefix("#!")?.split_whitespace().next()?.to_owned();
                let is_python = Path::new(&interpreter).file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("python"));
                is_python.then_some(interpreter)
            });
        from_shebang.unwrap_or_else(|| if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3".to_owned() } else { "python3".to_owned() })
    })
}

/// The `rbd` commands that print progress (and accept `--no-progress`;
/// the others reject it).
fn reports_progress(command: &[&str]) -> bool {
    matches!(command, ["create" | "resize" | "flatten" | "rm", ..] | ["snap", "create" | "rm" | "rollback", ..] | ["trash", "rm", ..])
}

fn caps_args(caps: &BTreeMap<String, String>) -> Vec<&str> {
    caps.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]).collect()
}

#[async_trait]
impl CephClient for CliClient {
    async fn pools(&self) -> ClientResult<Vec<PoolInfo>> {
        self.mon_json(&["osd", "pool", "ls", "detail"], json!({"prefix": "osd pool ls", "detail": "detail"})).await
    }

    async fn pool_usage(&self) -> ClientResult<BTreeMap<String, PoolUsage>> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Df {
            pools: Vec<DfPool>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct DfPool {
            name: String,
            stats: DfStats,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct DfStats {
            stored: i64,
            max_avail: i64,
        }
        let df: Df = self.mon_json(&["df"], json!({"prefix": "df"})).await?;
        Ok(df.pools.into_iter().map(|p| (p.name, PoolUsage { stored: p.stats.stored, available: p.stats.max_avail })).collect())
    }

    async fn create_pool(&self, name: &str, pg_num: u32) -> ClientResult<()> {
        self.mon(&["osd", "pool", "create", name, &pg_num.to_string()], json!({"prefix": "osd pool create", "pool": name, "pg_num": pg_num}))
            .await
    }

    async fn pool_set(&self, name: &str, key: &str, value: &str) -> ClientResult<()> {
        self.mon(&["osd", "pool", "set", name, key, value], json!({"prefix": "osd pool set", "pool": name, "var": key, "val": value})).await
    }

    async fn pool_set_quota(&self, name: &str, field: &str, value: u64) -> ClientResult<()> {
        let value = value.to_string();
        self.mon(
            &["osd", "pool", "set-quota", name, field, &value],
            json!({"prefix": "osd pool set-quota", "pool": name, "field": field, "val": value}),
        )
        .await
    }

    async fn pool_application_enable(&self, name: &str, application: &str) -> ClientResult<()> {
        self.mon(
            &["osd", "pool", "application", "enable", name, application, "--yes-i-really-mean-it"],
            json!({"prefix": "osd pool application enable", "pool": name, "app": application, "yes_i_really_mean_it": true}),
        )
        .await
    }

    async fn pool_application_set(&self, name: &str, application: &str, key: &str, value: &str) -> ClientResult<()> {
        self.mon(
            &["osd", "pool", "application", "set", name, application, key, value],
            json!({"prefix": "osd pool application set", "pool": name, "app": application, "key": key, "value": value}),
        )
        .await
    }

    async fn rbd_pool_init(&self, name: &str) -> ClientResult<()> {
        self.rbd(&["pool", "init", name]).await
    }

    async fn delete_pool(&self, name: &str) -> ClientResult<()> {
        self.mon(
            &["osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it"],
            json!({"prefix": "osd pool delete", "pool": name, "pool2": name, "yes_i_really_really_mean_it": true}),
        )
        .await
    }

    async fn list_images(&self, pools: &[&str]) -> ClientResult<BTreeMap<String, Vec<ImageListing>>> {
        // Not a CLI command: named for messages and the debug log.
        let call = format!("list images of pools {}", pools.join(" "));
        let out = self.run_helper("images", call.clone(), json!(pools)).await?;
        parse(&call, &out)
    }

    async fn image_info(&self, spec: &str) -> ClientResult<ImageInfo> {
        self.rbd_json(&["info", spec]).await
    }

    async fn usage(&self, spec: &str) -> ClientResult<Vec<ImageUsage>> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Du {
            images: Vec<ImageUsage>,
        }
        let du: Du = self.rbd_json(&["du", spec]).await?;
        Ok(du.images)
    }

    async fn create_image(&self, image: &NewImage<'_>) -> ClientResult<()> {
        let spec = format!("{}/{}", image.pool, image.name);
        let size = format!("{}B", image.size);
        let mut args: Vec<String> = match image.clone_of {
            Some(parent) => vec!["clone".into(), parent.into(), spec],
            None => vec!["create".into(), "--size".into(), size, spec],
        };
        if let Some(features) = &image.features {
            for f in features {
                args.extend(["--image-feature".into(), f.clone()]);
            }
        }
        if let Some(object_size) = image.object_size {
            args.extend(["--object-size".into(), format!("{object_size}B")]);
        }
        if let Some(data_pool) = image.data_pool {
            args.extend(["--data-pool".into(), data_pool.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.rbd(&args).await
    }

    async fn resize(&self, spec: &str, size: u64, allow_shrink: bool) -> ClientResult<()> {
        let size = format!("{size}B");
        let mut args = vec!["resize", "--size", &size, spec];
        if allow_shrink {
            args.push("--allow-shrink");
        }
        self.rbd(&args).await
    }

    async fn flatten(&self, spec: &str) -> ClientResult<()> {
        self.rbd(&["flatten", spec]).await
    }

    async fn remove_image(&self, spec: &str) -> ClientResult<()> {
        self.rbd(&["rm", spec]).await
    }

    async fn rename(&self, spec: &str, to: &str) -> ClientResult<()> {
        let pool = spec.split('/').next().unwrap_or_default();
        self.rbd(&["rename", spec, &format!("{pool}/{to}")]).await
    }

    async fn meta_get(&self, spec: &str, key: &str) -> ClientResult<Option<String>> {
        match self.run_rbd(&["image-meta", "get", spec, key]).await {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_owned())),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn meta_set(&self, spec: &str, key: &str, value: &str) -> ClientResult<()> {
        self.rbd(&["image-meta", "set", spec, key, value]).await
    }

    async fn meta_list(&self, spec: &str) -> ClientResult<BTreeMap<String, String>> {
        self.rbd_json(&["image-meta", "list", spec]).await
    }

    async fn image_config(&self, spec: &str, key: &str, value: Option<&str>) -> ClientResult<()> {
        match value {
            Some(v) => self.rbd(&["config", "image", "set", spec, key, v]).await,
            None => match self.rbd(&["config", "image", "remove", spec, key]).await {
                Err(e) if e.is_missing() => Ok(()),
                other => other,
            },
        }
    }

    async fn snap_create(&self, spec: &str) -> ClientResult<()> {
        self.rbd(&["snap", "create", spec]).await
    }

    async fn snap_remove(&self, spec: &str) -> ClientResult<()> {
        self.rbd(&["snap", "rm", spec]).await
    }

    async fn snap_protect(&self, spec: &str, protect: bool) -> ClientResult<()> {
        self.rbd(&["snap", if protect { "protect" } else { "unprotect" }, spec]).await
    }

    async fn snap_rollback(&self, spec: &str) -> ClientResult<()> {
        self.rbd(&["snap", "rollback", spec]).await
    }

    async fn trash_move(&self, spec: &str) -> ClientResult<()> {
        self.rbd(&["trash", "mv", spec]).await
    }

    async fn trash_list(&self, pool: &str) -> ClientResult<Vec<(String, String)>> {
        #[derive(serde::Deserialize)]
        struct Entry {
            id: String,
            name: String,
        }
        let entries: Vec<Entry> = self.rbd_json(&["trash", "ls", "-p", pool]).await?;
        Ok(entries.into_iter().map(|e| (e.id, e.name)).collect())
    }

    async fn trash_restore(&self, pool: &str, id: &str, name: &str) -> ClientResult<()> {
        self.rbd(&["trash", "restore", &format!("{pool}/{id}"), "--image", name]).await
    }

    async fn trash_remove(&self, pool: &str, id: &str) -> ClientResult<()> {
        self.rbd(&["trash", "rm", &format!("{pool}/{id}")]).await
    }

    async fn auth_list(&self) -> ClientResult<Vec<AuthEntity>> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Dump {
            auth_dump: Vec<AuthEntity>,
        }
        let dump: Dump = self.mon_json(&["auth", "ls"], json!({"prefix": "auth ls"})).await?;
        Ok(dump.auth_dump)
    }

    async fn auth_get_or_create(&self, entity: &str, caps: &BTreeMap<String, String>) -> ClientResult<AuthEntity> {
        let mut words = vec!["auth", "get-or-create", entity];
        words.extend(caps_args(caps));
        let command = json!({"prefix": "auth get-or-create", "entity": entity, "caps": caps_args(caps)});
        let mut entities: Vec<AuthEntity> = self.mon_json(&words, command).await?;
        entities.pop().ok_or_else(|| ClientError {
            call: format!("ceph auth get-or-create {entity}"),
            errno: None,
            message: "no entity in the answer".into(),
        })
    }

    async fn auth_set_caps(&self, entity: &str, caps: &BTreeMap<String, String>) -> ClientResult<()> {
        let mut words = vec!["auth", "caps", entity];
        words.extend(caps_args(caps));
        self.mon(&words, json!({"prefix": "auth caps", "entity": entity, "caps": caps_args(caps)})).await
    }

    async fn auth_delete(&self, entity: &str) -> ClientResult<()> {
        self.mon(&["auth", "del", entity], json!({"prefix": "auth del", "entity": entity})).await
    }

    async fn cluster(&self) -> ClientResult<ClusterFacts> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Status {
            fsid: String,
            health: Health,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Health {
            status: String,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Df {
            stats: DfStats,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct DfStats {
            total_bytes: i64,
            total_avail_bytes: i64,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct MonMap {
            mons: Vec<Mon>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Mon {
            public_addrs: AddrVec,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct AddrVec {
            addrvec: Vec<Addr>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Addr {
            r#type: String,
            addr: String,
        }
        let (status, df, monmap) = tokio::try_join!(
            self.mon_json::<Status>(&["status"], json!({"prefix": "status"})),
            self.mon_json::<Df>(&["df"], json!({"prefix": "df"})),
            self.mon_json::<MonMap>(&["mon", "dump"], json!({"prefix": "mon dump"})),
        )?;
        // libvirt and qemu speak the v1 protocol address (host:port).
        let monitors = monmap
            .mons
            .iter()
            .filter_map(|m| m.public_addrs.addrvec.iter().find(|a| a.r#type == "v1").or(m.public_addrs.addrvec.first()))
            .map(|a| a.addr.clone())
            .collect();
        Ok(ClusterFacts {
            fsid: status.fsid,
            health: status.health.status,
            total_bytes: df.stats.total_bytes,
            available_bytes: df.stats.total_avail_bytes,
            monitors,
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
