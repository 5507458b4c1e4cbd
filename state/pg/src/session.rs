//! One PostgreSQL session, owned by a thread of its own.
//!
//! The synchronous `postgres` client drives its own small runtime and may
//! not be used from inside the engine's tokio runtime, so every call is
//! handed to this thread and its answer waited for. One session per store
//! also makes the session advisory lock a fence: the lock and every write go
//! through the same connection, and a lost connection is never silently
//! replaced (the lock went with it), so a store that lost its session
//! writes nothing more.

use postgres::config::Host;
use postgres::{Client, Config, Statement};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use crate::tls::Tls;
use strata_state::{Result, StateError};

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// The handle the store calls through.
pub(crate) struct Session {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// `host:port/dbname`, for messages (never the connection string, which
    /// may hold a password).
    pub target: String,
}

/// The thread's side: the client, once connected, and why it was lost.
pub(crate) struct Worker {
    config: Config,
    tls: Tls,
    target: String,
    db: Option<Db>,
    lost: Option<String>,
}

/// A connected client and the statements prepared on it: each SQL text is
/// parsed by the server once per session, not once per call.
pub(crate) struct Db {
    pub client: Client,
    prepared: HashMap<String, Statement>,
    pub target: String,
}

impl Db {
    /// The prepared statement for `sql` (prepared on first use).
    pub fn st(&mut self, sql: &str) -> Result<Statement> {
        if let Some(st) = self.prepared.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).map_err(db_err(&self.target))?;
        self.prepared.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub fn err(&self) -> impl Fn(postgres::Error) -> StateError + '_ {
        db_err(&self.target)
    }
}

impl Session {
    /// Parses the connection string; connects on first use.
    pub fn new(conn_str: &str) -> Result<Session> {
        let (conn_str, tls) = Tls::split(conn_str)?;
        let mut config: Config =
            conn_str.parse().map_err(|e| StateError::Database(format!("the PostgreSQL connection string is not valid: {e}")))?;
        config.ssl_mode(tls.driver_mode());
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(15));
        }
        if config.get_application_name().is_none() {
            config.application_name("strata");
        }
        let target = describe_target(&config);
        let (tx, rx) = mpsc::channel::<Job>();
        let mut worker = Worker { config, tls, target: target.clone(), db: None, lost: None };
        std::thread::Builder::new()
            .name("strata-pg".into())
            .spawn(move || {
                for job in rx {
                    job(&mut worker);
                }
            })
            .map_err(|source| StateError::Io { context: "start the PostgreSQL session thread".into(), source })?;
        Ok(Session { jobs: Mutex::new(tx), target })
    }

    /// Runs `f` on the session's thread with a connected client.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Db) -> Result<T> + Send + 'static) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |worker: &mut Worker| {
            let _ = reply.send(worker.call(f));
        });
        self.jobs
            .lock()
            .map_err(|_| StateError::Database("the PostgreSQL session thread failed".into()))?
            .send(job)
            .map_err(|_| StateError::Database("the PostgreSQL session thread ended".into()))?;
        answer.recv().map_err(|_| StateError::Database("the PostgreSQL session thread ended".into()))?
    }
}

impl Worker {
    fn call<T>(&mut self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        if let Some(why) = &self.lost {
            return Err(StateError::Database(why.clone()));
        }
        if self.db.is_none() {
            let connector = self.tls.connector()?;
            let client = self.config.connect(postgres_native_tls::MakeTlsConnector::new(connector)).map_err(|e| {
                let said = message(&e);
                let hint = self.tls.explain(&said).map(|h| format!("; {h}")).unwrap_or_default();
                StateError::Database(format!("cannot connect to PostgreSQL at {}: {said}{hint}", self.target))
            })?;
            self.db = Some(Db { client, prepared: HashMap::new(), target: self.target.clone() });
        }
        let db = self.db.as_mut().expect("connected above");
        let result = f(db);
        if db.client.is_closed() {
            let why = format!(
                "lost the connection to PostgreSQL at {}; the state lock went with it, so this run writes nothing more. \
                 Run the command again: it reconciles what this run left unfinished",
                self.target
            );
            self.lost = Some(why.clone());
            self.db = None;
            return Err(StateError::Database(match result {
                Err(StateError::Database(e)) => format!("{why} ({e})"),
                _ => why,
            }));
        }
        result
    }
}

/// What the server said, without the driver's "db error:" wrapping.
pub(crate) fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                m.push_str(&format!(" ({detail})"));
            }
            m
        }
        None => {
            // The driver's own text leaves out why (the TLS library's
            // reason, the socket's error): add the whole chain.
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !m.contains(&text) {
                    m.push_str(&format!(": {text}"));
                }
                source = cause.source();
            }
            m
        }
    }
}

/// A driver error as a state error naming the server.
pub(crate) fn db_err(target: &str) -> impl Fn(postgres::Error) -> StateError + '_ {
    move |e| StateError::Database(format!("PostgreSQL at {target}: {}", message(&e)))
}

/// A read-only transaction that sees one consistent version of the state.
pub(crate) fn read_tx<'a>(client: &'a mut Client, target: &str) -> Result<postgres::Transaction<'a>> {
    client
        .build_transaction()
        .read_only(true)
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .map_err(db_err(target))
}

fn describe_target(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}
