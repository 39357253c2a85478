//! The colours of the synthetic world: the part palette (species attributes), the body palette
//! (drawn per image, shared by every species) and the `Rgb` triple every drawing routine uses.
//!
//! The two palettes are kept apart on purpose: a part (beak, crest, wing bar, eye ring, legs) is
//! always a saturated or pure colour, a body is always a muted natural tone, so a part stands out
//! against the bird it sits on while the bird's large areas say nothing about its species.

use serde::Serialize;

/// A linear RGB colour with channels in `0.0..=1.0`.
pub type Rgb = [f32; 3];

/// Colours a species part can take (beak, crest, wing bar, eye ring, legs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartColour {
    /// Pure red.
    Red,
    /// Saturated orange.
    Orange,
    /// Saturated yellow.
    Yellow,
    /// Near-black.
    Black,
    /// Near-white.
    White,
    /// Saturated blue.
    Blue,
    /// Neutral mid grey.
    Grey,
}

impl PartColour {
    /// Every part colour, in catalogue order.
    pub const ALL: [PartColour; 7] = [
        PartColour::Red,
        PartColour::Orange,
        PartColour::Yellow,
        PartColour::Black,
        PartColour::White,
        PartColour::Blue,
        PartColour::Grey,
    ];

    /// The colour's RGB value.
    pub fn rgb(self) -> Rgb {
        match self {
            PartColour::Red => [0.86, 0.11, 0.09],
            PartColour::Orange => [0.98, 0.54, 0.08],
            PartColour::Yellow => [0.98, 0.87, 0.14],
            PartColour::Black => [0.07, 0.07, 0.07],
            PartColour::White => [0.96, 0.96, 0.94],
            PartColour::Blue => [0.14, 0.34, 0.92],
            PartColour::Grey => [0.56, 0.56, 0.6],
        }
    }

    /// The colour's word in captions, names and descriptions.
    pub fn word(self) -> &'static str {
        match self {
            PartColour::Red => "red",
            PartColour::Orange => "orange",
            PartColour::Yellow => "yellow",
            PartColour::Black => "black",
            PartColour::White => "white",
            PartColour::Blue => "blue",
            PartColour::Grey => "grey",
        }
    }
}

/// Colours of a bird's body, head, wings and tail: drawn per image, never a species attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyColour {
    /// Mid brown.
    Brown,
    /// Olive green-brown.
    Olive,
    /// Pale yellowish brown.
    Buff,
    /// Blue-grey.
    Slate,
    /// Reddish brown.
    Rust,
    /// Light brown.
    Tan,
    /// Off-white.
    Cream,
}

impl BodyColour {
    /// Every body colour.
    pub const ALL: [BodyColour; 7] = [
        BodyColour::Brown,
        BodyColour::Olive,
        BodyColour::Buff,
        BodyColour::Slate,
        BodyColour::Rust,
        BodyColour::Tan,
        BodyColour::Cream,
    ];

    /// The colour's RGB value.
    pub fn rgb(self) -> Rgb {
        match self {
            BodyColour::Brown => [0.42, 0.28, 0.17],
            BodyColour::Olive => [0.44, 0.44, 0.22],
            BodyColour::Buff => [0.78, 0.66, 0.47],
            BodyColour::Slate => [0.34, 0.39, 0.47],
            BodyColour::Rust => [0.64, 0.31, 0.15],
            BodyColour::Tan => [0.66, 0.53, 0.37],
            BodyColour::Cream => [0.88, 0.84, 0.72],
        }
    }

    /// The colour's word in captions.
    pub fn word(self) -> &'static str {
        match self {
            BodyColour::Brown => "brown",
            BodyColour::Olive => "olive",
            BodyColour::Buff => "buff",
            BodyColour::Slate => "slate",
            BodyColour::Rust => "rust",
            BodyColour::Tan => "tan",
            BodyColour::Cream => "cream",
        }
    }
}

/// `colour` scaled by `factor` (darker below 1), clamped to the valid range.
pub fn shade(colour: Rgb, factor: f32) -> Rgb {
    colour.map(|c| (c * factor).clamp(0.0, 1.0))
}

/// Linear interpolation from `a` (at `t = 0`) to `b` (at `t = 1`).
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}
