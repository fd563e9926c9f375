//! `docker load` of arbitrary bytes: refused archives leave nothing, blobs always verify.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_image::archive::fuzz_load(data));
