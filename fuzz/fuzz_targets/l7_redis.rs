//! Fuzz target `l7_redis`: the body and its input format are in fuzz/harness.rs (`l7_session`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    let _ = harness::l7_session(Some(flowtrail_decoders::l7::L7Protocol::Redis), data);
});
