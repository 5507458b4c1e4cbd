//! Strata: declarative infrastructure as code.
//!
//! HCL configuration in, a plan out, applied through providers with a
//! durable journal and rollback. See ARCHITECTURE.md for the map; in short,
//! the layers are, from the user inwards:
//!
//! - [`commands`]: the CLI, thin wrappers that parse flags and call [`ops`];
//! - [`output`]: the single output channel (human, plain or JSON);
//! - [`ops`]: operations (plan, apply, import, state...) that put the layers
//!   together and are the only engine code that does I/O;
//! - [`plan`]: the pure planner: configuration + state + schemas → plan;
//! - [`graph`]: the dependency graph of resource instances;
//! - [`apply`]: executing a plan on that graph with a journal and rollback;
//! - [`config`]: the configuration language;
//! - [`redact`]: keeping secrets out of error messages.

pub mod addr;
pub mod backend;
pub mod config;
pub mod graph;
pub mod plan;
pub mod apply;
pub mod ops;
pub mod output;
pub mod private_file;
pub mod providers;
pub mod redact;
pub mod commands;
