//! See ecs_emulator::fuzz_checks::alb_rules: the properties live in the emulator crate so that its unit
//! tests replay the committed corpus (fuzz/corpus/fuzz_alb_rules/) through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ecs_emulator::fuzz_checks::alb_rules(data));
