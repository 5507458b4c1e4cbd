//! IP network functions, for IPv4 and IPv6. Addresses are handled as
//! `u128` integers of 32 or 128 significant bits.

use super::{arity, integer, split_args, str_value, string, Args, Function, Result, Table};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use strata_provider::Value;

pub(super) const FUNCTIONS: Table = &[
    ("cidrhost", Function::Pure(cidrhost)),
    ("cidrnetmask", Function::Pure(cidrnetmask)),
    ("cidrsubnet", Function::Pure(cidrsubnet)),
    ("cidrsubnets", Function::Pure(cidrsubnets)),
];

/// A network: its first address, prefix length and address width.
#[derive(Clone, Copy)]
struct Net {
    addr: u128,
    len: u32,
    bits: u32,
}

impl Net {
    fn parse(s: &str) -> Result<Net> {
        let net: IpNet = s.parse().map_err(|e| format!("invalid CIDR expression: {e}"))?;
        let (addr, bits) = match net.network() {
            IpAddr::V4(a) => (u32::from(a) as u128, 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        Ok(Net { addr, len: net.prefix_len() as u32, bits })
    }

    fn host_mask(len: u32, bits: u32) -> u128 {
        match bits.saturating_sub(len) {
            0 => 0,
            128.. => u128::MAX,
            n => (1u128 << n) - 1,
        }
    }

    fn last(&self) -> u128 {
        self.addr | Net::host_mask(self.len, self.bits)
    }

    fn ip(&self, addr: u128) -> IpAddr {
        if self.bits == 32 {
            IpAddr::V4(Ipv4Addr::from(addr as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(addr))
        }
    }

    fn render(&self) -> String {
        format!("{}/{}", self.ip(self.addr), self.len)
    }

    fn contains(&self, addr: u128) -> bool {
        addr >= self.addr && addr <= self.last()
    }

    /// Go-cidr's `NextSubnet`: the subnet of length `len` after this one.
    fn next(&self, len: u32) -> Option<Net> {
        let mask = !Net::host_mask(len, self.bits) & Net::host_mask(0, self.bits);
        let current = Net { addr: self.last() & mask, len, bits: self.bits };
        let next = current.last().checked_add(1).filter(|n| *n <= Net::host_mask(0, self.bits))?;
        Some(Net { addr: next & mask, len, bits: self.bits })
    }
}

/// A whole number of up to 128 bits: IPv6 host and subnet numbers go
/// beyond 2^64.
fn wide_integer(v: &Value) -> Result<i128> {
    let n = super::number(v)?;
    if !n.is_integer() {
        return Err("value must be a whole number".into());
    }
    n.to_string().parse().map_err(|_| format!("{n} is beyond the largest host or subnet number"))
}

/// A negative host number counts back from the end of the range.
fn cidrhost(args: Args) -> Result {
    let [prefix, hostnum] = arity(args)?;
    let net = Net::parse(&string(&prefix)?)?;
    let num = wide_integer(&hostnum)?;
    let host_bits = net.bits - net.len;
    // The number of hosts, 0 standing for 2^128.
    let size = if host_bits >= 128 { 0 } else { 1u128 << host_bits };
    let magnitude = num.unsigned_abs();
    let fits = if num >= 0 { size == 0 || magnitude < size } else { size == 0 || magnitude <= size };
    if !fits {
        return Err(format!("prefix of {} does not accommodate a host numbered {num}", net.len));
    }
    let offset = if num < 0 { size.wrapping_sub(magnitude) } else { magnitude };
    str_value(net.ip(net.addr.wrapping_add(offset)).to_string())
}

fn cidrnetmask(args: Args) -> Result {
    let [prefix] = arity(args)?;
    let prefix = string(&prefix)?;
    let net = Net::parse(&prefix)?;
    if net.bits != 32 {
        return Err(format!("IPv6 addresses cannot have a netmask: {prefix}"));
    }
    str_value(net.ip(!Net::host_mask(net.len, 32) & u32::MAX as u128).to_string())
}

fn subnet(net: Net, newbits: i64, netnum: i128) -> Result<Net> {
    let len = i64::from(net.len) + newbits;
    if newbits < 0 || len > i64::from(net.bits) {
        return Err(format!("insufficient address space to extend prefix of {} by {newbits}", net.len));
    }
    let len = len as u32;
    let fits = netnum >= 0 && (newbits >= 128 || (netnum as u128) < (1u128 << newbits));
    if !fits {
        return Err(format!("prefix extension of {newbits} does not accommodate a subnet numbered {netnum}"));
    }
    Ok(Net { addr: net.addr | ((netnum as u128) << (net.bits - len)), len, bits: net.bits })
}

fn cidrsubnet(args: Args) -> Result {
    let [prefix, newbits, netnum] = arity(args)?;
    let net = Net::parse(&string(&prefix)?)?;
    str_value(subnet(net, integer(&newbits)?, wide_integer(&netnum)?)?.render())
}

/// Consecutive subnets of the given sizes, each aligned after the last.
fn cidrsubnets(args: Args) -> Result {
    let (prefix, newbits) = split_args(args, 1)?;
    let net = Net::parse(&string(&prefix[0])?)?;
    let newbits = newbits.iter().map(integer).collect::<Result<Vec<_>>>()?;
    for (i, &bits) in newbits.iter().enumerate() {
        let len = i64::from(net.len) + bits;
        if bits < 1 {
            return Err(format!("argument {}: must extend prefix by at least one bit", i + 2));
        }
        if len > i64::from(net.bits) {
            return Err(format!(
                "argument {}: would extend prefix to {len} bits, which is too long for an IPv{} address",
                i + 2,
                if net.bits == 32 { 4 } else { 6 }
            ));
        }
    }
    let Some(&first) = newbits.first() else { return Ok(Value::list(vec![])) };
    let first = subnet(net, first, 0)?;
    // The subnet just before the first, so that `next` yields the first.
    let mut current = Net { addr: first.addr.wrapping_sub(1) & Net::host_mask(0, net.bits), ..first };
    let mut out = Vec::new();
    for (i, bits) in newbits.into_iter().enumerate() {
        let len = (i64::from(net.len) + bits) as u32;
        current = current.next(len).filter(|n| net.contains(n.addr)).ok_or_else(|| {
            format!(
                "argument {}: not enough remaining address space for a subnet with a prefix of {len} bits after {}",
                i + 2,
                current.render()
            )
        })?;
        out.push(Value::String(current.render()));
    }
    Ok(Value::list(out))
}
