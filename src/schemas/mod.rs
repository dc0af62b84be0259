//! The event type catalog (`EVENTFEED_SCHEMAS`): one JSON Schema per event
//! type, compiled once, checked against every append's `data`, and reloaded
//! on `SIGHUP` without stopping. [`Schemas`] is the live handle the server
//! shares; [`Catalog`] is one loaded version of the directory.

mod background;
mod load;

pub mod check;
pub mod typescript;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::error::{Error, Nonconforming};

pub use background::start;
pub use load::{LoadError, type_of_file};

/// One type's schema, as its file holds it, with its compiled validator.
#[derive(Debug)]
pub struct TypeSchema {
    /// The whole file: what `GET /api/types` shows.
    pub schema: Value,
    /// The schema's top-level `description`, when it is a string.
    pub description: Option<String>,
    /// The schema's top-level `examples`: each one conforms to it.
    pub examples: Vec<Value>,
    validator: jsonschema::Validator,
}

/// The schemas of one reading of the directory, by event type.
#[derive(Debug)]
pub struct Catalog {
    types: BTreeMap<String, TypeSchema>,
    /// Types without a schema are refused.
    closed: bool,
}

impl Catalog {
    /// No schemas: every type is accepted unless `closed`.
    pub fn empty(closed: bool) -> Self {
        Catalog { types: BTreeMap::new(), closed }
    }

    /// Reads every `*.json` file of `dir`; the first bad one fails it all.
    pub fn load(dir: &Path, closed: bool) -> Result<Self, LoadError> {
        Ok(Catalog { types: load::read_dir(dir)?, closed })
    }

    /// The catalog `dir` names, or the empty one when there is no directory.
    pub fn load_optional(dir: Option<&Path>, closed: bool) -> Result<Self, LoadError> {
        dir.map_or_else(|| Ok(Catalog::empty(closed)), |dir| Catalog::load(dir, closed))
    }

    pub fn closed(&self) -> bool {
        self.closed
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    pub fn get(&self, event_type: &str) -> Option<&TypeSchema> {
        self.types.get(event_type)
    }

    /// Every type with its schema, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TypeSchema)> {
        self.types.iter().map(|(name, schema)| (name.as_str(), schema))
    }

    /// Whether an event of `event_type` with `data` may be appended: it
    /// conforms to its type's schema, or its type has none and the catalog
    /// is open.
    pub fn check(&self, event_type: &str, data: &Value) -> Result<(), Error> {
        match self.types.get(event_type) {
            Some(schema) => schema.check(data).map_err(|found| Error::Nonconforming(Box::new(found.of(event_type)))),
            None if self.closed => Err(Error::Invalid(format!(
                "type {event_type} has no schema, and only types with one are accepted (EVENTFEED_SCHEMAS_CLOSED)"
            ))),
            None => Ok(()),
        }
    }
}

/// Where `data` broke its schema: the first failing location and rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// A JSON pointer into `data` (`""` is `data` itself).
    pub path: String,
    /// The schema keyword that failed, e.g. `minimum` or `required`.
    pub rule: String,
    /// The validator's own words.
    pub detail: String,
}

impl Violation {
    fn of(self, event_type: &str) -> Nonconforming {
        let at = if self.path.is_empty() { "data".to_owned() } else { format!("data at {}", self.path) };
        Nonconforming {
            index: None,
            message: format!("{at} does not conform to the schema of {event_type} ({}): {}", self.rule, self.detail),
            path: self.path,
            rule: self.rule,
        }
    }
}

impl TypeSchema {
    /// The first way `data` breaks the schema, if any.
    pub fn check(&self, data: &Value) -> Result<(), Violation> {
        let Err(error) = self.validator.validate(data) else { return Ok(()) };
        let mut path = error.instance_path().to_string();
        // A missing property is best named where it should be.
        if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind()
            && let Some(name) = property.as_str()
        {
            path.push('/');
            path.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        Err(Violation { path, rule: error.kind().keyword().to_owned(), detail: error.to_string() })
    }
}

/// The live catalog: the one appends check against, replaced whole by a
/// successful reload.
pub struct Schemas {
    current: RwLock<Arc<Catalog>>,
    dir: Option<PathBuf>,
    closed: bool,
}

impl Schemas {
    /// Loads the catalog `dir` names (none: an empty one).
    pub fn load(dir: Option<PathBuf>, closed: bool) -> Result<Self, LoadError> {
        let catalog = Catalog::load_optional(dir.as_deref(), closed)?;
        Ok(Schemas { current: RwLock::new(Arc::new(catalog)), dir, closed })
    }

    /// The catalog in force now.
    pub fn current(&self) -> Arc<Catalog> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the directory again. A bad file leaves the catalog in force as it is.
    pub fn reload(&self) -> Result<Arc<Catalog>, LoadError> {
        let fresh = Arc::new(Catalog::load_optional(self.dir.as_deref(), self.closed)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests;
