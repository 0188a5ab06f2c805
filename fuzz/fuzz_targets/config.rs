//! The study config parser and validator on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flus_shared::config::fuzz_parse(data);
});
