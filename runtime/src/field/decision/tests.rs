//! Thresholds, per-class overrides, blank and unknown, the open-world verdict; events opening,
//! extending and closing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::classifier::ClassScore;
use crate::open_world::OpenWorldVerdict;
use crate::taxonomy::{RollUpTo, TaxonScore};

/// A prediction of `top` from a bundle without an open-world rule.
fn prediction(top: &[ClassScore]) -> Prediction {
    Prediction {
        top: top.to_vec(),
        logits: Vec::new(),
        open_world: None,
        taxa: Vec::new(),
    }
}

/// A prediction of `top` that the open-world rule does (`unknown`) or does not reject.
fn judged(top: &[ClassScore], unknown: bool) -> Prediction {
    Prediction {
        open_world: Some(OpenWorldVerdict {
            score: 1.0,
            unknown,
        }),
        ..prediction(top)
    }
}

fn score(label: &str, probability: f32) -> ClassScore {
    ClassScore {
        index: 0,
        label: label.to_string(),
        probability,
    }
}

fn decider(edit: impl FnOnce(&mut DecisionConfig)) -> Decider {
    let mut config = DecisionConfig::default();
    edit(&mut config);
    Decider::new(config)
}

fn species(label: &str, probability: f32) -> Outcome {
    Outcome::Species {
        label: label.into(),
        probability,
    }
}

fn unknown(label: &str, probability: f32) -> Outcome {
    Outcome::Unknown {
        best_guess: label.into(),
        probability,
    }
}

#[test]
fn best_class_at_or_above_the_global_threshold_is_the_species() {
    let d = decider(|c| c.threshold = 0.6);
    let top = [score("bartail_finch", 0.6), score("blank", 0.3)];
    assert_eq!(d.decide(&prediction(&top)), species("bartail_finch", 0.6));
}

#[test]
fn best_class_below_the_threshold_is_unknown_with_the_guess() {
    let d = decider(|c| c.threshold = 0.6);
    let top = [score("bartail_finch", 0.59), score("blank", 0.3)];
    assert_eq!(d.decide(&prediction(&top)), unknown("bartail_finch", 0.59));
}

#[test]
fn per_class_threshold_overrides_the_global_one_both_ways() {
    let d = decider(|c| {
        c.threshold = 0.5;
        c.thresholds.insert("greybill_chat".into(), 0.9);
        c.thresholds.insert("twobar_shrike".into(), 0.3);
    });
    assert_eq!(d.threshold_for("greybill_chat"), 0.9);
    assert_eq!(d.threshold_for("bartail_finch"), 0.5);
    assert_eq!(
        d.decide(&prediction(&[score("greybill_chat", 0.8)])),
        unknown("greybill_chat", 0.8)
    );
    assert_eq!(
        d.decide(&prediction(&[score("twobar_shrike", 0.35)])),
        species("twobar_shrike", 0.35)
    );
}

#[test]
fn blank_label_above_its_threshold_is_blank() {
    let d = decider(|c| {
        c.blank_label = "empty".into();
        c.thresholds.insert("empty".into(), 0.7);
    });
    assert_eq!(
        d.decide(&prediction(&[score("empty", 0.75)])),
        Outcome::Blank { probability: 0.75 }
    );
    assert_eq!(
        d.decide(&prediction(&[score("empty", 0.65)])),
        unknown("empty", 0.65)
    );
}

#[test]
fn without_unknowns_uncertain_frames_count_as_blank() {
    let d = decider(|c| c.unknown_below_threshold = false);
    assert_eq!(
        d.decide(&prediction(&[score("bartail_finch", 0.4)])),
        Outcome::Blank { probability: 0.4 }
    );
}

#[test]
fn empty_prediction_is_unknown_without_a_guess() {
    assert_eq!(decider(|_| {}).decide(&prediction(&[])), unknown("", 0.0));
}

#[test]
fn a_frame_the_open_world_rule_rejects_is_unknown_whatever_the_thresholds() {
    let d = decider(|c| {
        c.threshold = 0.5;
        c.unknown_below_threshold = false;
    });
    let top = [score("bartail_finch", 0.97), score("blank", 0.01)];
    assert_eq!(
        d.decide(&judged(&top, true)),
        unknown("bartail_finch", 0.97)
    );
    assert_eq!(
        d.decide(&judged(&top, false)),
        species("bartail_finch", 0.97)
    );
    assert_eq!(d.decide(&prediction(&top)), species("bartail_finch", 0.97));
}

#[test]
fn a_frame_whose_best_class_is_blank_stays_blank_even_if_rejected() {
    // The runtime's rule never rejects such a frame; a profile naming another blank label
    // than the bundle's still gets blank for its own.
    let d = decider(|c| c.blank_label = "empty".into());
    let top = [score("empty", 0.9), score("bartail_finch", 0.05)];
    assert_eq!(
        d.decide(&judged(&top, true)),
        Outcome::Blank { probability: 0.9 }
    );
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

fn frame(id: &str, seconds: u64, outcome: Outcome) -> DecidedFrame {
    DecidedFrame {
        media_id: id.into(),
        captured: at(seconds),
        outcome,
    }
}

/// `prediction` whose best genus (Conizona) sums to `genus`, its family to `family` and the
/// order to 0.99.
fn with_taxa(prediction: Prediction, genus: f32, family: f32) -> Prediction {
    let taxon = |rank, name: &str, probability| TaxonScore {
        rank,
        name: name.into(),
        probability,
    };
    Prediction {
        taxa: vec![
            taxon(Rank::Genus, "Conizona", genus),
            taxon(Rank::Family, "Conirostridae", family),
            taxon(Rank::Order, "Passeriformes", 0.99),
        ],
        ..prediction
    }
}

fn taxon(rank: Rank, name: &str, probability: f32, guess: &str) -> Outcome {
    Outcome::Taxon {
        rank,
        name: name.into(),
        probability,
        best_guess: guess.into(),
    }
}

#[test]
fn an_unsure_species_rolls_up_to_the_finest_taxon_that_is_sure() {
    let d = decider(|c| c.threshold = 0.6);
    let top = [score("bartail_finch", 0.4), score("twobar_finch", 0.3)];
    let genus = with_taxa(prediction(&top), 0.7, 0.8);
    assert_eq!(
        d.decide(&genus),
        taxon(Rank::Genus, "Conizona", 0.7, "bartail_finch")
    );
    let family = with_taxa(prediction(&top), 0.5, 0.8);
    assert_eq!(
        d.decide(&family),
        taxon(Rank::Family, "Conirostridae", 0.8, "bartail_finch")
    );
    // A sure species never rolls up.
    let sure = [score("bartail_finch", 0.65), score("twobar_finch", 0.3)];
    assert_eq!(
        d.decide(&with_taxa(prediction(&sure), 0.95, 0.99)),
        species("bartail_finch", 0.65)
    );
    // A taxon's own threshold, by its name.
    let strict = decider(|c| {
        c.threshold = 0.6;
        c.thresholds.insert("Conizona".into(), 0.75);
    });
    assert_eq!(
        strict.decide(&genus),
        taxon(Rank::Family, "Conirostridae", 0.8, "bartail_finch")
    );
}

#[test]
fn roll_up_stops_at_the_profiles_rank() {
    let top = [score("bartail_finch", 0.4), score("blank", 0.01)];
    // Only the order (0.99) is sure; the default stops at the family.
    let p = with_taxa(prediction(&top), 0.45, 0.48);
    assert_eq!(decider(|_| {}).decide(&p), unknown("bartail_finch", 0.4));
    let to_order = decider(|c| c.roll_up_to = RollUpTo::Order);
    assert_eq!(
        to_order.decide(&p),
        taxon(Rank::Order, "Passeriformes", 0.99, "bartail_finch")
    );
    let genus = with_taxa(prediction(&top), 0.7, 0.8);
    let never = decider(|c| c.roll_up_to = RollUpTo::Species);
    assert_eq!(never.decide(&genus), unknown("bartail_finch", 0.4));
    let to_genus = decider(|c| c.roll_up_to = RollUpTo::Genus);
    assert_eq!(
        to_genus.decide(&with_taxa(prediction(&top), 0.45, 0.8)),
        unknown("bartail_finch", 0.4)
    );
}

#[test]
fn a_rejected_frame_never_rolls_up_and_an_unsure_blank_may() {
    let d = decider(|c| c.threshold = 0.6);
    // Rejected by the open-world rule: unknown, however sure its genus looks.
    let rejected = Prediction {
        taxa: with_taxa(prediction(&[]), 0.9, 0.95).taxa,
        ..judged(&[score("bartail_finch", 0.5)], true)
    };
    assert_eq!(d.decide(&rejected), unknown("bartail_finch", 0.5));
    // Blank is the best class but unsure; the birds of one genus together are sure.
    let top = [score("blank", 0.35), score("bartail_finch", 0.33)];
    assert_eq!(
        d.decide(&with_taxa(prediction(&top), 0.62, 0.64)),
        taxon(Rank::Genus, "Conizona", 0.62, "blank")
    );
    // A frame whose best class is blank and sure stays blank.
    let sure_blank = [score("blank", 0.7), score("bartail_finch", 0.2)];
    assert_eq!(
        d.decide(&with_taxa(prediction(&sure_blank), 0.9, 0.9)),
        Outcome::Blank { probability: 0.7 }
    );
}

#[test]
fn an_event_without_species_frames_is_the_taxon_its_frames_vote_for() {
    let mut g = EventGrouper::new(Duration::from_secs(60), 0);
    g.push(&frame("a", 0, unknown("finch", 0.3)));
    g.push(&frame("b", 1, taxon(Rank::Genus, "Conizona", 0.7, "finch")));
    g.push(&frame(
        "c",
        2,
        taxon(Rank::Family, "Conirostridae", 0.8, "chat"),
    ));
    g.push(&frame(
        "d",
        3,
        taxon(Rank::Genus, "Conizona", 0.65, "finch"),
    ));
    let event = g.flush().unwrap();
    assert_eq!(
        event.outcome,
        EventOutcome::Taxon {
            rank: Rank::Genus,
            name: "Conizona".into()
        }
    );
    assert_eq!(
        (event.best_media_id.as_str(), event.best_probability),
        ("b", 0.7)
    );
    // One species frame outweighs them.
    g.push(&frame(
        "e",
        100,
        taxon(Rank::Genus, "Conizona", 0.9, "finch"),
    ));
    g.push(&frame("f", 101, species("finch", 0.6)));
    assert_eq!(
        g.flush().unwrap().outcome,
        EventOutcome::Species {
            label: "finch".into()
        }
    );
}

fn blank() -> Outcome {
    Outcome::Blank { probability: 0.9 }
}

#[test]
fn frames_within_the_gap_form_one_event_and_a_late_frame_closes_it() {
    let mut g = EventGrouper::new(Duration::from_secs(10), 7);
    assert_eq!(g.push(&frame("a", 0, species("finch", 0.7))), None);
    assert_eq!(g.push(&frame("b", 10, species("finch", 0.8))), None);
    assert_eq!(g.push(&frame("c", 15, species("finch", 0.6))), None);
    let event = g
        .push(&frame("d", 26, species("chat", 0.9)))
        .expect("gap of 11 s closes");
    assert_eq!(event.id, 7);
    assert_eq!((event.start, event.end), (at(0), at(15)));
    assert_eq!(event.media_ids, ["a", "b", "c"]);
    assert_eq!(
        event.outcome,
        EventOutcome::Species {
            label: "finch".into()
        }
    );
    assert_eq!(
        (event.best_media_id.as_str(), event.best_probability),
        ("b", 0.8)
    );
    assert!(g.is_open(), "frame d opened the next event");
    let next = g.flush().unwrap();
    assert_eq!(
        (next.id, next.media_ids.clone()),
        (8, vec!["d".to_string()])
    );
    assert_eq!(g.flush(), None);
}

#[test]
fn blank_frames_neither_open_nor_extend_events() {
    let mut g = EventGrouper::new(Duration::from_secs(10), 0);
    assert_eq!(g.push(&frame("a", 0, blank())), None);
    assert!(!g.is_open());
    g.push(&frame("b", 1, species("finch", 0.7)));
    g.push(&frame("c", 9, blank()));
    // 12 s after b (the last animal frame), though only 3 s after the blank c.
    let event = g
        .push(&frame("d", 13, blank()))
        .expect("closed by the gap since b");
    assert_eq!(event.media_ids, ["b"]);
    assert!(!g.is_open());
}

#[test]
fn idle_check_closes_an_event_without_a_new_frame() {
    let mut g = EventGrouper::new(Duration::from_secs(10), 0);
    g.push(&frame("a", 0, species("finch", 0.7)));
    assert_eq!(
        g.close_if_idle(at(10)),
        None,
        "exactly the gap still extends"
    );
    assert_eq!(
        g.close_if_idle(at(11)).map(|e| e.media_ids),
        Some(vec!["a".into()])
    );
}

#[test]
fn summed_probability_decides_the_event_species() {
    let mut g = EventGrouper::new(Duration::from_secs(60), 0);
    // chat has the single best frame, finch the larger sum (0.55 + 0.6 > 0.95).
    g.push(&frame("a", 0, species("finch", 0.55)));
    g.push(&frame("b", 1, species("chat", 0.95)));
    g.push(&frame("c", 2, species("finch", 0.6)));
    g.push(&frame("d", 3, unknown("chat", 0.4)));
    let event = g.flush().unwrap();
    assert_eq!(
        event.outcome,
        EventOutcome::Species {
            label: "finch".into()
        }
    );
    assert_eq!(
        (event.best_media_id.as_str(), event.best_probability),
        ("c", 0.6)
    );
    assert_eq!(event.media_ids.len(), 4);
}

#[test]
fn event_of_unknown_frames_is_unknown_with_the_most_voted_guess() {
    let mut g = EventGrouper::new(Duration::from_secs(60), 0);
    g.push(&frame("a", 0, unknown("finch", 0.3)));
    g.push(&frame("b", 1, unknown("chat", 0.45)));
    g.push(&frame("c", 2, unknown("finch", 0.2)));
    let event = g.flush().unwrap();
    assert_eq!(
        event.outcome,
        EventOutcome::Unknown {
            best_guess: "finch".into()
        }
    );
    assert_eq!(event.best_media_id, "a");
}

#[test]
fn ties_go_to_the_label_voted_first() {
    let mut g = EventGrouper::new(Duration::from_secs(60), 0);
    g.push(&frame("a", 0, species("wren", 0.5)));
    g.push(&frame("b", 1, species("chat", 0.5)));
    assert_eq!(
        g.flush().unwrap().outcome,
        EventOutcome::Species {
            label: "wren".into()
        }
    );
}

#[test]
fn a_clock_stepping_back_extends_the_event() {
    let mut g = EventGrouper::new(Duration::from_secs(10), 0);
    g.push(&frame("a", 100, species("finch", 0.7)));
    assert_eq!(g.push(&frame("b", 50, species("finch", 0.7))), None);
    let event = g.flush().unwrap();
    assert_eq!((event.start, event.end), (at(100), at(100)));
}

#[test]
fn an_animal_that_never_leaves_is_split_into_bounded_events() {
    let mut g = EventGrouper::new(Duration::from_secs(60), 1);
    let mut closed = Vec::new();
    for i in 0..(2 * MAX_EVENT_FRAMES as u64 + 5) {
        closed.extend(g.push(&frame(&format!("f{i}"), i, species("wren", 0.9))));
    }
    closed.extend(g.flush());
    let sizes: Vec<usize> = closed.iter().map(|e| e.media_ids.len()).collect();
    assert_eq!(sizes, [MAX_EVENT_FRAMES, MAX_EVENT_FRAMES, 5]);
    let ids: Vec<u64> = closed.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 3]);
}
