//! The runtime's integration tests but the station's, in one test binary (one link instead
//! of seven). Modules:
//! - `allowed`: a site's species list: excluded species never answered, the rest renormalised.
//! - `bundle`: `Bundle::open` accepts a valid bundle and refuses every kind of damage, naming it.
//! - `camtrap`: `xrvlm export-camtrap` writes packages that validate against the Camtrap DP schemas.
//! - `check`: `xrvlm check` on the demo bundle, at int8 and fp32, and its refusals.
//! - `cli`: the `xrvlm` binary end to end.
//! - `detections`: `xrvlm classify --detections` on camera-trap photos and a MegaDetector file,
//!   its output read back by Rust and by Python's `json` module.
//! - `fuzz_corpus`: every fuzz target's committed corpus replayed (`runtime/fuzz`).
//! - `engine`: the tract plans and the classifier against hand-computed and pinned outputs.
//! - `open_world`: the unknown-species rule: the demo bundle on real Reconyx photos (unknown or
//!   blank, never a bird), a bundle without `[open_world]`, and the rule in classify's outputs.
//! - `part_maps`: UnA's part maps as the image model's second output, and `classify --explain`.
//! - `power_cut`: the real `xrvlm run` killed at random moments loses nothing.
//! - `preprocess_reference`: the table-driven resampler against a plain per-pixel reference.
//! - `signature`: signed bundles: accepted under a trusting policy, every refusal (unsigned,
//!   another key, changed manifest, a flipped byte anywhere, files outside the bundle), and
//!   `keygen`/`sign`/`info`/`classify --require-signature` through the binary.

mod allowed;
mod bundle;
mod camtrap;
mod camtrap_schema;
mod check;
mod cli;
mod common;
mod detections;
mod engine;
mod fuzz_corpus;
mod open_world;
mod part_maps;
mod power_cut;
mod preprocess_reference;
mod signature;
