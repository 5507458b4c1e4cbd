//! The operations the provider needs from a Ceph cluster, as a trait, and the
//! plain data they return. [`crate::cli::CliClient`] implements it with the
//! `rbd` and `ceph` command-line tools; an FFI backend (librbd/librados)
//! could implement it later without touching the resources.
//!
//! Only the fields the provider uses are parsed (serde with defaults), so
//! other Ceph releases with more or fewer fields still work.

use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A failed cluster call: what was asked, what Ceph said, and the errno (the
/// CLIs' exit status) when there is one.
#[derive(Debug, Clone)]
pub struct ClientError {
    /// The call, as a user could type it (never holds a secret).
    pub call: String,
    /// `None` when the call timed out or could not run at all.
    pub errno: Option<i32>,
    pub message: String,
}

impl ClientError {
    pub fn is_missing(&self) -> bool {
        self.errno == Some(ENOENT)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(code) => write!(f, "`{}` failed ({}): {}", self.call, errno_meaning(code), self.message),
            None => write!(f, "`{}` failed: {}", self.call, self.message),
        }
    }
}

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EEXIST: i32 = 17;

/// What an errno means for the objects the provider manages.
pub fn errno_meaning(code: i32) -> &'static str {
    match code {
        EPERM => "EPERM: not permitted",
        ENOENT => "ENOENT: does not exist",
        5 => "EIO: I/O error",
        13 => "EACCES: permission denied; check the client's caps",
        16 => "EBUSY: in use (watched, locked, or has children)",
        EEXIST => "EEXIST: already exists",
        22 => "EINVAL: invalid argument",
        28 => "ENOSPC: no space left",
        34 => "ERANGE: out of range",
        39 => "ENOTEMPTY: has snapshots or linked clones",
        95 => "EOPNOTSUPP: not supported",
        110 => "ETIMEDOUT: timed out",
        122 => "EDQUOT: quota exceeded",
        _ => "error",
    }
}

pub type ClientResult<T> = std::result::Result<T, ClientError>;

/// One pool as `ceph osd pool ls detail` describes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PoolInfo {
    pub pool_id: i64,
    pub pool_name: String,
    pub size: i64,
    pub min_size: i64,
    pub pg_num: i64,
    pub quota_max_bytes: i64,
    pub quota_max_objects: i64,
    pub flags_names: String,
    /// application → key → value
    pub application_metadata: BTreeMap<String, BTreeMap<String, String>>,
}

/// A pool's usage from `ceph df`.
#[derive(Debug, Clone, Default)]
pub struct PoolUsage {
    pub stored: i64,
    pub available: i64,
}

/// One image of a pool listing, with what a refresh needs to know about
/// it: everything its state holds but usage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageListing {
    pub name: String,
    pub id: String,
    pub size: i64,
    pub object_size: i64,
    pub features: Vec<String>,
    pub data_pool: Option<String>,
    pub parent: Option<ParentSpec>,
    /// image-meta: the `strata-id` tag, and per-image configuration
    /// overrides as `conf_<option>` (QoS limits among them).
    pub meta: BTreeMap<String, String>,
    pub snapshots: Vec<SnapshotListing>,
}

/// One snapshot of an image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SnapshotListing {
    pub name: String,
    /// The image's size when the snapshot was taken.
    pub size: i64,
    pub protected: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ParentSpec {
    pub pool: String,
    pub image: String,
    pub snapshot: String,
}

impl ParentSpec {
    pub fn spec(&self) -> String {
        format!("{}/{}@{}", self.pool, self.image, self.snapshot)
    }
}

/// `rbd info`: what the listing does not say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageInfo {
    pub name: String,
    pub id: String,
    pub size: i64,
    pub object_size: i64,
    pub features: Vec<String>,
    pub data_pool: Option<String>,
    pub parent: Option<ParentSpec>,
}

/// One image's usage from `rbd du`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageUsage {
    pub name: String,
    pub snapshot: Option<String>,
    pub provisioned_size: i64,
    pub used_size: i64,
}

/// What a new image looks like; `clone_of` makes it a thin clone.
#[derive(Debug, Clone, Default)]
pub struct NewImage<'a> {
    pub pool: &'a str,
    pub name: &'a str,
    pub size: u64,
    pub features: Option<Vec<String>>,
    pub object_size: Option<u64>,
    pub data_pool: Option<&'a str>,
    pub clone_of: Option<&'a str>,
}

/// A cephx entity from `ceph auth ls` / `auth get`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthEntity {
    pub entity: String,
    pub key: String,
    pub caps: BTreeMap<String, String>,
}

/// Facts about the cluster for the `ceph_cluster` data source.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    pub fsid: String,
    pub health: String,
    pub total_bytes: i64,
    pub available_bytes: i64,
    pub monitors: Vec<String>,
}

/// The cluster operations the resources are built from.
#[async_trait]
pub trait CephClient: Send + Sync {
    // Pools.
    async fn pools(&self) -> ClientResult<Vec<PoolInfo>>;
    async fn pool_usage(&self) -> ClientResult<BTreeMap<String, PoolUsage>>;
    async fn create_pool(&self, name: &str, pg_num: u32) -> ClientResult<()>;
    async fn pool_set(&self, name: &str, key: &str, value: &str) -> ClientResult<()>;
    async fn pool_set_quota(&self, name: &str, field: &str, value: u64) -> ClientResult<()>;
    async fn pool_application_enable(&self, name: &str, application: &str) -> ClientResult<()>;
    async fn pool_application_set(&self, name: &str, application: &str, key: &str, value: &str) -> ClientResult<()>;
    async fn rbd_pool_init(&self, name: &str) -> ClientResult<()>;
    async fn delete_pool(&self, name: &str) -> ClientResult<()>;

    // Images and snapshots (`spec` is `pool/image` or `pool/image@snap`).
    /// Every image (with its snapshots) of each pool, in one call; a pool
    /// that does not exist is left out.
    async fn list_images(&self, pools: &[&str]) -> ClientResult<BTreeMap<String, Vec<ImageListing>>>;
    async fn image_info(&self, spec: &str) -> ClientResult<ImageInfo>;
    /// Provisioned and used bytes of one image (`pool/image`) and its snapshots.
    async fn usage(&self, spec: &str) -> ClientResult<Vec<ImageUsage>>;
    async fn create_image(&self, image: &NewImage<'_>) -> ClientResult<()>;
    async fn resize(&self, spec: &str, size: u64, allow_shrink: bool) -> ClientResult<()>;
    async fn flatten(&self, spec: &str) -> ClientResult<()>;
    async fn remove_image(&self, spec: &str) -> ClientResult<()>;
    /// Renames an image within its pool (`to` is the new name only).
    async fn rename(&self, spec: &str, to: &str) -> ClientResult<()>;
    async fn meta_get(&self, spec: &str, key: &str) -> ClientResult<Option<String>>;
    async fn meta_set(&self, spec: &str, key: &str, value: &str) -> ClientResult<()>;
    /// All image-meta of one image.
    async fn meta_list(&self, spec: &str) -> ClientResult<BTreeMap<String, String>>;
    /// Per-image configuration overrides (QoS limits); `None` removes one.
    async fn image_config(&self, spec: &str, key: &str, value: Option<&str>) -> ClientResult<()>;
    async fn snap_create(&self, spec: &str) -> ClientResult<()>;
    async fn snap_remove(&self, spec: &str) -> ClientResult<()>;
    async fn snap_protect(&self, spec: &str, protect: bool) -> ClientResult<()>;
    async fn snap_rollback(&self, spec: &str) -> ClientResult<()>;
    /// Moves an image to the pool's trash; it keeps its id.
    async fn trash_move(&self, spec: &str) -> ClientResult<()>;
    /// Image ids in the pool's trash, with their names.
    async fn trash_list(&self, pool: &str) -> ClientResult<Vec<(String, String)>>;
    async fn trash_restore(&self, pool: &str, id: &str, name: &str) -> ClientResult<()>;
    async fn trash_remove(&self, pool: &str, id: &str) -> ClientResult<()>;

    // cephx.
    async fn auth_list(&self) -> ClientResult<Vec<AuthEntity>>;
    async fn auth_get_or_create(&self, entity: &str, caps: &BTreeMap<String, String>) -> ClientResult<AuthEntity>;
    async fn auth_set_caps(&self, entity: &str, caps: &BTreeMap<String, String>) -> ClientResult<()>;
    async fn auth_delete(&self, entity: &str) -> ClientResult<()>;

    async fn cluster(&self) -> ClientResult<ClusterFacts>;

    /// How many cluster calls this client made (for the benchmarks).
    fn calls(&self) -> u64;
}
