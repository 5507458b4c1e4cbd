//! The security-group compiler: port ranges, rule validation, and the
//! compiled pipeline checked against hand-written cases (`cases.txt`).

use super::*;

#[test]
fn port_masks_cover_exactly_the_range() {
    // Exhaustive over many ranges: every port in the range matches one mask,
    // no port outside matches any.
    let ranges = [(0, 0), (0, 65535), (1, 65535), (22, 22), (80, 95), (1000, 1999), (1023, 1025), (65535, 65535), (8000, 8080), (3, 17)];
    for (lo, hi) in ranges {
        let masks = port_masks(lo, hi);
        for port in 0..=65535u16 {
            let hits = masks.iter().filter(|(v, m)| port & m == *v).count();
            let want = usize::from((lo..=hi).contains(&port));
            assert_eq!(hits, want, "port {port} in {lo}-{hi}: {masks:x?}");
        }
    }
    assert_eq!(port_masks(80, 95), [(80, 0xfff0)]);
    assert_eq!(port_masks(0, 65535), [(0, 0)]);
    assert_eq!(port_masks(1023, 1025), [(1023, 0xffff), (1024, 0xfffe)]);
}

#[test]
fn zones_are_stable_and_never_zero() {
    let a = Attachment::mac("52:54:00:AA:00:01");
    assert_eq!(a.zone(), Attachment::mac("52:54:00:aa:00:01").zone());
    assert_ne!(a.zone(), Attachment::mac("52:54:00:aa:00:02").zone());
    assert!((0..2000).all(|i| Attachment::port(&format!("p{i}"), "52:54:00:00:00:01").zone() != 0));
}

fn rule_value(fields: &[(&str, Value)]) -> Value {
    Value::object(fields.iter().cloned())
}

fn group(attachments: &[&str], rules: Vec<Value>) -> Value {
    Value::object([
        ("bridge", Value::from("br0")),
        ("attachments", Value::List(attachments.iter().map(|a| Value::from(*a)).collect())),
        ("rules", Value::List(rules.into())),
    ])
}

#[test]
fn bad_rules_are_named() {
    let s = |v: &str| Value::from(v);
    let n = |v: i64| Value::from(v);
    let config = group(
        &["52:54:00:00:00:01", "52:54:00:00:00:01", "bad name", "vnet0"],
        vec![
            rule_value(&[("direction", s("inbound"))]),
            rule_value(&[("direction", s("ingress")), ("protocol", s("sctp"))]),
            rule_value(&[("direction", s("ingress")), ("protocol", s("icmp")), ("port_min", n(22))]),
            rule_value(&[("direction", s("ingress")), ("protocol", s("tcp")), ("port_min", n(90)), ("port_max", n(80))]),
            rule_value(&[("direction", s("ingress")), ("protocol", s("tcp")), ("port_min", n(70000))]),
            rule_value(&[("direction", s("egress")), ("remote_cidr", s("198.18.0.0/33"))]),
            rule_value(&[("direction", s("egress")), ("remote_cidr", s("198.18.0.0/24")), ("remote_group", Value::List(vec![].into()))]),
            rule_value(&[("direction", s("egress")), ("remote_group", Value::List(vec![s("web")].into()))]),
            rule_value(&[("direction", s("egress")), ("protocol", s("udp")), ("port_min", n(53))]),
        ],
    );
    let messages: Vec<String> = validate(&config).into_iter().map(|(attr, m)| format!("{attr}: {m}")).collect();
    assert_eq!(
        messages,
        [
            "rules: rule 1: direction Some(\"inbound\") is neither \"ingress\" nor \"egress\"",
            "rules: rule 2: protocol \"sctp\" is not one of tcp, udp, icmp, any",
            "rules: rule 3: ports need protocol tcp or udp, not icmp",
            "rules: rule 4: port_min 90 is above port_max 80",
            "rules: rule 5: port_min 70000 is not a port (0–65535)",
            "rules: rule 6: remote_cidr \"198.18.0.0/33\" is not an IPv4 CIDR such as 198.18.0.0/24",
            "rules: rule 7: set remote_cidr or remote_group, not both",
            "rules: rule 8: remote_group member \"web\" is not a MAC address (use another group's members)",
            "attachments: \"52:54:00:00:00:01\" is listed twice",
            "attachments: \"bad name\" is neither a MAC address nor a port name",
        ]
    );
    assert_eq!(port_names(&config), ["bad name", "vnet0"]);
}

/// Parses one rule line of a case: `DIRECTION PROTOCOL [PORTS] [cidr=C | group=M,M]`.
fn parse_rule(line: &str) -> Rule {
    let mut words = line.split_whitespace();
    let direction = match words.next() {
        Some("ingress") => Direction::Ingress,
        _ => Direction::Egress,
    };
    let protocol = match words.next() {
        Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some("icmp") => Protocol::Icmp,
        _ => Protocol::Any,
    };
    let mut rule = Rule { direction, protocol, ports: None, remote: Remote::Any };
    for w in words {
        if let Some(c) = w.strip_prefix("cidr=") {
            rule.remote = Remote::Cidr(c.into());
        } else if let Some(g) = w.strip_prefix("group=") {
            rule.remote = Remote::Members(g.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect());
        } else if let Some((lo, hi)) = w.split_once('-') {
            rule.ports = Some((lo.parse().unwrap(), hi.parse().unwrap()));
        } else {
            let p = w.parse().unwrap();
            rule.ports = Some((p, p));
        }
    }
    rule
}

/// Each case in `cases.txt`: a name line `== NAME`, attachment lines
/// (`mac M` or `port NAME M`), rule lines (`rule …`), `--`, then the expected
/// flows, one per line, as `ovs-ofctl add-flow` text with `ZONE:key`
/// standing for the attachment's zone.
#[test]
fn compiled_pipelines_match_the_cases() {
    let text = include_str!("cases.txt");
    let mut checked = 0;
    for case in text.split("\n== ").skip(1) {
        let (head, expected) = case.split_once("\n--\n").expect("case has a -- line");
        let mut lines = head.lines();
        let name = lines.next().unwrap_or_default().trim();
        let (mut attachments, mut rules) = (Vec::new(), Vec::new());
        for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["mac", m] => attachments.push(Attachment::mac(m)),
                ["port", p, m] => attachments.push(Attachment::port(p, m)),
                ["rule", ..] => rules.push(parse_rule(line.trim_start_matches("rule"))),
                _ => panic!("case {name}: cannot read {line:?}"),
            }
        }
        let mut expected: String = expected.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect::<Vec<_>>().join("\n");
        for a in &attachments {
            expected = expected.replace(&format!("ZONE:{}", a.key), &a.zone().to_string());
        }
        let got: Vec<String> = compile(&attachments, &rules).flows.iter().map(FlowSpec::text).collect();
        assert_eq!(got.join("\n"), expected, "case {name}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} cases read");
}

#[test]
fn origins_follow_the_flows() {
    let rules = [parse_rule("ingress tcp 22"), parse_rule("egress any")];
    let c = compile(&[Attachment::mac("52:54:00:00:00:01")], &rules);
    assert_eq!(c.flows.len(), c.origins.len());
    let rule_flows: Vec<(Origin, &str)> =
        c.flows.iter().zip(&c.origins).filter(|(_, o)| matches!(o, Origin::Rule(_))).map(|(f, o)| (*o, f.matches.as_str())).collect();
    assert_eq!(
        rule_flows,
        [
            (Origin::Rule(1), "ct_state=+new-est+trk,ip,dl_src=52:54:00:00:00:01"),
            (Origin::Rule(0), "ct_state=+new-est+trk,tcp,dl_dst=52:54:00:00:00:01,tp_dst=22"),
        ]
    );
}

#[test]
fn an_attachment_claimed_by_another_group_is_found() {
    let ours = Cookie::of(uuid::Uuid::from_u128(1));
    let theirs = Cookie::of(uuid::Uuid::from_u128(2));
    let line = |cookie: u64, mac: &str| {
        crate::openflow::parse_dump_line(&format!(" cookie={cookie:#x}, table=201, priority=60000,ip,dl_dst={mac} actions=drop")).unwrap()
    };
    let flows = vec![line(ours.flow(3), "52:54:00:00:00:01"), line(theirs.flow(9), "52:54:00:00:00:02")];
    let mine = [Attachment::mac("52:54:00:00:00:01")];
    assert_eq!(claimed_elsewhere(&mine, &flows, ours), None);
    let both = [Attachment::mac("52:54:00:00:00:01"), Attachment::mac("52:54:00:00:00:02")];
    assert_eq!(claimed_elsewhere(&both, &flows, ours), Some(("52:54:00:00:00:02".into(), theirs.flow(0))));
}
