//! See ecs_emulator::fuzz_checks::manifest_parser: the properties live in the emulator crate so that its unit
//! tests replay the committed corpus (fuzz/corpus/fuzz_manifest/) through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ecs_emulator::fuzz_checks::manifest_parser(data));
