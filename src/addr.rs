//! Addresses of resources and their instances, written as in Terraform:
//! `strata_data.web`, `strata_data.web[0]`, `data.kvm_host.this`,
//! `strata_data.web["eu"]`, `module.net.kvm_network.lan`,
//! `module.tier["db"].strata_data.vm[1]`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Managed,
    Data,
}

/// A `resource` or `data` block, within its module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceAddr {
    pub mode: Mode,
    pub type_name: String,
    pub name: String,
}

impl ResourceAddr {
    pub fn new(mode: Mode, type_name: &str, name: &str) -> ResourceAddr {
        ResourceAddr { mode, type_name: type_name.to_owned(), name: name.to_owned() }
    }
    pub fn instance(&self, key: InstanceKey) -> InstanceAddr {
        InstanceAddr { module: ModuleInstance::root(), resource: self.clone(), key }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Pieces written one by one: a plan formats every address, and
        // `write!` parses its format string each time.
        if self.mode == Mode::Data {
            f.write_str("data.")?;
        }
        f.write_str(&self.type_name)?;
        f.write_str(".")?;
        f.write_str(&self.name)
    }
}

/// Which instance of an expanded block: none for a block without `count` or
/// `for_each`, an index for `count`, a key for `for_each`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum InstanceKey {
    None,
    Index(i64),
    Key(String),
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::None => Ok(()),
            InstanceKey::Index(i) => write!(f, "[{i}]"),
            InstanceKey::Key(k) => write!(f, "[{}]", serde_json::to_string(k).expect("strings serialize")),
        }
    }
}

/// A module instance: the path of module calls (with their instance keys)
/// from the root. The root module is the empty path.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ModuleInstance(pub Vec<(String, InstanceKey)>);

impl ModuleInstance {
    pub fn root() -> ModuleInstance {
        ModuleInstance(Vec::new())
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
    pub fn child(&self, name: &str, key: InstanceKey) -> ModuleInstance {
        let mut path = self.0.clone();
        path.push((name.to_owned(), key));
        ModuleInstance(path)
    }
    pub fn parent(&self) -> Option<(ModuleInstance, &str, &InstanceKey)> {
        let ((name, key), rest) = self.0.split_last()?;
        Some((ModuleInstance(rest.to_vec()), name, key))
    }
    /// The module's path without instance keys (which configuration it runs).
    pub fn static_path(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
}

impl fmt::Display for ModuleInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, key)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "module.{name}{key}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceAddr {
    pub module: ModuleInstance,
    pub resource: ResourceAddr,
    pub key: InstanceKey,
}

impl InstanceAddr {
    pub fn in_module(module: &ModuleInstance, resource: &ResourceAddr, key: InstanceKey) -> InstanceAddr {
        InstanceAddr { module: module.clone(), resource: resource.clone(), key }
    }
}

impl fmt::Display for InstanceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.module.is_root() {
            fmt::Display::fmt(&self.module, f)?;
            f.write_str(".")?;
        }
        fmt::Display::fmt(&self.resource, f)?;
        fmt::Display::fmt(&self.key, f)
    }
}

/// What `-target`, `-exclude`, `-replace`, `moved` and the `state` commands
/// accept: a module (or one of its instances), a resource in it, or one
/// instance of that resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Module calls; `None` as key means "every instance of that call".
    pub module: Vec<(String, Option<InstanceKey>)>,
    pub resource: Option<ResourceAddr>,
    /// `None`: every instance of the resource.
    pub key: Option<InstanceKey>,
}

impl Target {
    pub fn matches(&self, addr: &InstanceAddr) -> bool {
        if addr.module.0.len() < self.module.len() {
            return false;
        }
        let module_matches = self.module.iter().zip(&addr.module.0).all(|((n, k), (an, ak))| n == an && k.as_ref().is_none_or(|k| k == ak));
        if !module_matches {
            return false;
        }
        match &self.resource {
            None => true,
            Some(r) => {
                addr.module.0.len() == self.module.len() && &addr.resource == r && self.key.as_ref().is_none_or(|k| *k == addr.key)
            }
        }
    }

    /// An exact instance address, if the target names exactly one.
    pub fn as_instance(&self) -> Option<InstanceAddr> {
        let resource = self.resource.clone()?;
        let module = self.module.iter().map(|(n, k)| Some((n.clone(), k.clone()?))).collect::<Option<Vec<_>>>()?;
        Some(InstanceAddr { module: ModuleInstance(module), resource, key: self.key.clone().unwrap_or(InstanceKey::None) })
    }

    /// True for a whole resource (all its instances) in one module instance.
    pub fn is_whole_resource(&self) -> bool {
        self.resource.is_some() && self.key.is_none()
    }
}

impl From<InstanceAddr> for Target {
    fn from(a: InstanceAddr) -> Target {
        Target {
            module: a.module.0.into_iter().map(|(n, k)| (n, Some(k))).collect(),
            resource: Some(a.resource),
            key: Some(a.key),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, key) in &self.module {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            write!(f, "module.{name}")?;
            if let Some(k) = key {
                write!(f, "{k}")?;
            }
        }
        if let Some(r) = &self.resource {
            if !first {
                f.write_str(".")?;
            }
            write!(f, "{r}")?;
            if let Some(k) = &self.key {
                write!(f, "{k}")?;
            }
        }
        Ok(())
    }
}

/// Splits an address into `(name, key)` segments: `a.b["x.y"][0]`...
fn segments(s: &str) -> Option<Vec<(String, Option<InstanceKey>)>> {
    let mut out: Vec<(String, Option<InstanceKey>)> = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-') {
            i += 1;
        }
        if i == start {
            return None;
        }
        let name = s[start..i].to_owned();
        let mut key = None;
        if i < bytes.len() && bytes[i] == b'[' {
            let rest = &s[i + 1..];
            let (inner, len) = if rest.starts_with('"') {
                // A JSON string: find its closing quote, honouring escapes.
                let mut j = 1;
                let rb = rest.as_bytes();
                while j < rb.len() && rb[j] != b'"' {
                    j += if rb[j] == b'\\' { 2 } else { 1 };
                }
                (&rest[..(j + 1).min(rest.len())], j + 1)
            } else {
                let j = rest.find(']')?;
                (&rest[..j], j)
            };
            if rest.as_bytes().get(len) != Some(&b']') {
                return None;
            }
            key = Some(if let Ok(n) = inner.parse::<i64>() {
                InstanceKey::Index(n)
            } else {
                InstanceKey::Key(serde_json::from_str::<String>(inner).ok()?)
            });
            i += 1 + len + 1;
        }
        out.push((name, key));
        if i < bytes.len() {
            if bytes[i] != b'.' {
                return None;
            }
            i += 1;
            if i == bytes.len() {
                return None;
            }
        }
    }
    Some(out)
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let bad = || {
            format!("{s:?} is not a resource address (expected TYPE.NAME, TYPE.NAME[KEY], data.TYPE.NAME or module.NAME...)")
        };
        let mut segs = segments(s.trim()).ok_or_else(bad)?.into_iter().peekable();
        let mut module = Vec::new();
        while segs.peek().is_some_and(|(n, k)| n == "module" && k.is_none()) {
            segs.next();
            let (name, key) = segs.next().ok_or_else(bad)?;
            module.push((name, key));
        }
        let rest: Vec<(String, Option<InstanceKey>)> = segs.collect();
        let (resource, key) = match rest.as_slice() {
            [] if !module.is_empty() => (None, None),
            [(d, None), (t, None), (n, k)] if d == "data" => (Some(ResourceAddr::new(Mode::Data, t, n)), k.clone()),
            [(t, None), (n, k)] => (Some(ResourceAddr::new(Mode::Managed, t, n)), k.clone()),
            _ => return Err(bad()),
        };
        Ok(Target { module, resource, key })
    }
}

/// Parses an instance address as stored in state (always exact).
pub fn parse_instance(s: &str) -> Result<InstanceAddr, String> {
    let t: Target = s.parse()?;
    let resource = t.resource.clone().ok_or_else(|| format!("{s:?} names a module, not a resource instance"))?;
    let module = t
        .module
        .into_iter()
        .map(|(n, k)| (n, k.unwrap_or(InstanceKey::None)))
        .collect();
    Ok(InstanceAddr { module: ModuleInstance(module), resource, key: t.key.unwrap_or(InstanceKey::None) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for s in [
            "strata_data.a",
            "strata_data.a[3]",
            "strata_data.a[\"eu-west.1\"]",
            "data.kvm_host.this",
            "module.net.kvm_network.lan",
            "module.tier[\"db\"].module.disk[0].strata_data.vm[1]",
            "module.tier",
        ] {
            let t: Target = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert!("strata_data".parse::<Target>().is_err());
        assert!("a.b[x]".parse::<Target>().is_err());
        assert!("a.b.".parse::<Target>().is_err());
        let i = parse_instance("module.m[2].strata_data.x[\"k\"]").unwrap();
        assert_eq!(i.module.0, vec![("m".to_owned(), InstanceKey::Index(2))]);
        assert_eq!(i.to_string(), "module.m[2].strata_data.x[\"k\"]");
    }

    #[test]
    fn targets_match_modules_resources_and_instances() {
        let addr = parse_instance("module.m[1].strata_data.x[0]").unwrap();
        for (t, hit) in [
            ("module.m", true),
            ("module.m[1]", true),
            ("module.m[0]", false),
            ("module.m.strata_data.x", true),
            ("module.m[1].strata_data.x[0]", true),
            ("module.m[1].strata_data.x[1]", false),
            ("strata_data.x", false),
        ] {
            assert_eq!(t.parse::<Target>().unwrap().matches(&addr), hit, "{t}");
        }
    }
}
