//! Fuzz target `wire_dissect`: the body and its input format are in fuzz/harness.rs.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    let _ = harness::wire_dissect(data);
});
