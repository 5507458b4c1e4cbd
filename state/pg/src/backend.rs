//! The PostgreSQL [`Backend`]: the workspaces of one schema, each a row of
//! `workspaces` with its own versions, journal, history and lock.

use crate::schema::{check_schema_name, Sql};
use crate::session::Session;
use crate::{lock, PgConfig, PgStore};
use std::sync::Arc;
use strata_state::{check_workspace_name, Access, Backend, Encryption, Result, StateError, StateStore, DEFAULT_WORKSPACE};

/// The workspaces of one schema of a PostgreSQL database.
pub struct PgBackend {
    conn_str: String,
    schema: String,
    /// For listing, creating and deleting (stores have sessions of their own).
    session: Session,
    sql: Arc<Sql>,
    /// What every workspace's payloads are sealed with.
    enc: Arc<Encryption>,
}

impl PgBackend {
    /// Connects on first use.
    pub fn new(conn_str: &str, schema: &str) -> Result<PgBackend> {
        check_schema_name(schema)?;
        Ok(PgBackend {
            conn_str: conn_str.to_owned(),
            schema: schema.to_owned(),
            session: Session::new(conn_str)?,
            sql: Arc::new(Sql::new(schema)),
            enc: Encryption::none(),
        })
    }

    /// The same backend, every workspace's payloads encrypted by `enc`.
    pub fn with_encryption(mut self, enc: Arc<Encryption>) -> PgBackend {
        self.enc = enc;
        self
    }

    fn config(&self, workspace: &str) -> PgConfig {
        PgConfig { conn_str: self.conn_str.clone(), schema: self.schema.clone(), workspace: workspace.to_owned() }
    }
}

impl Backend for PgBackend {
    fn kind(&self) -> &'static str {
        "pg"
    }

    fn workspaces(&self) -> Result<Vec<String>> {
        let sql = self.sql.clone();
        let mut names: Vec<String> = self.session.run(move |db| {
            if !sql.exists(db)? {
                return Ok(Vec::new());
            }
            let rows = db
                .client
                .query(&format!("SELECT name FROM \"{}\".workspaces WHERE name <> $1 ORDER BY name", sql.schema), &[&DEFAULT_WORKSPACE])
                .map_err(db.err())?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        names.insert(0, DEFAULT_WORKSPACE.to_owned());
        Ok(names)
    }

    fn open(&self, workspace: &str, access: Access) -> Result<Arc<dyn StateStore>> {
        check_workspace_name(workspace)?;
        let config = self.config(workspace);
        let store = match access {
            // Postgres keeps its own buffers: reading mostly changes nothing here.
            Access::ReadWrite | Access::ReadMostly => PgStore::new(&config)?,
            Access::ReadOnly => PgStore::read_only(&config)?,
        };
        Ok(Arc::new(store.with_encryption(self.enc.clone())))
    }

    fn create_workspace(&self, workspace: &str) -> Result<()> {
        check_workspace_name(workspace)?;
        let (sql, name) = (self.sql.clone(), workspace.to_owned());
        let created = self.session.run(move |db| {
            sql.create(db)?;
            let n = db.client.execute(&sql.ws_insert, &[&name, &uuid::Uuid::new_v4().to_string(), &crate::now()]).map_err(db.err())?;
            Ok(n == 1)
        })?;
        if !created || workspace == DEFAULT_WORKSPACE {
            return Err(StateError::WorkspaceExists(workspace.to_owned()));
        }
        Ok(())
    }

    fn delete_workspace(&self, workspace: &str) -> Result<()> {
        check_workspace_name(workspace)?;
        if workspace == DEFAULT_WORKSPACE {
            return Err(StateError::DefaultWorkspace);
        }
        let (sql, name) = (self.sql.clone(), workspace.to_owned());
        let key = lock::advisory_key(&self.schema, workspace);
        self.session.run(move |db| {
            if !sql.exists(db)? || db.client.query_opt(&sql.ws_select, &[&name]).map_err(db.err())?.is_none() {
                return Err(StateError::NoSuchWorkspace(name));
            }
            // Not under a running apply: take its lock for the delete.
            let got: bool = db.client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).map_err(db.err())?.get(0);
            if !got {
                return Err(StateError::Database(format!("workspace {name:?} is locked by a running operation; it was not deleted")));
            }
            let deleted = (|| {
                let err = crate::session::db_err(&db.target);
                let mut tx = db.client.transaction().map_err(&err)?;
                tx.execute(&format!("DELETE FROM \"{}\".workspaces WHERE name = $1", sql.schema), &[&name]).map_err(&err)?;
                tx.execute(&sql.lock_delete, &[&name]).map_err(&err)?;
                tx.commit().map_err(&err)
            })();
            let _ = db.client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
            deleted
        })
    }
}
