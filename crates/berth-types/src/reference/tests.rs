//! Cases from Docker's documented behaviour (distribution/reference's normalization and
//! parsing rules), plus property tests that generated references round-trip.

use super::*;
use proptest::prelude::*;

const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// (input, normalized without default tag, domain, path, familiar form)
const NORMALIZED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "busybox",
        "docker.io/library/busybox",
        "docker.io",
        "library/busybox",
        "busybox",
    ),
    (
        "busybox:1.36",
        "docker.io/library/busybox:1.36",
        "docker.io",
        "library/busybox",
        "busybox:1.36",
    ),
    (
        "library/busybox",
        "docker.io/library/busybox",
        "docker.io",
        "library/busybox",
        "busybox",
    ),
    (
        "docker.io/busybox",
        "docker.io/library/busybox",
        "docker.io",
        "library/busybox",
        "busybox",
    ),
    (
        "docker.io/library/busybox",
        "docker.io/library/busybox",
        "docker.io",
        "library/busybox",
        "busybox",
    ),
    (
        "index.docker.io/busybox",
        "docker.io/library/busybox",
        "docker.io",
        "library/busybox",
        "busybox",
    ),
    (
        "index.docker.io/fooo/bar",
        "docker.io/fooo/bar",
        "docker.io",
        "fooo/bar",
        "fooo/bar",
    ),
    (
        "fooo/bar",
        "docker.io/fooo/bar",
        "docker.io",
        "fooo/bar",
        "fooo/bar",
    ),
    (
        "library/foo/bar",
        "docker.io/library/foo/bar",
        "docker.io",
        "library/foo/bar",
        "library/foo/bar",
    ),
    (
        "store/foo/bar",
        "docker.io/store/foo/bar",
        "docker.io",
        "store/foo/bar",
        "store/foo/bar",
    ),
    (
        "other/library",
        "docker.io/other/library",
        "docker.io",
        "other/library",
        "other/library",
    ),
    (
        "ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "docker.io",
        "library/ubuntu-12.04-base",
        "ubuntu-12.04-base",
    ),
    (
        "localhost/foo",
        "localhost/foo",
        "localhost",
        "foo",
        "localhost/foo",
    ),
    (
        "localhost:5000/a/b:tag",
        "localhost:5000/a/b:tag",
        "localhost:5000",
        "a/b",
        "localhost:5000/a/b:tag",
    ),
    (
        "localhost",
        "docker.io/library/localhost",
        "docker.io",
        "library/localhost",
        "localhost",
    ),
    (
        "localhost:5000",
        "docker.io/library/localhost:5000",
        "docker.io",
        "library/localhost",
        "localhost:5000",
    ),
    (
        "example.com",
        "docker.io/library/example.com",
        "docker.io",
        "library/example.com",
        "example.com",
    ),
    (
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000",
        "private/moonbase",
        "127.0.0.1:8000/private/moonbase",
    ),
    (
        "127.0.0.1:8000/privatebase",
        "127.0.0.1:8000/privatebase",
        "127.0.0.1:8000",
        "privatebase",
        "127.0.0.1:8000/privatebase",
    ),
    (
        "example.com/private/moonbase",
        "example.com/private/moonbase",
        "example.com",
        "private/moonbase",
        "example.com/private/moonbase",
    ),
    (
        "example.com:8000/privatebasee",
        "example.com:8000/privatebasee",
        "example.com:8000",
        "privatebasee",
        "example.com:8000/privatebasee",
    ),
    (
        "test_com/foo",
        "docker.io/test_com/foo",
        "docker.io",
        "test_com/foo",
        "test_com/foo",
    ),
    (
        "test-com:8080/foo",
        "test-com:8080/foo",
        "test-com:8080",
        "foo",
        "test-com:8080/foo",
    ),
    (
        "xn--n3h.com:18080/foo",
        "xn--n3h.com:18080/foo",
        "xn--n3h.com:18080",
        "foo",
        "xn--n3h.com:18080/foo",
    ),
    ("Foo/bar", "Foo/bar", "Foo", "bar", "Foo/bar"),
    ("FOO/bar", "FOO/bar", "FOO", "bar", "FOO/bar"),
    (
        "192.168.0.1",
        "docker.io/library/192.168.0.1",
        "docker.io",
        "library/192.168.0.1",
        "192.168.0.1",
    ),
    (
        "192.168.0.1:80",
        "docker.io/library/192.168.0.1:80",
        "docker.io",
        "library/192.168.0.1",
        "192.168.0.1:80",
    ),
    (
        "192.168.0.2:25000/debian",
        "192.168.0.2:25000/debian",
        "192.168.0.2:25000",
        "debian",
        "192.168.0.2:25000/debian",
    ),
    (
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000",
        "docker",
        "[fc00::1]:5000/docker",
    ),
    (
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "[fc00:1:2:3:4:5:6:7]:5000",
        "library/debian",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    ),
    (
        "[2001:db8::1]/repo:tag",
        "[2001:db8::1]/repo:tag",
        "[2001:db8::1]",
        "repo",
        "[2001:db8::1]/repo:tag",
    ),
    (
        "docker---rules/docker",
        "docker.io/docker---rules/docker",
        "docker.io",
        "docker---rules/docker",
        "docker---rules/docker",
    ),
    (
        "dock__er/docker",
        "docker.io/dock__er/docker",
        "docker.io",
        "dock__er/docker",
        "dock__er/docker",
    ),
    (
        "d/docker",
        "docker.io/d/docker",
        "docker.io",
        "d/docker",
        "d/docker",
    ),
    (
        "lowercase:Uppercase",
        "docker.io/library/lowercase:Uppercase",
        "docker.io",
        "library/lowercase",
        "lowercase:Uppercase",
    ),
    (
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io",
        "test.example.com/my-app",
        "b.gcr.io/test.example.com/my-app:test.example.com",
    ),
    // 64 characters, but not hexadecimal: a name.
    (
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "docker.io",
        "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    ),
    // 64 hex characters are allowed once a domain makes it unambiguous.
    (
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "docker.io",
        "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    ),
    // "sha256:abc" is not a digest, so it is the repository "sha256" with the tag "abc".
    (
        "sha256:abc",
        "docker.io/library/sha256:abc",
        "docker.io",
        "library/sha256",
        "sha256:abc",
    ),
    // A first component with a '.' that is no valid host is part of the path: no domain.
    (
        "foo_bar.com/x",
        "foo_bar.com/x",
        "",
        "foo_bar.com/x",
        "foo_bar.com/x",
    ),
];

#[test]
fn normalizes_like_docker() {
    for &(input, full, domain, path, familiar) in NORMALIZED {
        let r = Reference::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), full, "{input}");
        assert_eq!(r.domain(), domain, "{input}");
        assert_eq!(r.path(), path, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
        // Normalizing the normalized or the familiar form changes nothing.
        assert_eq!(Reference::parse_normalized(full).unwrap(), r, "{input}");
        if !familiar_is_ambiguous(&r) {
            assert_eq!(Reference::parse_normalized(familiar).unwrap(), r, "{input}");
        }
    }
}

/// Docker's familiar form is for display and does not always parse back: on Docker Hub, a
/// first path component that looks like a host (`docker.io/a.b/c` → `a.b/c`), or an official
/// image named by 64 hex characters.
fn familiar_is_ambiguous(r: &Reference) -> bool {
    let name = r.familiar_name();
    r.domain() == DEFAULT_DOMAIN
        && match name.split_once('/') {
            Some((first, _)) => first == "localhost" || first.contains(['.', ':']),
            None => name.len() == 64 && is_lower_hex(&name),
        }
}

#[test]
fn familiar_is_for_display() {
    let r = Reference::parse("docker.io/a.b/c").unwrap();
    assert_eq!(r.familiar(), "a.b/c:latest");
    assert_eq!(Reference::parse("a.b/c").unwrap().domain(), "a.b");
    assert!(familiar_is_ambiguous(&r));
}

#[test]
fn default_tag() {
    let r = Reference::parse("busybox").unwrap();
    assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    assert_eq!(r.familiar(), "busybox:latest");
    assert_eq!(r.familiar_name(), "busybox");
    assert_eq!(r.name(), "docker.io/library/busybox");
    assert_eq!(r.tag(), Some("latest"));
    assert!(r.digest().is_none());

    let by_digest = Reference::parse(&format!("a/b@{D}")).unwrap();
    assert_eq!(by_digest.to_string(), format!("docker.io/a/b@{D}"));
    assert_eq!(by_digest.tag(), None);
    assert_eq!(by_digest.digest().unwrap().as_str(), D);
    assert_eq!(by_digest.familiar(), format!("a/b@{D}"));

    assert!(
        Reference::parse_normalized("busybox")
            .unwrap()
            .is_name_only()
    );
    let r: Reference = "alpine:3".parse().unwrap();
    assert_eq!(r.tag(), Some("3"));
}

#[test]
fn tag_and_digest() {
    let short = format!("busybox:latest@{D}");
    let r = Reference::parse(&short).unwrap();
    assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
    assert_eq!(r.tag(), Some("latest"));
    assert_eq!(r.digest().unwrap().as_str(), D);
    assert_eq!(r.familiar(), short);
    // Docker stores and pulls such a reference by digest only.
    assert_eq!(
        r.docker_ref().to_string(),
        format!("docker.io/library/busybox@{D}")
    );
    assert_eq!(
        Reference::parse_normalized("busybox")
            .unwrap()
            .docker_ref()
            .to_string(),
        "docker.io/library/busybox:latest"
    );
    let p = Reference::parse(&format!("test:5000/repo:tag@{D}")).unwrap();
    assert_eq!(
        (p.domain(), p.path(), p.tag()),
        ("test:5000", "repo", Some("tag"))
    );
    let v6 = Reference::parse(&format!("[2001:db8::1]:5000/repo:tag@{D}")).unwrap();
    assert_eq!(v6.domain(), "[2001:db8::1]:5000");
    let s512 = format!("sha512:{}", "f".repeat(128));
    let r = Reference::parse(&format!("xn--7o8h.com/myimage:xn--7o8h.com@{s512}")).unwrap();
    assert_eq!(r.digest().unwrap().algorithm(), crate::Algorithm::Sha512);
}

#[test]
fn builders() {
    let r = Reference::parse("localhost:5000/a/b").unwrap();
    let t = r.clone().with_tag("v2").unwrap();
    assert_eq!(t.to_string(), "localhost:5000/a/b:v2");
    assert!(matches!(r.clone().with_tag("-x"), Err(ReferenceError::Tag(t)) if t == "-x"));
    let d = t.clone().with_digest(Digest::parse(D).unwrap());
    assert_eq!(d.to_string(), format!("localhost:5000/a/b:v2@{D}"));
    assert_eq!(d.trim().to_string(), "localhost:5000/a/b");
}

#[test]
fn invalid_references() {
    use ReferenceError as E;
    let long_ns = format!("{}/docker", "a".repeat(256));
    let too_deep = format!("{}a:tag", "a/".repeat(128));
    type Check = fn(&ReferenceError) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        ("", |e| matches!(e, E::Empty | E::Format(_))),
        (":justtag", |e| matches!(e, E::Format(_))),
        (
            "@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            |e| matches!(e, E::Format(_)),
        ),
        ("https://github.com/docker/docker", |e| {
            matches!(e, E::Format(_))
        }),
        (
            "docker/Docker",
            |e| matches!(e, E::Uppercase(n) if n == "docker/Docker"),
        ),
        (
            "Uppercase:tag",
            |e| matches!(e, E::Uppercase(n) if n == "library/Uppercase"),
        ),
        ("test:5000/Uppercase/lowercase:tag", |e| {
            matches!(e, E::Uppercase(_))
        }),
        ("docker.io/docker/Docker", |e| matches!(e, E::Uppercase(_))),
        ("-docker", |e| matches!(e, E::Format(f) if f == "-docker")),
        ("-docker/docker", |e| matches!(e, E::Format(_))),
        ("-docker.io/docker/docker", |e| matches!(e, E::Format(_))),
        ("docker-/docker", |e| matches!(e, E::Format(_))),
        ("docker///docker", |e| matches!(e, E::Format(_))),
        ("docker.io/docker///docker", |e| matches!(e, E::Format(_))),
        ("docker/", |e| matches!(e, E::Format(_))),
        ("____/____", |e| matches!(e, E::Format(_))),
        ("_docker/_docker", |e| matches!(e, E::Format(_))),
        ("dock..er/docker", |e| matches!(e, E::Format(_))),
        ("dock_.er/docker", |e| matches!(e, E::Format(_))),
        ("dock-.er/docker", |e| matches!(e, E::Format(_))),
        ("dock___er/docker", |e| matches!(e, E::Format(_))),
        ("aa/asdf$$^/aa", |e| matches!(e, E::Format(_))),
        ("[fc00::1]", |e| matches!(e, E::Format(_))),
        ("[fc00::1]:5000", |e| matches!(e, E::Format(_))),
        ("fc00::1:5000/debian", |e| matches!(e, E::Format(_))),
        ("[fe80::1%eth0]:5000/debian", |e| matches!(e, E::Format(_))),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", |e| {
            matches!(e, E::Format(_))
        }),
        ("[2001:db8::1]:tag", |e| matches!(e, E::Format(_))),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            |e| matches!(e, E::HexName(_)),
        ),
        ("busybox:-bad", |e| matches!(e, E::Tag(t) if t == "-bad")),
        ("busybox:.bad", |e| matches!(e, E::Tag(_))),
        ("busybox:", |e| matches!(e, E::Tag(_))),
        ("busybox:a:b", |e| matches!(e, E::Tag(_))),
        ("repo@sha256:ffffffffffffffffffffffffffffffffff", |e| {
            matches!(e, E::Digest(DigestError::Length { .. }))
        }),
        (
            "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            |e| matches!(e, E::Digest(DigestError::Unsupported(_))),
        ),
        (
            "repo@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            |e| matches!(e, E::Digest(DigestError::Hex(_))),
        ),
        ("repo@sha256:abc", |e| matches!(e, E::Digest(_))),
        ("repo@", |e| matches!(e, E::Digest(_))),
        (&long_ns, |e| matches!(e, E::NameTooLong(_) | E::Format(_))),
        (&too_deep, |e| matches!(e, E::NameTooLong(257))),
    ];
    for (input, check) in cases {
        let e = Reference::parse(input).expect_err(input);
        assert!(check(&e), "{input:?}: unexpected {e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("invalid "), "{msg}");
    }
    // A tag of 128 characters is fine, 129 is not.
    assert!(Reference::parse(&format!("a:{}", "t".repeat(128))).is_ok());
    assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    // A path of exactly 255 characters is fine.
    let p255 = format!("{}a", "a/".repeat(127));
    assert_eq!(Reference::parse(&p255).unwrap().path().len(), 255);
}

#[test]
fn error_messages() {
    assert_eq!(
        Reference::parse("Busybox").unwrap_err().to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
    assert_eq!(
        Reference::parse("a//b").unwrap_err().to_string(),
        "invalid reference format: a//b"
    );
    assert_eq!(
        Reference::parse(&"a".repeat(300)).unwrap_err().to_string(),
        "invalid reference format: repository name must not be more than 255 characters (308 given)"
    );
    assert!(
        Reference::parse("busybox:-x")
            .unwrap_err()
            .to_string()
            .starts_with("invalid reference format: tag (-x) must be")
    );
}

#[test]
fn any_reference() {
    let hex = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    let id = format!("sha256:{hex}");
    assert_eq!(
        parse_any(hex).unwrap(),
        AnyReference::Id(Digest::parse(&id).unwrap())
    );
    assert_eq!(
        parse_any(&id).unwrap(),
        AnyReference::Id(Digest::parse(&id).unwrap())
    );
    let AnyReference::Named(r) = parse_any(&hex[..63]).unwrap() else {
        panic!("63 hex characters are a name")
    };
    assert_eq!(r.to_string(), format!("docker.io/library/{}", &hex[..63]));
    let AnyReference::Named(r) = parse_any("redis").unwrap() else {
        panic!("redis is a name")
    };
    assert_eq!(r.to_string(), "docker.io/library/redis");
    assert!(parse_any("Redis").is_err());
}

#[test]
fn serde_round_trip() {
    for s in [
        "busybox",
        "busybox:1",
        "localhost:5000/x@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ] {
        let r = Reference::parse_normalized(s).unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, format!("\"{r}\""));
        assert_eq!(serde_json::from_str::<Reference>(&j).unwrap(), r);
    }
    assert!(serde_json::from_str::<Reference>("\"UPPER\"").is_err());
}

// ---- property tests -------------------------------------------------------------------------

fn alnum() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"abcxyz0189".to_vec()), 1..5)
        .prop_map(|v| String::from_utf8(v).unwrap())
}

fn separator() -> impl Strategy<Value = String> {
    prop::sample::select(vec![".", "_", "__", "-", "--", "---"]).prop_map(str::to_string)
}

fn path_component() -> impl Strategy<Value = String> {
    (alnum(), prop::collection::vec((separator(), alnum()), 0..3)).prop_map(|(first, rest)| {
        let mut s = first;
        for (sep, a) in rest {
            s.push_str(&sep);
            s.push_str(&a);
        }
        s
    })
}

fn domain() -> impl Strategy<Value = Option<String>> {
    let host = prop_oneof![
        Just("localhost".to_string()),
        Just("docker.io".to_string()),
        Just("index.docker.io".to_string()),
        Just("[::1]".to_string()),
        Just("[fd00:1:2::3]".to_string()),
        Just("Registry".to_string()),
        (1u8..255, 0u8..255).prop_map(|(a, b)| format!("10.{a}.{b}.1")),
        prop::collection::vec(alnum(), 2..4).prop_map(|v| v.join(".")),
    ];
    let port = prop::option::of(1u16..65535);
    prop::option::of((host, port).prop_map(|(h, p)| match p {
        Some(p) => format!("{h}:{p}"),
        None => h,
    }))
}

fn tag() -> impl Strategy<Value = Option<String>> {
    let word = b"abcXYZ019_".to_vec();
    let rest = b"abcXYZ019_.-".to_vec();
    prop::option::of(
        (
            prop::sample::select(word),
            prop::collection::vec(prop::sample::select(rest), 0..20),
        )
            .prop_map(|(f, r)| {
                let mut v = vec![f];
                v.extend(r);
                String::from_utf8(v).unwrap()
            }),
    )
}

fn digest() -> impl Strategy<Value = Option<Digest>> {
    prop::option::of(any::<u64>().prop_map(|n| Digest::sha256_of(&n.to_le_bytes())))
}

fn reference_string() -> impl Strategy<Value = String> {
    (
        domain(),
        prop::collection::vec(path_component(), 1..4),
        tag(),
        digest(),
    )
        .prop_map(|(d, path, t, dg)| {
            let mut s = String::new();
            if let Some(d) = d {
                s.push_str(&d);
                s.push('/');
            }
            s.push_str(&path.join("/"));
            if let Some(t) = t {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(dg) = dg {
                s.push('@');
                s.push_str(dg.as_str());
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every string of the grammar parses, and normalization is idempotent: the normalized and
    /// the familiar forms both parse back to the same reference.
    #[test]
    fn generated_references_round_trip(s in reference_string()) {
        let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        let again = Reference::parse(&r.to_string()).unwrap();
        prop_assert_eq!(&again, &r);
        match Reference::parse(&r.familiar()) {
            Ok(fam) if fam == r => {}
            other => prop_assert!(familiar_is_ambiguous(&r), "{} -> {} -> {:?}", s, r.familiar(), other),
        }
        prop_assert!(r.tag().is_some() || r.digest().is_some());
        prop_assert!(r.familiar().len() <= r.to_string().len());
    }

    /// Arbitrary input never panics, and whatever parses round-trips.
    #[test]
    fn arbitrary_input(s in "\\PC{0,40}") {
        if let Ok(r) = Reference::parse(&s) {
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
        let _ = parse_any(&s);
    }

    /// Near-miss input built from the grammar's own characters never panics either.
    #[test]
    fn grammar_soup(v in prop::collection::vec(prop::sample::select(b"aZ0/:.@_-[]".to_vec()), 0..30)) {
        let s = String::from_utf8(v).unwrap();
        if let Ok(r) = Reference::parse(&s) {
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
    }
}
