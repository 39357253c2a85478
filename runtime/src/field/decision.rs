//! From predictions to what the camera saw: the per-frame decision (species, blank or
//! unknown, by thresholds) and the grouping of animal frames into events.
//!
//! **Per frame** ([`Decider::decide`]): a frame the bundle's open-world rule rejects (a species
//! the model does not know, [`crate::open_world`]) is unknown, with the best class as a guess,
//! whatever the thresholds say; the rule never rejects a frame whose best class is blank, so a
//! frame of no animal stays blank. Otherwise the best class is reported as a species when its
//! probability reaches its threshold (`[decision.thresholds]` for that label, else the global
//! `threshold`). When the best class is the blank label and reaches its threshold, the frame
//! is blank. Otherwise the frame is unknown, with the best class as a guess; with
//! `unknown_below_threshold = false` such frames count as blank instead (that setting is about
//! uncertain frames; a rejected one is an animal and stays unknown).
//!
//! **Roll-up** (as SpeciesNet answers a genus when no species is sure): a frame that would be
//! unknown, or blank because its best class (blank) missed its threshold, is answered at a rank
//! above the species instead when the summed probability of a taxon's classes reaches the
//! threshold of that taxon (`[decision.thresholds]` by its name, else `threshold`): the finest
//! such rank, no coarser than `roll_up_to` (`family` by default; `species` turns roll-up off),
//! [`crate::taxonomy::roll_up`]. A frame the open-world rule rejects does not roll up: its
//! species probabilities are what the rule found unlike any known species, and measured on the
//! demo they name the right genus for 4.4 % of such frames while rolling up 54 % of them (and 7
//! of the 10 real Reconyx photos to a bird genus; BENCHMARKS.md, "Roll-up").
//!
//! **Events** ([`EventGrouper`]): a species or unknown frame opens an event, or extends the open
//! one when it was captured at most `event_gap` after the event's last animal frame. Blank frames
//! never open or extend an event; an event closes when a later frame (of any kind) or
//! [`EventGrouper::close_if_idle`] shows the gap exceeded, or on [`EventGrouper::flush`] at
//! shutdown. Its summary follows one rule: each species frame votes for its label with its
//! probability; the label with the largest sum wins, and the event's probability and best
//! frame are that label's most probable frame. An event without species frames is the taxon
//! its taxon frames vote for, and one without either is unknown, decided the same way over its
//! frames' guesses. Ties go to the label voted first.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::config::DecisionConfig;
use crate::classifier::Prediction;
use crate::taxonomy::{roll_up, Rank};

/// What one frame shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Outcome {
    /// A species, its class cleared its threshold.
    Species {
        /// The class label.
        label: String,
        /// Its probability.
        probability: f32,
    },
    /// No animal: the blank class cleared its threshold (or nothing cleared one and
    /// `unknown_below_threshold` is off).
    Blank {
        /// Probability of the best class.
        probability: f32,
    },
    /// Something the model is not sure about.
    Unknown {
        /// The most probable class (empty when the prediction had no classes).
        best_guess: String,
        /// Its probability.
        probability: f32,
    },
    /// No species was sure, a taxon above the species was: the roll-up's answer.
    Taxon {
        /// The rank answered at.
        rank: Rank,
        /// The taxon's name at that rank.
        name: String,
        /// The summed probability of its classes.
        probability: f32,
        /// The most probable class, the guess at species rank.
        best_guess: String,
    },
}

impl Outcome {
    /// Whether the frame belongs in an event (species, taxon or unknown).
    pub fn is_animal(&self) -> bool {
        !matches!(self, Outcome::Blank { .. })
    }
}

/// The per-frame decision rule of a profile's `[decision]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decider {
    config: DecisionConfig,
}

impl Decider {
    /// The rule of `config`.
    pub fn new(config: DecisionConfig) -> Self {
        Self { config }
    }

    /// The threshold `label` must reach.
    pub fn threshold_for(&self, label: &str) -> f64 {
        self.config
            .thresholds
            .get(label)
            .copied()
            .unwrap_or(self.config.threshold)
    }

    /// The outcome of a frame from its prediction (top-k classes, best first, and the
    /// open-world verdict).
    pub fn decide(&self, prediction: &Prediction) -> Outcome {
        let Some(best) = prediction.top.first() else {
            return Outcome::Unknown {
                best_guess: String::new(),
                probability: 0.0,
            };
        };
        let is_blank = best.label == self.config.blank_label;
        let unknown = || Outcome::Unknown {
            best_guess: best.label.clone(),
            probability: best.probability,
        };
        if prediction.is_unknown() && !is_blank {
            return unknown();
        }
        let clears = f64::from(best.probability) >= self.threshold_for(&best.label);
        match (clears, is_blank) {
            (true, true) => Outcome::Blank {
                probability: best.probability,
            },
            (true, false) => Outcome::Species {
                label: best.label.clone(),
                probability: best.probability,
            },
            (false, _) => match self.rolled_up(prediction) {
                Some(taxon) => taxon,
                None if self.config.unknown_below_threshold => unknown(),
                None => Outcome::Blank {
                    probability: best.probability,
                },
            },
        }
    }

    /// The roll-up's answer for a frame no species answers, if a taxon no coarser than
    /// `roll_up_to` reaches its threshold.
    fn rolled_up(&self, prediction: &Prediction) -> Option<Outcome> {
        let limit = self.config.roll_up_to.coarsest()?;
        let allowed = prediction
            .taxa
            .iter()
            .take_while(|t| t.rank <= limit)
            .cloned()
            .collect::<Vec<_>>();
        let taxon = roll_up(&allowed, |t| self.threshold_for(&t.name))?;
        Some(Outcome::Taxon {
            rank: taxon.rank,
            name: taxon.name.clone(),
            probability: taxon.probability,
            best_guess: prediction.top.first().map(|c| c.label.clone())?,
        })
    }
}

/// A decided frame, as the event grouper takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecidedFrame {
    /// The frame's media id (unique in the log).
    pub media_id: String,
    /// When the frame was captured.
    pub captured: SystemTime,
    /// The decision.
    pub outcome: Outcome,
}

/// What an event was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EventOutcome {
    /// At least one frame named a species; the winner of the vote.
    Species {
        /// The class label.
        label: String,
    },
    /// No frame named a species, at least one a taxon above it; the winner of their vote.
    Taxon {
        /// The rank.
        rank: Rank,
        /// The taxon's name.
        name: String,
    },
    /// No frame cleared a threshold; the winner of the vote over the guesses.
    Unknown {
        /// The most voted guess.
        best_guess: String,
    },
}

/// A closed event: consecutive animal frames no more than the gap apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Sequence number of the event, from the grouper's first id.
    pub id: u64,
    /// Capture time of the first frame.
    pub start: SystemTime,
    /// Capture time of the last frame.
    pub end: SystemTime,
    /// The summary.
    pub outcome: EventOutcome,
    /// Highest probability of the winning label over the frames.
    pub best_probability: f32,
    /// Media id of that frame.
    pub best_media_id: String,
    /// Media ids of every frame, in order.
    pub media_ids: Vec<String>,
}

/// Votes for one label.
#[derive(Clone, Debug)]
struct Tally {
    /// Order of the first vote, for ties.
    first: usize,
    sum: f64,
    best: f32,
    best_media_id: String,
    /// The rank voted for, for taxa.
    rank: Option<Rank>,
}

/// The event being built.
#[derive(Clone, Debug)]
struct OpenEvent {
    id: u64,
    start: SystemTime,
    last: SystemTime,
    media_ids: Vec<String>,
    species: BTreeMap<String, Tally>,
    taxa: BTreeMap<String, Tally>,
    guesses: BTreeMap<String, Tally>,
}

impl OpenEvent {
    fn new(id: u64, frame: &DecidedFrame) -> Self {
        let mut event = Self {
            id,
            start: frame.captured,
            last: frame.captured,
            media_ids: Vec::new(),
            species: BTreeMap::new(),
            taxa: BTreeMap::new(),
            guesses: BTreeMap::new(),
        };
        event.add(frame);
        event
    }

    fn add(&mut self, frame: &DecidedFrame) {
        let order = self.media_ids.len();
        self.media_ids.push(frame.media_id.clone());
        self.last = self.last.max(frame.captured);
        let (votes, label, probability, rank) = match &frame.outcome {
            Outcome::Species { label, probability } => {
                (&mut self.species, label, *probability, None)
            }
            Outcome::Taxon {
                rank,
                name,
                probability,
                ..
            } => (&mut self.taxa, name, *probability, Some(*rank)),
            Outcome::Unknown {
                best_guess,
                probability,
            } => (&mut self.guesses, best_guess, *probability, None),
            Outcome::Blank { .. } => return,
        };
        let tally = votes.entry(label.clone()).or_insert_with(|| Tally {
            first: order,
            sum: 0.0,
            best: f32::NEG_INFINITY,
            best_media_id: String::new(),
            rank,
        });
        tally.sum += f64::from(probability);
        if probability > tally.best {
            tally.best = probability;
            tally.best_media_id = frame.media_id.clone();
        }
    }

    fn close(self) -> Event {
        let winner = |votes: &BTreeMap<String, Tally>| -> Option<(String, Tally)> {
            votes
                .iter()
                .max_by(|(_, a), (_, b)| a.sum.total_cmp(&b.sum).then(b.first.cmp(&a.first)))
                .map(|(label, tally)| (label.clone(), tally.clone()))
        };
        let (outcome, tally) = if let Some((label, tally)) = winner(&self.species) {
            (EventOutcome::Species { label }, tally)
        } else if let Some((name, tally)) = winner(&self.taxa) {
            let rank = tally.rank.expect("a taxon's vote records its rank");
            (EventOutcome::Taxon { rank, name }, tally)
        } else {
            let (best_guess, tally) =
                winner(&self.guesses).expect("an event holds at least one animal frame");
            (EventOutcome::Unknown { best_guess }, tally)
        };
        Event {
            id: self.id,
            start: self.start,
            end: self.last,
            outcome,
            best_probability: tally.best,
            best_media_id: tally.best_media_id,
            media_ids: self.media_ids,
        }
    }
}

/// The most frames one event holds; a longer stay is logged as several events, so that an
/// animal (or a swaying branch) in front of the camera all day cannot grow memory without end.
pub const MAX_EVENT_FRAMES: usize = 1000;

/// Groups decided frames into events; see the module documentation for the rule.
#[derive(Debug)]
pub struct EventGrouper {
    gap: Duration,
    next_id: u64,
    open: Option<OpenEvent>,
}

impl EventGrouper {
    /// A grouper closing events after `gap` without an animal frame, numbering events from
    /// `first_id` (one past the last event id in the log, so ids stay unique across restarts).
    pub fn new(gap: Duration, first_id: u64) -> Self {
        Self {
            gap,
            next_id: first_id,
            open: None,
        }
    }

    /// Whether an event is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Takes the next frame (in capture order); returns the event it closed, if any.
    pub fn push(&mut self, frame: &DecidedFrame) -> Option<Event> {
        let mut closed = self.close_if_idle(frame.captured);
        if self
            .open
            .as_ref()
            .is_some_and(|e| e.media_ids.len() >= MAX_EVENT_FRAMES)
        {
            // An animal that stays for hours: its event is split rather than grown without end.
            closed = self.flush();
        }
        if frame.outcome.is_animal() {
            match &mut self.open {
                Some(event) => event.add(frame),
                None => {
                    self.open = Some(OpenEvent::new(self.next_id, frame));
                    self.next_id += 1;
                }
            }
        }
        closed
    }

    /// Closes the open event if `now` is more than the gap after its last animal frame.
    pub fn close_if_idle(&mut self, now: SystemTime) -> Option<Event> {
        let last = self.open.as_ref()?.last;
        // A clock that went backwards reads as no time passed.
        let idle = now.duration_since(last).unwrap_or(Duration::ZERO);
        if idle > self.gap {
            self.flush()
        } else {
            None
        }
    }

    /// Closes the open event, if any (at shutdown).
    pub fn flush(&mut self) -> Option<Event> {
        self.open.take().map(OpenEvent::close)
    }
}

#[cfg(test)]
mod tests;
