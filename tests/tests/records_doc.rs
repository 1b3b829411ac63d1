//! RECORDS.md is generated from the decoders' module documentation (each
//! `decoders/src/l7/<proto>/mod.rs` documents its probe and every field of
//! its calls), so the values of `request_type`, `request_resource`,
//! `response_code`, `response_status` and the attributes are written down
//! once, next to the code that makes them. `BLESS=1` rewrites the file.

use flowtrail_decoders::l7::L7Protocol;
use flowtrail_tests::root;

fn module_dir(p: L7Protocol) -> &'static str {
    match p {
        L7Protocol::Http1 => "http1",
        L7Protocol::Tls => "tls",
        L7Protocol::Dns => "dns",
        L7Protocol::Http2 | L7Protocol::Grpc => "http2",
        L7Protocol::Mysql => "mysql",
        L7Protocol::Postgresql => "postgresql",
        L7Protocol::Redis => "redis",
        L7Protocol::Kafka => "kafka",
        L7Protocol::Mqtt => "mqtt",
    }
}

fn generate() -> String {
    let mut s = String::from(
        "# Call records by protocol\n\n\
         Generated from `decoders/src/l7/<proto>/mod.rs` by `tests/tests/records_doc.rs` \
         (`BLESS=1 cargo test -p flowtrail-tests --test records_doc` rewrites it). The columns \
         themselves are in README.md (Schema); this file says what each protocol puts in them: \
         `l7_protocol` value, how it is detected, what one call is, and the values of \
         `request_type`, `request_resource`, `response_code`, `response_status`, \
         `response_exception` and the attributes.\n",
    );
    for p in L7Protocol::ALL {
        let dir = module_dir(p);
        let path = root().join("decoders/src/l7").join(dir).join("mod.rs");
        let mut text = std::fs::read_to_string(&path).expect("module source");
        if !text.contains("//! # The call") && !text.contains("//! # Calls") {
            // This module documents its calls in session.rs.
            let session = std::fs::read_to_string(path.with_file_name("session.rs")).expect("session source");
            text = text.lines().take_while(|l| l.starts_with("//!")).map(|l| format!("{l}\n")).collect::<String>()
                + "//!\n//! # The call\n//!\n"
                + &session;
        }
        let label = if p == L7Protocol::Http2 { "`http2`, `grpc`".to_string() } else { format!("`{}`", p.as_str()) };
        s.push_str(&format!("\n## {label}\n\n"));
        for line in text.lines().take_while(|l| l.starts_with("//!")) {
            let l = line.trim_start_matches("//!");
            let l = l.strip_prefix(' ').unwrap_or(l);
            // Demote the module's headings under this protocol's.
            if let Some(h) = l.strip_prefix("# ") {
                s.push_str(&format!("### {h}\n"));
            } else {
                s.push_str(l);
                s.push('\n');
            }
        }
    }
    s
}

#[test]
fn records_md_is_generated_from_the_decoders() {
    let path = root().join("RECORDS.md");
    let want = generate();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "RECORDS.md is stale: BLESS=1 cargo test -p flowtrail-tests --test records_doc");
}
