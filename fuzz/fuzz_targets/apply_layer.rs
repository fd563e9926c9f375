//! Layer application (overlay and copy formats) must never write outside its target.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_snapshot::fuzz_apply(data));
