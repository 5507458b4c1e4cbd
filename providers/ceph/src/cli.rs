//! [`CephClient`] on the `rbd` and `ceph` command-line tools.
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
use std::collections::BTreeMap;
use std::path::PathBuf;
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

#[derive(Clone, Copy)]
enum Tool {
    Rbd,
    Ceph,
}

impl CliClient {
    pub fn new(connection: Connection) -> CliClient {
        CliClient { connection, calls: AtomicU64::new(0) }
    }

    fn base_args(&self, tool: Tool, command: &[&str]) -> Vec<String> {
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
        let secs = c.timeout.as_secs().max(1).to_string();
        match tool {
            // The tools' own timeouts turn a hang into ETIMEDOUT with a
            // message; the kill in `run` is the backstop.
            Tool::Rbd => {
                args.extend(
                    ["--client-mount-timeout", &secs, "--rados-osd-op-timeout", &secs, "--rados-mon-op-timeout", &secs].map(str::to_owned),
                );
                if reports_progress(command) {
                    args.push("--no-progress".to_owned());
                }
            }
            Tool::Ceph => args.extend(["--connect-timeout".to_owned(), secs]),
        }
        args
    }

    /// Runs one call; returns its stdout.
    async fn run(&self, tool: Tool, args: &[&str]) -> ClientResult<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let program = match tool {
            Tool::Rbd => "rbd",
            Tool::Ceph => "ceph",
        };
        let call = format!("{program} {}", args.join(" "));
        let fail = |errno, message: String| ClientError { call: call.clone(), errno, message };
        let mut cmd = Command::new(program);
        cmd.args(self.base_args(tool, args))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| fail(None, format!("cannot run {program}: {e} (is ceph-common installed?)")))?;
        // A little over the tools' own timeouts, so their message wins when
        // they give one.
        let deadline = self.connection.timeout + Duration::from_secs(2);
        let out = match tokio::time::timeout(deadline, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| fail(None, format!("{program}: {e}")))?,
            Err(_) => {
                return Err(fail(
                    Some(110),
                    format!(
                        "no answer within {} s: the cluster is unreachable, or a pool is full (over its quota) and blocks writes",
                        deadline.as_secs()
                    ),
                ))
            }
        };
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
        let message = if errno == Some(110) {
            format!("{message} (the cluster is unreachable, or a pool is full and blocks writes)")
        } else {
            message
        };
        Err(fail(errno, message))
    }

    async fn json<T: DeserializeOwned>(&self, tool: Tool, args: &[&str]) -> ClientResult<T> {
        let mut full = args.to_vec();
        full.extend(["--format", "json"]);
        let out = self.run(tool, &full).await?;
        serde_json::from_slice(&out).map_err(|e| ClientError {
            call: format!("{} {}", if matches!(tool, Tool::Rbd) { "rbd" } else { "ceph" }, args.join(" ")),
            errno: None,
            message: format!("unexpected output: {e}"),
        })
    }

    async fn rbd(&self, args: &[&str]) -> ClientResult<()> {
        self.run(Tool::Rbd, args).await.map(drop)
    }

    async fn ceph(&self, args: &[&str]) -> ClientResult<()> {
        self.run(Tool::Ceph, args).await.map(drop)
    }
}

/// The `rbd` commands that print progress (and accept `--no-progress`;
/// the others reject it).
fn reports_progress(command: &[&str]) -> bool {
    matches!(
        command,
        ["create" | "resize" | "flatten" | "rm", ..] | ["snap", "create" | "rm" | "rollback", ..] | ["trash", "rm", ..]
    )
}

fn caps_args(caps: &BTreeMap<String, String>) -> Vec<&str> {
    caps.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]).collect()
}

#[async_trait]
impl CephClient for CliClient {
    async fn pools(&self) -> ClientResult<Vec<PoolInfo>> {
        self.json(Tool::Ceph, &["osd", "pool", "ls", "detail"]).await
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
        let df: Df = self.json(Tool::Ceph, &["df"]).await?;
        Ok(df.pools.into_iter().map(|p| (p.name, PoolUsage { stored: p.stats.stored, available: p.stats.max_avail })).collect())
    }

    async fn create_pool(&self, name: &str, pg_num: u32) -> ClientResult<()> {
        self.ceph(&["osd", "pool", "create", name, &pg_num.to_string()]).await
    }

    async fn pool_set(&self, name: &str, key: &str, value: &str) -> ClientResult<()> {
        self.ceph(&["osd", "pool", "set", name, key, value]).await
    }

    async fn pool_set_quota(&self, name: &str, field: &str, value: u64) -> ClientResult<()> {
        self.ceph(&["osd", "pool", "set-quota", name, field, &value.to_string()]).await
    }

    async fn pool_application_enable(&self, name: &str, application: &str) -> ClientResult<()> {
        self.ceph(&["osd", "pool", "application", "enable", name, application, "--yes-i-really-mean-it"]).await
    }

    async fn pool_application_set(&self, name: &str, application: &str, key: &str, value: &str) -> ClientResult<()> {
        self.ceph(&["osd", "pool", "application", "set", name, application, key, value]).await
    }

    async fn rbd_pool_init(&self, name: &str) -> ClientResult<()> {
        self.rbd(&["pool", "init", name]).await
    }

    async fn delete_pool(&self, name: &str) -> ClientResult<()> {
        self.ceph(&["osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it"]).await
    }

    async fn list(&self, pool: &str) -> ClientResult<Vec<Listing>> {
        self.json(Tool::Rbd, &["ls", "-l", "-p", pool]).await
    }

    async fn image_info(&self, spec: &str) -> ClientResult<ImageInfo> {
        self.json(Tool::Rbd, &["info", spec]).await
    }

    async fn usage(&self, spec: &str) -> ClientResult<Vec<ImageUsage>> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Du {
            images: Vec<ImageUsage>,
        }
        let du: Du = self.json(Tool::Rbd, &["du", spec]).await?;
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
        match self.run(Tool::Rbd, &["image-meta", "get", spec, key]).await {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_owned())),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn meta_set(&self, spec: &str, key: &str, value: &str) -> ClientResult<()> {
        self.rbd(&["image-meta", "set", spec, key, value]).await
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
        let entries: Vec<Entry> = self.json(Tool::Rbd, &["trash", "ls", "-p", pool]).await?;
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
        let dump: Dump = self.json(Tool::Ceph, &["auth", "ls"]).await?;
        Ok(dump.auth_dump)
    }

    async fn auth_get_or_create(&self, entity: &str, caps: &BTreeMap<String, String>) -> ClientResult<AuthEntity> {
        let mut args = vec!["auth", "get-or-create", entity];
        args.extend(caps_args(caps));
        let mut entities: Vec<AuthEntity> = self.json(Tool::Ceph, &args).await?;
        entities.pop().ok_or_else(|| ClientError {
            call: format!("ceph auth get-or-create {entity}"),
            errno: None,
            message: "no entity in the answer".into(),
        })
    }

    async fn auth_set_caps(&self, entity: &str, caps: &BTreeMap<String, String>) -> ClientResult<()> {
        let mut args = vec!["auth", "caps", entity];
        args.extend(caps_args(caps));
        self.ceph(&args).await
    }

    async fn auth_delete(&self, entity: &str) -> ClientResult<()> {
        self.ceph(&["auth", "del", entity]).await
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
            self.json::<Status>(Tool::Ceph, &["status"]),
            self.json::<Df>(Tool::Ceph, &["df"]),
            self.json::<MonMap>(Tool::Ceph, &["mon", "dump"]),
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
