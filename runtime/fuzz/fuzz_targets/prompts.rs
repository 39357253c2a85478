//! `xrvlm_runtime::fuzzing::prompts` under libFuzzer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xrvlm_runtime::fuzzing::prompts(data));
