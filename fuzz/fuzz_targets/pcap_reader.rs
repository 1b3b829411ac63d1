//! Fuzz target `pcap_reader`: the body and its input format are in fuzz/harness.rs.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    let _ = harness::pcap_reader(data);
});
