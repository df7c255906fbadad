//! See ecs_emulator::fuzz_checks::cluster_query: the properties live in the emulator crate so that its unit
//! tests replay the committed corpus (fuzz/corpus/fuzz_cluster_query/) through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ecs_emulator::fuzz_checks::cluster_query(data));
