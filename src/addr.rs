//! Addresses of resources and their instances, written as in Terraform:
//! `strata_data.web`, `strata_data.web[0]`, `data.kvm_host.this`,
//! `strata_data.web["eu"]`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Managed,
    Data,
}

/// A `resource` or `data` block.
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
        InstanceAddr { resource: self.clone(), key }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mode == Mode::Data {
            f.write_str("data.")?;
        }
        write!(f, "{}.{}", self.type_name, self.name)
    }
}

/// Which instance of an expanded block: none for a block without `count` or
/// `for_each`, an index for `count`, a key for `for_each`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceAddr {
    pub resource: ResourceAddr,
    pub key: InstanceKey,
}

impl fmt::Display for InstanceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.resource, self.key)
    }
}

/// What `-target`, `-exclude`, `-replace` and the `state` commands accept:
/// a whole resource, or one instance of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource(ResourceAddr),
    Instance(InstanceAddr),
}

impl Target {
    pub fn matches(&self, addr: &InstanceAddr) -> bool {
        match self {
            Target::Resource(r) => &addr.resource == r,
            Target::Instance(i) => i == addr,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Resource(r) => r.fmt(f),
            Target::Instance(i) => i.fmt(f),
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let bad = || format!("{s:?} is not a resource address (expected TYPE.NAME, TYPE.NAME[INDEX] or data.TYPE.NAME)");
        let (head, key) = match s.find('[') {
            Some(i) => {
                let inner = s[i..].strip_prefix('[').and_then(|r| r.strip_suffix(']')).ok_or_else(bad)?;
                let key = if let Ok(n) = inner.parse::<i64>() {
                    InstanceKey::Index(n)
                } else {
                    InstanceKey::Key(serde_json::from_str::<String>(inner).map_err(|_| bad())?)
                };
                (&s[..i], Some(key))
            }
            None => (s, None),
        };
        let parts: Vec<&str> = head.split('.').collect();
        let valid = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let resource = match parts.as_slice() {
            ["data", t, n] if valid(t) && valid(n) => ResourceAddr::new(Mode::Data, t, n),
            [t, n] if valid(t) && valid(n) => ResourceAddr::new(Mode::Managed, t, n),
            _ => return Err(bad()),
        };
        Ok(match key {
            Some(key) => Target::Instance(resource.instance(key)),
            None => Target::Resource(resource),
        })
    }
}

/// Parses an instance address as stored in state (always exact).
pub fn parse_instance(s: &str) -> Result<InstanceAddr, String> {
    match s.parse::<Target>()? {
        Target::Instance(i) => Ok(i),
        Target::Resource(r) => Ok(r.instance(InstanceKey::None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for s in ["strata_data.a", "strata_data.a[3]", "strata_data.a[\"eu-west\"]", "data.kvm_host.this"] {
            let t: Target = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert!("strata_data".parse::<Target>().is_err());
        assert!("a.b[x]".parse::<Target>().is_err());
    }
}
