//! The worker's message handlers on arbitrary sequences of protobuf messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = flus_worker::fuzz_input::run_messages(data);
});
